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

Champion/challenger: with ``--champion-dir`` (the model.tar.gz of the version serving production,
a processing input like the new model's) the champion is scored on the same test rows, and the
report gains ``champion`` (its status and metrics) and ``gate``, the registration decision::

    "champion": {"status": "scored" | "none" | "unscorable", "model_data": "s3://...",
                 "regression_metrics": {...}, "reason": "..."},
    "gate": {"metric": "rmse", "goal": "minimize", "threshold": 8.0, "margin": 0.1,
             "challenger": 4.1, "champion": 4.3, "bound": 4.4, "meets_threshold": true,
             "not_worse": true, "register": true, "reason": "..."},
    "metadata": {"challenger_rmse": "4.1", "champion_rmse": "4.3", "champion": "scored", ...}

``not_worse``: the new model's metric is at most ``margin`` worse than the champion's (``bound`` is
the champion's value moved by the margin against the goal). Without a champion (``--champion-model-data``
equal to ``--no-champion``) ``not_worse`` is true and the threshold alone decides. A champion that
cannot score the current test split (its feature spec names columns the split no longer has: the
contract changed) is ``unscorable``: the threshold alone decides, and the report and the version's
metadata say so, since a comparison on different features means nothing and every version still
waits for a person's approval. A champion artifact that cannot be read at all is an error (exit 2):
the step fails rather than register a version unchecked. ``metadata`` holds the same results as
strings, for the registered version's CustomerMetadataProperties.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

try:
    from . import features, tracking
    from .metrics import GOALS, METRICS, regression_metrics
except ImportError:  # run as a script inside a SageMaker container
    import features  # type: ignore[no-redef, import-not-found]
    import tracking  # type: ignore[no-redef, import-not-found]
    from metrics import GOALS, METRICS, regression_metrics  # type: ignore[no-redef, import-not-found]

MODEL_DIR = "/opt/ml/processing/input/model"
TEST_DIR = "/opt/ml/processing/input/test"
OUTPUT_DIR = "/opt/ml/processing/output/evaluation"
CHAMPION_DIR = "/opt/ml/processing/input/champion"
EVALUATION_FILE = "evaluation.json"
MODEL_ARCHIVE = "model.tar.gz"
MODEL_FILE = "xgboost-model.json"
BOOTSTRAP_ROUNDS = 30
# What the champion was: scored on the test split, absent (first version), or unable to score it.
SCORED, NO_CHAMPION, UNSCORABLE = "scored", "none", "unscorable"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Gate:
    """The registration rule: ``metric`` against ``threshold`` in the direction of ``goal``, and not worse
    than the champion's by more than ``margin`` (in the metric's unit)."""

    metric: str
    goal: str
    threshold: float
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric {self.metric!r} is not one of {', '.join(METRICS)}")
        if self.goal not in GOALS:
            raise ValueError(f"goal {self.goal!r} is not one of {', '.join(GOALS)}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold {self.threshold!r} is not a finite number")
        if not math.isfinite(self.margin) or self.margin < 0:
            raise ValueError(f"champion margin {self.margin!r} is not a finite number >= 0")

    def better_or_equal(self, value: float, reference: float) -> bool:
        return value <= reference if self.goal == "minimize" else value >= reference

    def decide(self, challenger: float, champion: float | None, champion_status: str = SCORED) -> dict[str, Any]:
        """The decision for the new model's ``challenger`` value and the champion's (None: no comparison)."""
        meets = self.better_or_equal(challenger, self.threshold)
        operator = "<=" if self.goal == "minimize" else ">="
        reasons = [
            f"{self.metric} {challenger:.6g} {'meets' if meets else 'misses'} the threshold "
            f"({self.metric} {operator} {self.threshold:g})"
        ]
        bound = None
        not_worse = True
        if champion is not None:
            bound = champion + self.margin if self.goal == "minimize" else champion - self.margin
            not_worse = self.better_or_equal(challenger, bound)
            reasons.append(
                f"{'within' if not_worse else 'worse than'} the champion's {champion:.6g} by the margin "
                f"{self.margin:g} ({self.metric} {operator} {bound:.6g})"
            )
        elif champion_status == UNSCORABLE:
            reasons.append("the champion cannot score this test split: the threshold alone decides")
        else:
            reasons.append("no champion: the threshold alone decides")
        return {
            "metric": self.metric,
            "goal": self.goal,
            "threshold": self.threshold,
            "margin": self.margin,
            "challenger": challenger,
            "champion": champion,
            "bound": bound,
            "meets_threshold": meets,
            "not_worse": not_worse,
            "register": meets and not_worse,
            "reason": "; ".join(reasons),
        }


@dataclass(frozen=True)
class Scored:
    """A model's predictions on the test split, with what train recorded in it."""

    predictions: FloatArray
    actual: FloatArray
    columns: list[str]
    training: dict[str, float]


def load(model_dir: str | Path) -> tuple[xgb.Booster, features.FeatureSpec | None]:
    """The booster in ``model_dir`` (a folder or model.tar.gz) and its feature spec, if it has one."""
    with _model_folder(Path(model_dir)) as folder:
        booster = xgb.Booster()
        booster.load_model(str(folder / MODEL_FILE))
        spec_path = folder / features.SPEC_FILE
        spec = features.FeatureSpec.load(spec_path) if spec_path.is_file() else _stored_spec(booster)
    return booster, spec


def score(model: tuple[xgb.Booster, features.FeatureSpec | None], table: Any, *, shown: str = "test split") -> Scored:
    """Predict the target of ``table`` (``features.read_table``'s layout) with a model from ``load``.

    features.FeatureError or ValueError when the table lacks the model's features.
    """
    booster, spec = model
    test_x, test_y = features.split_target(table, spec)
    if spec is None and booster.feature_names and list(test_x.columns) != booster.feature_names:
        raise ValueError(f"{shown}: columns {list(test_x.columns)} differ from the model's {booster.feature_names}")
    # a frame: XGBoost checks its columns against the feature names the model was trained with
    predictions = np.asarray(booster.inplace_predict(test_x), dtype=np.float64)
    return Scored(predictions, test_y.astype(np.float64), list(test_x.columns), _training_summary(booster))


def evaluate(
    model_dir: str | Path,
    test_dir: str | Path,
    output_dir: str | Path,
    *,
    bootstrap_rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
    gate: Gate | None = None,
    champion_dir: str | Path | None = None,
    champion_model_data: str = NO_CHAMPION,
) -> dict[str, Any]:
    """Score the model in ``model_dir`` on the CSVs in ``test_dir``; write and return evaluation.json's content.

    With ``gate``, also the champion in ``champion_dir`` (None: no champion) and the decision (module doc).
    """
    started = time.perf_counter()
    model = load(model_dir)
    # the champion's artifact is read before any scoring: an unreadable one fails the step (module doc)
    champion_model = (
        None if gate is None or champion_dir is None or champion_model_data == NO_CHAMPION else load(champion_dir)
    )
    table = features.read_table(test_dir)
    new = score(model, table, shown=str(test_dir))
    actual, predictions = new.actual, new.predictions
    mean_prediction = float(new.training.get("target_mean", actual.mean()))
    metrics = _with_spread(actual, predictions, bootstrap_rounds, seed)
    report: dict[str, Any] = {
        "regression_metrics": metrics,
        "additional_metrics": {
            "mape": _mape(actual, predictions),
            "mean_predictor_rmse": _rmse(actual, np.full_like(actual, mean_prediction)),
            "mean_predictor_mae": float(np.mean(np.abs(actual - mean_prediction))),
            "mean_prediction": mean_prediction,
            "max_absolute_error": float(np.max(np.abs(actual - predictions))),
        },
        "rows": len(actual),
        "features": new.columns,
        "model": {key: value for key, value in new.training.items() if key != "target_mean"},
    }
    if gate is not None:
        champion = _champion(champion_model, champion_model_data, table, str(test_dir))
        champion_value = champion["regression_metrics"][gate.metric] if champion["status"] == SCORED else None
        decision = gate.decide(metrics[gate.metric]["value"], champion_value, champion["status"])
        report.update(champion=champion, gate=decision, metadata=_metadata(decision, champion))
    report["seconds"] = round(time.perf_counter() - started, 3)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / EVALUATION_FILE).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return report


