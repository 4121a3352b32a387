"""What the Operations stack promises: the right events reach the right function, failures are kept, alarms act."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from moto.events.models import EventPattern

from pipelines_src.steps.drift import CHECK_COMPLETED
from resolver import naming
from resolver.config import PlatformConfig, drift_period_seconds
from stacks.nag import flatten_reference
from stacks.operations_stack import drift_features
from tests.conftest import Synthesized

# What the handlers parse at import (values only need to be well-formed here).
HANDLER_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "MODEL_PACKAGE_GROUP": "group",
    "MODEL_PACKAGE_PARTITION": "aws",
    "MODEL_PACKAGE_REGION": "us-east-1",
    "MODEL_PACKAGE_ACCOUNT": "123456789012",
    "DEPLOY_PIPELINE_NAME": "deploy",
    "MODEL_BUILD_PIPELINE_NAME": "build",
    "ALARM_PREFIX": "drift",
    "COOLDOWN_MINUTES": "60",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:topic",
    "IDEMPOTENCY_TABLE": "table",
    "PIPELINE_ARN": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/drift",
    "STEP_NAME": "DetectDrift",
    "METRICS_BUCKET": "bucket",
    "METRICS_PREFIX": "drift-check/drift/",
    "METRICS_KEY_SUFFIX": "DetectDrift/report/drift_metrics.json",
    "METRIC_NAMESPACE": "MLOps/Drift",
    "METRIC_DIMENSIONS": '{"Model": "m", "Stage": "dev"}',
    "CHAMPION_PARAMETER": "/mlops/dev/model/production/model-package-arn",
}
# Literal accounts make every ARN in these templates a plain string (dev leaves its account open).
STAGE = "prod"


@pytest.fixture(scope="module")
def template(synthesized: Synthesized) -> Template:
    return synthesized.template(STAGE, "operations")


@pytest.fixture(scope="module")
def resources(template: Template) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = template.to_json()["Resources"]
    return result


def _of_type(resources: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in resources.items() if resource["Type"] == kind}


def _rule(resources: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    (rule,) = [
        r["Properties"] for name, r in _of_type(resources, "AWS::Events::Rule").items() if name.startswith(prefix)
    ]
    return rule


def _matches(rule: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge's matching of the synthesized pattern (moto's implementation) against a whole event."""
    pattern = json.loads(json.dumps(rule["EventPattern"]))
    assert "Fn::" not in json.dumps(pattern), f"pattern still holds tokens: {pattern}"
    return bool(EventPattern.load(json.dumps(pattern)).matches_event(event))


