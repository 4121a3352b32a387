"""Publishing the deployed version's data baseline for the drift check, against moto."""

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
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        yield sagemaker, s3


def _register(sagemaker: Any, baseline_uri: str | None) -> str:
    extra: dict[str, Any] = {}
    if baseline_uri:
        # As the model-build pipeline's RegisterModel step records it.
        extra["DriftCheckBaselines"] = {
            "ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": baseline_uri}}
        }
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