def track(tracker: tracking.Tracker, report: dict[str, Any], output_dir: str | Path) -> None:
    """Log the evaluation to the execution's run and end the run (Evaluate is its last step).

    Logs the metrics (``evaluation.<metric>`` and its standard deviation, the additional metrics), the gate
    and champion as params and tags, and evaluation.json as an artifact. evaluation.json then carries
    ``tracking`` (the tracker's report as it stood before evaluation.json's own upload) and, beside the
    gate's, ``metadata.mlflow_run_id`` (``none`` without a run): the registered version's lineage. The
    final outcome is tracking.json, beside it.
    """
    metrics: dict[str, Any] = {}
    for name, entry in report["regression_metrics"].items():
        metrics[f"evaluation.{name}"] = entry["value"]
        metrics[f"evaluation.{name}_std"] = entry["standard_deviation"]
    metrics.update({f"evaluation.{name}": value for name, value in report["additional_metrics"].items()})
    metrics["evaluation.rows"] = report["rows"]
    tracker.log_metrics(metrics)
    gate = report.get("gate")
    if gate is not None:
        tracker.log_params({f"gate.{key}": gate[key] for key in ("metric", "goal", "threshold", "margin")})
        champion = report["champion"]
        tracker.set_tags(
            {
                "gate.register": str(gate["register"]).lower(),
                "gate.reason": gate["reason"],
                "champion.status": champion["status"],
                "champion.model_data": champion["model_data"],
            }
        )
        if champion["status"] == SCORED:
            tracker.log_metrics({f"champion.{k}": v for k, v in champion["regression_metrics"].items()})
    report["tracking"] = tracker.report()
    report.setdefault("metadata", {})["mlflow_run_id"] = tracker.run_id or tracking.NO_RUN
    path = Path(output_dir) / EVALUATION_FILE
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tracker.log_artifact(path, "evaluation")
    tracker.finish("FINISHED")
    tracker.write_report(output_dir)


