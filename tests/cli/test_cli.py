"""The mlops CLI against a local AWS emulation (a moto server on 127.0.0.1), seeded once for the module."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

from mlops_cli import cli, drift, pipelines, text
from mlops_cli.aws import Aws, CliError
from pipelines_src.local.run import ARTIFACTS_BUCKET
from resolver import naming
from resolver.config import load_config
from resolver.published import PlatformValues

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
GROUP = "mlops-dev-delivery-time"
BUILD = "mlops-dev-delivery-time-build"
DRIFT_PIPELINE = "mlops-dev-delivery-time-drift-check"
ALARM_PREFIX = "mlops-dev-delivery-time-drift"
METRICS_BUCKET = "registry-metrics"
DISCOVERED_BUCKET = "deployed-lake-artifacts"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/pipeline"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}
# version -> (approval status, description, rmse or None for no metrics, evaluation object present)
VERSIONS = {
    1: ("Approved", "first model", 7.5, True),
    2: ("Rejected", "too slow", 9.125, True),
    3: ("PendingManualApproval", None, 6.25, True),
    4: ("PendingManualApproval", None, 5.0, False),
    5: ("PendingManualApproval", None, None, False),
}
AWS_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "MLOPS_STAGE",
    "MLOPS_CDK_JSON",
    drift.BUCKET_ENV,
)


def _report(drifted: bool) -> dict[str, Any]:
    weather_psi = 0.3512 if drifted else 0.01
    return {
        "row_count": 1200,
        "max_psi": weather_psi,
        "max_psi_feature": "weather",
        "drifted_features": ["weather"] if drifted else [],
        "schema": {"violation_count": 2},
        "features": {
            "distance_km": {
                "kind": "numeric",
                "psi": 0.0123,
                "ks": 0.045,
                "missing_rate_change": 0.0,
                "drifted": False,
            },
            "weather": {
                "kind": "categorical",
                "psi": weather_psi,
                "ks": None,
                "missing_rate_change": -0.01,
                "drifted": drifted,
            },
        },
    }


def _seed(url: str) -> None:
    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=url, **CREDENTIALS)

    s3, sagemaker, cloudwatch = client("s3"), client("sagemaker"), client("cloudwatch")
    for bucket in (METRICS_BUCKET, ARTIFACTS_BUCKET, DISCOVERED_BUCKET):
        s3.create_bucket(Bucket=bucket)
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    arns = {}
    for version, (status, description, rmse, present) in VERSIONS.items():
        request: dict[str, Any] = {
            "ModelPackageGroupName": GROUP,
            "ModelApprovalStatus": status,
            "InferenceSpecification": {
                "Containers": [{"Image": "xgboost:3.0-5"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        }
        if rmse is not None:
            key = f"model-build/{BUILD}/run-{version}/Evaluate/evaluation/evaluation.json"
            if present:
                body = json.dumps({"regression_metrics": {"rmse": {"value": rmse}, "r2": {"value": 0.8}}})
                s3.put_object(Bucket=METRICS_BUCKET, Key=key, Body=body.encode())
            request["ModelMetrics"] = {
                "ModelQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{METRICS_BUCKET}/{key}"}
                }
            }
        arns[version] = sagemaker.create_model_package(**request)["ModelPackageArn"]
        if description:
            sagemaker.update_model_package(
                ModelPackageArn=arns[version], ModelApprovalStatus=status, ApprovalDescription=description
            )

    definition = {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://raw/delivery_time/"},
            {"Name": "MetricThreshold", "Type": "Float", "DefaultValue": 8.0},
        ],
        "Steps": [],
    }
    sagemaker.create_pipeline(PipelineName=BUILD, PipelineDefinition=json.dumps(definition), RoleArn=ROLE)
    # What the MLPlatform stack publishes: the CLI finds the artifacts bucket there.
    config = load_config(json.loads((ROOT / "cdk.json").read_text())["context"]).stage("dev")
    values = PlatformValues(
        stage="dev",
        region=REGION,
        build_pipeline=BUILD,
        drift_pipeline=DRIFT_PIPELINE,
        pipeline_role_arn=ROLE,
        raw_bucket="deployed-lake-raw",
        curated_bucket="deployed-lake-curated",
        artifacts_bucket=DISCOVERED_BUCKET,
        artifacts_prefix=naming.BUILD_ARTIFACTS_PREFIX,
        code_prefix=naming.CODE_PREFIX,
        drift_artifacts_prefix=naming.DRIFT_ARTIFACTS_PREFIX,
        input_data_uri="s3://deployed-lake-curated/delivery_time/",
        kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000",
        subnet_ids=("subnet-0aaaaaaaaaaaaaaaa",),
        security_group_ids=("sg-0cccccccccccccccc",),
        model_package_group=GROUP,
        model=config.model,
        data_quality_monitor=False,
    )
    client("ssm").put_parameter(
        Name=naming.platform_values_parameter(config), Type="String", Value=json.dumps(values.as_document())
    )

    # moto 5.2.5 has no PutCompositeAlarm: a metric alarm stands in for the composite one (same name).
    def alarm(name: str, metric: str, feature: str | None, threshold: float) -> None:
        dimensions = [{"Name": "Model", "Value": "delivery-time"}, {"Name": "Stage", "Value": "dev"}]
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="MLOps/Drift",
            MetricName=metric,
            Dimensions=[*dimensions, *([{"Name": "Feature", "Value": feature}] if feature else [])],
            Statistic="Maximum",
            Period=86400,
            EvaluationPeriods=1,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
        )

    alarm(ALARM_PREFIX, "MaxPSI", None, 0.2)
    alarm(f"{ALARM_PREFIX}-psi-weather", "FeaturePSI", "weather", 0.2)
    alarm(f"{ALARM_PREFIX}-ks-distance_km", "FeatureKS", "distance_km", 0.1)
    alarm(f"{ALARM_PREFIX}-schema", "SchemaViolations", None, 0)
    for name in (ALARM_PREFIX, f"{ALARM_PREFIX}-psi-weather"):
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="threshold crossed")
    cloudwatch.set_alarm_state(AlarmName=f"{ALARM_PREFIX}-ks-distance_km", StateValue="OK", StateReason="fine")

    old_key = f"drift-check/{DRIFT_PIPELINE}/zzz-older/DetectDrift/report/drift_report.json"
    new_key = f"drift-check/{DRIFT_PIPELINE}/aaa-newer/DetectDrift/report/drift_report.json"
    for bucket in (ARTIFACTS_BUCKET, DISCOVERED_BUCKET):
        s3.put_object(Bucket=bucket, Key=old_key, Body=json.dumps(_report(False)).encode())
        s3.put_object(Bucket=bucket, Key=new_key, Body=json.dumps(_report(True)).encode())
        s3.put_object(Bucket=bucket, Key=f"drift-check/{DRIFT_PIPELINE}/aaa-newer/other.json", Body=b"{}")
        _age_object(bucket, old_key, dt.timedelta(hours=3))

    sagemaker.create_model(
        ModelName="staging-model", ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": arns[1]}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="staging-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "staging-model",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="mlops-dev-delivery-time-staging", EndpointConfigName="staging-config")

    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = client("iam").create_role(RoleName="deploy", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    codepipeline = client("codepipeline")
    codepipeline.create_pipeline(
        pipeline={
            "name": "mlops-dev-delivery-time-deploy",
            "roleArn": role,
            "artifactStore": {"type": "S3", "location": ARTIFACTS_BUCKET},
            "stages": [
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": "Source",
                            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                            "configuration": {"S3Bucket": ARTIFACTS_BUCKET, "S3ObjectKey": "source.zip"},
                            "outputArtifacts": [{"name": "source"}],
                        }
                    ],
                },
                {
                    "name": "Deploy",
                    "actions": [
                        {
                            "name": "Deploy",
                            "actionTypeId": {
                                "category": "Build",
                                "owner": "AWS",
                                "provider": "CodeBuild",
                                "version": "1",
                            },
                            "configuration": {"ProjectName": "deploy"},
                            "inputArtifacts": [{"name": "source"}],
                        }
                    ],
                },
            ],
        }
    )
    codepipeline.start_pipeline_execution(name="mlops-dev-delivery-time-deploy")


def _age_object(bucket: str, key: str, by: dt.timedelta) -> None:
    """S3 times have whole seconds: move an object back so that "newest" does not depend on timing."""
    from moto.s3.models import s3_backends

    stored = s3_backends[ACCOUNT]["aws"].buckets[bucket].keys[key]
    stored.last_modified = stored.last_modified - by


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        _seed(url)
        yield url
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10)
        server.stop()


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials, profile, config file or metadata service of the machine running the tests."""
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def mlops(capsys: pytest.CaptureFixture[str], url: str | None, *args: str) -> tuple[int, str, str]:
    argv = ["--local", "--endpoint-url", url, *args] if url else list(args)
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sagemaker_client(url: str) -> Any:
    return boto3.client("sagemaker", endpoint_url=url, **CREDENTIALS)


