"""The model-quality loop of ``make demo``: labels for the drifted window, the scheduled check, the decay alarm,
the drift-alert function's reaction; in both scenarios (drift: the drift alarm retrained first; concept-drift:
inputs look the same and model quality starts the retraining)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from demo import run

Run = tuple[dict[str, Any], str]


def demo_run(workdir: Path, *extra: str) -> Run:
    out = io.StringIO()
    summary = run.run_demo(run.parse_options(["--fast", "--workdir", str(workdir), *extra]), out=out, tty=False)
    return summary, out.getvalue()


@pytest.fixture(scope="module")
def concept_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return demo_run(tmp_path_factory.mktemp("concept"), "--scenario", "concept-drift")


@pytest.fixture(scope="module")
def drift_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return demo_run(tmp_path_factory.mktemp("drift"))


def executions(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return list(summary["retraining"]["executions"])


@pytest.mark.slow
def test_concept_drift_keeps_the_drift_alarm_quiet(concept_run: Run) -> None:
    summary, _ = concept_run
    composite = summary["names"]["composite_alarm"]
    assert summary["alarms"]["drifted"][composite] == "OK"
    assert summary["drift"]["drifted"]["drifted_features"] == []
    assert summary["retraining"]["alarm_results"] == []


@pytest.mark.slow
def test_concept_drift_fires_model_quality_and_retrains_for_it(concept_run: Run) -> None:
    summary, output = concept_run
    quality = summary["quality"]
    assert quality["status"] == "ok" and quality["decayed"] is True
    assert quality["degradation"] > 0 and quality["labels"]["used"] == quality["labels_written"]
    assert summary["alarms"]["quality"] == {summary["names"]["quality_alarm"]: "ALARM"}
    result = quality["alarm_result"]
    assert result["status"] == "retraining_started" and result["reason"] == "model quality"
    started = [item for item in executions(summary) if item["arn"] == result["pipelineExecutionArn"]]
    # the build pipeline's executions listed before the quality step: the retraining is the one just started
    version = summary["versions"][-1]
    assert version["version"] == 2 and version["execution"] == result["pipelineExecutionArn"]
    assert "model quality" in version["started_because"]
    assert started == [] or "model quality" in started[0]["description"]
    assert any("reason given: model quality" in item["why"] for item in summary["actions"])
    assert "model quality (ok)" in output


@pytest.mark.slow
def test_version_2_trained_on_the_new_window_beats_version_1_on_recent_data(concept_run: Run) -> None:
    summary, output = concept_run
    curation = summary["arrivals_curation"]
    assert curation["labels"]["rows_written"] == summary["quality"]["labels_written"]
    # the window's orders, with their outcomes, are curated into the model's dataset the retraining reads
    assert curation["orders"]["rows_written"] == summary["capture"]["drifted"]["rows"]
    scores = summary["comparison"]["versions"]
    assert scores["v2"]["recent"] < scores["v1"]["recent"]
    first, second = summary["versions"]
    # the champion gate's both results are in version 2's registry metadata
    metric = summary["comparison"]["metric"]
    assert {f"challenger_{metric}", f"champion_{metric}"} <= set(second["gate"])
    assert float(second["gate"][f"challenger_{metric}"]) <= float(second["gate"][f"champion_{metric}"])
    assert "on old data (normal window)" in output and "on recent data (drifted window)" in output
    assert first["scores"]["old"] == scores["v1"]["old"]


@pytest.mark.slow
def test_after_a_drift_retraining_the_quality_check_runs_and_cannot_retrain_again(drift_run: Run) -> None:
    summary, _ = drift_run
    composite = summary["names"]["composite_alarm"]
    assert summary["alarms"]["drifted"][composite] == "ALARM"
    quality = summary["quality"]
    assert quality["labels"]["used"] == quality["labels_written"] > 0
    result = quality["alarm_result"]
    # the drift alarm retrained already: a decay within the cooldown is suppressed (and says why), else no alarm
    if result["status"] == "no_alarm":
        assert summary["alarms"]["quality"] == {summary["names"]["quality_alarm"]: "OK"}
    else:
        assert result["status"] == "suppressed" and result["trigger"] == "model quality"
        assert "retraining started within" in result["reason"]
    assert [version["version"] for version in summary["versions"]] == [1, 2]
    assert set(summary["comparison"]["versions"]) == {"v1", "v2"}
