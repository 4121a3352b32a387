"""The champion gate of the Evaluate step: the new model against the version serving production, same test rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.definition import champion_metadata_keys
from pipelines_src.steps import features
from pipelines_src.steps.evaluate import (
    EVALUATION_FILE,
    NO_CHAMPION,
    SCORED,
    UNSCORABLE,
    Gate,
    evaluate,
)
from pipelines_src.steps.evaluate import main as evaluate_main
from pipelines_src.steps.preprocess import preprocess
from pipelines_src.steps.train import Hyperparameters, train

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "pipelines_src" / "contracts" / "delivery_time.json"
GOOD = Hyperparameters(num_round=200, eta=0.3, max_depth=6, early_stopping_rounds=10)
# Two rounds of a shallow tree: clearly worse than GOOD on the same rows.
WEAK = Hyperparameters(num_round=2, eta=0.3, max_depth=2, early_stopping_rounds=10)


# --- the rule -------------------------------------------------------------------------------


def test_a_better_challenger_registers() -> None:
    decision = Gate("rmse", "minimize", threshold=8.0, margin=0.1).decide(4.0, 4.5)
    assert decision["meets_threshold"] and decision["not_worse"] and decision["register"]
    assert decision["bound"] == pytest.approx(4.6)


def test_a_worse_challenger_beyond_the_margin_does_not_register_even_under_the_threshold() -> None:
    decision = Gate("rmse", "minimize", threshold=8.0, margin=0.1).decide(4.7, 4.5)
    assert decision["meets_threshold"] and not decision["not_worse"] and not decision["register"]
    assert "worse than the champion's 4.5" in decision["reason"]


def test_worse_within_the_margin_and_equal_register() -> None:
    gate = Gate("rmse", "minimize", threshold=8.0, margin=0.1)
    assert gate.decide(4.55, 4.5)["register"]
    assert gate.decide(4.5, 4.5)["register"]
    assert Gate("rmse", "minimize", threshold=8.0, margin=0.0).decide(4.5, 4.5)["register"]
    assert not Gate("rmse", "minimize", threshold=8.0, margin=0.0).decide(4.5001, 4.5)["register"]


def test_a_maximized_metric_moves_the_bound_down_by_the_margin() -> None:
    gate = Gate("r2", "maximize", threshold=0.5, margin=0.02)
    assert gate.decide(0.79, 0.8)["register"]  # 0.01 worse: within the margin
    assert not gate.decide(0.77, 0.8)["register"]  # 0.03 worse
    assert gate.decide(0.79, 0.8)["bound"] == pytest.approx(0.78)
    assert not gate.decide(0.45, None)["register"]  # under the threshold, no champion


def test_without_a_champion_the_threshold_alone_decides() -> None:
    gate = Gate("rmse", "minimize", threshold=8.0, margin=0.1)
    assert gate.decide(7.9, None)["register"]
    assert not gate.decide(8.1, None)["register"]
    assert gate.decide(7.9, None)["bound"] is None
    assert "no champion" in gate.decide(7.9, None)["reason"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("rmse", "minimize", 8.0, -0.1), "margin"),
        (("rmse", "minimize", 8.0, float("nan")), "margin"),
        (("rmse", "sideways", 8.0, 0.0), "goal"),
        (("auc", "minimize", 8.0, 0.0), "metric"),
    ],
)
def test_a_bad_gate_is_refused(arguments: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Gate(*arguments)


# --- on real models and one test split -------------------------------------------------------


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_raw(generate(8000, seed=5, days=10), root / "raw")
    preprocess(root / "raw" / "delivery_time", CONTRACT, root / "splits", seed=2)
    return root / "splits"


@pytest.fixture(scope="module")
def models(splits: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    found = {}
    for name, hyperparameters in (("good", GOOD), ("weak", WEAK)):
        folder = tmp_path_factory.mktemp(name)
        train(splits / "train", splits / "validation", folder, hyperparameters)
        found[name] = folder
    return found


def _rmse(model: Path, splits: Path, tmp_path: Path) -> float:
    report = evaluate(model, splits / "test", tmp_path / "alone")
    value: float = report["regression_metrics"]["rmse"]["value"]
    return value


def _against(challenger: Path, champion: Path, splits: Path, out: Path, margin: float) -> dict[str, Any]:
    """The evaluation of ``challenger`` with ``champion`` serving production, under a threshold both meet."""
    gate = Gate("rmse", "minimize", threshold=100.0, margin=margin)
    return evaluate(challenger, splits / "test", out, gate=gate, champion_dir=champion, champion_model_data="s3://b/v1")


def test_the_champion_is_scored_on_the_same_rows_and_a_better_challenger_registers(
    models: dict[str, Path], splits: Path, tmp_path: Path
) -> None:
    report = _against(models["good"], models["weak"], splits, tmp_path, 0.0)
    weak_rmse = _rmse(models["weak"], splits, tmp_path)
    assert report["champion"]["status"] == SCORED
    assert report["champion"]["regression_metrics"]["rmse"] == pytest.approx(weak_rmse)
    assert report["gate"]["champion"] == pytest.approx(weak_rmse)
    assert report["gate"]["challenger"] == report["regression_metrics"]["rmse"]["value"] < weak_rmse
    assert report["gate"]["register"] is True
    written = json.loads((tmp_path / EVALUATION_FILE).read_text())
    assert written["gate"] == report["gate"]
    assert set(written["metadata"]) == set(champion_metadata_keys("rmse"))
    assert written["metadata"]["champion_rmse"] == repr(weak_rmse)
    assert written["metadata"]["champion_model_data"] == "s3://b/v1"


def test_a_challenger_worse_than_the_champion_is_not_registered(
    models: dict[str, Path], splits: Path, tmp_path: Path
) -> None:
    report = _against(models["weak"], models["good"], splits, tmp_path, 0.01)
    assert report["gate"]["meets_threshold"] is True
    assert report["gate"]["not_worse"] is False and report["gate"]["register"] is False


def test_the_same_model_as_champion_is_equal_and_registers_with_no_margin(
    models: dict[str, Path], splits: Path, tmp_path: Path
) -> None:
    report = _against(models["good"], models["good"], splits, tmp_path, 0.0)
    assert report["gate"]["champion"] == report["gate"]["challenger"]
    assert report["gate"]["register"] is True


def test_no_champion_leaves_the_threshold_to_decide(models: dict[str, Path], splits: Path, tmp_path: Path) -> None:
    rmse = _rmse(models["good"], splits, tmp_path)
    for threshold, registers in ((rmse + 0.01, True), (rmse - 0.01, False)):
        gate = Gate("rmse", "minimize", threshold=threshold, margin=0.0)
        report = evaluate(models["good"], splits / "test", tmp_path, gate=gate, champion_dir=None)
        assert report["champion"]["status"] == NO_CHAMPION
        assert report["metadata"]["champion_rmse"] == NO_CHAMPION
        assert report["gate"]["register"] is registers


def test_a_champion_trained_on_other_features_is_unscorable_and_the_threshold_decides(
    models: dict[str, Path], splits: Path, tmp_path: Path
) -> None:
    # The test split as a changed contract would write it: one feature the champion was trained on is gone.
    table = features.read_table(splits / "test")
    changed = tmp_path / "changed"
    changed.mkdir()
    table.drop(columns=[table.columns[-1]]).to_csv(changed / "test.csv", index=False)
    narrowed = tmp_path / "narrowed"
    train(
        _narrowed(splits, tmp_path, table.columns[-1], "train"),
        _narrowed(splits, tmp_path, table.columns[-1], "validation"),
        narrowed,
        GOOD,
    )
    gate = Gate("rmse", "minimize", threshold=100.0, margin=0.0)
    report = evaluate(
        narrowed, changed, tmp_path / "out", gate=gate, champion_dir=models["good"], champion_model_data="s3://b/v1"
    )
    assert report["champion"]["status"] == UNSCORABLE
    assert table.columns[-1] in report["champion"]["reason"]
    assert report["gate"]["champion"] is None and report["gate"]["register"] is True
    assert "cannot score" in report["gate"]["reason"]


def _narrowed(splits: Path, tmp_path: Path, dropped: str, split: str) -> Path:
    folder = tmp_path / f"{split}-narrowed"
    folder.mkdir(exist_ok=True)
    frame = features.read_table(splits / split).drop(columns=[dropped])
    frame.to_csv(folder / f"{split}.csv", index=False)
    return folder


def test_an_unreadable_champion_artifact_fails_the_step(
    models: dict[str, Path], splits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The step's command line in this process; the script itself, from a bare code folder on the image's
    # Python, is run by tests/parity/test_evaluate_champion.py (make e2e).
    empty = tmp_path / "champion"
    empty.mkdir()
    arguments = [
        *("--model-dir", str(models["good"]), "--test-dir", str(splits / "test")),
        *("--output-dir", str(tmp_path / "out"), "--metric", "rmse", "--goal", "minimize", "--threshold", "8"),
        *(
            "--champion-dir",
            str(empty),
            "--champion-model-data",
            "s3://b/v1/model.tar.gz",
            "--no-champion",
            "s3://b/run",
        ),
    ]
    returncode = evaluate_main(arguments)
    result = capsys.readouterr()
    assert returncode == 2, result.out
    assert result.err.startswith("evaluate: ") and "xgboost-model.json" in result.err
    # the sentinel value means no champion: the same folder is not read
    arguments[-3] = "s3://b/run"
    returncode = evaluate_main(arguments)
    result = capsys.readouterr()
    assert returncode == 0, result.err
    report = json.loads((tmp_path / "out" / EVALUATION_FILE).read_text())
    assert report["champion"]["status"] == NO_CHAMPION
    assert "champion none: register" in result.out
    assert np.isfinite(report["gate"]["challenger"])