def status_of(url: str, version: int) -> dict[str, Any]:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{version}"
    described: dict[str, Any] = sagemaker_client(url).describe_model_package(ModelPackageName=arn)
    return described


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mlops: ")
    return lines[0]


# --- versions, approve, reject ------------------------------------------------------------


def test_versions_lists_newest_first_with_metric_age_and_description(
    capsys: pytest.CaptureFixture[str], endpoint: str
) -> None:
    code, out, err = mlops(capsys, endpoint, "versions")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{GROUP} (stage dev, us-east-1, {endpoint}): 5 versions")
    assert re.split(r"\s{2,}", lines[1]) == ["VERSION", "STATUS", "RMSE", "AGE", "DESCRIPTION"]
    rows = {int(line.split()[0]): re.split(r"\s{2,}", line) for line in lines[2:]}
    assert [int(line.split()[0]) for line in lines[2:]] == [5, 4, 3, 2, 1]
    assert rows[1][1:3] == ["Approved", "7.5000"] and rows[1][4] == "first model"
    assert rows[2][1:3] == ["Rejected", "9.1250"] and rows[2][4] == "too slow"
    assert rows[3][2] == "6.2500"
    assert rows[4][2] == "-" and rows[5][2] == "-"  # evaluation object missing; no metrics registered
    assert all(re.fullmatch(r"\d+[smhd]", row[3]) for row in rows.values())
    # Columns line up: every cell of a column starts where its header does.
    assert {line.index(row[1]) for line, row in zip(lines[2:], rows.values(), strict=True)} == {
        lines[1].index("STATUS")
    }


