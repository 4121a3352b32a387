"""The steps' MLflow client (steps/tracking.py) against an in-memory MLflow REST server on 127.0.0.1."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials
from moto import mock_aws

from pipelines_src.steps import evaluate, preprocess, tracking
from tests.pipelines import fake_mlflow

ARN = "arn:aws:sagemaker:eu-west-1:111122223333:mlflow-tracking-server/models-dev"


@pytest.fixture
def store() -> Iterator[fake_mlflow.Store]:
    with fake_mlflow.running() as state:
        yield state


def environment(store: fake_mlflow.Store, execution: str = "exec-1", **more: str) -> dict[str, str]:
    return {
        tracking.URI_VARIABLE: store.url,
        tracking.EXPERIMENT_VARIABLE: "delivery-time",
        tracking.RUN_NAME_VARIABLE: execution,
        **more,
    }


def quick(tracker: tracking.Tracker) -> tracking.Tracker:
    """No waiting between retries."""
    assert tracker.client is not None
    tracker.client.sleep = lambda _: None
    return tracker


def test_without_a_tracking_uri_tracking_is_off_and_says_so_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracker = tracking.Tracker.open("train", {})
    tracker.log_params({"eta": 0.2})
    tracker.log_metrics({"rmse": 1.0})
    tracker.finish()
    report = json.loads(tracker.write_report(tmp_path).read_text())
    assert report["status"] == "off" and report["reason"] == "MLFLOW_TRACKING_URI is not set"
    assert report["run_id"] is None and report["calls"] == 0 and report["skipped_calls"] == 0
    assert capsys.readouterr().out.splitlines() == ["tracking off: MLFLOW_TRACKING_URI is not set"]


def test_the_steps_of_one_execution_share_one_run_in_the_models_experiment(store: fake_mlflow.Store) -> None:
    lineage = {
        tracking.COMMIT_VARIABLE: "0123abc",
        tracking.EXECUTION_ARN_VARIABLE: "arn:aws:sagemaker:eu-west-1:111122223333:pipeline/p/execution/exec-1",
        tracking.IMAGE_VARIABLE: "123.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
    }
    first = tracking.Tracker.open("preprocess", environment(store, **lineage))
    second = tracking.Tracker.open("train", environment(store, **lineage))
    other = tracking.Tracker.open("train", environment(store, "exec-2"))
    assert first.run_id and first.run_id == second.run_id != other.run_id
    assert store.calls("/api/2.0/mlflow/experiments/create") == 1
    assert store.calls("/api/2.0/mlflow/runs/create") == 2, "one run per execution"
    run = store.run(first.run_id)
    assert run["info"]["run_name"] == "exec-1"
    assert run["tags"][tracking.EXECUTION_TAG] == "exec-1"
    assert run["tags"]["mlops.git_commit"] == run["tags"]["mlflow.source.git.commit"] == "0123abc"
    assert run["tags"]["mlops.pipeline_execution_arn"].endswith("/execution/exec-1")
    assert run["tags"]["mlops.image.preprocess"].endswith("sagemaker-scikit-learn:1.2-1-cpu-py3")
    assert first.report()["status"] == "ok" and first.report()["failed_calls"] == 0


def test_params_metrics_curves_tags_and_artifacts_reach_the_run(store: fake_mlflow.Store, tmp_path: Path) -> None:
    tracker = tracking.Tracker.open("train", environment(store))
    assert tracker.run_id is not None
    tracker.log_params({"train.eta": 0.2, "train.objective": "reg:squarederror"})
    tracker.log_metrics({"train.rmse": 4.5, "flag": True, "missing": None, "nan": float("nan")})
    curve = [float(value) for value in range(1500, 0, -1)]  # more points than one log-batch takes
    tracker.log_series({"train.curve.validation_rmse": curve})
    tracker.set_tags({"data.manifest_sha256": "ab" * 32})
    report = tmp_path / "evaluation.json"
    report.write_text('{"rmse": 4.5}\n')
    tracker.log_artifact(report, "evaluation")
    tracker.log_text("<svg/>", "train/feature_importance.svg")
    tracker.finish()
    run = store.run(tracker.run_id)
    assert run["params"] == {"train.eta": "0.2", "train.objective": "reg:squarederror"}
    assert run["metrics"]["train.rmse"] == [(0, 4.5)]
    assert {"flag", "missing", "nan"}.isdisjoint(run["metrics"]), "only finite numbers are metrics"
    assert run["metrics"]["train.curve.validation_rmse"] == list(enumerate(curve))
    assert run["tags"]["data.manifest_sha256"] == "ab" * 32
    prefix = f"1/{tracker.run_id}/artifacts"
    assert store.artifacts[f"{prefix}/evaluation/evaluation.json"] == b'{"rmse": 4.5}\n'
    assert store.artifacts[f"{prefix}/train/feature_importance.svg"] == b"<svg/>"
    uploads = [request for request in store.requests if request["method"] == "PUT"]
    assert {request["headers"]["Content-Type"] for request in uploads} == {"application/json", "image/svg+xml"}
    assert run["info"]["status"] == "FINISHED" and run["info"]["end_time"]
    assert tracker.report()["status"] == "ok" and tracker.report()["calls"] == tracker.calls > 0


def test_a_failing_call_is_retried_then_counted_and_the_step_goes_on_degraded(
    store: fake_mlflow.Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracker = quick(tracking.Tracker.open("train", environment(store)))
    store.fail_next("/api/2.0/mlflow/runs/log-batch", 503, times=1)
    tracker.log_params({"a": 1})  # one 503, then the retry lands
    assert tracker.failures == 0
    store.fail_next("/api/2.0/mlflow/runs/log-batch", 500)
    tracker.log_metrics({"rmse": 1.0})  # every try fails
    assert store.calls("/api/2.0/mlflow/runs/log-batch") == 2 + 1 + tracking.RETRIES
    tracker.finish()
    report = json.loads(tracker.write_report(tmp_path).read_text())
    assert report["status"] == "degraded" and report["failed_calls"] == 1
    assert report["errors"] == [
        "train: log metrics: POST /api/2.0/mlflow/runs/log-batch: HTTP 500 INTERNAL_ERROR: failing on purpose"
    ]
    assert store.run(tracker.run_id or "")["info"]["status"] == "FINISHED", "later calls still go"
    out = capsys.readouterr().out
    assert "warning: tracking: train: log metrics: " in out and "tracking degraded: 1 failed call(s)" in out


def test_an_unreachable_server_costs_a_few_calls_then_none(tmp_path: Path) -> None:
    closed = fake_mlflow.serve(fake_mlflow.Store())
    address = fake_mlflow.url(closed)
    closed.shutdown()
    closed.server_close()
    tracker = tracking.Tracker.from_environment(
        "evaluate",
        {tracking.URI_VARIABLE: address, tracking.EXPERIMENT_VARIABLE: "m", tracking.RUN_NAME_VARIABLE: "e"},
    )
    quick(tracker)
    assert tracker.start() is None
    for _ in range(5):
        tracker.log_metrics({"rmse": 1.0})
    tracker.finish()
    report = tracker.report()
    assert report["status"] == "degraded" and report["run_id"] is None
    assert report["failed_calls"] == 1 and report["skipped_calls"] == 6, "no run: nothing else is tried"


def test_consecutive_failures_stop_the_calls(store: fake_mlflow.Store) -> None:
    tracker = quick(tracking.Tracker.open("train", environment(store)))
    store.fail_next("/api/2.0/mlflow/runs/log-batch", 500)
    for _ in range(6):
        tracker.log_metrics({"rmse": 1.0})
    assert tracker.failures == tracking.MAX_CONSECUTIVE_FAILURES
    assert tracker.skipped == 6 - tracking.MAX_CONSECUTIVE_FAILURES
    assert store.calls("/api/2.0/mlflow/runs/log-batch") == tracking.MAX_CONSECUTIVE_FAILURES * (1 + tracking.RETRIES)


def test_a_tracking_uri_without_an_experiment_is_a_degraded_run_not_an_error(tmp_path: Path) -> None:
    tracker = tracking.Tracker.open("train", {tracking.URI_VARIABLE: "http://127.0.0.1:9"})
    assert tracker.report()["status"] == "degraded"
    assert "MLFLOW_EXPERIMENT_NAME and MLFLOW_RUN_NAME must be set" in tracker.report()["errors"][0]
    bad = tracking.Tracker.open("train", {tracking.URI_VARIABLE: "ftp://x", **_names()})
    assert "neither an http(s) URL nor a SageMaker MLflow ARN" in bad.report()["errors"][0]


def _names() -> dict[str, str]:
    return {tracking.EXPERIMENT_VARIABLE: "m", tracking.RUN_NAME_VARIABLE: "e"}


def test_sagemaker_servers_get_sigv4_signed_requests_for_sagemaker_mlflow(store: fake_mlflow.Store) -> None:
    assert tracking.endpoint(ARN) == ("https://eu-west-1.experiments.sagemaker.aws", "eu-west-1")
    with pytest.raises(ValueError, match="not a SageMaker MLflow tracking server ARN"):
        tracking.endpoint("arn:aws:s3:::bucket")
    signer = tracking.sigv4_signer(ARN, "eu-west-1", Credentials("AKIDEXAMPLE", "secret", "token"))
    client = tracking.RestClient(store.url, signer=signer)
    tracker = tracking.Tracker(client, step="train", experiment="m", run_name="e")
    assert tracker.start() is not None
    for request in store.requests:
        headers = {key.lower(): value for key, value in request["headers"].items()}
        assert headers["x-mlflow-sm-tracking-server-arn"] == ARN
        assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/sagemaker-mlflow/aws4_request" in headers["authorization"]
        assert "x-mlflow-sm-tracking-server-arn" in headers["authorization"], "the server ARN header is signed"
        assert headers["x-amz-security-token"] == "token"


def test_a_custom_endpoint_replaces_the_default_one_for_an_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    assert tracking.client_for(ARN, {}).base_url == "https://eu-west-1.experiments.sagemaker.aws"
    custom = {tracking.CUSTOM_ENDPOINT_VARIABLE: "https://mlflow.example.internal"}
    client = tracking.client_for(ARN, custom)
    assert client.base_url == "https://mlflow.example.internal" and client.signer is not None


def test_artifacts_of_a_run_stored_in_s3_go_to_its_artifact_uri() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="tracking-artifacts")
        artifacts = tracking.Artifacts(tracking.RestClient("https://unused.invalid"), s3=s3)
        artifacts.upload("s3://tracking-artifacts/7/abc/artifacts", "baseline/baseline.json", b"{}", "application/json")
        stored = s3.get_object(Bucket="tracking-artifacts", Key="7/abc/artifacts/baseline/baseline.json")
        assert stored["Body"].read() == b"{}" and stored["ContentType"] == "application/json"


def test_the_feature_importance_chart_is_svg_with_a_bar_per_feature_largest_first() -> None:
    svg = tracking.bar_chart_svg("Importance <gain>", {"distance_km": 3.0, "hour": 9.5, "a&b": 0.0})
    root = ElementTree.fromstring(svg)
    namespace = "{http://www.w3.org/2000/svg}"
    bars = root.findall(f"{namespace}rect")
    assert [bar.find(f"{namespace}title").text.split(":")[0] for bar in bars] == ["hour", "distance_km", "a&b"]  # type: ignore[union-attr]
    widths = [float(bar.get("width") or 0) for bar in bars]
    assert widths[0] > widths[1] > widths[2] > 0
    assert root.find(f"{namespace}text").text == "Importance <gain>"  # type: ignore[union-attr]


def test_the_data_version_hashes_the_files_read_wherever_they_are(tmp_path: Path) -> None:
    for root in (tmp_path / "a", tmp_path / "b"):
        for day in ("dt=2026-11-02", "dt=2026-11-01"):
            (root / day).mkdir(parents=True)
            (root / day / "part-0.csv").write_text(f"x\n{day}\n")
    first, second = preprocess.data_version(tmp_path / "a"), preprocess.data_version(tmp_path / "b")
    assert first == second
    assert first["partitions"] == ["dt=2026-11-01", "dt=2026-11-02"]
    assert first["partitions_summary"] == "2:dt=2026-11-01..dt=2026-11-02"
    assert [item["path"] for item in first["files"]] == ["dt=2026-11-01/part-0.csv", "dt=2026-11-02/part-0.csv"]
    (tmp_path / "b" / "dt=2026-11-02" / "part-0.csv").write_text("x\nchanged\n")
    assert preprocess.data_version(tmp_path / "b")["manifest_sha256"] != first["manifest_sha256"]


def test_the_evaluation_report_carries_the_tracking_outcome_and_the_run_for_the_registry(
    store: fake_mlflow.Store, tmp_path: Path
) -> None:
    report: dict[str, Any] = {
        "regression_metrics": {"rmse": {"value": 4.0, "standard_deviation": 0.1}},
        "additional_metrics": {"mape": None},
        "rows": 10,
    }
    tracker = tracking.Tracker.open("evaluate", environment(store))
    evaluate.track(tracker, dict(report), tmp_path)
    written = json.loads((tmp_path / "evaluation.json").read_text())
    assert written["tracking"]["status"] == "ok" and written["tracking"]["run_id"] == tracker.run_id
    assert written["metadata"]["mlflow_run_id"] == tracker.run_id
    run = store.run(tracker.run_id or "")
    assert run["metrics"]["evaluation.rmse"] == [(0, 4.0)] and "evaluation.mape" not in run["metrics"]
    assert run["info"]["status"] == "FINISHED"
    assert f"1/{tracker.run_id}/artifacts/evaluation/evaluation.json" in store.artifacts
    assert json.loads((tmp_path / "tracking.json").read_text())["status"] == "ok"
    off = tmp_path / "off"
    off.mkdir()
    evaluate.track(tracking.Tracker.open("evaluate", {}), dict(report), off)
    untracked = json.loads((off / "evaluation.json").read_text())
    assert untracked["metadata"]["mlflow_run_id"] == "none" and untracked["tracking"]["status"] == "off"
