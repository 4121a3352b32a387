"""The emulated AWS account: one moto server on 127.0.0.1, the resources the stacks would create, and
what moto does not do on its own (evaluating metric alarms, emitting EventBridge events).

Names come from the synthesized stage (demo/assembly.py resolves the templates), so the operator CLI,
the Lambda handlers and the pipelines find what they look for. A resource the stacks leave unnamed (the
buckets, the topic, the table) gets the name CloudFormation would generate, with a fixed suffix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines_src.steps import drift as drift_step
from resolver import naming
from resolver.config import StageConfig

if TYPE_CHECKING:
    from demo.assembly import CompositeAlarm
    from resolver.published import PlatformValues

ACCOUNT = "123456789012"  # moto's default account
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
PIPELINE_STEP_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Step Status Change"
ALARM, OK, INSUFFICIENT_DATA = "ALARM", "OK", "INSUFFICIENT_DATA"


class EmulationError(RuntimeError):
    """The emulation could not be set up or read."""


@contextlib.contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (a value) or unset (None) environment variables for the block; restore what was there after it."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A ThreadedMotoServer on a free port of 127.0.0.1; yields its URL, stops it afterwards."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        yield url
    finally:
        with contextlib.suppress(OSError):
            request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
        server.stop()


def aws_environment(url: str, region: str) -> dict[str, str | None]:
    """What every client and subprocess of the demo sees: the emulator, fake credentials, the region."""
    return {
        **CREDENTIALS,
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        # No shared config or credential files: nothing of a real account is read.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_PROFILE": None,
    }


@dataclass(frozen=True)
class Names:
    """The physical names of the emulated account's resources: what the synthesized templates give them."""

    stage: str
    region: str
    model: str
    dataset: str
    raw_bucket: str
    curated_bucket: str
    artifacts_bucket: str
    model_package_group: str
    build_pipeline: str
    drift_pipeline: str
    deploy_pipeline: str
    endpoint: str
    topic_arn: str
    queue: str
    idempotency_table: str
    alarm_prefix: str
    role_arn: str
    kms_key_arn: str
    # The model-quality check's pipeline and its decay alarm (the quality-start and drift-alert environments).
    quality_pipeline: str = ""
    quality_alarm: str = ""

    @classmethod
    def from_assembly(
        cls, config: StageConfig, values: PlatformValues, environments: Mapping[str, Mapping[str, str]]
    ) -> Names:
        """From the published values and the functions' environments as the templates resolve them (demo/assembly.py);
        names the templates only spell out come from the same resolver the stacks use (resolver.naming)."""
        approval, alert = environments["registry_approval"], environments["drift_alert"]
        return cls(
            stage=values.stage,
            region=values.region,
            model=values.model.name,
            dataset=values.model.dataset,
            raw_bucket=values.raw_bucket,
            curated_bucket=values.curated_bucket,
            artifacts_bucket=values.artifacts_bucket,
            model_package_group=values.model_package_group,
            build_pipeline=values.build_pipeline,
            drift_pipeline=values.drift_pipeline,
            deploy_pipeline=approval["DEPLOY_PIPELINE_NAME"],
            endpoint=naming.endpoint(config),
            topic_arn=alert["NOTIFICATION_TOPIC_ARN"],
            queue=f"{config.prefix}-demo-notifications-probe",
            idempotency_table=alert["IDEMPOTENCY_TABLE"],
            alarm_prefix=alert["ALARM_PREFIX"],
            role_arn=values.pipeline_role_arn,
            kms_key_arn=values.kms_key_arn,
            quality_pipeline=environments.get("quality_start", {}).get("QUALITY_PIPELINE_NAME", ""),
            quality_alarm=alert.get("QUALITY_ALARM_NAME", ""),
        )

    @property
    def topic(self) -> str:
        return self.topic_arn.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class LambdaContext:
    """What the Lambda runtime passes a handler as its context (the attributes Powertools reads)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass(frozen=True)
class FeatureAlarm:
    """One per-feature drift alarm: its name, the metric it watches (and its dimensions) and its threshold."""

    name: str
    feature: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    threshold: float

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> FeatureAlarm:
        """From an AWS::CloudWatch::Alarm's properties (the Operations stack's drift alarms)."""
        dimensions = tuple((item["Name"], item["Value"]) for item in properties["Dimensions"])
        return cls(
            name=properties["AlarmName"],
            feature=dict(dimensions)["Feature"],
            namespace=properties["Namespace"],
            metric=properties["MetricName"],
            dimensions=dimensions,
            threshold=float(properties["Threshold"]),
        )


# The AWS::CloudWatch::Alarm properties that are PutMetricAlarm parameters of the same name.
_PUT_METRIC_ALARM = (
    "AlarmName",
    "AlarmDescription",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "Unit",
)


@dataclass
class Account:
    """Clients of the emulated account and what setup created in it."""

    url: str
    names: Names
    clients: dict[str, Any] = field(default_factory=dict)
    queue_url: str = ""
    feature_alarms: list[FeatureAlarm] = field(default_factory=list)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            import boto3
            from botocore.config import Config

            self.clients[service] = boto3.session.Session().client(
                service,
                region_name=self.names.region,
                endpoint_url=self.url,
                aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                config=Config(retries={"mode": "standard", "max_attempts": 2}, s3={"addressing_style": "path"}),
            )
        return self.clients[service]

    # ------------------------------------------------------------------ setup
    def create_storage(self) -> None:
        s3 = self.client("s3")
        for bucket in (self.names.raw_bucket, self.names.curated_bucket, self.names.artifacts_bucket):
            s3.create_bucket(Bucket=bucket)
        self.client("sagemaker").create_model_package_group(
            ModelPackageGroupName=self.names.model_package_group,
            ModelPackageGroupDescription=f"{self.names.model} versions ({self.names.stage})",
        )

    def create_notifications(self) -> None:
        """The topic, and a queue subscribed to it so the demo can read what was notified."""
        sns, sqs = self.client("sns"), self.client("sqs")
        topic_arn = sns.create_topic(Name=self.names.topic)["TopicArn"]
        if topic_arn != self.names.topic_arn:
            raise EmulationError(f"the topic's ARN is {topic_arn}, expected {self.names.topic_arn}")
        self.queue_url = sqs.create_queue(QueueName=self.names.queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=attributes["QueueArn"])

    def create_idempotency_table(self) -> None:
        """As the Operations stack's table: partition key ``id`` (string), on-demand."""
        self.client("dynamodb").create_table(
            TableName=self.names.idempotency_table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def create_deploy_pipeline(self, definition: Mapping[str, Any]) -> None:
        """The CICD stack's deploy pipeline as its template defines it (``definition``: Resolver.codepipeline), with
        a role of its own (the template's role is not created here)."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        name = str(definition["name"])
        if name != self.names.deploy_pipeline:
            raise EmulationError(f"the template's deploy pipeline is {name}, not {self.names.deploy_pipeline}")
        role = self.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]
        self.client("codepipeline").create_pipeline(pipeline={**definition, "roleArn": role})

    def create_metric_alarm(self, properties: Mapping[str, Any]) -> None:
        """A metric alarm as the template defines it (its resolved AWS::CloudWatch::Alarm properties)."""
        self.client("cloudwatch").put_metric_alarm(
            **{key: properties[key] for key in _PUT_METRIC_ALARM if key in properties}
        )

    def evaluate_metric_alarm(self, properties: Mapping[str, Any], since: dt.datetime) -> dict[str, Any]:
        """What CloudWatch would do for one GreaterThanThreshold alarm (missing data not breaching): its
        statistic of the datapoints published since ``since`` against the threshold; the state is set."""
        if properties.get("ComparisonOperator") != "GreaterThanThreshold":
            raise EmulationError(f"{properties['AlarmName']}: only GreaterThanThreshold alarms are evaluated here")
        statistic = str(properties.get("Statistic", "Maximum"))
        points = self.client("cloudwatch").get_metric_statistics(
            Namespace=properties["Namespace"],
            MetricName=properties["MetricName"],
            Dimensions=list(properties.get("Dimensions", [])),
            StartTime=since,
            EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
            Period=60,
            Statistics=[statistic],
        )["Datapoints"]
        value = max((float(point[statistic]) for point in points), default=None)
        threshold = float(properties["Threshold"])
        breaching = value is not None and value > threshold
        if value is None:
            reason = "no datapoint in the period (treated as not breaching)"
        else:
            relation = "greater than" if breaching else "not greater than"
            reason = f"Threshold Crossed: 1 datapoint [{value:.4g}] was {relation} the threshold ({threshold:g})."
        value_state = ALARM if breaching else OK
        state: dict[str, Any] = {"state": value_state, "value": value, "reason": reason}
        self.set_alarm(str(properties["AlarmName"]), value_state, reason)
        return state

    def create_drift_alarms(self, composite: CompositeAlarm) -> None:
        """The feature alarms the composite drift alarm combines, as the Operations template defines them, and a
        metric alarm standing in for the composite (moto has none), with the composite's name and actions."""
        cloudwatch = self.client("cloudwatch")
        self.feature_alarms = [FeatureAlarm.from_properties(properties) for properties in composite.alarms]
        for properties in composite.alarms:
            cloudwatch.put_metric_alarm(**{key: properties[key] for key in _PUT_METRIC_ALARM if key in properties})
        run = [{"Name": "Model", "Value": self.names.model}, {"Name": "Stage", "Value": self.names.stage}]
        cloudwatch.put_metric_alarm(
            AlarmName=composite.properties["AlarmName"],
            AlarmDescription="Stands in for the composite alarm (ANY of the feature alarms); moto has none",
            Namespace=drift_step.NAMESPACE,
            MetricName=drift_step.DRIFTED_FEATURES,
            Dimensions=run,
            Statistic="Maximum",
            Period=86400,
            EvaluationPeriods=1,
            Threshold=0.0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=list(composite.properties.get("AlarmActions", [])),
        )

    # --------------------------------------------------------------- alarms
    def evaluate_alarms(self, since: dt.datetime) -> dict[str, dict[str, Any]]:
        """What CloudWatch would do: each feature alarm against the highest datapoint published since
        ``since``; the composite stand-in is ALARM when any feature alarm is. Returns name -> state, value."""
        cloudwatch = self.client("cloudwatch")
        until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        states: dict[str, dict[str, Any]] = {}
        for alarm in self.feature_alarms:
            points = cloudwatch.get_metric_statistics(
                Namespace=alarm.namespace,
                MetricName=alarm.metric,
                Dimensions=[{"Name": name, "Value": value} for name, value in alarm.dimensions],
                StartTime=since,
                EndTime=until,
                Period=60,
                Statistics=["Maximum"],
            )["Datapoints"]
            value = max((float(point["Maximum"]) for point in points), default=None)
            breaching = value is not None and value > alarm.threshold
            if value is None:
                reason = "no datapoint in the period (treated as not breaching)"
            else:
                relation = "greater than" if breaching else "not greater than"
                reason = (
                    f"Threshold Crossed: 1 datapoint [{value:.4g}] was {relation} the threshold ({alarm.threshold:g})."
                )
            states[alarm.name] = {"state": ALARM if breaching else OK, "value": value, "reason": reason}
        in_alarm = sorted(name for name, state in states.items() if state["state"] == ALARM)
        composite_reason = (
            f"{len(in_alarm)} of {len(states)} feature alarms in ALARM: {', '.join(in_alarm)}"
            if in_alarm
            else f"none of the {len(states)} feature alarms is in ALARM"
        )
        states[self.names.alarm_prefix] = {
            "state": ALARM if in_alarm else OK,
            "value": float(len(in_alarm)),
            "reason": composite_reason,
        }
        for name, state in states.items():
            self.set_alarm(name, state["state"], state["reason"])
        return states

    def set_alarm(self, name: str, state: str, reason: str) -> None:
        self.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason[:1023])

    def alarm(self, name: str) -> dict[str, Any]:
        found = self.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
        if not found:
            raise EmulationError(f"alarm {name} not found")
        alarm: dict[str, Any] = found[0]
        return alarm

    # ----------------------------------------------------------- notifications
    def notifications(self) -> list[dict[str, str]]:
        """Every SNS message delivered to the probe queue since the last call: subject and message."""
        sqs = self.client("sqs")
        messages: list[dict[str, str]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                body = json.loads(message["Body"])
                messages.append({"subject": str(body.get("Subject", "")), "message": str(body.get("Message", ""))})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


# ------------------------------------------------------------------------- events
def _millis(value: Any) -> int | None:
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return None


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_package_event(package: Mapping[str, Any], region: str, *, now: dt.datetime) -> dict[str, Any]:
    """The "SageMaker Model Package State Change" event EventBridge delivers for a described package."""
    arn = str(package["ModelPackageArn"])
    detail: dict[str, Any] = {
        "ModelPackageGroupName": package["ModelPackageGroupName"],
        "ModelPackageVersion": package["ModelPackageVersion"],
        "ModelPackageArn": arn,
        "CreationTime": _millis(package.get("CreationTime")),
        "InferenceSpecification": package.get("InferenceSpecification", {}),
        "ModelPackageStatus": package.get("ModelPackageStatus", "Completed"),
        "ModelApprovalStatus": package["ModelApprovalStatus"],
        "LastModifiedTime": _millis(package.get("LastModifiedTime")) or int(now.timestamp() * 1000),
        "ModelMetrics": package.get("ModelMetrics", {}),
    }
    if package.get("ApprovalDescription"):
        detail["ApprovalDescription"] = package["ApprovalDescription"]
    event = {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{arn}#{detail['ModelApprovalStatus']}")),
        "detail-type": MODEL_PACKAGE_STATE_CHANGE,
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": _iso(now),
        "region": region,
        "resources": [arn],
        "detail": detail,
    }
    parsed: dict[str, Any] = json.loads(json.dumps(event, default=str))
    return parsed


def step_succeeded_event(
    pipeline: str, execution_id: str, step: str, region: str, *, now: dt.datetime
) -> dict[str, Any]:
    """The "SageMaker Model Building Pipeline Execution Step Status Change" event of a step that succeeded
    (shape: "Pipeline step state change", https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html)."""
    pipeline_arn = f"arn:aws:sagemaker:{region}:{ACCOUNT}:pipeline/{pipeline}"
    execution_arn = f"{pipeline_arn}/execution/{execution_id}"
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{execution_arn}#{step}#Succeeded")),
        "detail-type": PIPELINE_STEP_STATUS_CHANGE,
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": _iso(now),
        "region": region,
        "resources": [pipeline_arn, execution_arn],
        "detail": {
            "stepName": step,
            "stepType": "Processing",
            "previousStepStatus": "Executing",
            "currentStepStatus": "Succeeded",
            "pipelineArn": pipeline_arn,
            "pipelineExecutionArn": execution_arn,
        },
    }