def test_versions_json_is_machine_readable(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, out, _ = mlops(capsys, endpoint, "versions", "--json", "--limit", "2")

    assert code == 0
    versions = json.loads(out)
    assert [item["version"] for item in versions] == [5, 4]
    assert set(versions[0]) == {"version", "status", "metric", "value", "created", "age", "description", "arn"}
    assert versions[0]["metric"] == "rmse" and versions[0]["value"] is None
    assert versions[0]["arn"].endswith(f"model-package/{GROUP}/5")


def test_approve_sets_the_status_and_the_reason(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, out, err = mlops(capsys, endpoint, "approve", "3", "--reason", "beats v1 on rmse")

    assert code == 0, err
    assert out.strip() == f"{GROUP} version 3: PendingManualApproval -> Approved: beats v1 on rmse"
    package = status_of(endpoint, 3)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == "beats v1 on rmse"


def test_approving_an_approved_version_changes_nothing(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, out, _ = mlops(capsys, endpoint, "approve", "1", "--reason", "again")

    assert code == 0
    assert out.strip() == f"{GROUP} version 1 is already Approved; nothing changed"
    assert status_of(endpoint, 1)["ApprovalDescription"] == "first model"


def test_reject_records_the_reason(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, out, _ = mlops(capsys, endpoint, "reject", "4", "--reason", "evaluated on stale data")

    assert code == 0
    assert out.strip() == f"{GROUP} version 4: PendingManualApproval -> Rejected: evaluated on stale data"
    assert status_of(endpoint, 4)["ModelApprovalStatus"] == "Rejected"


def test_reject_needs_a_reason(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, _, err = mlops(capsys, endpoint, "reject", "5")

    assert code == 2
    assert "--reason" in err
    assert status_of(endpoint, 5)["ModelApprovalStatus"] == "PendingManualApproval"


def test_unknown_version_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, out, err = mlops(capsys, endpoint, "approve", "99")

    assert code == 1 and out == ""
    assert one_line(err) == f"mlops: version 99 not found in model package group {GROUP} (versions 1 to 5)"


def test_a_stage_without_its_model_package_group_is_not_found(
    capsys: pytest.CaptureFixture[str], endpoint: str
) -> None:
    code, _, err = mlops(capsys, endpoint, "--stage", "staging", "versions")

    assert code == 1
    assert one_line(err) == (
        f"mlops: model package group mlops-staging-delivery-time not found (stage staging, us-east-1, {endpoint})"
    )


# --- run, runs ----------------------------------------------------------------------------


def test_run_starts_the_build_pipeline_with_parameters(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, out, err = mlops(capsys, endpoint, "run", "--param", "InputDataUri=s3://raw/other/")

    assert code == 0, err
    match = re.fullmatch(rf"started {BUILD} execution (\w+) \((arn:\S+)\)", out.strip())
    assert match is not None, out
    described = sagemaker_client(endpoint).describe_pipeline_execution(PipelineExecutionArn=match[2])
    assert described["PipelineArn"].endswith(f"pipeline/{BUILD}")


def test_run_wait_follows_the_execution_to_success(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    # moto runs no step: an execution is Succeeded at once, and it cannot list steps (tolerated).
    code, out, err = mlops(capsys, endpoint, "run", "--wait", "--poll-seconds", "0.01")

    assert code == 0, err
    lines = out.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d  Succeeded", lines[1])
    assert re.fullmatch(r"execution \w+ Succeeded in \d+s", lines[-1])


def test_run_wait_exits_1_when_the_execution_fails(
    capsys: pytest.CaptureFixture[str], endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failed(*_: Any, **__: Any) -> dict[str, Any]:
        started = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
        return {
            "PipelineExecutionStatus": "Failed",
            "FailureReason": "Step MetricNotMet failed",
            "CreationTime": started,
            "LastModifiedTime": started + dt.timedelta(minutes=5, seconds=3),
        }

    monkeypatch.setattr(pipelines, "follow", failed)
    code, out, err = mlops(capsys, endpoint, "run", "--wait")

    assert code == 1
    assert out.startswith(f"started {BUILD} execution")
    assert re.fullmatch(r"mlops: execution \w+ Failed after 5m 03s: Step MetricNotMet failed", one_line(err))


def test_run_refuses_a_parameter_the_pipeline_does_not_take(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, out, err = mlops(capsys, endpoint, "run", "--param", "Treshold=3")

    assert code == 2 and out == ""
    assert one_line(err) == (
        f"mlops: --param Treshold: {BUILD} has no such parameter; it takes InputDataUri, MetricThreshold"
    )


def test_run_of_a_pipeline_that_does_not_exist(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, out, err = mlops(capsys, endpoint, "--stage", "prod", "run")

    assert code == 1 and out == ""
    assert (
        one_line(err) == f"mlops: pipeline mlops-prod-delivery-time-build not found (stage prod, us-east-1, {endpoint})"
    )


def test_runs_lists_the_latest_executions(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    sagemaker_client(endpoint).start_pipeline_execution(PipelineName=BUILD, PipelineExecutionDisplayName="nightly")
    code, out, err = mlops(capsys, endpoint, "runs", "--limit", "3")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{BUILD} (stage dev")
    assert re.split(r"\s{2,}", lines[1]) == ["EXECUTION", "STATUS", "STARTED (UTC)", "DURATION", "DETAIL"]
    assert 1 <= len(lines[2:]) <= 3
    for line in lines[2:]:
        assert re.match(r"\w+\s+Succeeded\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\d+s", line), line

    code, out, _ = mlops(capsys, endpoint, "runs", "--json", "--limit", "1")
    (latest,) = json.loads(out)
    assert latest["status"] == "Succeeded" and latest["arn"].startswith(f"arn:aws:sagemaker:{REGION}")
    assert latest["seconds"] is not None and latest["started"].endswith("+00:00")


# --- drift --------------------------------------------------------------------------------


def test_drift_shows_the_alarm_the_features_in_alarm_and_the_latest_report(
    capsys: pytest.CaptureFixture[str], endpoint: str
) -> None:
    code, out, err = mlops(capsys, endpoint, "drift")

    assert code == 0, err
    lines = out.splitlines()
    assert re.fullmatch(rf"drift alarm {ALARM_PREFIX} \(stage dev.*\): ALARM since .* UTC \(\d+s ago\)", lines[0])
    assert lines[1] == "alarms in ALARM:"
    assert re.split(r"\s{2,}", lines[2]) == ["ALARM", "METRIC", "FEATURE", "THRESHOLD", "FOR"]
    assert re.split(r"\s{2,}", lines[3])[:4] == [f"{ALARM_PREFIX}-psi-weather", "FeaturePSI", "weather", "0.2"]
    newest = f"s3://{ARTIFACTS_BUCKET}/drift-check/{DRIFT_PIPELINE}/aaa-newer/DetectDrift/report/drift_report.json"
    assert re.fullmatch(rf"latest report: {re.escape(newest)} \(\d+s ago\)", lines[4])
    assert lines[5] == "rows 1200, max PSI 0.3512 (weather), drifted: weather, schema violations: 2"
    assert re.split(r"\s{2,}", lines[6]) == ["FEATURE", "KIND", "PSI", "KS", "MISSING CHANGE", "DRIFTED"]
    assert re.split(r"\s{2,}", lines[7]) == ["distance_km", "numeric", "0.0123", "0.0450", "0.0000", "no"]
    assert re.split(r"\s{2,}", lines[8]) == ["weather", "categorical", "0.3512", "-", "-0.0100", "yes"]


def test_drift_json_and_the_bucket_read_from_the_published_values(
    capsys: pytest.CaptureFixture[str], endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not --local: credentials from the environment, the bucket from the stage's published values (SSM).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code, out, err = mlops(capsys, None, "--endpoint-url", endpoint, "drift", "--json")

    assert code == 0, err
    data = json.loads(out)
    assert data["composite"]["name"] == ALARM_PREFIX and data["composite"]["state"] == "ALARM"
    assert [alarm["feature"] for alarm in data["in_alarm"]] == ["weather"]
    assert data["bucket"] == DISCOVERED_BUCKET
    assert data["latest_report"]["uri"].startswith(f"s3://{DISCOVERED_BUCKET}/drift-check/{DRIFT_PIPELINE}/aaa-newer/")
    assert data["latest_report"]["report"]["drifted_features"] == ["weather"]


def test_drift_with_an_empty_bucket_and_without_alarms(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, out, _ = mlops(capsys, endpoint, "drift", "--artifacts-bucket", METRICS_BUCKET)
    assert code == 0
    assert out.splitlines()[-1] == f"latest report: none under s3://{METRICS_BUCKET}/drift-check/{DRIFT_PIPELINE}/"

    code, out, err = mlops(capsys, endpoint, "--stage", "staging", "drift")
    assert code == 1 and out == ""
    assert "mlops: drift alarm mlops-staging-delivery-time-drift not found" in one_line(err)


def test_a_model_monitor_alarm_names_its_feature_from_the_metric() -> None:
    row = drift._alarm_row(
        {
            "AlarmName": f"{ALARM_PREFIX}-monitor-weather",
            "StateValue": "ALARM",
            "MetricName": "feature_baseline_drift_weather",
            "Dimensions": [
                {"Name": "Endpoint", "Value": "mlops-dev-delivery-time"},
                {"Name": "MonitoringSchedule", "Value": "mlops-dev-delivery-time-data-quality"},
            ],
            "Threshold": 0.1,
        }
    )
    assert (row["metric"], row["feature"], row["threshold"]) == ("feature_baseline_drift_weather", "weather", 0.1)


def test_values_shows_what_the_stage_published(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, out, err = mlops(capsys, endpoint, "values", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert (document["artifacts_bucket"], document["build_pipeline"]) == (DISCOVERED_BUCKET, BUILD)
    assert document["model"]["metric"] == "rmse"
    code, out, err = mlops(capsys, endpoint, "values")
    assert code == 0, err
    rows = {re.split(r"\s{2,}", line)[0]: re.split(r"\s{2,}", line)[1] for line in out.splitlines()}
    assert rows["artifacts_bucket"] == DISCOVERED_BUCKET and rows["model.metric"] == "rmse"
    assert rows["subnet_ids"] == "subnet-0aaaaaaaaaaaaaaaa"
    code, out, err = mlops(capsys, endpoint, "--stage", "staging", "values")
    assert code == 1 and out == ""
    assert "/mlops/staging/delivery-time/platform-values is not published" in one_line(err)


def test_without_published_values_the_bucket_is_unknown_and_says_why() -> None:
    config = load_config(json.loads((ROOT / "cdk.json").read_text())["context"]).stage("staging")
    aws = Aws(config=config, region=REGION)
    ssm = boto3.client("ssm", **CREDENTIALS)
    aws._clients["ssm"] = ssm
    stubber = Stubber(ssm)
    name = naming.platform_values_parameter(config)
    stubber.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": name})
    with stubber:
        assert drift.artifacts_bucket(aws, None) == (
            None,
            f"SSM parameter {name} is not published: deploy the stage's MLPlatform stack first (cdk deploy)",
        )


def test_local_mode_uses_the_local_runs_artifacts_bucket() -> None:
    assert drift.LOCAL_ARTIFACTS_BUCKET == ARTIFACTS_BUCKET


# --- deployment ---------------------------------------------------------------------------


def test_deployment_shows_each_endpoint_its_version_and_the_deploy_pipeline(
    capsys: pytest.CaptureFixture[str], endpoint: str
) -> None:
    code, out, err = mlops(capsys, endpoint, "deployment")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"deployment of delivery-time (stage dev, us-east-1, {endpoint})"
    assert re.split(r"\s{2,}", lines[1]) == ["TARGET", "ENDPOINT", "STATUS", "VERSION", "MODIFIED (UTC)", "AGE"]
    staging = re.split(r"\s{2,}", lines[2])
    assert staging[:4] == ["staging", "mlops-dev-delivery-time-staging", "InService", "1"]
    assert re.fullmatch(r"\d+s", staging[5])
    assert re.split(r"\s{2,}", lines[3]) == ["production", "mlops-dev-delivery-time", "not deployed", "-", "-", "-"]
    assert re.fullmatch(
        r"deploy pipeline mlops-dev-delivery-time-deploy: "
        r"latest execution [\w-]+ Succeeded, started .* UTC \(\d+s ago\)",
        lines[4],
    )

    code, out, _ = mlops(capsys, endpoint, "deployment", "--json")
    data = json.loads(out)
    assert data["endpoints"][0]["model_package"].endswith(f"model-package/{GROUP}/1")
    assert data["endpoints"][1]["status"] is None
    assert data["deploy"]["execution"]["status"] == "Succeeded"


def test_deployment_without_a_deploy_pipeline(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, out, _ = mlops(capsys, endpoint, "--stage", "prod", "deployment")

    assert code == 0
    assert out.splitlines()[-1] == "deploy pipeline mlops-prod-delivery-time-deploy: not found"


# --- errors without AWS -------------------------------------------------------------------


def test_unknown_stage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = mlops(capsys, None, "--stage", "qa", "versions")

    assert code == 2 and out == ""
    assert one_line(err) == 'mlops: --stage qa: unknown stage "qa"; cdk.json defines: dev, prod, staging'


def test_global_options_also_after_the_command(capsys: pytest.CaptureFixture[str], endpoint: str) -> None:
    code, _, err = mlops(capsys, None, "versions", "--stage", "qa", "--local", "--endpoint-url", endpoint)

    assert code == 2
    assert "unknown stage" in one_line(err)


def test_no_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = mlops(capsys, None, "versions")

    assert code == 2 and out == ""
    assert one_line(err).startswith("mlops: no AWS credentials:")


def test_unreachable_local_emulation(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = mlops(capsys, "http://127.0.0.1:9", "deployment")

    assert code == 1
    assert one_line(err).startswith("mlops: cannot reach http://127.0.0.1:9")


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlops_cli", "--stage", "qa", "runs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith('mlops: --stage qa: unknown stage "qa"')


# --- pieces -------------------------------------------------------------------------------


class _ScriptedSageMaker:
    """describe_pipeline_execution answers from a script; steps can or cannot be listed."""

    def __init__(self, statuses: list[str], steps: bool) -> None:
        self.statuses = statuses
        self.steps = steps
        self.calls = 0

    def describe_pipeline_execution(self, PipelineExecutionArn: str) -> dict[str, Any]:  # noqa: N803
        status = self.statuses[min(self.calls, len(self.statuses) - 1)]
        self.calls += 1
        return {"PipelineExecutionStatus": status}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_pipeline_execution_steps"
        outer = self

        class Paginator:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                if not outer.steps:
                    raise ClientError({"Error": {"Code": "InternalFailure", "Message": "not implemented"}}, "List")
                done = "Succeeded" if outer.calls > 1 else "Executing"
                return [{"PipelineExecutionSteps": [{"StepName": "Train", "StepStatus": done}]}]

        return Paginator()


@pytest.mark.parametrize("steps", [True, False])
def test_follow_prints_status_and_step_changes_once(steps: bool) -> None:
    emitted: list[str] = []
    client = _ScriptedSageMaker(["Executing", "Executing", "Executing", "Failed"], steps)

    final = pipelines.follow(
        client, "arn", poll_seconds=0, timeout_seconds=None, emit=emitted.append, sleep=lambda _: None
    )

    assert final["PipelineExecutionStatus"] == "Failed"
    changes = [line.split("  ", 1)[1] for line in emitted]
    expected = (
        ["Executing", "step Train: Executing", "step Train: Succeeded", "Failed"] if steps else ["Executing", "Failed"]
    )
    assert changes == expected


def test_follow_stops_at_the_timeout() -> None:
    ticks = iter(range(100))
    final = pipelines.follow(
        _ScriptedSageMaker(["Executing"], False),
        "arn",
        poll_seconds=1,
        timeout_seconds=3,
        emit=lambda _: None,
        sleep=lambda _: None,
        clock=lambda: float(next(ticks)),
    )
    assert final["PipelineExecutionStatus"] == "Executing"


def test_table_and_spans() -> None:
    assert (
        text.table(("A", "LONGER", "C"), [("xxx", None, "z"), (1, 2, "")]) == "A    LONGER  C\nxxx  -       z\n1    2"
    )
    assert [text.span(s) for s in (5, 125, 3 * 3600 + 5, 2 * 86400 + 7)] == ["5s", "2m", "3h", "2d"]
    assert [text.duration(s) for s in (42, 303, 7620, None)] == ["42s", "5m 03s", "2h 07m", "-"]


# --- drift with the model_monitor engine ----------------------------------------------------------

MONITOR_SCHEDULE = "mlops-dev-delivery-time-data-quality"
MONITOR_REPORT = f"monitoring/mlops-dev-delivery-time/{MONITOR_SCHEDULE}/2026/11/29/14"


def _monitored_aws(endpoint: str) -> tuple[Aws, Stubber]:
    """Stage dev with the model_monitor engine: alarms and reports in the emulator; SageMaker's
    monitoring API (which the emulator lacks) stubbed against the real service model."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["mlops"]["stages"]["dev"].setdefault("operations", {})["drift"] = {
        "engine": "model_monitor",
        "schedule": "rate(1 hour)",
    }
    aws = Aws(config=load_config(context).stage("dev"), region=REGION, endpoint_url=endpoint, local=True)
    sagemaker = boto3.client("sagemaker", endpoint_url=endpoint, **CREDENTIALS)
    stubber = Stubber(sagemaker)
    aws._clients["sagemaker"] = sagemaker
    return aws, stubber


def _execution(status: str, job: str | None) -> dict[str, Any]:
    scheduled = text.now() - dt.timedelta(minutes=40)
    summary: dict[str, Any] = {
        "MonitoringScheduleName": MONITOR_SCHEDULE,
        "ScheduledTime": scheduled,
        "CreationTime": scheduled,
        "LastModifiedTime": scheduled,
        "MonitoringExecutionStatus": status,
    }
    if job:
        summary["ProcessingJobArn"] = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{job}"
    return {"MonitoringExecutionSummaries": [summary]}


def _list_request() -> dict[str, Any]:
    return {
        "MonitoringScheduleName": MONITOR_SCHEDULE,
        "SortBy": "ScheduledTime",
        "SortOrder": "Descending",
        "MaxResults": 1,
    }


def _job(job: str) -> dict[str, Any]:
    return {
        "ProcessingJobName": job,
        "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{job}",
        "ProcessingJobStatus": "Completed",
        "CreationTime": text.now(),
        "AppSpecification": {
            "ImageUri": "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 20}
        },
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "monitoring_output",
                    "S3Output": {
                        "S3Uri": f"s3://{ARTIFACTS_BUCKET}/{MONITOR_REPORT}",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }


def test_model_monitor_drift_shows_the_last_run_and_its_violations(endpoint: str) -> None:
    aws, stubber = _monitored_aws(endpoint)
    violations = {
        "violations": [
            {
                "feature_name": "distance_km",
                "constraint_check_type": "baseline_drift_check",
                "description": "Baseline drift distance: 0.31 exceeds threshold: 0.1",
            }
        ]
    }
    aws.client("s3").put_object(
        Bucket=ARTIFACTS_BUCKET, Key=f"{MONITOR_REPORT}/constraint_violations.json", Body=json.dumps(violations)
    )
    stubber.add_response("list_monitoring_executions", _execution("CompletedWithViolations", "dq-1"), _list_request())
    stubber.add_response("describe_processing_job", _job("dq-1"), {"ProcessingJobName": "dq-1"})
    with stubber:
        data = drift.status(aws, None)
    stubber.assert_no_pending_responses()
    lines = drift.render(aws, data).splitlines()
    assert lines[0].startswith(f"drift alarm {ALARM_PREFIX} (stage dev")
    start = lines.index(next(line for line in lines if line.startswith("latest Model Monitor run")))
    assert re.fullmatch(
        rf"latest Model Monitor run of {MONITOR_SCHEDULE}: CompletedWithViolations, scheduled .* UTC \(40m ago\)",
        lines[start],
    )
    assert lines[start + 1] == f"report: s3://{ARTIFACTS_BUCKET}/{MONITOR_REPORT}"
    assert lines[start + 2] == "1 constraint violations:"
    assert re.split(r"\s{2,}", lines[start + 4]) == [
        "distance_km",
        "baseline_drift_check",
        "Baseline drift distance: 0.31 exceeds threshold: 0.1",
    ]
    as_json = drift.as_json(data)
    assert as_json["engine"] == "model_monitor"
    assert as_json["latest_monitoring_run"]["violations"][0]["feature"] == "distance_km"
    assert "latest_report" not in as_json


def test_model_monitor_drift_without_runs_or_violations(endpoint: str) -> None:
    aws, stubber = _monitored_aws(endpoint)
    stubber.add_response("list_monitoring_executions", {"MonitoringExecutionSummaries": []}, _list_request())
    stubber.add_response("list_monitoring_executions", _execution("Completed", "dq-2"), _list_request())
    stubber.add_response("describe_processing_job", _job("dq-2"), {"ProcessingJobName": "dq-2"})
    stubber.add_response("list_monitoring_executions", _execution("Pending", None), _list_request())
    with stubber:
        assert drift.render(aws, drift.status(aws, None)).splitlines()[-1] == "latest Model Monitor run: none yet"
        # A clean run writes no violations file (this prefix has none).
        aws.client("s3").delete_object(Bucket=ARTIFACTS_BUCKET, Key=f"{MONITOR_REPORT}/constraint_violations.json")
        assert drift.render(aws, drift.status(aws, None)).splitlines()[-1] == "constraint violations: none"
        pending = drift.render(aws, drift.status(aws, None)).splitlines()
        assert "Pending" in pending[-1] and not any(line.startswith("report:") for line in pending)
    stubber.assert_no_pending_responses()


def test_a_missing_monitoring_schedule_is_named(endpoint: str) -> None:
    aws, stubber = _monitored_aws(endpoint)
    stubber.add_client_error(
        "list_monitoring_executions", "ValidationException", "Monitoring schedule not found", 400, _list_request()
    )
    with stubber, pytest.raises(CliError, match=f"monitoring schedule {MONITOR_SCHEDULE}"):
        drift.status(aws, None)
