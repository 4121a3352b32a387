"""Evaluate step: score the trained model on the test split; write evaluation.json.

The model folder holds ``model.tar.gz`` (as the training job packs it; extracted to a
temporary folder) or the files themselves: ``xgboost-model.json`` and, if present, ``features.json``
(when absent, the feature spec train stored in the model's attributes). The training
target mean, also a model attribute, is the mean predictor the model is compared with
(the test mean when the model has none). ``evaluation.json`` is in SageMaker's
model-quality format::

    {"regression_metrics": {"mse": {"value": ..., "standard_deviation": ...},
                            "rmse": {...}, "mae": {...}, "r2": {...}},
     "additional_metrics": {"mape": ..., "mean_predictor_rmse": ..., ...}, ...}

Standard deviations are those of the metric over bootstrap resamples of the test rows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

try:
    from . import features
except ImportError:  # run as a script inside a SageMaker container
    import features  # type: ignore[no-redef, import-not-found]

MODEL_DIR = "/opt/ml/processing/input/model"
TEST_DIR = "/opt/ml/processing/input/test"
OUTPUT_DIR = "/opt/ml/processing/output/evaluation"
EVALUATION_FILE = "evaluation.json"
MODEL_ARCHIVE = "model.tar.gz"
MODEL_FILE = "xgboost-model.json"
BOOTSTRAP_ROUNDS = 30

FloatArray = npt.NDArray[np.float64]


def evaluate(
    model_dir: str | Path,
    test_dir: str | Path,
    output_dir: str | Path,
    *,
    bootstrap_rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> dict[str, Any]:
    """Score the model in ``model_dir`` on the CSVs in ``test_dir``; write and return evaluation.json's content."""
    started = time.perf_counter()
    with _model_folder(Path(model_dir)) as folder:
        booster = xgb.Booster()
        booster.load_model(str(folder / MODEL_FILE))
        spec_path = folder / features.SPEC_FILE
        spec = features.FeatureSpec.load(spec_path) if spec_path.is_file() else _stored_spec(booster)
    training = _training_summary(booster)
    test_x, test_y = features.split_target(features.read_table(test_dir), spec)
    if spec is None and booster.feature_names and list(test_x.columns) != booster.feature_names:
        raise ValueError(f"{test_dir}: columns {list(test_x.columns)} differ from the model's {booster.feature_names}")
    # a frame: XGBoost checks its columns against the feature names the model was trained with
    predictions = np.asarray(booster.inplace_predict(test_x), dtype=np.float64)
    actual = test_y.astype(np.float64)
    mean_prediction = float(training.get("target_mean", actual.mean()))
    report = {
        "regression_metrics": _with_spread(actual, predictions, bootstrap_rounds, seed),
        "additional_metrics": {
            "mape": _mape(actual, predictions),
            "mean_predictor_rmse": _rmse(actual, np.full_like(actual, mean_prediction)),
            "mean_predictor_mae": float(np.mean(np.abs(actual - mean_prediction))),
            "mean_prediction": mean_prediction,
            "max_absolute_error": float(np.max(np.abs(actual - predictions))),
        },
        "rows": len(actual),
        "features": list(test_x.columns),
        "model": {key: value for key, value in training.items() if key != "target_mean"},
        "seconds": round(time.perf_counter() - started, 3),
    }
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / EVALUATION_FILE).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return report


def _training_summary(booster: xgb.Booster) -> dict[str, float]:
    """What train recorded in the model's attributes: target mean, validation RMSE, best iteration."""
    summary = {}
    for key in ("target_mean", "validation_rmse", "best_iteration"):
        text = booster.attr(key)
        if text is not None:
            summary[key] = float(text)
    return summary


def _stored_spec(booster: xgb.Booster) -> features.FeatureSpec | None:
    """The feature spec train keeps in the model's attributes, if any."""
    stored = booster.attr("feature_spec")
    return features.FeatureSpec.from_dict(json.loads(stored), source=MODEL_FILE) if stored else None


