"""Acknowledging cdk-nag findings where they arise, with the reason.

Every acknowledgment goes through `acknowledge` (directly or through `acknowledge_wildcards`), on the construct
whose resources raise the finding, never on a stack or a stage. Under `recording()` nothing is acknowledged and
each acknowledgment is recorded instead: checking such an app yields every live finding, so a test can tell an
acknowledgment that covers a finding from one that covers nothing (and would silently pass a future one).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import jsii
from aws_cdk import Acknowledgment, Stack, Stage, Validations
from constructs import IConstruct, IValidation


@dataclass(frozen=True)
class Recorded:
    """One acknowledgment: the construct path it sits on, the rule or finding id, the reason."""

    path: str
    rule: str
    reason: str


_recorder: list[Recorded] | None = None


@contextlib.contextmanager
def recording() -> Iterator[list[Recorded]]:
    """Record instead of acknowledging, for apps built and synthesized inside the block."""
    global _recorder
    previous, _recorder = _recorder, []
    try:
        yield _recorder
    finally:
        _recorder = previous


def acknowledge(construct: IConstruct, reasons: dict[str, str]) -> None:
    """Acknowledge cdk-nag rule or finding ids on a construct (and so on everything below it).

    Refuses a stack, stage or app: an acknowledgment there would cover every resource of it, today's and
    tomorrow's, far beyond its reason.
    """
    _acknowledge(construct, reasons, _recorder)


def _acknowledge(construct: IConstruct, reasons: dict[str, str], recorder: list[Recorded] | None) -> None:
    if Stack.is_stack(construct) or Stage.is_stage(construct) or construct.node.scope is None:
        raise ValueError(
            f"{construct.node.path or 'the app'}: acknowledge findings on the construct that raises "
            "them, not on a whole stack or stage"
        )
    if recorder is not None:
        recorder.extend(Recorded(construct.node.path, rule, reason) for rule, reason in reasons.items())
        return
    Validations.of(construct).acknowledge(*(Acknowledgment(id=rule, reason=reason) for rule, reason in reasons.items()))


def acknowledge_wildcards(
    construct: IConstruct,
    *,
    actions: Iterable[str] = (),
    resources: Iterable[Any] = (),
    reason: str,
) -> None:
    """Acknowledge AwsSolutions-IAM5 for exactly these wildcard actions and resources.

    Resources may be tokens (a bucket ARN, a formatted ARN, a value from another stack);
    they are rendered the way cdk-nag names its findings, so any other wildcard still
    fails the check. Rendering waits for synthesis: a reference to another stack takes
    its final form (an import) only then, after construction and before the checks run.
    """
    if Stack.is_stack(construct) or Stage.is_stage(construct):
        _acknowledge(construct, {}, None)  # refuses it, with the message
    construct.node.add_validation(
        _WildcardAcknowledgment(construct, tuple(actions), tuple(resources), reason, _recorder)
    )


@jsii.implements(IValidation)
class _WildcardAcknowledgment:
    def __init__(
        self,
        construct: IConstruct,
        actions: tuple[str, ...],
        resources: tuple[Any, ...],
        reason: str,
        recorder: list[Recorded] | None,
    ):
        self._construct = construct
        self._actions = actions
        self._resources = resources
        self._reason = reason
        self._recorder = recorder

    def validate(self) -> list[str]:
        stack = Stack.of(self._construct)
        ids = [f"AwsSolutions-IAM5[Action::{action}]" for action in self._actions]
        ids += [f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(item))}]" for item in self._resources]
        _acknowledge(self._construct, dict.fromkeys(ids, self._reason), self._recorder)
        return []


def flatten_reference(node: Any) -> str:
    """Render a resolved CloudFormation value as a flat string: Fn::GetAtt as <Id.Attr>, Ref as <Id>."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_reference(node['Ref'])}>"
    # Anything else (e.g. Fn::GetStackOutput) appears as its compact JSON, keys in their given order.
    return json.dumps(node, separators=(",", ":"))