def alarm_event(alarm: Mapping[str, Any], previous: str, region: str) -> dict[str, Any]:
    """The "CloudWatch Alarm State Change" event for a described alarm's current state."""
    updated = alarm.get("StateUpdatedTimestamp")
    moment = updated if isinstance(updated, dt.datetime) else dt.datetime.now(dt.UTC)
    timestamp = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    name = str(alarm["AlarmName"])
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}#{alarm['StateValue']}#{timestamp}")),
        "detail-type": ALARM_STATE_CHANGE,
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": _iso(moment),
        "region": region,
        "resources": [str(alarm.get("AlarmArn", f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{name}"))],
        "detail": {
            "alarmName": name,
            "state": {"value": alarm["StateValue"], "reason": alarm.get("StateReason", ""), "timestamp": timestamp},
            "previousState": {"value": previous},
            "configuration": {"description": alarm.get("AlarmDescription", "")},
        },
    }


def keep_metadata_on_update(backend: Any) -> None:
    """Make moto's UpdateModelPackage keep a version's customer metadata, as SageMaker does: its
    CustomerMetadataProperties adds or replaces the keys it names, CustomerMetadataPropertiesToRemove removes
    keys, and the others stay (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html).
    moto 5 replaces the whole map with the request's, so an approval would erase what Evaluate registered."""
    original = backend.update_model_package

    def update(
        model_package_arn: str,
        model_approval_status: str | None,
        approval_description: str | None,
        customer_metadata_properties: dict[str, str] | None,
        customer_metadata_properties_to_remove: list[str],
        additional_inference_specifications_to_add: list[Any] | None,
    ) -> str:
        name = backend.model_package_name_mapping.get(model_package_arn, model_package_arn)
        package = backend.model_packages.get(name)
        kept = dict(getattr(package, "customer_metadata_properties", None) or {})
        kept.update(customer_metadata_properties or {})
        arn: str = original(
            model_package_arn,
            model_approval_status,
            approval_description,
            kept or None,
            customer_metadata_properties_to_remove,
            additional_inference_specifications_to_add,
        )
        return arn

    backend.update_model_package = update
