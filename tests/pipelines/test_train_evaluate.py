"""Train and evaluate on generated data: a model that clearly beats the mean, reported as SageMaker reads it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.steps import train as train_step
from pipelines_src.steps.evaluate import EVALUATION_FILE, evaluate
from pipelines_src.steps.preprocess import preprocess
from pipelines_src.steps.train import Hyperparameters, train

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "pipelines_src" / "contracts" / "delivery_time.json"
STEPS = ROOT / "pipelines_src" / "steps"
# The training job's metric definition (pipelines_src/definition.py) parses this from the log.
METRIC_REGEX = r"validation-rmse=([-+0-9.eE]+)"
FAST = Hyperparameters(num_round=300, eta=0.3, max_depth=6, early_stopping_rounds=10)


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_raw(generate(20_000, seed=41, days=10), root / "raw")
    preprocess(root / "raw" / "delivery_time", CONTRACT, root / "splits", seed=2)
    return root / "splits"


@pytest.fixture(scope="module")
def trained(splits: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    model = tmp_path_factory.mktemp("model")
    return model, train(splits / "train", splits / "validation", model, FAST)


@pytest.fixture(scope="module")
def evaluation(trained: tuple[Path, dict[str, Any]], splits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluation")
    evaluate(trained[0], splits / "test", out)
    return out


def _report(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / EVALUATION_FILE).read_text())
    return loaded


def _rmse(actual: Any, predicted: Any) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(predicted)) ** 2)))


def test_model_clearly_beats_the_mean_predictor_but_is_not_perfect(evaluation: Path, splits: Path) -> None:
    train_target = pd.read_csv(splits / "train" / "train.csv")["delivery_minutes"]
    test_target = pd.read_csv(splits / "test" / "test.csv")["delivery_minutes"]
    mean_rmse = _rmse(test_target, np.full(len(test_target), train_target.mean()))
    metrics = _report(evaluation)["regression_metrics"]
    assert metrics["rmse"]["value"] < 0.6 * mean_rmse
    assert metrics["rmse"]["value"] > 0.1 * mean_rmse  # noise the features cannot explain
    assert 0.5 < metrics["r2"]["value"] < 0.99
    assert _report(evaluation)["additional_metrics"]["mean_predictor_rmse"] == pytest.approx(mean_rmse, rel=1e-5)


def test_evaluation_json_is_in_the_model_quality_format(evaluation: Path) -> None:
    report = _report(evaluation)
    for name in ("mse", "rmse", "mae", "r2"):
        entry = report["regression_metrics"][name]
        assert set(entry) == {"value", "standard_deviation"}
        assert isinstance(entry["value"], float) and isinstance(entry["standard_deviation"], float)
        assert entry["standard_deviation"] >= 0
    metrics = report["regression_metrics"]
    assert metrics["rmse"]["value"] == pytest.approx(metrics["mse"]["value"] ** 0.5)
    assert metrics["rmse"]["standard_deviation"] > 0  # bootstrap spread of a finite test set


def test_metrics_match_the_saved_model_on_the_test_split(
    trained: tuple[Path, dict[str, Any]], evaluation: Path, splits: Path
) -> None:
    model_dir, _ = trained
    booster = xgb.Booster()
    booster.load_model(str(model_dir / "xgboost-model.json"))
    names = [feature["name"] for feature in json.loads(booster.attr("feature_spec") or "{}")["features"]]
    test = pd.read_csv(splits / "test" / "test.csv")
    predicted = booster.predict(xgb.DMatrix(test[names]))
    actual = test["delivery_minutes"].to_numpy()
    metrics = _report(evaluation)["regression_metrics"]
    assert metrics["rmse"]["value"] == pytest.approx(_rmse(actual, predicted), rel=1e-5)
    assert metrics["mae"]["value"] == pytest.approx(float(np.mean(np.abs(actual - predicted))), rel=1e-5)
    r2 = 1 - np.sum((actual - predicted) ** 2) / np.sum((actual - actual.mean()) ** 2)
    assert metrics["r2"]["value"] == pytest.approx(r2, rel=1e-5)


def test_training_writes_the_model_and_its_feature_encoding(trained: tuple[Path, dict[str, Any]], splits: Path) -> None:
    model_dir, metrics = trained
    # The model, and the inference code it is served with (script mode loads only xgboost-model.json).
    assert sorted(path.name for path in model_dir.iterdir()) == ["code", "xgboost-model.json"]
    assert sorted(path.name for path in (model_dir / "code").iterdir()) == sorted(train_step.SERVING_CODE)
    stored = xgb.Booster()
    stored.load_model(str(model_dir / "xgboost-model.json"))
    assert json.loads(stored.attr("feature_spec") or "{}") == json.loads(
        (splits / "train" / "features.json").read_text()
    )
    # early stopping: the saved model ends at the best round
    assert metrics["best_iteration"] < metrics["rounds_trained"] <= FAST.num_round
    booster = xgb.Booster()
    booster.load_model(str(model_dir / "xgboost-model.json"))
    assert booster.num_boosted_rounds() == metrics["best_iteration"] + 1
    assert metrics["validation_rmse"] > 0 and metrics["train_rows"] == 14_000


def test_training_prints_the_metric_line_sagemaker_parses(
    splits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = train(
        splits / "train", splits / "validation", tmp_path, {"num-round": "30", "eta": "0.3", "log-every": 10}
    )
    values = [float(value) for value in re.findall(METRIC_REGEX, capsys.readouterr().out)]
    assert len(values) == 4  # rounds 10, 20, 30 and the final best value
    assert values[-1] == pytest.approx(metrics["validation_rmse"], abs=1e-6)
    assert metrics["hyperparameters"]["num_round"] == 30


def test_evaluate_reads_model_tar_gz(
    trained: tuple[Path, dict[str, Any]], evaluation: Path, splits: Path, tmp_path: Path
) -> None:
    model_dir, _ = trained
    packed = tmp_path / "packed"
    packed.mkdir()
    with tarfile.open(packed / "model.tar.gz", "w:gz") as tar:  # the model file alone: it carries its feature spec
        tar.add(model_dir / "xgboost-model.json", arcname="xgboost-model.json")
    report = evaluate(packed, splits / "test", tmp_path / "out")
    assert report["regression_metrics"] == _report(evaluation)["regression_metrics"]


def test_hyperparameters_from_sagemaker_style_names() -> None:
    params = Hyperparameters.from_mapping({"max-depth": "4", "eta": "0.05", "num_round": 10, "lambda": "2"})
    assert (params.max_depth, params.eta, params.num_round, params.reg_lambda) == (4, 0.05, 10, 2.0)
    with pytest.raises(ValueError, match="unknown hyperparameter 'depth'"):
        Hyperparameters.from_mapping({"depth": 3})
    with pytest.raises(ValueError, match="'max-depth': 'deep' is not a valid int"):
        Hyperparameters.from_mapping({"max-depth": "deep"})
    with pytest.raises(ValueError, match="eta"):
        Hyperparameters(eta=0.0)


def test_train_main_reads_sagemaker_environment(splits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(splits / "train"))
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(splits / "validation"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    assert train_step.main(["--max-depth", "3", "--num_round", "20", "--sagemaker_program", "train.py"]) == 0
    booster = xgb.Booster()
    booster.load_model(str(tmp_path / "model" / "xgboost-model.json"))
    assert json.loads(booster.attr("hyperparameters") or "{}")["max_depth"] == 3
    assert booster.num_boosted_rounds() <= 20
    assert sorted(path.name for path in (tmp_path / "model").iterdir()) == ["code", "xgboost-model.json"]
    with pytest.raises(SystemExit):
        train_step.main(["--max-dept", "3"])  # a typo stops the job


def _copy_steps(tmp_path: Path) -> Path:
    """The steps folder alone, as a SageMaker container sees it (no package around it)."""
    target = tmp_path / "code"
    shutil.copytree(STEPS, target, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    return target


@pytest.mark.slow
def test_evaluate_script_explains_a_missing_model(tmp_path: Path) -> None:
    code = _copy_steps(tmp_path)
    arguments = ["--model-dir", str(tmp_path / "none"), "--test-dir", str(tmp_path), "--output-dir", str(tmp_path)]
    result = subprocess.run([sys.executable, str(code / "evaluate.py"), *arguments], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("evaluate: ") and "xgboost-model.json" in result.stderr