def _champion(model: Any, model_data: str, table: Any, shown: str) -> dict[str, Any]:
    """The champion's entry of the report: its metrics on ``table``, or why it has none."""
    if model is None:
        return {"status": NO_CHAMPION, "model_data": NO_CHAMPION, "regression_metrics": None, "reason": "no champion"}
    try:
        scored = score(model, table, shown=shown)
    except (features.FeatureError, ValueError) as error:
        # The split no longer has the features the champion was trained on (module doc).
        return {"status": UNSCORABLE, "model_data": model_data, "regression_metrics": None, "reason": str(error)}
    return {
        "status": SCORED,
        "model_data": model_data,
        "regression_metrics": regression_metrics(scored.actual, scored.predictions),
        "reason": f"scored on the same {len(scored.actual)} test rows",
    }


def _metadata(decision: dict[str, Any], champion: dict[str, Any]) -> dict[str, str]:
    """Both results as strings: the registered version's CustomerMetadataProperties."""
    metric = decision["metric"]
    value = decision["champion"]
    return {
        f"challenger_{metric}": repr(float(decision["challenger"])),
        f"champion_{metric}": NO_CHAMPION if value is None else repr(float(value)),
        "champion": champion["status"],
        "champion_model_data": champion["model_data"],
        "champion_margin": repr(float(decision["margin"])),
    }


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
    parser.add_argument("--metric", choices=METRICS, help="the gate's metric (with --goal and --threshold: decide)")
    parser.add_argument("--goal", choices=GOALS)
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--champion-margin", type=float, default=0.0, help="how much worse than the champion may be")
    parser.add_argument("--champion-dir", default=CHAMPION_DIR, help=f"the champion's model (default {CHAMPION_DIR})")
    parser.add_argument(
        "--champion-model-data", default=NO_CHAMPION, help="where the champion came from; equal to --no-champion: none"
    )
    parser.add_argument("--no-champion", default=NO_CHAMPION, help="the --champion-model-data value meaning none")
    args = parser.parse_args(argv)
    gated = (args.metric, args.goal, args.threshold)
    if any(value is not None for value in gated) and None in gated:
        parser.error("--metric, --goal and --threshold go together")
    tracker = tracking.Tracker.open("evaluate")
    try:
        gate = None if args.metric is None else Gate(args.metric, args.goal, args.threshold, args.champion_margin)
        none = args.champion_model_data in (args.no_champion, NO_CHAMPION)
        report = evaluate(
            args.model_dir,
            args.test_dir,
            args.output_dir,
            bootstrap_rounds=args.bootstrap_rounds,
            gate=gate,
            champion_dir=None if none else args.champion_dir,
            champion_model_data=NO_CHAMPION if none else args.champion_model_data,
        )
    except (ValueError, OSError, xgb.core.XGBoostError) as error:
        print(f"evaluate: {error}", file=sys.stderr)
        tracker.set_tags({"mlops.failed_step": "evaluate", "mlops.failure": str(error)})
        tracker.finish("FAILED")
        tracker.write_report(args.output_dir)
        return 2
    track(tracker, report, args.output_dir)
    metrics = report["regression_metrics"]
    scores = " ".join(f"{name}={metrics[name]['value']:.4f}" for name in ("rmse", "mae", "r2"))
    baseline = report["additional_metrics"]["mean_predictor_rmse"]
    print(f"evaluate: {report['rows']} rows: {scores} (mean predictor rmse {baseline:.4f})")
    if "gate" in report:
        verdict = "register" if report["gate"]["register"] else "do not register"
        print(f"evaluate: champion {report['champion']['status']}: {verdict}: {report['gate']['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
