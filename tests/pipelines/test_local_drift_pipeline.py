"""The drift-check pipeline on this machine: the deployed definition, drift.py from the steps tarball, embedded AWS.

The job is network-isolated: SageMaker stages its inputs and outputs, here through an embedded AWS server
(moto) on 127.0.0.1 that holds the inputs and receives the report and the metrics file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.session import Session
from botocore.validate import validate_parameters

from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.local.run import ARTIFACTS_BUCKET, REGION, run_local_drift
from pipelines_src.local.storage import upload
from pipelines_src.steps import contract as contracts
from pipelines_src.steps import drift, features
from pipelines_src.steps.preprocess import build_baseline

LAKE_BUCKET = "local-lake-raw"
CONTRACT = Path(__file__).resolve().parents[2] / "pipelines_src" / "contracts" / "delivery_time.json"
# As in test_drift: a long period, so that the weather mix of two seeds does not differ by chance.
DAYS = 120
BASELINE_ROWS = 20_000
NEW_ROWS = 10_000
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}

pytestmark = pytest.mark.slow


def _baseline() -> dict[str, Any]:
    """The baseline preprocess writes for its training split, here of generated data."""
    contract = contracts.load_contract(CONTRACT)
    typed = contracts.dataset_from_frame(generate(BASELINE_ROWS, seed=1, days=DAYS), contract).frame
    baseline: dict[str, Any] = json.loads(json.dumps(build_baseline(typed, contract, features.from_contract(contract))))
    return baseline


def test_same_distribution_data_reports_no_drift_and_publishes_the_metrics(moto_server: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_server, **CREDENTIALS)
    for bucket in (ARTIFACTS_BUCKET, LAKE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket=ARTIFACTS_BUCKET, Key="models/v1/baseline/baseline.json", Body=json.dumps(_baseline()).encode()
    )
    write_raw(generate(NEW_ROWS, seed=2, days=DAYS), tmp_path / "raw", file_format="csv")
    upload(s3, tmp_path / "raw" / "delivery_time", f"s3://{LAKE_BUCKET}/raw/delivery_time")
    result = run_local_drift(
        s3=s3,
        endpoint_url=moto_server,
        workdir=tmp_path,
        baseline_uri=f"s3://{ARTIFACTS_BUCKET}/models/v1/baseline/",
        data_uri=f"s3://{LAKE_BUCKET}/raw/delivery_time/",
        input_format="dataset",
        on_event=lambda _: None,
    )
    assert result.status == "Succeeded", result.failure

    key = "drift-check/local-delivery-time-drift/run-1/DetectDrift/report/drift_report.json"
    report = json.loads(s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=key)["Body"].read())
    assert report["row_count"] == NEW_ROWS
    assert report["drifted_features"] == []
    assert report["schema"]["violation_count"] == 0
    assert report["thresholds"]["psi"] == drift.PSI_THRESHOLD

    # The job sends nothing (network-isolated): it writes the run's metrics as one PutMetricData request, which
    # the drift-metrics function publishes from outside the VPC (tests/lambdas/test_drift_metrics.py; the demo
    # runs the two together).
    key = key.replace("drift_report.json", drift.METRICS_FILE)
    request = json.loads(s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=key)["Body"].read())
    validate_parameters(request, Session().get_service_model("cloudwatch").operation_model("PutMetricData").input_shape)
    assert request["Namespace"] == drift.NAMESPACE
    run_metrics = {
        entry["MetricName"]: entry["Value"]
        for entry in request["MetricData"]
        if sorted((item["Name"], item["Value"]) for item in entry["Dimensions"])
        == [("Model", "delivery-time"), ("Stage", "local")]
    }
    assert set(run_metrics) == {drift.MAX_PSI, drift.DRIFTED_FEATURES, drift.SCHEMA_VIOLATIONS, drift.CHECK_COMPLETED}
    assert run_metrics[drift.DRIFTED_FEATURES] == 0.0
    assert run_metrics[drift.CHECK_COMPLETED] == 1.0
