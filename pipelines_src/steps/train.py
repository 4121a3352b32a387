"""Train step: XGBoost regression on the preprocessed CSVs, early-stopped on the validation split.

Reads ``train``/``validation`` CSVs (header row, target first), trains with the ``hist``
tree method until the validation RMSE stops improving, and writes into the model
folder:

    xgboost-model.json   the booster, cut at its best round; its attributes hold the
                         feature encoding (from the train channel's features.json, or the
                         CSV header's columns as plain numbers when preprocess wrote none),
                         the training target mean (the mean predictor evaluate compares
                         with), the validation RMSE and hyperparameters
    code/                the endpoint's inference code this model is served with:
                         ``inference.py`` and the step modules it imports (``SERVING_CODE``),
                         copied from where this script runs (the steps tarball holds them
                         beside it; in the repository inference.py is in ../serving/)

SageMaker packs the model folder as ``model.tar.gz``, so every version carries its own inference
code: the registered model package serves it from ``/opt/ml/model/code``, whatever the steps
tarball holds by the time the version is deployed. (The XGBoost container loads only
``xgboost-model.json`` in script mode: inference.py's ``model_fn`` does.)

Every ``--log-every`` rounds it prints ``[round] train-rmse=<v> validation-rmse=<v>`` and
at the end ``validation-rmse=<best value>``: the training job's metric definitions
parse these lines. In SageMaker, hyperparameters arrive as ``--<name> <value>``
(``--max-depth`` and ``--max_depth`` both work) and the folders come from
``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_VALIDATION`` and ``SM_MODEL_DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

try:
    from . import features, tracking
except ImportError:  # run as a script inside a SageMaker container
    import features  # type: ignore[no-redef, import-not-found]
    import tracking  # type: ignore[no-redef, import-not-found]

MODEL_FILE = "xgboost-model.json"
CODE_DIR = "code"
SERVING_PROGRAM = "inference.py"
# The endpoint's program and the step modules it imports (packaging.SERVING_CODE), as the steps tarball holds them.
SERVING_CODE = ("capture.py", "contract.py", "features.py", SERVING_PROGRAM)
DEFAULT_TRAIN_DIR = "/opt/ml/input/data/train"
DEFAULT_VALIDATION_DIR = "/opt/ml/input/data/validation"
DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_OUTPUT_DATA_DIR = "/opt/ml/output/data"  # uploaded as the job's output.tar.gz: tracking.json goes here
ROWS_PER_THREAD = 250_000
_ALIASES = {"lambda": "reg_lambda", "alpha": "reg_alpha", "num_boost_round": "num_round", "learning_rate": "eta"}


@dataclass(frozen=True)
class Hyperparameters:
    """XGBoost settings; the defaults train 1M rows in well under a minute on two cores."""

    num_round: int = 400
    early_stopping_rounds: int = 20
    max_depth: int = 6
    eta: float = 0.2
    subsample: float = 0.8
    colsample_bytree: float = 1.0
    min_child_weight: float = 5.0
    reg_lambda: float = 1.0
    reg_alpha: float = 0.0
    gamma: float = 0.0
    max_bin: int = 256
    objective: str = "reg:squarederror"
    seed: int = 0
    nthread: int = 0  # 0: one thread per ROWS_PER_THREAD training rows, at most every core
    log_every: int = 10

    def __post_init__(self) -> None:
        checks = {
            "num_round": self.num_round >= 1,
            "early_stopping_rounds": self.early_stopping_rounds >= 1,
            "max_depth": self.max_depth >= 1,
            "eta": 0.0 < self.eta <= 1.0,
            "subsample": 0.0 < self.subsample <= 1.0,
            "colsample_bytree": 0.0 < self.colsample_bytree <= 1.0,
            "min_child_weight": self.min_child_weight >= 0.0,
            "max_bin": self.max_bin >= 2,
            "nthread": self.nthread >= 0,
            "log_every": self.log_every >= 1,
        }
        for name, valid in checks.items():
            if not valid:
                raise ValueError(f"hyperparameter {name}: {getattr(self, name)!r} is out of range")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Hyperparameters:
        """From names as SageMaker passes them (``max-depth`` or ``max_depth``; values may be strings)."""
        fields = {field.name: field for field in dataclasses.fields(cls)}
        settings: dict[str, Any] = {}
        for key, value in values.items():
            name = key.lstrip("-").replace("-", "_")
            name = _ALIASES.get(name, name)
            if name not in fields:
                raise ValueError(f"unknown hyperparameter {key!r} (known: {', '.join(sorted(fields))})")
            kind = {"int": int, "float": float, "str": str}[str(fields[name].type)]
            try:
                settings[name] = int(float(value)) if kind is int else kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"hyperparameter {key!r}: {value!r} is not a valid {kind.__name__}") from None
        return cls(**settings)

    def booster_params(self, rows: int) -> dict[str, Any]:
        """The parameter dict ``xgboost.train`` takes, for ``rows`` training rows."""
        return {
            "objective": self.objective,
            "eval_metric": "rmse",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.eta,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "alpha": self.reg_alpha,
            "gamma": self.gamma,
            "max_bin": self.max_bin,
            "seed": self.seed,
            "nthread": self.threads(rows),
        }

    def threads(self, rows: int) -> int:
        """Threads XGBoost uses: ``nthread``, or when 0 as many as pay off for ``rows`` rows (at most every core).

        On small data the threads' synchronisation costs more than they save.
        """
        if self.nthread:
            return self.nthread
        return max(1, min(os.cpu_count() or 1, 1 + rows // ROWS_PER_THREAD))


class _Progress(xgb.callback.TrainingCallback):
    """Prints ``[round] train-rmse=<v> validation-rmse=<v>`` every ``every`` rounds."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = every

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        if (epoch + 1) % self.every == 0:
            scores = " ".join(f"{name}-rmse={history['rmse'][-1]:.6f}" for name, history in evals_log.items())
            print(f"[{epoch + 1}] {scores}", flush=True)
        return False


