"""Drift engine model_monitor: the production endpoint's data-quality schedule feeds the same composite alarm.

One stage (prod, with ``operations.drift.engine: model_monitor``) is synthesized once for the module;
the shipped config uses the processing engine, which the other infra tests cover.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cdk_nag import AwsSolutionsChecks

from resolver import naming
from resolver.config import StageConfig, load_config
from stacks.constructs.data_quality_monitor import METRICS_NAMESPACE, analyzer_image
from stacks.operations_stack import drift_features
from stacks.summary import stacks_in
from tests.conftest import ROOT, cdk_json_context, new_app

pytestmark = pytest.mark.slow
STAGE = "prod"
SCHEDULE = "rate(6 hours)"


class Monitored:
    def __init__(self, outdir: Path) -> None:
        from aws_cdk.assertions import Template

        from stacks.app import build

        context = copy.deepcopy(cdk_json_context())
        drift = context["mlops"]["stages"][STAGE].setdefault("operations", {}).setdefault("drift", {})
        drift.update(engine="model_monitor", schedule=SCHEDULE)
        self.config: StageConfig = load_config(context).stage(STAGE)
        self.app = new_app(outdir=str(outdir))
        (self.stage,) = build(self.app, load_config(context), [STAGE])
        self.app.synth()
        self.outdir = outdir
        self.production = Template.from_stack(self.stage.endpoints["production"]).to_json()
        self.staging = Template.from_stack(self.stage.endpoints["staging"]).to_json()
        self.operations = Template.from_stack(self.stage.operations).to_json()


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    return Monitored(tmp_path_factory.mktemp("monitored"))


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _one(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (resource,) = _of_type(template, kind).values()
    return resource


def _key(joined: dict[str, Any]) -> str:
    """The object part of an S3 URI or ARN joined from a bucket reference and a key."""
    parts = joined["Fn::Join"][1]
    assert isinstance(parts[-1], str) and parts[-1].startswith("/"), parts
    return parts[-1]


def test_the_config_turns_the_drift_schedule_into_a_monitoring_cron(monitored: Monitored) -> None:
    assert monitored.config.operations.drift.monitor_cron == "cron(0 0/6 ? * * *)"


def test_production_runs_a_data_quality_schedule_over_its_capture_against_the_deployed_baseline(
    monitored: Monitored,
) -> None:
    config = monitored.config
    endpoint = naming.endpoint(config)
    definition = _one(monitored.production, "AWS::SageMaker::DataQualityJobDefinition")
    schedule = _one(monitored.production, "AWS::SageMaker::MonitoringSchedule")
    # Both exist only once a version is deployed, like the endpoint they watch.
    assert definition["Condition"] == schedule["Condition"] == "HasModel"
    properties = definition["Properties"]
    assert properties["DataQualityAppSpecification"] == {
        "ImageUri": analyzer_image(config.region),
        "Environment": {"publish_cloudwatch_metrics": "Enabled"},
    }
    assert analyzer_image(config.region).endswith("/sagemaker-model-monitor-analyzer")
    assert properties["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == endpoint
    baseline = properties["DataQualityBaselineConfig"]
    prefix = naming.deployed_baseline_prefix(config)
    assert _key(baseline["StatisticsResource"]["S3Uri"]) == f"/{prefix}statistics.json"
    assert _key(baseline["ConstraintsResource"]["S3Uri"]) == f"/{prefix}constraints.json"
    (output,) = properties["DataQualityJobOutputConfig"]["MonitoringOutputs"]
    assert _key(output["S3Output"]["S3Uri"]) == f"/{naming.monitoring_reports_prefix(config).rstrip('/')}"
    # Encrypted with the lake key, private, no network from the container, within the hour.
    lake_key = properties["DataQualityJobOutputConfig"]["KmsKeyId"]
    assert properties["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"] == lake_key
    assert properties["JobResources"]["ClusterConfig"]["InstanceType"] == config.operations.drift.instance_type
    network = properties["NetworkConfig"]
    assert network["EnableNetworkIsolation"] is True
    assert network["EnableInterContainerTrafficEncryption"] is True
    assert len(network["VpcConfig"]["Subnets"]) == config.network.az_count
    assert properties["StoppingCondition"]["MaxRuntimeInSeconds"] <= 3600

    config_ = schedule["Properties"]["MonitoringScheduleConfig"]
    assert schedule["Properties"]["MonitoringScheduleName"] == naming.monitoring_schedule(config)
    assert config_["MonitoringType"] == "DataQuality"
    assert config_["ScheduleConfig"] == {"ScheduleExpression": "cron(0 0/6 ? * * *)"}
    # A new version gets a new job definition (its own baseline); the schedule follows it.
    assert config_["MonitoringJobDefinitionName"] == properties["JobDefinitionName"]
    assert "ModelPackageArn" in json.dumps(properties["JobDefinitionName"])
    (definition_id,) = _of_type(monitored.production, "AWS::SageMaker::DataQualityJobDefinition")
    assert definition_id in schedule["DependsOn"]


def test_staging_has_no_monitoring(monitored: Monitored) -> None:
    assert not _of_type(monitored.staging, "AWS::SageMaker::DataQualityJobDefinition")
    assert not _of_type(monitored.staging, "AWS::SageMaker::MonitoringSchedule")


def test_the_monitoring_role_reads_capture_and_baseline_writes_reports_and_starts_nothing(
    monitored: Monitored,
) -> None:
    config = monitored.config
    definition = _one(monitored.production, "AWS::SageMaker::DataQualityJobDefinition")["Properties"]
    role = definition["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in _of_type(monitored.production, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]

    def actions(statement: dict[str, Any]) -> list[str]:
        return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]

    def objects(action: str) -> set[str]:
        found = set()
        for statement in statements:
            if action in actions(statement):
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                found |= {_key(resource) for resource in resources if "Fn::Join" in resource}
        return found

    endpoint = naming.endpoint(config)
    assert objects("s3:PutObject") == {f"/{naming.monitoring_reports_prefix(config)}*"}
    assert objects("s3:GetObject*") == {
        f"/{naming.capture_prefix(config)}{endpoint}/*",
        f"/{naming.deployed_baseline_prefix(config)}*",
        f"/{naming.monitoring_reports_prefix(config)}*",
    }
    every_action = {action for statement in statements for action in actions(statement)}
    assert not {action for action in every_action if action.startswith("sagemaker:")}
    assert "iam:PassRole" not in every_action
    (metrics,) = [s for s in statements if "cloudwatch:PutMetricData" in actions(s)]
    assert METRICS_NAMESPACE in metrics["Condition"]["StringLike"]["cloudwatch:namespace"]


def test_drift_alarms_read_the_monitor_metrics_and_feed_the_same_composite(monitored: Monitored) -> None:
    config = monitored.config
    prefix = naming.drift_alarm_prefix(config)
    resources = monitored.operations
    alarms = {
        r["Properties"].get("AlarmName", name): r["Properties"]
        for name, r in _of_type(resources, "AWS::CloudWatch::Alarm").items()
    }
    drift = {name: alarm for name, alarm in alarms.items() if name.startswith(f"{prefix}-")}
    features = drift_features(config.model.dataset)
    assert set(drift) == {naming.feature_drift_alarm(prefix, "monitor", f.name) for f in features}
    for feature in features:
        alarm = drift[naming.feature_drift_alarm(prefix, "monitor", feature.name)]
        assert alarm["Namespace"] == METRICS_NAMESPACE
        assert alarm["MetricName"] == f"feature_baseline_drift_{feature.name}"
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "Endpoint": naming.endpoint(config),
            "MonitoringSchedule": naming.monitoring_schedule(config),
        }
        assert alarm["Threshold"] == config.operations.drift.ks_threshold
        assert alarm["Period"] == 6 * 3600  # one period per monitoring run
        assert alarm["TreatMissingData"] == "notBreaching"
        assert "AlarmActions" not in alarm
    # The same composite name: the drift-alert rule and function need no change.
    (composite,) = [r["Properties"] for r in _of_type(resources, "AWS::CloudWatch::CompositeAlarm").values()]
    assert composite["AlarmName"] == prefix
    assert json.dumps(composite["AlarmRule"]).count("ALARM(") == len(features)
    rules = [r["Properties"] for r in _of_type(resources, "AWS::Events::Rule").values()]
    # The drift-alert rule: the composite, and the model-quality decay alarm when the stage checks quality.
    expected = [prefix] + ([naming.quality_decay_alarm(config)] if config.operations.quality.schedule else [])
    assert any(rule["EventPattern"].get("detail") == {"alarmName": expected} for rule in rules)
    body = json.dumps(_one(resources, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    assert "feature_baseline_drift_" in body and "FeaturePSI" not in body


def test_the_monitoring_schedule_replaces_the_drift_check_schedule(monitored: Monitored) -> None:
    config = monitored.config
    schedules = _of_type(monitored.operations, "AWS::Scheduler::Schedule")
    targets = json.dumps([s["Properties"]["Target"]["Arn"] for s in schedules.values()])
    assert naming.drift_pipeline(config) not in targets
    if config.operations.retraining.schedule:
        assert naming.build_pipeline(config) in targets


def test_cdk_nag_and_cfn_lint_are_clean(monitored: Monitored, monkeypatch: pytest.MonkeyPatch) -> None:
    report = AwsSolutionsChecks().validate_scope(monitored.app)
    assert [
        f"{violation.rule_name} at {resource.construct_path}"
        for violation in report.violations
        for resource in violation.violating_resources
    ] == []
    from cfnlint.config import ConfigMixIn  # imported here: the unit runs (make unit) need no cfn-lint
    from cfnlint.runner import Runner

    monkeypatch.chdir(ROOT)
    templates = sorted(str(path) for _, path in stacks_in(monitored.outdir))
    assert len(templates) == 7 + 1  # prod's stacks and its infrastructure pipeline
    assert [str(match) for match in Runner(ConfigMixIn(templates)).run()] == []


def test_the_monitoring_schedule_is_priced_as_pay_per_use(monitored: Monitored) -> None:
    from stacks.costs import idle_costs

    (cost,) = idle_costs(monitored.outdir)
    assert cost.unpriced == ()


def test_every_version_is_built_with_a_model_monitor_baseline(monitored: Monitored) -> None:
    """The stack's build pipeline carries the MonitorBaseline step; CI runs that definition (it writes none), and
    the published values say the deployed definition has the step."""
    definition = monitored.stage.ml_platform.model_build.definition
    assert '"Name": "MonitorBaseline"' in definition or '"Name":"MonitorBaseline"' in definition
    assert monitored.stage.ml_platform.values.data_quality_monitor is True


def test_a_failed_monitoring_run_is_notified_and_other_jobs_are_not(monitored: Monitored) -> None:
    from tests.infra.test_operations import _event, _matches, _rule

    config = monitored.config
    rule = _rule(monitored.operations["Resources"], "MonitoringFailedRule")
    schedule_arn = (
        f"arn:aws:sagemaker:{config.region}:{config.account}:monitoring-schedule/{naming.monitoring_schedule(config)}"
    )

    def job(status: str, schedule: str | None) -> dict[str, Any]:
        detail = {"ProcessingJobName": "model-monitoring-202611291400-abc", "ProcessingJobStatus": status}
        if schedule:
            detail["MonitoringScheduleArn"] = schedule
        return _event("aws.sagemaker", "SageMaker Processing Job State Change", detail, str(config.account))

    assert _matches(rule, job("Failed", schedule_arn))
    assert _matches(rule, job("Stopped", schedule_arn))
    assert not _matches(rule, job("Completed", schedule_arn))
    assert not _matches(rule, job("Failed", None)), "a pipeline's processing job"
    assert not _matches(rule, job("Failed", schedule_arn.replace("data-quality", "other")))
    (target,) = rule["Targets"]
    assert "make publish-baseline" in target["InputTransformer"]["InputTemplate"]
