"""``make demo``: the whole lifecycle on embedded AWS emulation, and how a failed step ends it."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from demo import builds, run
from demo.assembly import Assembly, Resolver
from demo.emulation import ACCOUNT
from demo.progress import Timeline
from pipelines_src.local.images import ImageRuntime, for_image
from pipelines_src.local.serving import XGBOOST_IMAGE
from pipelines_src.packaging import RUNNER_PATH
from pipelines_src.steps import capture, contract


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    workdir = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    summary = run.run_demo(run.parse_options(["--fast", "--workdir", str(workdir)]), out=out, tty=False)
    return summary, out.getvalue(), workdir


@pytest.mark.slow
def test_the_build_registers_version_1_with_a_finite_metric(fast_run: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = fast_run
    first = summary["versions"][0]
    assert first["version"] == 1
    assert first["status"] == "Approved"
    assert math.isfinite(first["metrics"]["rmse"])
    assert summary["curation"]["rows_quarantined"] == run.BAD_ROWS


@pytest.mark.slow
def test_the_drift_started_retraining_runs_and_registers_version_2(fast_run: tuple[dict[str, Any], str, Path]) -> None:
    """The execution the drift-alert function starts is run by the executor (moto runs no step): it registers
    version 2 in the group, awaiting approval, with its metrics and the alarm that started it."""
    summary, out, _ = fast_run
    retraining = summary["retraining"]
    started = retraining["alarm_results"][0]["pipelineExecutionArn"]
    first, second = summary["versions"]
    assert second == retraining["version"]
    assert (second["version"], second["status"], second["execution"]) == (2, "PendingManualApproval", started)
    assert math.isfinite(second["metrics"]["rmse"])
    composite = composite_name(summary)
    assert second["started_because"].startswith(f"Retraining for drift: started by drift alarm {composite} at ")
    assert second["arn"].endswith(f"/{summary['names']['model_package_group']}/2")
    statuses = {item["arn"]: item["status"] for item in retraining["executions"]}
    assert statuses == {first["execution"]: "Succeeded", started: "Succeeded"}
    metrics = ", ".join(f"{name} {value:.3f}" for name, value in second["metrics"].items())
    assert f"v2  {'PendingManualApproval':<22} {metrics}" in out
    assert f"started: {second['started_because']}" in out


@pytest.mark.slow
def test_the_build_runs_the_checkouts_code_as_ci_passes_it(fast_run: tuple[dict[str, Any], str, Path]) -> None:
    """CI's Train as the CICD template defines it: its buildspec runs in a copy of the checkout (make install
    skipped, saying why; make ci-train run), starting the execution the executor runs, on the deployed definition
    with the step code content-addressed and passed as its code parameters (the template's object names)."""
    summary, out, workdir = fast_run
    ci = summary["ci"]
    assert ci["exit_code"] == 0
    assert [(item["command"], item["skipped_because"] is None) for item in ci["commands"]] == [
        ("make install", False),
        ("make ci-train", True),
    ]
    assert f"install: make install  -- skipped: {builds.LOCAL_SKIPS['make install']}" in out
    assert ci["train_summary"]["status"] == "Succeeded"
    assert ci["train_summary"]["pipeline_execution_arn"] == summary["versions"][0]["execution"]
    assert any("[Container] Running command make ci-train" in line for line in ci["log"])
    parameters = summary["build_parameters"]
    assert set(parameters) >= {"RunnerUri", "SourceTarUri", "ContractUri"}
    assert ci["train_summary"]["code"]["runner_uri"] == parameters["RunnerUri"]
    resolver = Resolver(Assembly.read(workdir / run.ASSEMBLY_FOLDER), ACCOUNT, summary["names"]["region"])
    deployed = json.loads(resolver.pipeline(summary["names"]["build_pipeline"]).definition)
    default = next(item["DefaultValue"] for item in deployed["Parameters"] if item["Name"] == "RunnerUri")
    runner = hashlib.sha256(RUNNER_PATH.read_bytes()).hexdigest()
    name = default.rsplit("/", 1)[-1]
    assert parameters["RunnerUri"] == f"s3://{summary['names']['artifacts_bucket']}/code/{runner}/{name}"


@pytest.mark.slow
def test_the_approval_starts_one_deploy_with_the_versions_arn(fast_run: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = fast_run
    deploy = summary["deploy"]
    assert deploy["first"]["status"] == "deploy_started"
    assert len(deploy["executions"]) == 1
    assert deploy["variables"] == {"ModelPackageArn": summary["versions"][0]["arn"]}
    assert deploy["duplicate"] == deploy["first"]
    assert deploy["duplicate_ignored"] is True


@pytest.mark.slow
def test_requests_are_captured_in_the_data_capture_format(fast_run: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, workdir = fast_run
    endpoint = summary["names"]["endpoint"]
    layout = rf"s3://{summary['names']['raw_bucket']}/datacapture/{endpoint}/AllTraffic/\d{{4}}/\d\d/\d\d/\d\d/"
    for window in ("normal", "drifted"):
        assert re.fullmatch(layout, summary["capture"][window]["prefix"])
        assert summary["capture"][window]["requests"] == run.FAST["traffic"]
    lines = [
        json.loads(line)
        for path in sorted((workdir / "capture").rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len(lines) == 2 * run.FAST["traffic"]
    assert {line["captureData"]["endpointInput"]["encoding"] for line in lines} == {"CSV", "JSON"}
    assert all(line["captureData"]["endpointInput"]["mode"] == "INPUT" for line in lines)
    assert all("predictions" in json.loads(line["captureData"]["endpointOutput"]["data"]) for line in lines)
    # The drift job's reader takes every captured row.
    terms = contract.load_contract(run.PIPELINES_SRC / "contracts" / "delivery_time.json")
    read = capture.read_capture(workdir / "capture", terms)
    assert read.dataset.rows == sum(summary["capture"][window]["rows"] for window in ("normal", "drifted"))
    assert read.malformed == []
    # The client passes an InferenceId with every request: the capture records it, the endpoint answers it.
    ids = [line["eventMetadata"]["inferenceId"] for line in lines]
    assert len(set(ids)) == len(ids)
    assert all(
        json.loads(line["captureData"]["endpointOutput"]["data"])["inference_id"]
        == line["eventMetadata"]["inferenceId"]
        for line in lines
    )
    assert None not in read.inference_ids and len(set(read.inference_ids)) == read.dataset.rows


@pytest.mark.slow
def test_traffic_goes_through_the_image_serving_stack_when_its_environment_is_built(
    fast_run: tuple[dict[str, Any], str, Path],
) -> None:
    summary, out, _ = fast_run
    built = image_runtime_built()
    assert summary["endpoint"]["served_by"] == ("serving-stack" if built else "in-process")
    assert summary["endpoint"]["requests_per_second"] > 0
    if built:
        assert "served by the XGBoost image's serving stack" in out


@pytest.mark.slow
def test_without_the_image_environment_the_stand_in_answers_alike_in_process(
    fast_run: tuple[dict[str, Any], str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, workdir = fast_run
    first = next(iter(sorted((workdir / "capture").rglob("*.jsonl")))).read_text().splitlines()[0]
    captured = json.loads(first)["captureData"]
    monkeypatch.setattr(ImageRuntime, "is_built", lambda self: False)
    out = io.StringIO()
    demo = run.Demo(options=run.Options(), timeline=Timeline(out, tty=False), workdir=workdir)
    endpoint = workdir / "endpoint"
    with demo._stand_in(endpoint / "model.tar.gz", endpoint / "model", {}) as stand_in:
        status, response = stand_in.answer(
            captured["endpointInput"]["data"], captured["endpointInput"]["observedContentType"], "again-1"
        )
    assert stand_in.kind == "in-process"
    (notice,) = out.getvalue().splitlines()
    assert notice.endswith("run `make image-envs`: the stand-in endpoint answers in this process instead")
    assert status == 200
    assert json.loads(response)["inference_id"] == "again-1"
    assert json.loads(response)["predictions"] == pytest.approx(
        json.loads(captured["endpointOutput"]["data"])["predictions"], rel=1e-6
    )


def image_runtime_built() -> bool:
    return for_image(XGBOOST_IMAGE).is_built()


@pytest.mark.slow
def test_only_the_drifted_window_flags_the_injected_feature(fast_run: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = fast_run
    assert summary["drift"]["normal"]["drifted_features"] == []
    assert run.DRIFT_FEATURE in summary["drift"]["drifted"]["drifted_features"]
    composite = summary["names"]["composite_alarm"]
    assert summary["alarms"]["normal"][composite] == "OK"
    assert summary["alarms"]["drifted"][composite] == "ALARM"


@pytest.mark.slow
def test_drift_retrains_once_then_the_cooldown_suppresses(fast_run: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = fast_run
    retraining = summary["retraining"]
    first, second = retraining["alarm_results"]
    assert first["status"] == "retraining_started"
    # the retraining is started against the version production serves (approved, recorded at the deploy)
    assert first["championModelData"].startswith("s3://") and first["championModelData"].endswith("/model.tar.gz")
    assert second["status"] == "suppressed"
    assert "retraining started within" in second["reason"]
    build = summary["versions"][0]["execution"]
    started_by_drift = [item["arn"] for item in retraining["executions"] if item["arn"] != build]
    assert started_by_drift == [first["pipelineExecutionArn"]]
    assert len(retraining["suppressed_records"]) == 1
    subjects = [message["subject"] for message in summary["notifications"]]
    assert f"Retraining suppressed: {composite_name(summary)}" in subjects


def composite_name(summary: dict[str, Any]) -> str:
    return str(summary["names"]["composite_alarm"])


@pytest.mark.slow
def test_the_timeline_numbers_every_step(fast_run: tuple[dict[str, Any], str, Path]) -> None:
    _, output, _ = fast_run
    total = len(run.STEPS)
    assert [int(n) for n in re.findall(rf"step (\d)/{total}", output)] == list(range(1, total + 1))
    assert "curation [########################] 100%" in output
    assert "\r" not in output


@pytest.mark.slow
def test_without_the_curation_job_the_retraining_fails_visibly_and_the_demo_goes_on(tmp_path: Path) -> None:
    """--no-etl trains version 1 on the raw zone; the drift-started retraining runs the deployed definition, which
    reads the curated zone (empty without the job): the execution ends Failed, recorded as SageMaker reports it."""
    out = io.StringIO()
    summary = run.run_demo(run.parse_options(["--fast", "--no-etl", "--workdir", str(tmp_path)]), out=out, tty=False)
    (version,) = summary["versions"]
    assert version["version"] == 1 and "ci" not in summary
    retraining = summary["retraining"]
    started = retraining["alarm_results"][0]["pipelineExecutionArn"]
    assert retraining["version"] is None
    statuses = {item["arn"]: item["status"] for item in retraining["executions"]}
    assert statuses == {version["execution"]: "Succeeded", started: "Failed"}
    (failed,) = [item for item in summary["actions"] if item["action"].startswith("retraining execution")]
    assert failed["why"].startswith("ValidateData: no objects under s3://")


@pytest.mark.slow  # a subprocess or a whole run: end to end
def test_a_failing_step_stops_the_demo_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def broken(self: run.Demo) -> None:
        raise RuntimeError("injected failure\nwith a second line")

    monkeypatch.setattr(run.Demo, "data", broken)
    assert run.main(["--fast", "--workdir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.err == "demo: step 2 (generate data and curate it) failed: injected failure\n"
    assert "step 3/7" not in captured.out


@pytest.mark.slow  # a subprocess or a whole run: end to end
def test_debug_keeps_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def broken(self: run.Demo) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(run.Demo, "data", broken)
    assert run.main(["--fast", "--debug", "--workdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.endswith("demo: step 2 (generate data and curate it) failed: injected failure\n")


def test_sizes_below_the_minimum_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run.parse_options(["--rows", "10"])
    assert exit_.value.code == 2
    assert "--rows" in capsys.readouterr().err


def test_fast_sizes_give_way_to_explicit_ones() -> None:
    options = run.parse_options(["--fast", "--traffic", "50"])
    assert (options.rows, options.traffic) == (run.FAST["rows"], 50)


def test_progress_prints_milestones_when_not_a_terminal() -> None:
    out = io.StringIO()
    bar = Timeline(out, tty=False, clock=lambda: 0.0).bar("work", 8)
    for _ in range(8):
        bar.advance()
    bar.finish("done")
    lines = out.getvalue().splitlines()
    assert [line.split("] ")[-1].strip() for line in lines] == ["25%", "50%", "75%", "100%  done"]