def train(
    train_dir: str | Path,
    validation_dir: str | Path,
    model_dir: str | Path,
    hyperparameters: Hyperparameters | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train, save the model and its feature spec in ``model_dir``, and return the training metrics.

    ``hyperparameters`` may be a Hyperparameters or a mapping of names to values.
    """
    started = time.perf_counter()
    params = (
        hyperparameters
        if isinstance(hyperparameters, Hyperparameters)
        else Hyperparameters.from_mapping(hyperparameters or {})
    )
    train_table = features.read_table(train_dir)
    spec_path = Path(train_dir) / features.SPEC_FILE
    spec = features.FeatureSpec.load(spec_path) if spec_path.is_file() else None
    if spec is None:
        spec = features.names_only([str(name) for name in train_table.columns[1:]], str(train_table.columns[0]))
    train_x, train_y = features.split_target(train_table, spec)
    validation_x, validation_y = features.split_target(features.read_table(validation_dir), spec)
    del train_table
    threads = params.threads(len(train_y))
    dtrain = xgb.QuantileDMatrix(train_x, train_y, max_bin=params.max_bin, nthread=threads)
    dvalidation = xgb.QuantileDMatrix(validation_x, validation_y, ref=dtrain, nthread=threads)
    history: dict[str, Any] = {}
    booster = xgb.train(
        params.booster_params(len(train_y)),
        dtrain,
        num_boost_round=params.num_round,
        evals=[(dtrain, "train"), (dvalidation, "validation")],
        early_stopping_rounds=params.early_stopping_rounds,
        evals_result=history,
        verbose_eval=False,
        callbacks=[_Progress(params.log_every)],
    )
    best = int(booster.best_iteration)
    model = booster[: best + 1]
    gains = model.get_score(importance_type="gain")
    metrics = {
        "train_rmse": float(history["train"]["rmse"][best]),
        "validation_rmse": float(history["validation"]["rmse"][best]),
        "best_iteration": best,
        "rounds_trained": int(booster.num_boosted_rounds()),
        "train_rows": len(train_y),
        "validation_rows": len(validation_y),
        "features": spec.names,
        "target_mean": float(np.mean(train_y, dtype=np.float64)),
        "seconds": round(time.perf_counter() - started, 3),
        "hyperparameters": dataclasses.asdict(params),
        # the eval metric per round, and each feature's average gain in the kept trees (0: never split on)
        "curve": {f"{name}_rmse": [float(value) for value in scores["rmse"]] for name, scores in history.items()},
        "feature_importance": {name: _number(gains.get(name, 0.0)) for name in spec.names},
    }
    _save(model, spec, metrics, Path(model_dir))
    print(f"validation-rmse={metrics['validation_rmse']:.6f}", flush=True)
    return metrics


def _number(value: Any) -> float:
    """A score of ``Booster.get_score``: a number (a list only for vector leaves, which regression has not)."""
    return float(value[0] if isinstance(value, list) else value)


def _save(booster: xgb.Booster, spec: features.FeatureSpec, metrics: dict[str, Any], model_dir: Path) -> None:
    """The model file, its feature spec and training summary as attributes, and the serving code in code/."""
    booster.set_attr(
        feature_spec=json.dumps(spec.to_dict()),
        target_mean=repr(metrics["target_mean"]),
        validation_rmse=repr(metrics["validation_rmse"]),
        best_iteration=str(metrics["best_iteration"]),
        hyperparameters=json.dumps(metrics["hyperparameters"]),
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / MODEL_FILE))
    copy_serving_code(model_dir / CODE_DIR)


def track(tracker: tracking.Tracker, metrics: dict[str, Any]) -> None:
    """Log the training to the execution's run: hyperparameters, the training curve (the RMSE of every
    round on both splits), the summary metrics and the feature importance, as a bar chart (SVG) and JSON."""
    tracker.log_params({f"train.{name}": value for name, value in metrics["hyperparameters"].items()})
    tracker.log_series({f"train.curve.{name}": values for name, values in metrics["curve"].items()})
    summary = ("train_rmse", "validation_rmse", "best_iteration", "rounds_trained", "train_rows", "seconds")
    tracker.log_metrics({f"train.{name}": metrics[name] for name in summary})
    importance = metrics["feature_importance"]
    tracker.log_text(
        tracking.bar_chart_svg("Feature importance (average gain)", importance), "train/feature_importance.svg"
    )
    tracker.log_text(json.dumps(importance, indent=2, sort_keys=True) + "\n", "train/feature_importance.json")


def serving_code_files(here: Path | None = None) -> list[Path]:
    """The files of ``SERVING_CODE`` where this script runs: beside it (the steps tarball), with
    inference.py in ``../serving/`` in the repository; FileNotFoundError names a missing one."""
    folder = Path(__file__).resolve().parent if here is None else here
    found = []
    for name in SERVING_CODE:
        candidates = [folder / name, folder.parent / "serving" / name]
        path = next((candidate for candidate in candidates if candidate.is_file()), None)
        if path is None:
            raise FileNotFoundError(f"serving code {name} is neither in {folder} nor in {folder.parent / 'serving'}")
        found.append(path)
    return found


def copy_serving_code(code_dir: Path, here: Path | None = None) -> list[str]:
    """Replace ``code_dir`` by a copy of the serving code (``serving_code_files``); the names copied."""
    files = serving_code_files(here)
    if code_dir.exists():
        shutil.rmtree(code_dir)
    code_dir.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, code_dir / path.name)
    return [path.name for path in files]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train an XGBoost regressor on the preprocessed splits.", allow_abbrev=False
    )
    environment = os.environ
    parser.add_argument("--train-dir", "--train", default=environment.get("SM_CHANNEL_TRAIN", DEFAULT_TRAIN_DIR))
    parser.add_argument(
        "--validation-dir",
        "--validation",
        default=environment.get("SM_CHANNEL_VALIDATION", DEFAULT_VALIDATION_DIR),
    )
    parser.add_argument("--model-dir", default=environment.get("SM_MODEL_DIR", DEFAULT_MODEL_DIR))
    parser.add_argument("--output-data-dir", default=environment.get("SM_OUTPUT_DATA_DIR", DEFAULT_OUTPUT_DATA_DIR))
    defaults = Hyperparameters()
    for field in dataclasses.fields(Hyperparameters):
        dashed = "--" + field.name.replace("_", "-")
        flags = [dashed] if "_" not in field.name else [dashed, "--" + field.name]
        kind = {"int": int, "float": float, "str": str}[str(field.type)]
        parser.add_argument(*flags, dest=field.name, type=kind, default=getattr(defaults, field.name))
    parser.add_argument("--lambda", dest="reg_lambda", type=float, help="alias of --reg-lambda")
    parser.add_argument("--alpha", dest="reg_alpha", type=float, help="alias of --reg-alpha")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python train.py [--max-depth 6 --eta 0.2 ...]`` with SageMaker's channel and model folders as defaults."""
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    # SageMaker's own settings may reach the script; anything else unknown is a typo worth stopping for.
    unexpected = [item for item in unknown if item.startswith("--") and not item.startswith("--sagemaker")]
    if unexpected:
        parser.error(f"unknown arguments: {' '.join(unexpected)}")
    names = [field.name for field in dataclasses.fields(Hyperparameters)]
    values = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    tracker = tracking.Tracker.open("train")
    try:
        metrics = train(args.train_dir, args.validation_dir, args.model_dir, Hyperparameters(**values))
    except ValueError as error:
        print(f"train: {error}", file=sys.stderr)
        tracker.set_tags({"mlops.failed_step": "train", "mlops.failure": str(error)})
        tracker.finish("FAILED")
        tracker.write_report(args.output_data_dir)
        return 2
    track(tracker, metrics)
    tracker.write_report(args.output_data_dir)
    print(
        f"train: best round {metrics['best_iteration'] + 1} of {metrics['rounds_trained']}, "
        f"train-rmse={metrics['train_rmse']:.4f}, {metrics['train_rows']} rows, {metrics['seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
