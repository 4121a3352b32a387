"""The approval notification's line about a version: its registered evaluation metrics, against moto."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines_src import version_info

GROUP = "mlops-prod-delivery-time"
BUCKET = "lake-artifacts"
REPORT = {"regression_metrics": {"rmse": {"value": 4.4041}, "mae": {"value": 2.9137}, "r2": {"value": 0.8279}}}


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        kwargs = {"region_name": "us-east-1", "aws_access_key_id": "t", "aws_secret_access_key": "t"}
        s3, sagemaker = boto3.client("s3", **kwargs), boto3.client("sagemaker", **kwargs)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="model-build/run/Evaluate/evaluation/evaluation.json", Body=json.dumps(REPORT))
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        yield sagemaker, s3


def _register(sagemaker: Any, report_uri: str | None) -> str:
    extra: dict[str, Any] = {}
    if report_uri:
        extra["ModelMetrics"] = {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": report_uri}}
        }
    container = {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgb:1", "ModelDataUrl": "s3://b/m.tar.gz"}
    response = sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [container],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        **extra,
    )
    arn: str = response["ModelPackageArn"]
    return arn


def test_the_line_names_the_version_and_every_metric(aws: tuple[Any, Any]) -> None:
    sagemaker, s3 = aws
    arn = _register(sagemaker, f"s3://{BUCKET}/model-build/run/Evaluate/evaluation/evaluation.json")
    line = version_info.metrics_line(sagemaker, s3, arn)
    assert line == f"version 1 of {GROUP}: rmse 4.404, mae 2.914, r2 0.828"


def test_a_version_without_metrics_or_with_an_unreadable_report_says_so(aws: tuple[Any, Any]) -> None:
    sagemaker, s3 = aws
    bare = _register(sagemaker, None)
    with pytest.raises(version_info.VersionInfoError, match="has no evaluation report"):
        version_info.metrics_line(sagemaker, s3, bare)
    missing = _register(sagemaker, f"s3://{BUCKET}/model-build/other/evaluation.json")
    with pytest.raises(version_info.VersionInfoError, match="cannot read the evaluation report"):
        version_info.metrics_line(sagemaker, s3, missing)


def test_an_unknown_version_exits_one_with_one_line(aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]) -> None:
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/9"
    assert version_info.main(["--model-package-arn", arn]) == 1
    err = capsys.readouterr().err
    assert err.startswith("version-info: cannot describe") and err.count("\n") == 1
