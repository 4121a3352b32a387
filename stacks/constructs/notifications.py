"""Rules whose only target is the platform's notification topic, with a sentence for a person."""

from __future__ import annotations

import jsii
from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces import aws_events as events_refs
from constructs import Construct


def allow_rules_of_this_account(topic: sns.ITopic) -> None:
    """Let EventBridge publish to ``topic`` for rules of the topic's own account and region only.

    (The CDK's SnsTopic target grants events.amazonaws.com without conditions: any account's rule could
    then publish to the topic.) Identical statements are merged, so every rule may call this.
    """
    stack = Stack.of(topic)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="PublishFromEventBridgeRulesOfThisAccount",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": stack.format_arn(service="events", resource="rule", resource_name="*")},
            },
        )
    )


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """The topic as a rule target, without the unconditioned grant of the CDK's SnsTopic target."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic = topic
        self._message = message

    def bind(self, _rule: events_refs.IRuleRef, _id: str | None = None) -> events.RuleTargetConfig:
        allow_rules_of_this_account(self._topic)
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=self._message)


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
    rule.add_target(_TopicTarget(topic, events.RuleTargetInput.from_text(message)))
    return rule
