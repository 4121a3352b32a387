"""make pipeline-local takes the stage's model settings from cdk.json, not literals of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines_src.local import run
from pipelines_src.local.runner import RunResult
from resolver.config import PlatformConfig


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def fake_run(**kwargs: Any) -> run.LocalRun:
        seen.append(kwargs)
        return run.LocalRun(RunResult("Succeeded", []), {}, kwargs["workdir"], None)

    monkeypatch.setattr(run, "run_local_pipeline", fake_run)
    monkeypatch.setattr(run, "generate_raw", lambda out, **_: out)
    return seen


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_threshold_metric_and_dataset_come_from_the_stage(
    calls: list[dict[str, Any]], platform_config: PlatformConfig, stage: str, tmp_path: Path
) -> None:
    assert run.main(["--stage", stage, "--rows", "10", "--workdir", str(tmp_path), "--no-tracking"]) == 0
    model = platform_config.stage(stage).model
    (call,) = calls
    assert call["parameters"] == {"MetricThreshold": model.threshold}
    assert (call["threshold"], call["metric"], call["goal"], call["dataset"]) == (
        model.threshold,
        model.metric,
        model.goal,
        model.dataset,
    )


def test_an_explicit_threshold_wins_and_an_unknown_stage_says_so(
    calls: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run.main(["--threshold", "0.5", "--rows", "10", "--workdir", str(tmp_path), "--no-tracking"]) == 0
    assert calls[0]["parameters"] == {"MetricThreshold": 0.5}
    assert run.main(["--stage", "qa", "--rows", "10", "--workdir", str(tmp_path)]) == 2
    assert "qa" in capsys.readouterr().err