@contextlib.contextmanager
def _model_folder(model_dir: Path) -> Iterator[Path]:
    """The folder holding the model files: ``model_dir`` itself, or ``model.tar.gz`` extracted."""
    archive = model_dir / MODEL_ARCHIVE
    if not archive.is_file():
        yield _holding(model_dir, model_dir)
        return
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(archive) as tar:
        members = [member for member in tar.getmembers() if _safe(member)]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(scratch, members=members, filter="data")
        else:  # Python without extraction filters: the members are already checked
            tar.extractall(scratch, members=members)
        yield _holding(Path(scratch), archive)


def _safe(member: tarfile.TarInfo) -> bool:
    """A regular file or folder that stays inside the extraction folder."""
    path = Path(member.name)
    return (member.isfile() or member.isdir()) and not path.is_absolute() and ".." not in path.parts


def _holding(root: Path, shown: Path) -> Path:
    """The folder under ``root`` that holds the model file (SageMaker puts it at the top)."""
    if (root / MODEL_FILE).is_file():
        return root
    found = sorted(root.rglob(MODEL_FILE))
    if not found:
        raise FileNotFoundError(f"{shown}: no {MODEL_FILE} in it")
    return found[0].parent


def regression_metrics(actual: FloatArray, predicted: FloatArray) -> dict[str, float]:
    """mse, rmse, mae and r2 of ``predicted`` against ``actual``."""
    errors = actual - predicted
    mse = float(np.mean(errors**2))
    variance = float(np.mean((actual - actual.mean()) ** 2))
    return {
        "mse": mse,
        "rmse": mse**0.5,
        "mae": float(np.mean(np.abs(errors))),
        "r2": 1.0 - mse / variance if variance > 0 else 0.0,
    }


def _with_spread(actual: FloatArray, predicted: FloatArray, rounds: int, seed: int) -> dict[str, dict[str, float]]:
    """Each metric's value and its standard deviation over ``rounds`` bootstrap resamples."""
    values = regression_metrics(actual, predicted)
    rng = np.random.default_rng(seed)
    resampled: dict[str, list[float]] = {name: [] for name in values}
    for _ in range(rounds if len(actual) > 1 else 0):
        picked = rng.integers(0, len(actual), len(actual))
        for name, value in regression_metrics(actual[picked], predicted[picked]).items():
            resampled[name].append(value)
    return {
        name: {"value": value, "standard_deviation": float(np.std(resampled[name])) if resampled[name] else 0.0}
        for name, value in values.items()
    }


def _rmse(actual: FloatArray, predicted: FloatArray) -> float:
    return float(np.sqrt(np.mean((actual - predicted) ** 2)))


def _mape(actual: FloatArray, predicted: FloatArray) -> float | None:
    """Mean absolute percentage error over rows with a non-zero target (None if there are none)."""
    nonzero = actual != 0
    if not nonzero.any():
        return None
    return float(np.mean(np.abs((actual[nonzero] - predicted[nonzero]) / actual[nonzero])))


def main(argv: list[str] | None = None) -> int:
    """``python evaluate.py [--model-dir ...] [--test-dir ...] [--output-dir ...]`` with SageMaker's defaults."""
    parser = argparse.ArgumentParser(description="Score the model on the test split; write evaluation.json.")
    parser.add_argument("--model-dir", default=MODEL_DIR, help=f"model.tar.gz or model files (default {MODEL_DIR})")
    parser.add_argument("--test-dir", default=TEST_DIR, help=f"test CSVs (default {TEST_DIR})")
    parser.add_argument("--output-dir", default=OUTPUT_DIR, help=f"where evaluation.json goes (default {OUTPUT_DIR})")
    parser.add_argument("--bootstrap-rounds", type=int, default=BOOTSTRAP_ROUNDS)
    args = parser.parse_args(argv)
    try:
        report = evaluate(args.model_dir, args.test_dir, args.output_dir, bootstrap_rounds=args.bootstrap_rounds)
    except (ValueError, OSError, xgb.core.XGBoostError) as error:
        print(f"evaluate: {error}", file=sys.stderr)
        return 2
    metrics = report["regression_metrics"]
    scores = " ".join(f"{name}={metrics[name]['value']:.4f}" for name in ("rmse", "mae", "r2"))
    baseline = report["additional_metrics"]["mean_predictor_rmse"]
    print(f"evaluate: {report['rows']} rows: {scores} (mean predictor rmse {baseline:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
