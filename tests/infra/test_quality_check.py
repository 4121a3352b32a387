"""The model-quality loop in the synthesized templates: the deployed check, its schedule and starter, the
metrics function, the alarms and the rules between them, and what each new role may do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from pipelines_src.definition import champion_metadata_keys, list_placeholders
from pipelines_src.quality_definition import CHECK_QUALITY, METRICS_FILE, REFERENCE_METRIC, REPORT_OUTPUT
from pipelines_src.steps import quality
from resolver import naming
from resolver.config import ConfigError, PlatformConfig, drift_period_seconds, load_config
from stacks.nag import flatten_reference
from tests.conftest import Synthesized
from tests.infra.test_ml_platform import _list, _object_part, _pipeline, _role_statements
from tests.infra.test_operations import (
    STAGE,
    _actions,
    _asset_dir,
    _aws_execution_event,
    _function,
    _matches,
    _of_type,
    _operations_alone,
    _render,
    _rule,
    _statements,
)

STAGES = ["dev", "staging", "prod"]


@pytest.fixture(scope="module")
def resources(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = synthesized.template(STAGE, "operations").to_json()["Resources"]
    return found


# --- AWS's example events, moved to the stage -------------------------------------------------------------

# "CloudWatch Alarm State Change", as in
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html
AWS_ALARM_NAME = "ServerCpuTooHigh"
AWS_ALARM_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
    "detail-type": "CloudWatch Alarm State Change",
    "source": "aws.cloudwatch",
    "account": "123456789012",
    "time": "2019-10-02T17:04:40Z",
    "region": "us-east-1",
    "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"],
    "detail": {
        "alarmName": "ServerCpuTooHigh",
        "configuration": {
            "description": "Goes into alarm when server CPU utilization is too high!",
            "metrics": [
                {
                    "id": "30b6c6b2-a864-43a2-4877-c09a1afc3b87",
                    "metricStat": {
                        "metric": {
                            "dimensions": {"InstanceId": "i-12345678901234567"},
                            "name": "CPUUtilization",
                            "namespace": "AWS/EC2",
                        },
                        "period": 300,
                        "stat": "Average",
                    },
                    "returnData": True,
                }
            ],
        },
        "previousState": {
            "reason": "Threshold Crossed: 1 out of the last 1 datapoints [0.0666851903306472 (01/10/19 13:46:00)] was "
            "not greater than the threshold (50.0) (minimum 1 datapoint for ALARM -> OK transition).",
            "reasonData": '{"version":"1.0","queryDate":"2019-10-01T13:56:40.985+0000","startDate":"2019-10-01T13:'
            '46:00.000+0000","statistic":"Average","period":300,"recentDatapoints":[0.0666851903306472],'
            '"threshold":50.0}',
            "timestamp": "2019-10-01T13:56:40.987+0000",
            "value": "OK",
        },
        "state": {
            "reason": "Threshold Crossed: 1 out of the last 1 datapoints [99.50160229693434 (02/10/19 16:59:00)] was "
            "greater than the threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition).",
            "reasonData": '{"version":"1.0","queryDate":"2019-10-02T17:04:40.985+0000","startDate":"2019-10-02T16:'
            '59:00.000+0000","statistic":"Average","period":300,"recentDatapoints":[99.50160229693434],'
            '"threshold":50.0}',
            "timestamp": "2019-10-02T17:04:40.989+0000",
            "value": "ALARM",
        },
    },
}

# "Pipeline step state change", as in https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
AWS_PIPELINE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/myPipeline-123"
AWS_STEP_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "ea37ccbb-5e2b-05e9-4073-1daazc940304",
    "detail-type": "SageMaker Model Building Pipeline Execution Step Status Change",
    "source": "aws.sagemaker",
    "account": "123456789012",
    "time": "2021-03-15T16:10:10Z",
    "region": "us-east-1",
    "resources": [AWS_PIPELINE_ARN, f"{AWS_PIPELINE_ARN}/execution/p4jn9xou8a8s"],
    "detail": {
        "metadata": {
            "processingJob": {
                "arn": "arn:aws:sagemaker:us-east-1:123456789012:processing-job/"
                "pipelines-p4jn9xou8a8s-myprocessingstep1"
            }
        },
        "stepStartTime": "2021-03-15T16:03:14Z",
        "stepEndTime": "2021-03-15T16:10:09Z",
        "stepName": "myprocessingstep1",
        "stepType": "Processing",
        "previousStepStatus": "Executing",
        "currentStepStatus": "Succeeded",
        "pipelineArn": AWS_PIPELINE_ARN,
        "pipelineExecutionArn": f"{AWS_PIPELINE_ARN}/execution/p4jn9xou8a8s",
    },
}


def alarm_event(config: Any, name: str, state: str = "ALARM") -> dict[str, Any]:
    text = json.dumps(AWS_ALARM_EVENT).replace(AWS_ALARM_NAME, name).replace("123456789012", config.account)
    event: dict[str, Any] = json.loads(text.replace("us-east-1", config.region))
    event["detail"]["state"]["value"] = state
    return event


def step_event(config: Any, pipeline: str, step: str, status: str = "Succeeded") -> dict[str, Any]:
    arn = f"arn:aws:sagemaker:{config.region}:{config.account}:pipeline/{pipeline}"
    event: dict[str, Any] = json.loads(json.dumps(AWS_STEP_EVENT).replace(AWS_PIPELINE_ARN, arn))
    event.update(account=config.account, region=config.region)
    event["detail"].update(stepName=step, currentStepStatus=status)
    return event


def _alarms(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        if "AlarmName" in r["Properties"]
    }


def _schedule(resources: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    (schedule,) = [
        r["Properties"]
        for name, r in _of_type(resources, "AWS::Scheduler::Schedule").items()
        if name.startswith(prefix)
    ]
    return schedule


# --- config: bad values fail the synth with one line naming the key ---------------------------------------


def _set(context: dict[str, Any], path: str, value: Any) -> None:
    node = context["mlops"]
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"defaults.operations.quality.schedule": "rate(2 days)"},
            'mlops.stages.dev.operations.quality.schedule: "rate(2 days)" runs less often than the 24 h window',
        ),
        (
            {"defaults.operations.quality.schedule": "every day"},
            'mlops.stages.dev.operations.quality.schedule: "every day" is not an EventBridge Scheduler expression',
        ),
        (
            {"defaults.operations.quality.missing_runs_alarm_periods": 8},
            "mlops.stages.dev.operations.quality.missing_runs_alarm_periods: 8 is out of range, expected 1 to 7 "
            "(one period per quality run of schedule rate(1 day)",
        ),
        (
            {"defaults.operations.quality.instance_type": "m5.large"},
            'mlops.stages.dev.operations.quality.instance_type: "m5.large" is not a SageMaker instance type',
        ),
        (
            {"defaults.data_lake.capture_expiration_days": 2},
            "mlops.stages.dev.data_lake.capture_expiration_days: 2 days is shorter than the 72 h of captured "
            "predictions the quality check reads",
        ),
        (
            {
                "stages.dev.endpoint.serverless": {"memory_mb": 2048, "max_concurrency": 5},
                "stages.dev.operations.drift": {"input": "dataset"},
            },
            "mlops.stages.dev.operations.quality.schedule: serverless endpoints have no data capture",
        ),
    ],
)
def test_bad_quality_settings_fail_with_one_line_naming_the_key(
    context: dict[str, Any], changes: dict[str, Any], message: str
) -> None:
    for path, value in changes.items():
        _set(context, path, value)
    with pytest.raises(ConfigError) as raised:
        load_config(context)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_quality_settings_are_read_per_stage_and_a_null_schedule_is_allowed(context: dict[str, Any]) -> None:
    quality_config = load_config(context).stage("prod").operations.quality
    assert (quality_config.schedule, quality_config.missing_runs_alarm_periods) == ("rate(1 day)", 2)
    _set(context, "stages.dev.operations.quality", {"schedule": None, "missing_runs_alarm_periods": 3})
    dev = load_config(context).stage("dev").operations.quality
    assert dev.schedule is None and dev.missing_runs_alarm_periods == 3
    # Hourly checks of a 24 h window overlap, which judges nothing twice in one alarm period.
    _set(context, "stages.staging.operations.quality", {"schedule": "rate(1 hour)"})
    assert load_config(context).stage("staging").operations.quality.schedule == "rate(1 hour)"


# --- the deployed check (MLPlatform) ----------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_the_deployed_quality_check_is_the_one_its_definition_function_builds_from_the_stage_config(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    check = synthesized.stages[stage].ml_platform.quality_check
    properties, definition, variables = _pipeline(synthesized, stage, "quality-check")
    assert properties["PipelineName"] == naming.quality_pipeline(config)
    assert definition == json.loads(check.definition)
    assert set(variables) == set(list_placeholders(check.definition))
    parameters = {parameter["Name"]: parameter.get("DefaultValue") for parameter in definition["Parameters"]}
    assert parameters[REFERENCE_METRIC] == ""
    assert parameters["ProcessingInstanceType"] == config.operations.quality.instance_type
    (step,) = definition["Steps"]
    assert step["Name"] == CHECK_QUALITY
    arguments = step["Arguments"]
    container = arguments["AppSpecification"]["ContainerArguments"]

    def value_of(flag: str) -> str:
        return str(container[container.index(flag) + 1])

    wanted = config.operations.quality
    assert value_of("--window-hours") == str(wanted.window_hours)
    assert value_of("--lateness-hours") == str(wanted.lateness_hours)
    assert value_of("--min-labels") == str(wanted.min_labels)
    assert float(value_of("--max-degradation")) == wanted.max_degradation
    assert (value_of("--metric"), value_of("--goal")) == (config.model.metric, config.model.goal)
    assert container[container.index("--metrics") :][:5] == [
        "--metrics",
        "--model",
        config.model.name,
        "--stage",
        stage,
    ]
    # It calls nothing: network-isolated, in the VPC, with the lake key.
    assert arguments["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
    # Its report goes to the lake: s3://<artifacts>/quality-check/<pipeline>/<execution>/CheckQuality/report.
    (output,) = arguments["ProcessingOutputConfig"]["Outputs"]
    parts = output["S3Output"]["S3Uri"]["Std:Join"]["Values"]
    assert parts[1:4] == ["${ArtifactsBucket}", naming.QUALITY_ARTIFACTS_PREFIX, naming.quality_pipeline(config)]
    stack = synthesized.stages[stage].ml_platform
    lake = synthesized.stages[stage].data_lake.storage
    assert stack.resolve(variables["ArtifactsBucket"]) == stack.resolve(lake.artifacts.bucket_name)
    # The same step code as the model-build pipeline, and the labels dataset's own contract.
    assert check.settings.source_tar_uri == stack.model_build.settings.source_tar_uri
    assert check.settings.labels_contract_uri != check.settings.contract_uri


@pytest.mark.parametrize("stage", STAGES)
def test_the_quality_role_reads_the_capture_and_the_curated_labels_only_and_writes_only_its_reports(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    statements = _role_statements(synthesized, stage, "quality_execution")
    object_resources = [
        (tuple(_list(statement["Action"])), tail)
        for statement in statements
        for resource in _list(statement["Resource"])
        if (tail := _object_part(resource))
    ]
    pipeline = naming.quality_pipeline(config)
    stack = synthesized.stages[stage].ml_platform
    lake = synthesized.stages[stage].data_lake.storage
    reads = {
        (json.dumps(stack.resolve(resource)), tail)
        for statement in statements
        for resource in _list(statement["Resource"])
        if (tail := _object_part(resource)) and "s3:GetObject*" in _list(statement["Action"])
    }
    # Objects of the stack's own assets (step code, contracts) aside, the lake prefixes it reads:
    lake_reads = {tail for where, tail in reads if "Lake" in where}
    assert lake_reads == {"/datacapture/*", "/labels/delivery_time/*", f"/quality-check/{pipeline}/*"}
    # Labels from the curated zone (contract-checked by the curation job), never the raw zone.
    raw = json.dumps(stack.resolve(lake.raw.bucket_arn))
    assert {tail for where, tail in reads if raw[1:-1] in where} == {"/datacapture/*"}
    writes = {tail for actions, tail in object_resources if "s3:PutObject" in actions}
    assert writes == {f"/quality-check/{pipeline}/*"}
    by_sid = {statement.get("Sid"): statement for statement in statements}
    assert "RegisterModelVersions" not in by_sid
    assert by_sid["JobMetrics"]["Condition"] == {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}}


# --- the loop (Operations) --------------------------------------------------------------------------------


def test_the_schedule_puts_the_due_event_that_the_starter_rule_takes(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    schedule = _schedule(resources, "QualityCheckSchedule")
    assert schedule["ScheduleExpression"] == config.operations.quality.schedule
    target = schedule["Target"]
    assert target["Arn"] == f"arn:aws:events:{config.region}:{config.account}:event-bus/default"
    # What Scheduler puts: its source and detail-type, the input as detail, the scheduled time filled in.
    parameters = target["EventBridgeParameters"]
    detail = json.loads(target["Input"].replace("<aws.scheduler.scheduled-time>", "2026-12-01T04:00:00Z"))
    event = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": parameters["DetailType"],
        "source": parameters["Source"],
        "account": config.account,
        "time": "2026-12-01T04:00:00Z",
        "region": config.region,
        "resources": [],
        "detail": detail,
    }
    assert parameters["Source"] == naming.operations_event_source(config) and not parameters["Source"].startswith(
        "aws."
    )
    assert detail == {"pipelineName": naming.quality_pipeline(config), "scheduledTime": "2026-12-01T04:00:00Z"}
    rule = _rule(resources, "QualityStartRule")
    assert _matches(rule, event)
    assert not _matches(rule, {**event, "source": "someone.else"})
    assert not _matches(rule, {**event, "detail": {**detail, "pipelineName": naming.drift_pipeline(config)}})
    # The schedule's role may put events on that bus only.
    role = target["RoleArn"]["Fn::GetAtt"][0]
    statements = _statements(resources, role)
    (put,) = [s for s in statements if "events:PutEvents" in _actions(s)]
    assert put["Resource"] == target["Arn"]
    assert {a for s in statements for a in _actions(s)} == {"events:PutEvents", "kms:Decrypt"}


def test_the_starter_may_start_only_the_quality_check_and_read_only_the_served_version(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    _, function = _function(resources, "quality_start")
    variables = function["Environment"]["Variables"]
    assert variables["QUALITY_PIPELINE_NAME"] == naming.quality_pipeline(config)
    assert variables["REFERENCE_PARAMETER"] == REFERENCE_METRIC
    assert variables["REFERENCE_METADATA_KEY"] == champion_metadata_keys(config.model.metric)[0] == "challenger_rmse"
    assert variables["CHAMPION_PARAMETER"] == naming.champion_parameter(config)
    assert variables["EVENT_SOURCE"] == naming.operations_event_source(config)
    statements = _statements(resources, function["Role"]["Fn::GetAtt"][0])
    (start,) = [s for s in statements if "sagemaker:StartPipelineExecution" in _actions(s)]
    assert flatten_reference(start["Resource"]).endswith(f":pipeline/{naming.quality_pipeline(config)}")
    (read,) = [s for s in statements if "ssm:GetParameter" in _actions(s)]
    assert flatten_reference(read["Resource"]).endswith(f":parameter{naming.champion_parameter(config)}")
    (describe,) = [s for s in statements if "sagemaker:DescribeModelPackage" in _actions(s)]
    assert flatten_reference(describe["Resource"]).endswith(f":model-package/{naming.model_package_group(config)}/*")
    for statement in statements:
        assert statement["Resource"] != "*", statement
        assert not any(a.startswith(("s3:", "cloudwatch:")) for a in _actions(statement)), statement


def test_a_succeeded_check_reaches_the_quality_metrics_function_only(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    pipeline = naming.quality_pipeline(config)
    rule = _rule(resources, "QualityMetricsRule")
    assert _matches(rule, step_event(config, pipeline, CHECK_QUALITY))
    assert not _matches(rule, step_event(config, pipeline, CHECK_QUALITY, "Failed"))
    assert not _matches(rule, step_event(config, pipeline, "DetectDrift"))
    assert not _matches(rule, step_event(config, naming.drift_pipeline(config), CHECK_QUALITY))
    # ...and the drift-metrics function does not take it.
    assert not _matches(_rule(resources, "DriftMetricsRule"), step_event(config, pipeline, CHECK_QUALITY))


@pytest.mark.parametrize("stage", STAGES)
def test_the_quality_metrics_function_reads_where_the_check_writes_and_puts_only_to_its_namespace(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    operations = synthesized.stages[stage].operations
    stage_resources = synthesized.template(stage, "operations").to_json()["Resources"]
    _, function = _function(stage_resources, "quality_metrics")
    assert "VpcConfig" not in function, "it runs outside the VPC: no endpoint is needed for CloudWatch"
    variables = function["Environment"]["Variables"]
    assert variables["METRIC_NAMESPACE"] == quality.NAMESPACE == "MLOps/ModelQuality"
    assert json.loads(variables["METRIC_DIMENSIONS"]) == {"Model": config.model.name, "Stage": config.name}
    assert variables["STEP_NAME"] == CHECK_QUALITY
    (step,) = json.loads(synthesized.stages[stage].ml_platform.quality_check.definition)["Steps"]
    (output,) = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    parts = output["S3Output"]["S3Uri"]["Std:Join"]["Values"]
    assert parts[4] == {"Get": "Execution.PipelineExecutionId"} and parts[5:] == [CHECK_QUALITY, REPORT_OUTPUT]
    assert variables["METRICS_PREFIX"] == "/".join(parts[2:4]) + "/"
    assert variables["METRICS_KEY_SUFFIX"] == "/".join([*parts[5:], METRICS_FILE])
    lake = synthesized.stages[stage].data_lake.storage
    assert operations.resolve(variables["METRICS_BUCKET"]) == operations.resolve(lake.artifacts.bucket_name)
    statements = {s.get("Sid"): s for s in _statements(stage_resources, function["Role"]["Fn::GetAtt"][0])}
    put = statements["PutQualityMetrics"]
    assert _actions(put) == ["cloudwatch:PutMetricData"] and put["Resource"] == "*"
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": "MLOps/ModelQuality"}}
    read = statements["ReadQualityMetricsFiles"]
    assert _actions(read) == ["s3:GetObject"]
    assert flatten_reference(read["Resource"]).endswith(
        f"/{variables['METRICS_PREFIX']}*/{variables['METRICS_KEY_SUFFIX']}"
    )
    assert statements["DecryptThroughS3"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3.{config.region}.amazonaws.com"}
    }
    others = [s for sid, s in statements.items() if sid not in ("PutQualityMetrics", "ReadQualityMetricsFiles")]
    assert not any(a.startswith(("cloudwatch:", "s3:", "sagemaker:", "ssm:")) for s in others for a in _actions(s))


def test_the_decay_alarm_reads_the_degradation_the_check_publishes_against_the_configured_bound(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    wanted = config.operations.quality
    alarms = _alarms(resources)
    decay = alarms[naming.quality_decay_alarm(config)]
    report = {
        "status": quality.OK,
        "metric": config.model.metric,
        "value": 7.0,
        "degradation": 2.0,
        "predictions": {"labelled": 150, "unlabelled": 5},
        "labels": {"late": 0, "duplicate": 0, "unknown_id": 0},
    }
    published = {
        entry["MetricName"]: {d["Name"]: d["Value"] for d in entry["Dimensions"]}
        for entry in quality.metric_data(report, model=config.model.name, stage=config.name)
    }
    assert decay["Namespace"] == quality.NAMESPACE and decay["MetricName"] == quality.METRIC_DEGRADATION
    assert {d["Name"]: d["Value"] for d in decay["Dimensions"]} == published[quality.METRIC_DEGRADATION]
    assert decay["Threshold"] == wanted.max_degradation and decay["ComparisonOperator"] == "GreaterThanThreshold"
    assert decay["EvaluationPeriods"] == decay["DatapointsToAlarm"] == wanted.evaluation_periods
    assert decay["Period"] == drift_period_seconds(wanted.schedule) == 86400
    # Too few labels (or no served version yet) is no verdict, not decay.
    assert decay["TreatMissingData"] == "notBreaching"
    topic = [{"Ref": _of_type(resources, "AWS::SNS::Topic").popitem()[0]}]
    assert decay["AlarmActions"] == topic
    assert "model quality" in decay["AlarmDescription"]


def test_the_decay_alarm_reaches_the_drift_alert_function_and_the_check_missing_alarm_does_not(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    rule = _rule(resources, "DriftAlertRule")
    decay, missing = naming.quality_decay_alarm(config), naming.quality_check_missing_alarm(config)
    for state in ("ALARM", "OK"):
        assert _matches(rule, alarm_event(config, decay, state))
        assert _matches(rule, alarm_event(config, naming.drift_alarm_prefix(config), state))
    assert not _matches(rule, alarm_event(config, missing))
    assert not _matches(rule, alarm_event(config, naming.quality_decay_alarm(platform_config.stage("dev"))))
    # The function tells the two apart by the names it is given, the synthesized alarms' own.
    _, function = _function(resources, "drift_alert")
    variables = function["Environment"]["Variables"]
    alarms = _alarms(resources)
    assert variables["QUALITY_ALARM_NAME"] == decay and decay in alarms
    assert variables["ALARM_PREFIX"] == naming.drift_alarm_prefix(config)
    assert not decay.startswith(variables["ALARM_PREFIX"]) and not missing.startswith(variables["ALARM_PREFIX"])
    # Neither quality alarm is part of the drift composite.
    (composite,) = [r["Properties"] for r in _of_type(resources, "AWS::CloudWatch::CompositeAlarm").values()]
    assert "quality" not in json.dumps(composite["AlarmRule"])


def test_a_quality_check_that_stops_publishing_raises_its_own_alarm(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    wanted = config.operations.quality
    heartbeat = _alarms(resources)[naming.quality_check_missing_alarm(config)]
    assert heartbeat["Namespace"] == quality.NAMESPACE and heartbeat["MetricName"] == quality.COMPLETED
    assert {d["Name"]: d["Value"] for d in heartbeat["Dimensions"]} == {
        "Model": config.model.name,
        "Stage": config.name,
    }
    assert heartbeat["TreatMissingData"] == "breaching"
    assert heartbeat["ComparisonOperator"] == "LessThanThreshold" and heartbeat["Threshold"] == 1
    assert heartbeat["Period"] == drift_period_seconds(wanted.schedule)
    assert heartbeat["EvaluationPeriods"] == heartbeat["DatapointsToAlarm"] == wanted.missing_runs_alarm_periods
    assert heartbeat["AlarmActions"] == heartbeat["OKActions"] != []


def test_a_failed_or_stopped_quality_check_run_is_notified(
    resources: dict[str, dict[str, Any]], platform_config: PlatformConfig
) -> None:
    config = platform_config.stage(STAGE)
    pipeline = naming.quality_pipeline(config)
    rule = _rule(resources, "QualityCheckFailedRule")
    for status in ("Failed", "Stopped"):
        assert _matches(rule, _aws_execution_event(config, pipeline, status))
    assert not _matches(rule, _aws_execution_event(config, pipeline, "Succeeded"))
    assert not _matches(rule, _aws_execution_event(config, naming.drift_pipeline(config), "Failed"))
    (target,) = rule["Targets"]
    message = _render(target, _aws_execution_event(config, pipeline, "Failed"))
    assert pipeline in message and "model quality was not measured" in message


def test_a_stage_without_a_quality_schedule_has_no_starter_schedule_or_quality_alarm(context: dict[str, Any]) -> None:
    _set(context, "stages.dev.operations.quality", {"schedule": None})
    config = load_config(context).stage("dev")
    _, stack = _operations_alone(config, account="123456789012")
    found = Template.from_stack(stack).to_json()["Resources"]
    handlers = {r["Properties"]["Handler"] for r in _of_type(found, "AWS::Lambda::Function").values()}
    assert "quality_start.handler.lambda_handler" not in handlers
    assert "quality_metrics.handler.lambda_handler" in handlers  # runs by hand still publish
    assert not [name for name in _of_type(found, "AWS::Scheduler::Schedule") if name.startswith("Quality")]
    assert not [name for name in _alarms(found) if name.startswith(naming.quality_alarm_prefix(config))]
    _, alert = _function(found, "drift_alert")
    assert "QUALITY_ALARM_NAME" not in alert["Environment"]["Variables"]
    assert _rule(found, "DriftAlertRule")["EventPattern"]["detail"]["alarmName"] == [naming.drift_alarm_prefix(config)]


def test_the_deployed_bundle_imports_the_quality_handlers_with_their_synthesized_environment(
    synthesized: Synthesized, resources: dict[str, dict[str, Any]]
) -> None:
    operations = synthesized.stages[STAGE].operations
    _, function = _function(resources, "quality_start")
    code = _asset_dir(synthesized, STAGE, function, "Code")
    (layer,) = [r["Properties"] for r in _of_type(resources, "AWS::Lambda::LayerVersion").values()]
    layer_dir = _asset_dir(synthesized, STAGE, layer, "Content")
    import boto3

    def environment_of(handler: str) -> dict[str, str]:
        """The function's variables as deployed, references replaced by well-formed values."""
        _, properties = _function(resources, handler)
        values = {}
        for name, value in properties["Environment"]["Variables"].items():
            if isinstance(value, str):
                values[name] = value
            elif name == "NOTIFICATION_TOPIC_ARN":
                values[name] = f"arn:aws:sns:us-east-1:{operations.account}:topic"
            else:
                values[name] = "resolved-at-deploy"
        return values

    for handler in ("quality_start", "quality_metrics"):
        script = (
            f"import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import {handler}.handler as h; print(h.CONFIG)"
        )
        result = subprocess.run(
            [sys.executable, "-S", "-c", script, str(code), str(layer_dir / "python")],
            capture_output=True,
            text=True,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
                "PYTHONPATH": str(Path(boto3.__file__).parents[1]),
                "PYTHONNOUSERSITE": "1",
                "AWS_DEFAULT_REGION": "us-east-1",
                **environment_of(handler),
            },
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "quality-check" in result.stdout
