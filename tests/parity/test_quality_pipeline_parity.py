"""The deployed model-quality check on the scikit-learn image's own Python: the definition the MLPlatform stack
deploys (pipelines_src/quality_definition.py, the stage's settings), run by the local pipeline runner with the
steps tarball and run_step.sh, its CheckQuality job on the image's interpreter, S3 embedded. Its metrics file is
what the quality-metrics function puts: one valid PutMetricData request whose degradation the decay alarm reads.

tests/parity/test_quality_parity.py compares quality.py's report between the image and the project venv; this
one runs the job as the pipeline starts it: its container arguments (the joined ``--reference=`` included, empty
or a number), its inputs staged from S3, the window ending ``lateness_hours`` before now.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.session import Session
from botocore.validate import validate_parameters

from pipelines_src.datasets.delivery_time import generate
from pipelines_src.local.images import IMAGE
from pipelines_src.local.run import ARTIFACTS_BUCKET, CODE_BUCKET, KMS_KEY_ARN, REGION, ROLE_ARN, stage_code
from pipelines_src.local.runner import LocalPipelineRunner
from pipelines_src.quality_definition import (
    CHECK_QUALITY,
    METRICS_FILE,
    REFERENCE_METRIC,
    REPORT_FILE,
    REPORT_OUTPUT,
    QualitySettings,
    build_quality_definition,
)
from pipelines_src.steps import contract as contracts
from pipelines_src.steps import features, quality
from resolver.naming import QUALITY_ARTIFACTS_PREFIX
from tests.conftest import cdk_json_context
from tests.parity.conftest import require_image_envs
from tests.pipelines.test_quality import CONTRACT, _capture_line

pytestmark = [pytest.mark.parity, pytest.mark.slow]

SKLEARN_ENV = "sagemaker-scikit-learn-1.2-1"
LAKE_BUCKET = "local-lake-quality"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}
REQUESTS = 150


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _land(s3: Any, settings_quality: Any, *, error: float) -> None:
    """One-row requests inside the window that ends lateness_hours before now, each labelled 10 minutes later
    with the prediction plus ``error`` (so rmse == error), as the endpoint's capture and the curation job
    would have written them."""
    contract = contracts.load_contract(CONTRACT)
    names = features.from_contract(contract).names
    rows = generate(REQUESTS, seed=7, days=1)
    now = dt.datetime.now(dt.UTC)
    until = now - dt.timedelta(hours=settings_quality.lateness_hours)
    start = until - dt.timedelta(hours=settings_quality.window_hours) + dt.timedelta(minutes=30)
    lines, ids, targets, times = [], [], [], []
    for index in range(REQUESTS):
        moment = start + dt.timedelta(minutes=5 * index)
        assert moment < until - dt.timedelta(minutes=5)
        predicted = 20.0 + index % 7
        lines.append(_capture_line(rows.iloc[index : index + 1], names, _stamp(moment), f"req-{index}", [predicted]))
        ids.append(f"req-{index}")
        targets.append(predicted + error)
        times.append(_stamp(moment + dt.timedelta(minutes=10)))
    hour = start.strftime("%Y/%m/%d/%H")
    s3.put_object(
        Bucket=LAKE_BUCKET,
        Key=f"raw/datacapture/endpoint/AllTraffic/{hour}/capture.jsonl",
        Body=("\n".join(lines) + "\n").encode(),
    )
    frame = pd.DataFrame({"inference_id": ids, "delivery_minutes": targets, "event_time": times})
    body = io.BytesIO()
    frame.to_parquet(body, index=False)
    s3.put_object(
        Bucket=LAKE_BUCKET, Key=f"curated/labels/delivery_time/dt={start:%Y-%m-%d}/part-0.parquet", Body=body.getvalue()
    )


@pytest.mark.parametrize(("reference", "decayed"), [("2.0", True), ("", None)])
def test_the_deployed_quality_check_runs_on_the_image_and_writes_what_the_alarm_reads(
    moto_server: str, tmp_path: Path, reference: str, decayed: bool | None
) -> None:
    require_image_envs(SKLEARN_ENV)
    from resolver.config import load_config

    config = load_config(cdk_json_context()).stage("dev")
    wanted = config.operations.quality
    s3 = boto3.client("s3", endpoint_url=moto_server, **CREDENTIALS)
    for bucket in (LAKE_BUCKET, ARTIFACTS_BUCKET, CODE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    code = stage_code(s3, "delivery_time", tmp_path)
    labels_contract = stage_code(s3, "delivery_time_labels", tmp_path)["contract_uri"]
    settings = QualitySettings(
        pipeline_name="local-delivery-time-quality-check",
        region=REGION,
        role_arn=ROLE_ARN,
        artifacts_bucket=ARTIFACTS_BUCKET,
        artifacts_prefix=QUALITY_ARTIFACTS_PREFIX,
        capture_uri=f"s3://{LAKE_BUCKET}/raw/datacapture/",
        labels_uri=f"s3://{LAKE_BUCKET}/curated/labels/delivery_time/",
        contract_uri=code["contract_uri"],
        labels_contract_uri=labels_contract,
        source_tar_uri=code["source_tar_uri"],
        runner_uri=code["runner_uri"],
        kms_key_arn=KMS_KEY_ARN,
        subnet_ids=("subnet-local",),
        security_group_ids=("sg-local",),
        model_name=config.model.name,
        stage_name=config.name,
        metric=config.model.metric,
        goal=config.model.goal,
        window_hours=wanted.window_hours,
        lateness_hours=wanted.lateness_hours,
        min_labels=wanted.min_labels,
        max_degradation=wanted.max_degradation,
        processing_instance_type=wanted.instance_type,
    )
    _land(s3, wanted, error=4.0)
    events: list[str] = []
    runner = LocalPipelineRunner(
        json.loads(build_quality_definition(settings)),
        s3=s3,
        sagemaker=None,
        workdir=tmp_path / "jobs",
        on_event=events.append,
        job_environment={"AWS_ENDPOINT_URL": moto_server, "AWS_DEFAULT_REGION": REGION},
        interpreters=IMAGE,
    )
    result = runner.run({REFERENCE_METRIC: reference}, execution_id="q-1")
    assert result.status == "Succeeded", (result.failure, events[-20:])
    assert any("3.9" in event for event in events), events  # the image's Python ran the job
    folder = f"{QUALITY_ARTIFACTS_PREFIX}/{settings.pipeline_name}/q-1/{CHECK_QUALITY}/{REPORT_OUTPUT}"
    report = json.loads(s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=f"{folder}/{REPORT_FILE}")["Body"].read())
    request = json.loads(s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=f"{folder}/{METRICS_FILE}")["Body"].read())
    assert report["predictions"]["labelled"] == REQUESTS >= wanted.min_labels
    assert report["value"] == pytest.approx(4.0)
    assert report["decayed"] is decayed
    # One PutMetricData request in the quality namespace, as botocore would send it.
    validate_parameters(request, Session().get_service_model("cloudwatch").operation_model("PutMetricData").input_shape)
    assert request["Namespace"] == quality.NAMESPACE
    names = {entry["MetricName"]: entry for entry in request["MetricData"]}
    assert names[quality.COMPLETED]["Value"] == 1.0
    if reference:
        degradation = names[quality.METRIC_DEGRADATION]
        assert degradation["Value"] == pytest.approx(2.0) and degradation["Value"] > wanted.max_degradation
        assert {d["Name"]: d["Value"] for d in degradation["Dimensions"]} == {
            "Model": config.model.name,
            "Stage": config.name,
        }
    else:
        assert quality.METRIC_DEGRADATION not in names  # no reference: nothing for the decay alarm
