"""Publishing the deployed version's data baseline (and Model Monitor baseline) for the drift check, against moto."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines_src import promote

REGION = "us-east-1"
GROUP = "mlops-dev-delivery-time"
BUCKET = "lake-artifacts"
PREFIX = "deployed/mlops-dev-delivery-time/baseline/"
BASELINE = {"format_version": 1, "features": {"distance_km": {"type": "numeric"}}}
MONITOR = "model-build/run-1/MonitorBaseline/monitor"
BASELINE_KEY = "model-build/run-1/Preprocess/baseline/baseline.json"
STATISTICS = {"version": 0.0, "dataset": {"item_count": 7000}, "features": [{"name": "distance_km"}]}
CONSTRAINTS = {"version": 0.0, "features": [{"name": "distance_km", "inferred_type": "Fractional"}]}


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
        sagemaker = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(
            Bucket=BUCKET, Key="model-build/run-1/Preprocess/baseline/baseline.json", Body=json.dumps(BASELINE)
        )
        s3.put_object(Bucket=BUCKET, Key=f"{MONITOR}/statistics.json", Body=json.dumps(STATISTICS))
        s3.put_object(Bucket=BUCKET, Key=f"{MONITOR}/constraints.json", Body=json.dumps(CONSTRAINTS))
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        yield sagemaker, s3


def _metrics(uri: str) -> dict[str, str]:
    return {"ContentType": "application/json", "S3Uri": uri}


def _register(
    sagemaker: Any, baseline_uri: str | None, *, statistics_uri: str | None = None, constraints_uri: str | None = None
) -> str:
    extra: dict[str, Any] = {}
    if baseline_uri:
        # As the model-build pipeline's RegisterModel step records it.
        extra["DriftCheckBaselines"] = {
            "ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": baseline_uri}}
        }
    if constraints_uri:  # with data_quality_monitor: the Model Monitor analyzer's files
        extra["DriftCheckBaselines"]["ModelDataQuality"]["Constraints"] = _metrics(constraints_uri)
    if statistics_uri:
        quality = {"Statistics": _metrics(statistics_uri)}
        if constraints_uri:
            quality["Constraints"] = _metrics(constraints_uri)
        extra["ModelMetrics"] = {"ModelDataQuality": quality}
    response = sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [
                {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgb:1", "ModelDataUrl": "s3://b/m.tar.gz"}
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        **extra,
    )
    arn: str = response["ModelPackageArn"]
    return arn


def _register_monitored(sagemaker: Any) -> str:
    """A version built with the Model Monitor baseline step, its files where the step writes them."""
    return _register(
        sagemaker,
        f"s3://{BUCKET}/{BASELINE_KEY}",
        statistics_uri=f"s3://{BUCKET}/{MONITOR}/statistics.json",
        constraints_uri=f"s3://{BUCKET}/{MONITOR}/constraints.json",
    )


def test_the_versions_baseline_becomes_the_drift_reference_with_a_record(aws: tuple[Any, Any]) -> None:
    sagemaker, s3 = aws
    arn = _register(sagemaker, f"s3://{BUCKET}/model-build/run-1/Preprocess/baseline/baseline.json")
    now = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.UTC)
    record = promote.publish_baseline(sagemaker, s3, arn, BUCKET, PREFIX, now=now)
    copied = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}baseline.json")["Body"].read())
    assert copied == BASELINE
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}deployed.json")["Body"].read())
    assert stored == record
    assert record["model_package_arn"] == arn and record["version"] == 1
    assert record["published_at"] == "2026-11-22T06:00:00+00:00"


def test_a_second_version_replaces_the_reference(aws: tuple[Any, Any]) -> None:
    sagemaker, s3 = aws
    s3.put_object(Bucket=BUCKET, Key="model-build/run-2/Preprocess/baseline/baseline.json", Body=b'{"v": 2}')
    _register(sagemaker, f"s3://{BUCKET}/model-build/run-1/Preprocess/baseline/baseline.json")
    second = _register(sagemaker, f"s3://{BUCKET}/model-build/run-2/Preprocess/baseline/baseline.json")
    promote.publish_baseline(sagemaker, s3, second, BUCKET, PREFIX)
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}baseline.json")["Body"].read()) == {"v": 2}


def test_a_version_without_a_baseline_is_refused_and_nothing_is_written(aws: tuple[Any, Any]) -> None:
    sagemaker, s3 = aws
    arn = _register(sagemaker, None)
    with pytest.raises(promote.PromoteError, match="has no data baseline"):
        promote.publish_baseline(sagemaker, s3, arn, BUCKET, PREFIX)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)


def test_a_missing_baseline_object_names_the_source(aws: tuple[Any, Any]) -> None:
    sagemaker, s3 = aws
    arn = _register(sagemaker, f"s3://{BUCKET}/model-build/run-9/missing/baseline.json")
    with pytest.raises(promote.PromoteError, match="cannot copy the baseline s3://lake-artifacts/model-build/run-9"):
        promote.publish_baseline(sagemaker, s3, arn, BUCKET, PREFIX)


def test_the_command_rejects_what_is_not_a_version_arn(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = promote.main(["--model-package-arn", f"{GROUP}/1", "--bucket", BUCKET, "--prefix", PREFIX])
    assert code == 1
    assert "not a model package version ARN" in capsys.readouterr().err


def _object(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_without_model_monitor_constraints_only_the_baseline_is_published(aws: tuple[Any, Any]) -> None:
    sagemaker, s3 = aws
    arn = _register(
        sagemaker,
        f"s3://{BUCKET}/model-build/run-1/Preprocess/baseline/baseline.json",
        statistics_uri=f"s3://{BUCKET}/{MONITOR}/statistics.json",
    )
    record = promote.publish_baseline(sagemaker, s3, arn, BUCKET, PREFIX)
    assert list(record) == ["model_package_arn", "version", "baseline_source", "baseline", "published_at"]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"]
    assert sorted(item["Key"] for item in listed) == [f"{PREFIX}baseline.json", f"{PREFIX}deployed.json"]


def test_the_model_monitor_baseline_is_published_beside_it_and_recorded(aws: tuple[Any, Any]) -> None:
    sagemaker, s3 = aws
    arn = _register_monitored(sagemaker)
    now = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.UTC)
    record = promote.publish_baseline(sagemaker, s3, arn, BUCKET, PREFIX, now=now)
    assert _object(s3, f"{PREFIX}baseline.json") == BASELINE
    assert _object(s3, f"{PREFIX}statistics.json") == STATISTICS
    assert _object(s3, f"{PREFIX}constraints.json") == CONSTRAINTS
    assert record == {
        "model_package_arn": arn,
        "version": 1,
        "baseline_source": f"s3://{BUCKET}/model-build/run-1/Preprocess/baseline/baseline.json",
        "baseline": f"s3://{BUCKET}/{PREFIX}baseline.json",
        "monitor_statistics": f"s3://{BUCKET}/{PREFIX}statistics.json",
        "monitor_constraints": f"s3://{BUCKET}/{PREFIX}constraints.json",
        "published_at": "2026-11-22T06:00:00+00:00",
    }
    assert _object(s3, f"{PREFIX}deployed.json") == record


def test_model_monitor_constraints_without_statistics_are_refused_and_nothing_is_written(
    aws: tuple[Any, Any],
) -> None:
    sagemaker, s3 = aws
    arn = _register(
        sagemaker,
        f"s3://{BUCKET}/model-build/run-1/Preprocess/baseline/baseline.json",
        constraints_uri=f"s3://{BUCKET}/{MONITOR}/constraints.json",
    )
    with pytest.raises(promote.PromoteError, match=r"no Model Monitor statistics \(ModelMetrics\.ModelDataQuality"):
        promote.publish_baseline(sagemaker, s3, arn, BUCKET, PREFIX)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)


def test_a_missing_model_monitor_file_names_it(aws: tuple[Any, Any]) -> None:
    sagemaker, s3 = aws
    arn = _register(
        sagemaker,
        f"s3://{BUCKET}/model-build/run-1/Preprocess/baseline/baseline.json",
        statistics_uri=f"s3://{BUCKET}/model-build/run-9/MonitorBaseline/monitor/statistics.json",
        constraints_uri=f"s3://{BUCKET}/{MONITOR}/constraints.json",
    )
    with pytest.raises(
        promote.PromoteError, match="cannot copy the Model Monitor statistics s3://lake-artifacts/model"
    ):
        promote.publish_baseline(sagemaker, s3, arn, BUCKET, PREFIX)


def test_the_command_names_what_it_published(aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]) -> None:
    sagemaker, _ = aws
    arn = _register_monitored(sagemaker)
    assert promote.main(["--model-package-arn", arn, "--bucket", BUCKET, "--prefix", PREFIX]) == 0
    assert capsys.readouterr().out == (
        f"publish-baseline: version 1: s3://{BUCKET}/model-build/run-1/Preprocess/baseline/baseline.json -> "
        f"s3://{BUCKET}/{PREFIX}baseline.json; Model Monitor baseline -> s3://{BUCKET}/{PREFIX}statistics.json, "
        f"s3://{BUCKET}/{PREFIX}constraints.json\n"
    )


def test_the_model_monitor_engine_refuses_a_version_without_its_baseline_before_copying(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sagemaker, s3 = aws
    arn = _register(sagemaker, f"s3://{BUCKET}/model-build/run-1/Preprocess/baseline/baseline.json")
    arguments = ["--model-package-arn", arn, "--bucket", BUCKET, "--prefix", PREFIX]
    assert promote.main([*arguments, "--require-monitor-baseline"]) == 1
    assert "has no Model Monitor baseline" in capsys.readouterr().err
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)
    assert promote.main(arguments) == 0  # the processing engine needs baseline.json only
    monitored = _register_monitored(sagemaker)
    record = promote.publish_baseline(sagemaker, s3, monitored, BUCKET, PREFIX, require_monitor=True)
    assert record["monitor_constraints"] == f"s3://{BUCKET}/{PREFIX}constraints.json"