def _event(source: str, detail_type: str, detail: dict[str, Any], account: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "0d9a6e35-4a3b-4a52-9a6b-0f4a4a3d6a00",
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": "2026-11-22T05:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def _package_event(config: Any, group: str, status: str) -> dict[str, Any]:
    arn = f"arn:aws:sagemaker:us-east-1:{config.account}:model-package/{group}/3"
    return _event(
        "aws.sagemaker",
        "SageMaker Model Package State Change",
        {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": 3,
            "ModelPackageArn": arn,
            "ModelApprovalStatus": status,
            "CreationTime": 1763787600000,
        },
        config.account,
    )


def _alarm_event(config: Any, name: str, state: str) -> dict[str, Any]:
    return _event(
        "aws.cloudwatch",
        "CloudWatch Alarm State Change",
        {
            "alarmName": name,
            "state": {"value": state, "reason": "Threshold crossed", "timestamp": "2026-11-22T05:00:00.000+0000"},
            "previousState": {"value": "OK", "timestamp": "2026-11-21T05:00:00.000+0000"},
            "configuration": {"description": "drift"},
        },
        config.account,
    )


def test_registry_rule_takes_only_this_platforms_model_package_group(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    rule = _rule(resources, "RegistryApprovalRule")
    group = naming.model_package_group(config)
    for status in ("Approved", "Rejected", "PendingManualApproval"):
        assert _matches(rule, _package_event(config, group, status))
    assert not _matches(rule, _package_event(config, "someone-elses-group", "Approved"))
    assert not _matches(
        rule, _package_event(config, naming.model_package_group(platform_config.stage("dev")), "Approved")
    )
    wrong_type = _package_event(config, group, "Approved") | {"detail-type": "SageMaker Model State Change"}
    assert not _matches(rule, wrong_type)


def test_drift_rule_takes_only_the_composite_drift_alarm_of_this_model(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    rule = _rule(resources, "DriftAlertRule")
    composite = naming.drift_alarm_prefix(config)
    for state in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        assert _matches(rule, _alarm_event(config, composite, state))
    # Feature alarms feed the composite; they must not start retraining on their own.
    assert not _matches(rule, _alarm_event(config, f"{composite}-psi-distance_km", "ALARM"))
    assert not _matches(rule, _alarm_event(config, naming.drift_alarm_prefix(platform_config.stage("dev")), "ALARM"))
    assert not _matches(rule, _alarm_event(config, "billing-alarm", "ALARM"))


def test_notification_rules_take_failed_runs_of_the_build_pipeline_and_versions_awaiting_approval(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    failed = _rule(resources, "ModelBuildFailedRule")

    def run(pipeline: str, status: str) -> dict[str, Any]:
        arn = f"arn:aws:sagemaker:us-east-1:{config.account}:pipeline/{pipeline}"
        detail = {
            "pipelineArn": arn,
            "pipelineExecutionArn": f"{arn}/execution/abc123",
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
        }
        return _event(
            "aws.sagemaker", "SageMaker Model Building Pipeline Execution Status Change", detail, config.account
        )

    assert _matches(failed, run(naming.build_pipeline(config), "Failed"))
    assert not _matches(failed, run(naming.build_pipeline(config), "Succeeded"))
    assert not _matches(failed, run("another-pipeline", "Failed"))

    pending = _rule(resources, "VersionPendingApprovalRule")
    group = naming.model_package_group(config)
    assert _matches(pending, _package_event(config, group, "PendingManualApproval"))
    assert not _matches(pending, _package_event(config, group, "Approved"))
    assert not _matches(pending, _package_event(config, "other", "PendingManualApproval"))
    for rule in (failed, pending):
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Ref": _only(resources, "AWS::SNS::Topic")}
        assert "InputTransformer" in target  # a sentence for a human, not the raw event


# AWS's example event for this detail-type ("Pipeline execution state change",
# https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html), as given there.
AWS_PIPELINE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/myPipeline-123"
AWS_PIPELINE_EXECUTION_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "315c1398-40ff-a850-213b-158f73kd93ir",
    "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
    "source": "aws.sagemaker",
    "account": "123456789012",
    "time": "2021-03-15T16:10:11Z",
    "region": "us-east-1",
    "resources": [
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/myPipeline-123",
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/myPipeline-123/execution/p4jn9xou8a8s",
    ],
    "detail": {
        "pipelineExecutionDisplayName": "SomeDisplayName",
        "currentPipelineExecutionStatus": "Succeeded",
        "previousPipelineExecutionStatus": "Executing",
        "executionStartTime": "2021-03-15T16:03:13Z",
        "executionEndTime": "2021-03-15T16:10:10Z",
        "pipelineExecutionDescription": "SomeDescription",
        "pipelineArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/myPipeline-123",
        "pipelineExecutionArn": f"{AWS_PIPELINE_ARN}/execution/p4jn9xou8a8s",
    },
}


def _aws_execution_event(config: Any, pipeline: str, status: str) -> dict[str, Any]:
    """AWS's example event, moved to this stage's account and region, for ``pipeline`` ending in ``status``."""
    text = json.dumps(AWS_PIPELINE_EXECUTION_EVENT)
    text = text.replace(AWS_PIPELINE_ARN, _pipeline_arn(config, pipeline))
    event: dict[str, Any] = json.loads(text)
    event.update(account=config.account, region=config.region)
    event["detail"]["currentPipelineExecutionStatus"] = status
    return event


def _pipeline_arn(config: Any, pipeline: str) -> str:
    return f"arn:aws:sagemaker:{config.region}:{config.account}:pipeline/{pipeline}"


def _render(target: dict[str, Any], event: dict[str, Any]) -> str:
    """What EventBridge's input transformer makes of ``event``: each <name> replaced by the value at its path."""
    transformer = target["InputTransformer"]
    text: str = json.loads(transformer["InputTemplate"])
    for name, path in transformer["InputPathsMap"].items():
        value: Any = event
        for key in path.removeprefix("$.").split("."):
            value = value[key]
        text = text.replace(f"<{name}>", str(value))
    return text


def test_a_failed_or_stopped_drift_check_run_is_notified_and_nothing_else(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    rule = _rule(resources, "DriftCheckFailedRule")
    drift_pipeline = naming.drift_pipeline(config)
    failed = _aws_execution_event(config, drift_pipeline, "Failed")
    assert _matches(rule, failed)
    assert _matches(rule, _aws_execution_event(config, drift_pipeline, "Stopped"))
    for status in ("Succeeded", "Executing", "Stopping"):
        assert not _matches(rule, _aws_execution_event(config, drift_pipeline, status)), status
    assert not _matches(rule, _aws_execution_event(config, naming.build_pipeline(config), "Failed"))
    assert not _matches(rule, _aws_execution_event(config, "another-pipeline", "Failed"))
    other_stage = platform_config.stage("staging")
    assert not _matches(rule, _aws_execution_event(other_stage, naming.drift_pipeline(other_stage), "Failed"))
    # One notification per failure: the model-build rule leaves drift-check runs alone.
    assert not _matches(_rule(resources, "ModelBuildFailedRule"), failed)
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": _only(resources, "AWS::SNS::Topic")}
    message = _render(target, failed)
    assert drift_pipeline in message
    assert f"{_pipeline_arn(config, drift_pipeline)}/execution/p4jn9xou8a8s" in message
    assert "Failed" in message and "no drift was measured" in message


def _only(resources: dict[str, dict[str, Any]], kind: str) -> str:
    (name,) = _of_type(resources, kind)
    return name


def _function(resources: dict[str, dict[str, Any]], handler: str) -> tuple[str, dict[str, Any]]:
    (item,) = [
        (name, r["Properties"])
        for name, r in _of_type(resources, "AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == f"{handler}.handler.lambda_handler"
    ]
    return item


@pytest.mark.parametrize(
    "handler,rule_prefix",
    [("registry_approval", "RegistryApproval"), ("drift_alert", "DriftAlert"), ("drift_metrics", "DriftMetrics")],
)
def test_each_function_keeps_what_fails_in_its_encrypted_dead_letter_queue_and_alarms_on_it(
    resources: dict[str, dict[str, Any]], handler: str, rule_prefix: str
) -> None:
    name, function = _function(resources, handler)
    key = _only(resources, "AWS::KMS::Key")
    queue_name = function["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
    queue = resources[queue_name]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    # The rule's own dead letters (undeliverable events) go to the same queue, after retries.
    (target,) = _rule(resources, f"{rule_prefix}Rule")["Targets"]
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue_name, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 3
    (invoke,) = [
        r["Properties"]
        for r in _of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if r["Properties"]["FunctionName"] == {"Ref": name}
    ]
    assert invoke["MaximumRetryAttempts"] == 2
    # A message waiting in the queue raises an alarm that notifies.
    alarms = [
        r["Properties"]
        for r in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        if r["Properties"].get("Namespace") == "AWS/SQS"
        and r["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue_name, "QueueName"]}
    ]
    (alarm,) = alarms
    assert alarm["Threshold"] == 1
    assert alarm["AlarmActions"] == [{"Ref": _only(resources, "AWS::SNS::Topic")}]
    assert function["KmsKeyArn"] == {"Fn::GetAtt": [key, "Arn"]}
    assert function["Architectures"] == ["arm64"]


@pytest.mark.parametrize("handler", ["registry_approval", "drift_alert"])
def test_each_function_gets_every_variable_its_config_needs(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig, handler: str
) -> None:
    config = platform_config.stage(STAGE)
    _, function = _function(resources, handler)
    variables = function["Environment"]["Variables"]
    expected = {
        "registry_approval": {
            "MODEL_PACKAGE_GROUP": naming.model_package_group(config),
            "MODEL_PACKAGE_PARTITION": "aws",
            "MODEL_PACKAGE_REGION": config.region,
            "MODEL_PACKAGE_ACCOUNT": config.account,
            "DEPLOY_PIPELINE_NAME": naming.deploy_pipeline(config),
        },
        "drift_alert": {
            "MODEL_BUILD_PIPELINE_NAME": naming.build_pipeline(config),
            "ALARM_PREFIX": naming.drift_alarm_prefix(config),
            "COOLDOWN_MINUTES": str(config.operations.retraining.cooldown_minutes),
            "CHAMPION_PARAMETER": naming.champion_parameter(config),
            "MODEL_PACKAGE_GROUP": naming.model_package_group(config),
            "MODEL_PACKAGE_PARTITION": "aws",
            "MODEL_PACKAGE_REGION": config.region,
            "MODEL_PACKAGE_ACCOUNT": config.account,
        },
    }[handler]
    assert expected.items() <= variables.items()
    assert variables["NOTIFICATION_TOPIC_ARN"] == {"Ref": _only(resources, "AWS::SNS::Topic")}
    assert variables["IDEMPOTENCY_TABLE"] == {"Ref": _only(resources, "AWS::DynamoDB::GlobalTable")}


def _statements(resources: dict[str, dict[str, Any]], role: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in _of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


@pytest.mark.parametrize(
    "handler,api,target",
    [
        ("registry_approval", "codepipeline:StartPipelineExecution", "deploy"),
        ("drift_alert", "sagemaker:StartPipelineExecution", "build"),
    ],
)
def test_each_function_may_start_only_its_own_pipeline_and_uses_no_managed_policy(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig, handler: str, api: str, target: str
) -> None:
    config = platform_config.stage(STAGE)
    _, function = _function(resources, handler)
    role = function["Role"]["Fn::GetAtt"][0]
    assert "ManagedPolicyArns" not in resources[role]["Properties"]
    statements = _statements(resources, role)
    (start,) = [statement for statement in statements if api in _actions(statement)]
    name = naming.deploy_pipeline(config) if target == "deploy" else naming.build_pipeline(config)
    service = api.split(":")[0]
    suffix = f":{name}" if service == "codepipeline" else f":pipeline/{name}"
    assert flatten_reference(start["Resource"]).endswith(suffix)
    for statement in statements:
        assert statement["Resource"] != "*", f"{handler}: unscoped statement {statement}"


def test_idempotency_table_expires_records_on_the_attribute_the_handlers_write(
    resources: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in HANDLER_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "lambdas"))
    from lambdas.drift_alert.handler import EXPIRY_ATTR

    table = resources[_only(resources, "AWS::DynamoDB::GlobalTable")]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": EXPIRY_ATTR, "Enabled": True}
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]  # Powertools' default key
    assert table["SSESpecification"]["SSEEnabled"] is True
    (replica,) = table["Replicas"]
    assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert "KMSMasterKeyId" in replica["SSESpecification"]


def test_topic_is_encrypted_and_accepts_only_tls(resources: dict[str, dict[str, Any]]) -> None:
    topic = resources[_only(resources, "AWS::SNS::Topic")]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [_only(resources, "AWS::KMS::Key"), "Arn"]}
    policy = resources[_only(resources, "AWS::SNS::TopicPolicy")]["Properties"]["PolicyDocument"]
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


SERVICES_THAT_PUBLISH = {"events.amazonaws.com", "cloudwatch.amazonaws.com", "codestar-notifications.amazonaws.com"}


def test_only_this_accounts_rules_may_publish_to_the_topic(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    policy = resources[_only(resources, "AWS::SNS::TopicPolicy")]["Properties"]["PolicyDocument"]
    services = []
    for statement in policy["Statement"]:
        principals = statement.get("Principal", {})
        service = set(_list(principals.get("Service", []))) if isinstance(principals, dict) else set()
        if statement["Effect"] != "Allow" or not service & SERVICES_THAT_PUBLISH:
            continue
        services += service
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": config.account}
        (source_arn,) = statement["Condition"]["ArnLike"].values()
        assert list(statement["Condition"]["ArnLike"]) == ["aws:SourceArn"]
        assert source_arn == f"arn:aws:events:{config.region}:{config.account}:rule/*"
    assert services == ["events.amazonaws.com"], "one statement, for the notification rules"


def test_drift_alarms_cover_every_feature_and_one_composite_drives_retraining(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    prefix = naming.drift_alarm_prefix(config)
    drift = config.operations.drift
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        if r["Properties"].get("Namespace") == "MLOps/Drift"
    }
    features = drift_features(config.model.dataset)
    expected = {f"{prefix}-psi-{f.name}" for f in features} | {f"{prefix}-ks-{f.name}" for f in features if f.numeric}
    assert expected | {f"{prefix}-schema", f"{prefix}-check-missing"} == set(alarms)
    for feature in features:
        psi = alarms[f"{prefix}-psi-{feature.name}"]
        assert psi["MetricName"] == "FeaturePSI"
        assert psi["Threshold"] == drift.psi_threshold
        assert {d["Name"]: d["Value"] for d in psi["Dimensions"]} == {
            "Model": config.model.name,
            "Stage": config.name,
            "Feature": feature.name,
        }
        assert psi["TreatMissingData"] == "notBreaching"
        assert "AlarmActions" not in psi  # the composite acts
    for name, alarm in alarms.items():
        if "-ks-" in name:
            assert alarm["MetricName"] == "FeatureKS" and alarm["Threshold"] == drift.ks_threshold
    (composite,) = [r["Properties"] for r in _of_type(resources, "AWS::CloudWatch::CompositeAlarm").values()]
    assert composite["AlarmName"] == prefix
    rule = json.dumps(composite["AlarmRule"])
    assert rule.count("ALARM(") == len(expected)
    assert composite["AlarmActions"] == [{"Ref": _only(resources, "AWS::SNS::Topic")}]
    assert alarms[f"{prefix}-schema"]["AlarmActions"] == [{"Ref": _only(resources, "AWS::SNS::Topic")}]


def test_a_drift_check_that_stops_publishing_raises_its_own_alarm_which_does_not_retrain(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    prefix = naming.drift_alarm_prefix(config)
    drift = config.operations.drift
    alarms = {
        r["Properties"]["AlarmName"]: (name, r["Properties"])
        for name, r in _of_type(resources, "AWS::CloudWatch::Alarm").items()
        if "AlarmName" in r["Properties"]
    }
    # Missing data is not drift: every feature alarm reads a period without a run as not breaching.
    feature_alarms = [alarm for name, (_, alarm) in alarms.items() if "-psi-" in name or "-ks-" in name]
    assert feature_alarms and {alarm["TreatMissingData"] for alarm in feature_alarms} == {"notBreaching"}
    # A missing heartbeat is the point of this one.
    logical_id, heartbeat = alarms[f"{prefix}-check-missing"]
    assert heartbeat["Namespace"] == "MLOps/Drift" and heartbeat["MetricName"] == CHECK_COMPLETED
    assert {d["Name"]: d["Value"] for d in heartbeat["Dimensions"]} == {
        "Model": config.model.name,
        "Stage": config.name,
    }
    assert heartbeat["TreatMissingData"] == "breaching"
    assert heartbeat["ComparisonOperator"] == "LessThanThreshold" and heartbeat["Threshold"] == 1
    assert heartbeat["Period"] == drift_period_seconds(drift.schedule) == 86400
    assert heartbeat["EvaluationPeriods"] == heartbeat["DatapointsToAlarm"] == drift.missing_runs_alarm_periods == 2
    topic = [{"Ref": _only(resources, "AWS::SNS::Topic")}]
    assert heartbeat["AlarmActions"] == topic and heartbeat["OKActions"] == topic
    # Not part of the composite: a stale check is looked at, it does not start retraining.
    (composite,) = [r["Properties"] for r in _of_type(resources, "AWS::CloudWatch::CompositeAlarm").values()]
    rule = json.dumps(composite["AlarmRule"])
    assert logical_id not in rule and f"{prefix}-check-missing" not in rule
    assert not _matches(_rule(resources, "DriftAlertRule"), _alarm_event(config, f"{prefix}-check-missing", "ALARM"))


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_schedules_follow_the_stage_config_and_start_only_their_pipeline(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    found = synthesized.template(stage, "operations").to_json()["Resources"]
    schedules = {
        r["Properties"]["ScheduleExpression"]: r["Properties"]
        for r in _of_type(found, "AWS::Scheduler::Schedule").values()
    }
    expected = {config.operations.drift.schedule: naming.drift_pipeline(config)}
    if config.operations.retraining.schedule:
        expected[config.operations.retraining.schedule] = naming.build_pipeline(config)
    assert set(schedules) == set(expected)
    for expression, pipeline in expected.items():
        target = schedules[expression]["Target"]
        assert flatten_reference(target["Arn"]).endswith(f":pipeline/{pipeline}")
        role = target["RoleArn"]["Fn::GetAtt"][0]
        (start,) = [s for s in _statements(found, role) if "sagemaker:StartPipelineExecution" in _actions(s)]
        assert start["Resource"] == target["Arn"]


def test_dashboard_shows_pipelines_endpoint_drift_functions_and_queues(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    (dashboard,) = [r["Properties"] for r in _of_type(resources, "AWS::CloudWatch::Dashboard").values()]
    body = json.dumps(dashboard["DashboardBody"])
    for needle in (
        "AWS/Sagemaker/ModelBuildingPipeline",
        naming.build_pipeline(config),
        "ModelLatency",
        "Invocation5XXErrors",
        naming.endpoint(config),
        "FeaturePSI",
        "ApproximateNumberOfMessagesVisible",
        "Errors",
    ):
        assert needle in body, needle
    for feature in drift_features(config.model.dataset):
        assert f'\\"{feature.name}\\"' in body or feature.name in body
    # The alarm status widget shows whether the drift check still runs.
    (check_missing,) = [
        name
        for name, r in _of_type(resources, "AWS::CloudWatch::Alarm").items()
        if r["Properties"].get("AlarmName") == f"{naming.drift_alarm_prefix(config)}-check-missing"
    ]
    assert check_missing in body


def _asset_dir(synthesized: Synthesized, stage: str, resource: dict[str, Any], key: str) -> Path:
    """The staged asset folder behind a Lambda code or layer content property."""
    s3_key = resource[key]["S3Key"]
    digest = s3_key.split(".")[0]
    (folder,) = synthesized.outdir.glob(f"**/asset.{digest}")
    return folder


def test_the_deployed_bundle_imports_each_handler_with_powertools_from_the_layer(
    synthesized: Synthesized, resources: dict[str, dict[str, Any]]
) -> None:
    _, function = _function(resources, "registry_approval")
    code = _asset_dir(synthesized, STAGE, function, "Code")
    (layer,) = [r["Properties"] for r in _of_type(resources, "AWS::Lambda::LayerVersion").values()]
    layer_dir = _asset_dir(synthesized, STAGE, layer, "Content")
    assert not list(code.glob("**/__pycache__")) and not list(layer_dir.glob("**/*.pyc"))
    assert (code / "shared" / "__init__.py").is_file()
    # A fresh interpreter that sees only the bundle and the layer (plus boto3, which the runtime has).
    import boto3

    boto3_site = str(Path(boto3.__file__).parents[1])
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
        "import registry_approval.handler, drift_alert.handler, drift_metrics.handler; "
        "import aws_lambda_powertools; print(aws_lambda_powertools.__file__)"
    )
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        "PYTHONPATH": boto3_site,
        "PYTHONNOUSERSITE": "1",
        **HANDLER_ENVIRONMENT,
    }
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, str(code), str(layer_dir / "python")],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith(str(layer_dir))


# Detection (trust boundaries, finding 10): the production endpoint's alarms reach people.


def _endpoint_alarm_event(config: Any, name: str, state: str, previous: str) -> dict[str, Any]:
    event = _alarm_event(config, name, state)
    event["detail"]["previousState"]["value"] = previous
    return event


def test_the_production_endpoints_alarms_notify_the_topic(
    synthesized: Synthesized, resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    # The names the Endpoint stacks give their rollback alarms, read from their templates.
    alarm_names = {}
    for target, stack in synthesized.stages[STAGE].endpoints.items():
        alarms = Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm").values()
        alarm_names[target] = sorted(alarm["Properties"]["AlarmName"] for alarm in alarms)
    assert len(alarm_names["production"]) == 2
    fired = _rule(resources, "EndpointAlarmRule")
    recovered = _rule(resources, "EndpointAlarmRecoveredRule")
    for name in alarm_names["production"]:
        assert _matches(fired, _endpoint_alarm_event(config, name, "ALARM", "OK"))
        assert not _matches(fired, _endpoint_alarm_event(config, name, "OK", "ALARM"))
        assert _matches(recovered, _endpoint_alarm_event(config, name, "OK", "ALARM"))
        # A fresh alarm leaving INSUFFICIENT_DATA for OK is not news.
        assert not _matches(recovered, _endpoint_alarm_event(config, name, "OK", "INSUFFICIENT_DATA"))
    for name in alarm_names["staging"]:
        assert not _matches(fired, _endpoint_alarm_event(config, name, "ALARM", "OK"))
    for rule in (fired, recovered):
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Ref": _only(resources, "AWS::SNS::Topic")}
    text = _render(fired["Targets"][0], _endpoint_alarm_event(config, alarm_names["production"][0], "ALARM", "OK"))
    assert alarm_names["production"][0] in text and "Threshold crossed" in text


# Approval lifecycle (finding 13): the function knows what each endpoint serves.


def test_the_approval_function_reads_the_deployed_versions_and_nothing_else_of_ssm(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    _, function = _function(resources, "registry_approval")
    variables = function["Environment"]["Variables"]
    parameters = {target: naming.deployed_version_parameter(config, target) for target in ("staging", "production")}
    assert json.loads(variables["DEPLOYED_VERSION_PARAMETERS"]) == parameters
    assert variables["ROLLBACK_ON_REJECTION"] == str(config.operations.rollback_on_rejection).lower()
    statements = _statements(resources, function["Role"]["Fn::GetAtt"][0])
    (read,) = [statement for statement in statements if "ssm:GetParameter" in _actions(statement)]
    assert _actions(read) == ["ssm:GetParameter"]
    assert sorted(flatten_reference(resource) for resource in read["Resource"]) == sorted(
        f"arn:aws:ssm:{config.region}:{config.account}:parameter{name}" for name in parameters.values()
    )
    assert not [statement for statement in statements if "sagemaker:ListModelPackages" in _actions(statement)]


def test_rollback_on_rejection_lets_the_function_list_the_groups_versions(context: dict[str, Any]) -> None:
    from cdk_nag import AwsSolutionsChecks

    from resolver.config import load_config

    context["mlops"]["stages"][STAGE]["operations"]["rollback_on_rejection"] = True
    app, stack = _operations_alone(load_config(context).stage(STAGE))
    stack_resources = Template.from_stack(stack).to_json()["Resources"]
    _, function = _function(stack_resources, "registry_approval")
    assert function["Environment"]["Variables"]["ROLLBACK_ON_REJECTION"] == "true"
    statements = _statements(stack_resources, function["Role"]["Fn::GetAtt"][0])
    (listing,) = [statement for statement in statements if "sagemaker:ListModelPackages" in _actions(statement)]
    assert _actions(listing) == ["sagemaker:ListModelPackages"]
    assert AwsSolutionsChecks().validate_scope(app).violations == []


# The drift check's metrics: published from outside the VPC when its DetectDrift step succeeds.


def _step_event(config: Any, pipeline: str, step: str, status: str) -> dict[str, Any]:
    """A "SageMaker Model Building Pipeline Execution Step Status Change" event (AWS's example shape)."""
    pipeline_arn = f"arn:aws:sagemaker:{config.region}:{config.account}:pipeline/{pipeline}"
    execution_arn = f"{pipeline_arn}/execution/p4jn9xou8a8s"
    return {
        "version": "0",
        "id": "ea37ccbb-5e2b-05e9-4073-1daazc940304",
        "detail-type": "SageMaker Model Building Pipeline Execution Step Status Change",
        "source": "aws.sagemaker",
        "account": config.account,
        "time": "2026-11-30T03:10:10Z",
        "region": config.region,
        "resources": [pipeline_arn, execution_arn],
        "detail": {
            "stepName": step,
            "stepType": "Processing",
            "previousStepStatus": "Executing",
            "currentStepStatus": status,
            "pipelineArn": pipeline_arn,
            "pipelineExecutionArn": execution_arn,
        },
    }


def test_a_succeeded_drift_check_step_reaches_the_drift_metrics_function_only(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    drift_pipeline = naming.drift_pipeline(config)
    rule = _rule(resources, "DriftMetricsRule")
    assert _matches(rule, _step_event(config, drift_pipeline, "DetectDrift", "Succeeded"))
    assert not _matches(rule, _step_event(config, drift_pipeline, "DetectDrift", "Failed"))
    assert not _matches(rule, _step_event(config, drift_pipeline, "Other", "Succeeded"))
    assert not _matches(rule, _step_event(config, naming.build_pipeline(config), "DetectDrift", "Succeeded"))


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_the_drift_metrics_function_reads_where_the_drift_check_writes_and_puts_what_the_alarms_read(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    from stacks.constructs.drift_alarms import NAMESPACE

    config = platform_config.stage(stage)
    operations = synthesized.stages[stage].operations
    stage_resources = synthesized.template(stage, "operations").to_json()["Resources"]
    _, function = _function(stage_resources, "drift_metrics")
    assert "VpcConfig" not in function, "it runs outside the VPC: no endpoint is needed for CloudWatch"
    variables = function["Environment"]["Variables"]
    assert variables["METRIC_NAMESPACE"] == NAMESPACE
    assert json.loads(variables["METRIC_DIMENSIONS"]) == {"Model": config.model.name, "Stage": config.name}
    # The drift job's report output: s3://<artifacts>/drift-check/<pipeline>/<execution id>/DetectDrift/report.
    (step,) = json.loads(synthesized.stages[stage].ml_platform.drift_check.definition)["Steps"]
    (output,) = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    parts = output["S3Output"]["S3Uri"]["Std:Join"]["Values"]
    assert parts[0] == "s3:/" and parts[1] == "${ArtifactsBucket}"
    assert parts[4] == {"Get": "Execution.PipelineExecutionId"}
    assert variables["METRICS_PREFIX"] == "/".join(parts[2:4]) + "/"
    assert variables["METRICS_KEY_SUFFIX"] == "/".join([*parts[5:], "drift_metrics.json"])
    lake = synthesized.stages[stage].data_lake.storage
    assert operations.resolve(variables["METRICS_BUCKET"]) == operations.resolve(lake.artifacts.bucket_name)
    statements = {
        statement.get("Sid"): statement for statement in _statements(stage_resources, function["Role"]["Fn::GetAtt"][0])
    }
    put = statements["PutDriftMetrics"]
    assert _actions(put) == ["cloudwatch:PutMetricData"] and put["Resource"] == "*"
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": NAMESPACE}}
    read = statements["ReadDriftMetricsFiles"]
    assert _actions(read) == ["s3:GetObject"]
    assert flatten_reference(read["Resource"]).endswith(
        f"/{variables['METRICS_PREFIX']}*/{variables['METRICS_KEY_SUFFIX']}"
    )
    decrypt = statements["DecryptThroughS3"]
    assert _actions(decrypt) == ["kms:Decrypt"]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{config.region}.amazonaws.com"}}
    # Nothing else reaches CloudWatch or S3: the rest is its log group, queue, topic and idempotency table.
    others = [s for sid, s in statements.items() if sid not in ("PutDriftMetrics", "ReadDriftMetricsFiles")]
    assert not any(a.startswith(("cloudwatch:", "s3:")) for s in others for a in _actions(s))


def test_dev_has_no_dashboard_and_staging_and_prod_have_one(synthesized: Synthesized) -> None:
    for stage, count in (("dev", 0), ("staging", 1), ("prod", 1)):
        dashboards = synthesized.template(stage, "operations").find_resources("AWS::CloudWatch::Dashboard")
        assert len(dashboards) == count, stage
        assert (synthesized.stages[stage].operations.dashboard is None) is (count == 0)


def test_a_stage_without_alarms_has_no_alarm_at_all(context: dict[str, Any]) -> None:
    from resolver.config import load_config

    context["mlops"]["stages"]["dev"]["operations"]["alarms"] = False
    _, stack = _operations_alone(load_config(context).stage("dev"), account="123456789012")
    template = Template.from_stack(stack)
    assert template.find_resources("AWS::CloudWatch::Alarm") == {}
    assert template.find_resources("AWS::CloudWatch::CompositeAlarm") == {}
    assert template.find_resources("AWS::CloudWatch::Dashboard") == {}
    # The functions and their dead-letter queues stay: a failed event still waits there.
    # (registry approval, drift alert, drift metrics, quality metrics, quality start)
    assert len(template.find_resources("AWS::Lambda::Function")) == 5
    assert len(template.find_resources("AWS::SQS::Queue")) == 5


def _operations_alone(config: Any, account: str | None = None) -> tuple[Any, Any]:
    """An app holding only a stage's Operations stack and the lake storage it reads (a stack of its own)."""
    from aws_cdk import Duration, Environment, Stack

    from stacks.constructs.data_lake import LakeStorage
    from stacks.operations_stack import OperationsStack
    from tests.conftest import new_app

    app = new_app()
    env = Environment(account=account or config.account, region=config.region)
    lake = LakeStorage(
        Stack(app, "Lake", env=env),
        "Storage",
        config=config.data_lake,
        retain=False,
        access_log_retention=Duration.days(30),
        capture_prefix=naming.capture_prefix(config),
    )
    return app, OperationsStack(app, "Operations", config=config, lake=lake, env=env)


def test_the_drift_function_reads_only_the_production_record_and_the_groups_versions(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    _, function = _function(resources, "drift_alert")
    statements = _statements(resources, function["Role"]["Fn::GetAtt"][0])
    (read,) = [statement for statement in statements if "ssm:GetParameter" in _actions(statement)]
    assert _actions(read) == ["ssm:GetParameter"]
    parameter = naming.deployed_version_parameter(config, "production")
    assert flatten_reference(read["Resource"]) == f"arn:aws:ssm:{config.region}:{config.account}:parameter{parameter}"
    (describe,) = [statement for statement in statements if "sagemaker:DescribeModelPackage" in _actions(statement)]
    assert _actions(describe) == ["sagemaker:DescribeModelPackage"]
    group = naming.model_package_group(config)
    assert flatten_reference(describe["Resource"]) == (
        f"arn:aws:sagemaker:{config.region}:{config.account}:model-package/{group}/*"
    )
