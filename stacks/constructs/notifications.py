"""Rules whose only target is the platform's notification topic, with a sentence for a person."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct


def notify_on(
    scope: Construct,
    id_: str,
    *,
    topic: sns.ITopic,
    description: str,
    pattern: events.EventPattern,
    message: str,
) -> events.Rule:
    """A rule that publishes ``message`` (event fields through ``events.EventField``) to ``topic``."""
    rule = events.Rule(scope, id_, description=description, event_pattern=pattern)
    rule.add_target(targets.SnsTopic(topic, message=events.RuleTargetInput.from_text(message)))
    return rule
