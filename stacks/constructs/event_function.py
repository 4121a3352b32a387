"""A Lambda function that reacts to EventBridge events, with retries, a dead-letter queue and alarms.

Delivery path: rule -> (EventBridge retries) -> function, invoked asynchronously ->
(Lambda retries) -> handler. Whatever still fails after both retry budgets lands in one
encrypted SQS dead-letter queue per function: an event EventBridge could not deliver, or an
invocation whose handler kept raising (AWS API errors; malformed events are rejected by the
handlers without raising, so they never loop). A message in the queue raises an alarm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs import lambda_code
from stacks.nag import acknowledge_wildcards

# EventBridge: attempts and age before an undeliverable event goes to the dead-letter queue.
EVENT_RETRY_ATTEMPTS = 8
EVENT_MAX_AGE = Duration.hours(6)
# Lambda asynchronous invocation: retries of a failed handler before the dead-letter queue.
INVOKE_RETRY_ATTEMPTS = 2
INVOKE_MAX_AGE = Duration.hours(6)
TIMEOUT = Duration.seconds(30)


class EventFunction(Construct):
    """One handler from ``lambdas/<handler>/handler.py`` behind one EventBridge rule."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        handler: str,
        description: str,
        event_pattern: events.EventPattern,
        rule_description: str,
        environment: Mapping[str, str],
        code: lambda_.Code,
        layers: Sequence[lambda_.ILayerVersion],
        key: kms.IKey,
        topic: sns.ITopic,
        log_retention: logs.RetentionDays,
        dlq_retention: Duration,
        removal_policy: RemovalPolicy,
        timeout: Duration = TIMEOUT,
        alarms: bool = True,
    ) -> None:
        """``alarms``: the dead-letter and error alarms (operations.alarms); without them failures wait in the queue."""
        super().__init__(scope, id_)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=dlq_retention,
            removal_policy=removal_policy,
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, encryption_key=key, removal_policy=removal_policy
        )
        # No managed policy: writes to its own log group only; grants add what the handler calls.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{handler} function: its log group, its queue, and the grants of its stack",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnLogGroup",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=lambda_code.RUNTIME,
            architecture=lambda_code.ARCHITECTURE,
            code=code,
            handler=f"{handler}.handler.lambda_handler",
            layers=list(layers),
            role=self.role,
            memory_size=256,
            timeout=timeout,
            environment={
                "POWERTOOLS_SERVICE_NAME": handler.replace("_", "-"),
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
            environment_encryption=key,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=INVOKE_RETRY_ATTEMPTS,
            max_event_age=INVOKE_MAX_AGE,
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description=rule_description,
            event_pattern=event_pattern,
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=EVENT_RETRY_ATTEMPTS,
                max_event_age=EVENT_MAX_AGE,
            )
        )
        self.alarms: list[cloudwatch.Alarm] = []
        if alarms:
            self._alarm(handler, topic)

    def _alarm(self, handler: str, topic: sns.ITopic) -> None:
        notify = cloudwatch_actions.SnsAction(topic)
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "DeadLettersAlarm",
            alarm_description=f"{handler}: events failed after all retries (see {self.node.path}/DeadLetterQueue)",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letter_alarm.add_alarm_action(notify)
        self.errors_alarm = cloudwatch.Alarm(
            self,
            "ErrorsAlarm",
            alarm_description=f"{handler}: the handler raised (it retries; persistent failures reach the DLQ)",
            metric=self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.errors_alarm.add_alarm_action(notify)
        self.alarms = [self.errors_alarm, self.dead_letter_alarm]

    def allow(self, statement: iam.PolicyStatement) -> None:
        self.role.add_to_policy(statement)

    def acknowledge_key_wildcards(self) -> None:
        """The KMS grants that encrypted SNS, SQS and DynamoDB resources need come with wildcard action names."""
        acknowledge_wildcards(
            self.role,
            actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
            reason="Publishing to the encrypted topic, the dead-letter queue and the idempotency table needs data "
            "keys of the operations key: kms:GenerateDataKey* and kms:ReEncrypt* are granted on that one key ARN "
            "by the CDK grants, not on any other key.",
        )
