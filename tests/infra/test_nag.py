"""cdk-nag AwsSolutions: no unacknowledged finding, and every acknowledgment says why."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from resolver.config import PlatformConfig
from stacks.nag import Recorded, acknowledge, acknowledge_wildcards, recording
from tests.conftest import Synthesized, new_app

STAGES = ("dev", "staging", "prod")


def _violations(scope: IConstruct) -> list[str]:
    report = AwsSolutionsChecks().validate_scope(scope)
    return [
        f"{violation.rule_name} at {resource.construct_path}"
        for violation in report.violations
        for resource in violation.violating_resources
    ]


def test_every_stage_has_no_unacknowledged_finding(synthesized: Synthesized) -> None:
    assert _violations(synthesized.app) == []


@pytest.mark.slow
def test_every_acknowledgment_gives_a_reason_a_reviewer_can_judge(synthesized: Synthesized) -> None:
    acknowledged = {}
    for construct in synthesized.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    acknowledged[(construct.node.path, rule)] = reason
    assert acknowledged, "the lake acknowledges at least the access-log bucket's own logging"
    for (path, rule), reason in acknowledged.items():
        assert len(str(reason)) >= 60, f"{rule} at {path}: reason too thin: {reason!r}"


def test_the_check_catches_an_insecure_bucket() -> None:
    # Guards against a vacuous pass: the same checks flag the usual mistakes.
    app = new_app()
    stack = Stack(app, "Insecure")
    s3.Bucket(stack, "Open", removal_policy=RemovalPolicy.DESTROY)
    found = _violations(app)
    assert "AwsSolutions-S1 at Insecure/Open/Resource" in found  # no access logs
    assert "AwsSolutions-S10 at Insecure/Open/Resource" in found  # TLS not enforced


def test_acknowledging_one_wildcard_leaves_the_others_reported() -> None:
    app = new_app()
    stack = Stack(app, "Wild")
    bucket = s3.Bucket(stack, "Data", enforce_ssl=True, removal_policy=RemovalPolicy.DESTROY)
    role = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
    bucket.grant_read(role)
    acknowledge_wildcards(role, actions=["s3:GetObject*"], reason="test")
    app.synth()  # acknowledgments of wildcards are rendered during synthesis
    found = _violations(app)
    assert not any("IAM5[Action::s3:GetObject*]" in line for line in found)
    assert "AwsSolutions-IAM5[Action::s3:List*] at Wild/Reader/DefaultPolicy/Resource" in found
    data_arn = stack.get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
    assert f"AwsSolutions-IAM5[Resource::<{data_arn}.Arn>/*] at Wild/Reader/DefaultPolicy/Resource" in found


def _findings(scope: IConstruct) -> set[tuple[str, str]]:
    report = AwsSolutionsChecks().validate_scope(scope)
    return {
        (violation.rule_name, resource.construct_path)
        for violation in report.violations
        for resource in violation.violating_resources
    }


def _idle(acknowledgments: list[Recorded], findings: set[tuple[str, str]]) -> list[str]:
    """Acknowledgments no live finding at or below their construct matches (cdk-nag matches ids exactly)."""
    return sorted(
        f"{ack.rule} at {ack.path}"
        for ack in acknowledgments
        if not any(
            rule == ack.rule and (path == ack.path or path.startswith(ack.path + "/")) for rule, path in findings
        )
    )


@pytest.fixture(scope="module")
def unacknowledged(tmp_path_factory: pytest.TempPathFactory, platform_config: PlatformConfig) -> Any:
    """Every stage built again with acknowledgments recorded, not applied: (acknowledgments, live findings)."""
    from stacks.app import build

    with recording() as acknowledgments:
        app = new_app(outdir=str(tmp_path_factory.mktemp("cdk.out.nag")))
        stages = build(app, platform_config, platform_config.stages)
        app.synth()  # wildcard acknowledgments are rendered during synthesis
    return acknowledgments, _findings(app), {stage.config.name for stage in stages}


def test_every_acknowledgment_matches_a_live_finding_in_every_stage(unacknowledged: Any) -> None:
    acknowledgments, findings, stages = unacknowledged
    assert set(STAGES) <= stages
    for stage in STAGES:
        assert any(f"-{stage}" in ack.path for ack in acknowledgments), f"no acknowledgment recorded in {stage}"
    assert _idle(acknowledgments, findings) == []


def test_recorded_acknowledgments_cover_exactly_the_live_findings(unacknowledged: Any) -> None:
    acknowledgments, findings, _ = unacknowledged
    covered = {
        (rule, path)
        for rule, path in findings
        if any(rule == ack.rule and (path == ack.path or path.startswith(ack.path + "/")) for ack in acknowledgments)
    }
    assert sorted(findings - covered) == []


def test_no_acknowledgment_is_stack_or_stage_wide(unacknowledged: Any, synthesized: Synthesized) -> None:
    acknowledgments, _, _ = unacknowledged
    wide = {construct.node.path for construct in synthesized.app.node.find_all() if Stack.is_stack(construct)}
    wide |= {stage.node.path for stage in synthesized.stages.values()}
    assert sorted({ack.path for ack in acknowledgments} & wide) == []


def test_an_acknowledgment_that_covers_nothing_is_caught() -> None:
    # Guards against a vacuous pass: an idle acknowledgment beside a used one is reported, the used one is not.
    with recording() as acknowledgments:
        app = new_app()
        stack = Stack(app, "Idle")
        bucket = s3.Bucket(stack, "Logs", enforce_ssl=True, removal_policy=RemovalPolicy.DESTROY)
        acknowledge(bucket, {"AwsSolutions-S1": "test: the log bucket itself", "AwsSolutions-IAM4": "test: nothing"})
        app.synth()
    assert _idle(acknowledgments, _findings(app)) == ["AwsSolutions-IAM4 at Idle/Logs"]


def test_a_stack_wide_acknowledgment_is_refused() -> None:
    app = new_app()
    stack = Stack(app, "Wide")
    with pytest.raises(ValueError, match="Wide: acknowledge findings on the construct that raises them"):
        acknowledge(stack, {"AwsSolutions-S1": "test"})
    with pytest.raises(ValueError, match="Wide: acknowledge findings on the construct that raises them"):
        acknowledge_wildcards(stack, actions=["s3:GetObject*"], reason="test")
