"""Preprocess step: raw data -> encoded train/validation/test CSVs, the drift baseline, optionally a serving sample.

Reads the raw files with the data contract's types, drops rows without a target,
encodes the features as ``features.py`` says, splits the rows at random (seeded) and
writes, under the output folder::

    train/train.csv, validation/validation.csv, test/test.csv
        header row, the target first, then the features (categories as integer codes,
        empty cells for missing values)
    train/features.json
        the feature encoding, which train copies next to the model
    baseline/data_version.json
        the data version: the partitions read (``dt=...`` folders), each file's path, size and sha256,
        and the sha256 of that manifest (``data_version``); the registered version's lineage reads it
    baseline/baseline.json
        statistics of the training split that drift detection compares new data with:
        per numeric feature quantiles, histogram (fixed bin edges and counts), mean, std
        and missing rate; per categorical feature category counts, frequencies and
        missing rate; the same for the target; row count; contract name and version.
    serving/serving.csv (only with ``serving_sample``, ``--serving-sample``)
        the training split's rows as the endpoint sees them, for SageMaker Model Monitor's
        analyzer to compute its data-quality baseline (statistics.json, constraints.json):
        a header row, then per row the target first (where Model Monitor puts the endpoint's
        prediction when it rebuilds rows from the capture, output columns at START), then the
        request as a client sends it (the ``text/csv`` request contract of
        serving/inference.py): the model's request columns in request order
        (``features.from_contract(contract).names``), raw values (categories as their names,
        bools as true/false, empty cells for missing values).

Histogram bins are ``[edges[i], edges[i + 1])``, the last one closed, as ``numpy.histogram``
counts them; binning new data with the same edges makes the counts comparable (values
outside ``[edges[0], edges[-1]]`` are out of the baseline's range).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

try:
    from . import contract as contracts
    from . import features, tracking
except ImportError:  # run as a script inside a SageMaker container
    import contract as contracts  # type: ignore[no-redef, import-not-found]
    import features  # type: ignore[no-redef, import-not-found]
    import tracking  # type: ignore[no-redef, import-not-found]

DATA_DIR = "/opt/ml/processing/input/data"
CONTRACT_PATH = "/opt/ml/processing/input/contract/contract.json"
OUTPUT_DIR = "/opt/ml/processing/output"
SPLITS = ("train", "validation", "test")
BASELINE_FILE = "baseline.json"
DATA_VERSION_FILE = "data_version.json"
TRACKING_DIR = "tracking"
SERVING_DIR = "serving"
SERVING_FILE = "serving.csv"
QUANTILE_LEVELS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
HISTOGRAM_BINS = 20
# Integer columns spanning at most this many values get one bin per value.
MAX_INTEGER_BINS = 60


def preprocess(
    data_dir: str | Path,
    contract_path: str | Path,
    output_dir: str | Path,
    *,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    serving_sample: bool = False,
) -> dict[str, Any]:
    """Split, encode and write the data under ``data_dir``; returns a summary (rows per split, paths, seconds).

    ``serving_sample`` also writes ``serving/serving.csv`` (module doc).

    ValueError when the fractions are unusable or fewer than three rows have a target.
    """
    started = time.perf_counter()
    _check_fractions(validation_fraction, test_fraction)
    contract = contracts.load_contract(contract_path)
    if contract.column(contract.target).type not in ("int", "float", "bool"):
        raise ValueError(f"{contract.source}: target {contract.target} must be an int, float or bool column")
    dataset = contracts.read_dataset(data_dir, contract)
    frame = dataset.frame
    has_target = frame[contract.target].notna().to_numpy()
    dropped = int((~has_target).sum())
    if dropped:
        frame = frame.loc[has_target].reset_index(drop=True)
    if len(frame) < 3:
        raise ValueError(f"{data_dir}: {len(frame)} rows with a target; train, validation and test need at least 3")
    spec = features.from_contract(contract)
    indices = split_indices(len(frame), validation_fraction, test_fraction, seed)
    table = features.encode(frame, spec)
    table.insert(0, contract.target, frame[contract.target].to_numpy(dtype=np.float64))
    output = Path(output_dir)
    written = {}
    for split in SPLITS:
        path = output / split / f"{split}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.iloc[indices[split]].to_csv(path, index=False)
        written[split] = str(path)
    written["features"] = str(spec.save(output / "train" / features.SPEC_FILE))
    baseline = build_baseline(frame.iloc[indices["train"]], contract, spec)
    baseline_path = output / "baseline" / BASELINE_FILE
    baseline_path.parent.mkdir(parents=True, exist_ok=True)
    baseline_path.write_text(json.dumps(baseline, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    written["baseline"] = str(baseline_path)
    version = data_version(data_dir)
    version_path = baseline_path.parent / DATA_VERSION_FILE
    version_path.write_text(json.dumps(version, indent=2) + "\n", encoding="utf-8")
    written["data_version"] = str(version_path)
    if serving_sample:
        serving_path = output / SERVING_DIR / SERVING_FILE
        serving_path.parent.mkdir(parents=True, exist_ok=True)
        serving_path.write_text(
            request_csv(frame.iloc[indices["train"]], contract, spec, with_target=True), encoding="utf-8"
        )
        written["serving"] = str(serving_path)
    return {
        "rows": dataset.rows,
        "rows_without_target": dropped,
        "files": len(dataset.files),
        "splits": {split: len(indices[split]) for split in SPLITS},
        "features": spec.names,
        "outputs": written,
        "data_version": version,
        "seconds": round(time.perf_counter() - started, 3),
    }


def data_version(data_dir: str | Path) -> dict[str, Any]:
    """What data this is: the data files under ``data_dir`` (``contract.data_files``), each with its path
    relative to ``data_dir``, size and sha256, in path order; the partitions they sit in (the
    ``name=value`` folders of their paths, ``.`` for none); and ``manifest_sha256``, the sha256 of the
    manifest lines ``<sha256>  <size>  <path>``. The same files give the same hash, wherever they are.

    ``partitions_summary`` says the same in a registry metadata value's characters: ``<count>:<first>..<last>``.
    """
    root = Path(data_dir)
    base = root.parent if root.is_file() else root
    manifest = []
    partitions = set()
    for path in contracts.data_files(root):
        relative = path.relative_to(base).as_posix()
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        manifest.append({"path": relative, "size": path.stat().st_size, "sha256": digest.hexdigest()})
        folders = [part for part in relative.split("/")[:-1] if "=" in part]
        partitions.add("/".join(folders) or ".")
    lines = "".join(f"{item['sha256']}  {item['size']}  {item['path']}\n" for item in manifest)
    ordered = sorted(partitions)
    summary = f"{len(ordered)}:{ordered[0]}..{ordered[-1]}" if ordered else "0:none"
    return {
        "manifest_sha256": hashlib.sha256(lines.encode("utf-8")).hexdigest(),
        "partitions": ordered,
        "partitions_summary": summary[:256],
        "files": manifest,
    }


def _check_fractions(validation_fraction: float, test_fraction: float) -> None:
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name}: must be between 0 and 1 (exclusive), got {value}")
    if validation_fraction + test_fraction >= 1.0:
        total = validation_fraction + test_fraction
        raise ValueError(f"validation_fraction + test_fraction must be below 1 to leave rows to train on, got {total}")


def split_indices(
    rows: int, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, npt.NDArray[Any]]:
    """Disjoint, sorted row positions per split covering ``range(rows)``; each split gets at least one row.

    The same arguments give the same split.
    """
    test = min(max(1, round(rows * test_fraction)), rows - 2)
    validation = min(max(1, round(rows * validation_fraction)), rows - test - 1)
    order = np.random.default_rng(seed).permutation(rows)
    return {
        "train": np.sort(order[test + validation :]),
        "validation": np.sort(order[test : test + validation]),
        "test": np.sort(order[:test]),
    }


def track(tracker: tracking.Tracker, summary: dict[str, Any], arguments: dict[str, Any]) -> None:
    """Log what preprocess did to the execution's run: its settings, row counts, the data version, the baseline."""
    version = summary["data_version"]
    tracker.log_params(
        {f"preprocess.{name}": arguments[name] for name in ("validation_fraction", "test_fraction", "seed")}
    )
    tracker.log_metrics(
        {
            "data.rows": summary["rows"],
            "data.rows_without_target": summary["rows_without_target"],
            "data.files": summary["files"],
            **{f"data.{split}_rows": count for split, count in summary["splits"].items()},
        }
    )
    tracker.set_tags(
        {
            "data.manifest_sha256": version["manifest_sha256"],
            "data.partitions": " ".join(version["partitions"]),
            "data.partition_count": len(version["partitions"]),
            "data.features": " ".join(summary["features"]),
        }
    )
    tracker.log_artifact(summary["outputs"]["data_version"], "data")
    tracker.log_artifact(summary["outputs"]["baseline"], "baseline")


# --- serving sample ---------------------------------------------------------------------


def request_csv(
    frame: pd.DataFrame, contract: contracts.Contract, spec: features.FeatureSpec, *, with_target: bool = False
) -> str:
    """The rows of ``frame`` (typed as the contract reader returns them) as ``text/csv`` request rows,
    after a header row of the feature names (see the module doc). ``with_target`` puts the target
    first, where Model Monitor puts the endpoint's prediction in the rows it rebuilds from the capture."""
    columns = [
        _request_fields(frame[feature.name], feature, contract.column(feature.name)) for feature in spec.features
    ]
    header = list(spec.names)
    if with_target:
        header.insert(0, contract.target)
        columns.insert(0, _target_fields(frame[contract.target], contract.column(contract.target)))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(contracts.zip_equal(*columns))
    return buffer.getvalue()


def _target_fields(column: pd.Series, spec: contracts.ColumnSpec) -> list[str]:
    """The target as the model's numeric output: bools as 1/0, integers without a fraction."""
    if spec.type == "bool":
        return ["" if pd.isna(flag) else str(int(bool(flag))) for flag in column.astype("boolean")]
    return _number_fields(column, spec)


def _request_fields(column: pd.Series, feature: features.Feature, spec: contracts.ColumnSpec) -> list[str]:
    """One column's values as a client writes them: empty for missing, names for categories,
    true/false for bools, integers without a fraction, floats as their shortest exact form."""
    if feature.encoding == features.CATEGORY_CODES:
        values = column.astype(object)
        return ["" if pd.isna(value) else str(value) for value in values]
    if feature.encoding == features.BOOL:
        flags = column.astype("boolean")
        return ["" if pd.isna(flag) else ("true" if flag else "false") for flag in flags]
    return _number_fields(column, spec)


def _number_fields(column: pd.Series, spec: contracts.ColumnSpec) -> list[str]:
    """Numbers as a client writes them: empty for missing, integers without a fraction, floats as their
    shortest exact form."""
    numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
    if spec.type == "int":
        return ["" if np.isnan(number) else str(int(number)) for number in numbers]
    return ["" if np.isnan(number) else repr(float(number)) for number in numbers]


# --- baseline ---------------------------------------------------------------------------


def build_baseline(frame: pd.DataFrame, contract: contracts.Contract, spec: features.FeatureSpec) -> dict[str, Any]:
    """Drift-detection baseline of ``frame`` (typed as the contract reader returns it); see the module doc."""
    baseline_features: dict[str, Any] = {}
    for feature in spec.features:
        column = frame[feature.name]
        if feature.encoding == features.NUMBER:
            baseline_features[feature.name] = numeric_statistics(column, contract.column(feature.name))
        elif feature.encoding == features.CATEGORY_CODES:
            baseline_features[feature.name] = categorical_statistics(column, feature.categories)
        else:
            words = column.astype("boolean").map({True: "true", False: "false"}, na_action="ignore")
            baseline_features[feature.name] = categorical_statistics(words, ("false", "true"))
    return {
        "dataset": contract.dataset,
        "contract_version": contract.version,
        "computed_on": "train",
        "row_count": len(frame),
        "quantile_levels": list(QUANTILE_LEVELS),
        "features": baseline_features,
        "target": {
            "name": contract.target,
            **numeric_statistics(frame[contract.target], contract.column(contract.target)),
        },
    }


def numeric_statistics(column: pd.Series, spec: contracts.ColumnSpec | None = None) -> dict[str, Any]:
    """Count, missing rate, mean, std (ddof 1), min/max, quantiles ``p<percent>`` and a histogram of a column.

    ``spec`` (the contract's column) makes integer columns bin per value over their allowed range.
    """
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    present = values[~np.isnan(values)]
    statistics: dict[str, Any] = {
        "kind": "numeric",
        "count": len(present),
        "missing_rate": _rate(len(values) - len(present), len(values)),
    }
    if not len(present):
        statistics.update(mean=None, std=None, min=None, max=None, quantiles={}, histogram=None)
        return statistics
    quantiles = np.quantile(present, QUANTILE_LEVELS)
    edges = histogram_edges(present, spec)
    counts, _ = np.histogram(present, bins=edges)
    statistics.update(
        mean=float(present.mean()),
        std=float(present.std(ddof=1)) if len(present) > 1 else 0.0,
        min=float(present.min()),
        max=float(present.max()),
        quantiles={_percent_key(level): float(value) for level, value in _pairs(QUANTILE_LEVELS, quantiles)},
        histogram={"edges": [float(edge) for edge in edges], "counts": [int(count) for count in counts]},
    )
    return statistics


def histogram_edges(
    values: npt.NDArray[np.float64], spec: contracts.ColumnSpec | None = None
) -> npt.NDArray[np.float64]:
    """Fixed bin edges for ``values``: one bin per value for narrow integer ranges, else quantile bins.

    An integer column gets a bin per value over the contract's ``[min, max]`` when that
    is narrow (so every allowed value of new data has its bin), else over the values'
    range when that is. Otherwise quantile bins (edges at the 0, 5, ..., 100th
    percentiles, duplicates merged) hold about equal shares of the baseline, which makes
    shifts in any part of the range show.
    """
    low, high = float(values.min()), float(values.max())
    if spec is not None and spec.type == "int":
        if isinstance(spec.min, float) and isinstance(spec.max, float) and spec.max - spec.min < MAX_INTEGER_BINS:
            low, high = min(low, spec.min), max(high, spec.max)
        if high - low < MAX_INTEGER_BINS:
            return np.arange(low - 0.5, high + 1.0, 1.0)
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)))
    if len(edges) < 2:
        return np.array([low - 0.5, high + 0.5])
    return np.asarray(edges, dtype=np.float64)


def categorical_statistics(column: pd.Series, categories: tuple[str, ...]) -> dict[str, Any]:
    """Count, missing rate, and per category (contract order, unseen ones with 0) counts and frequencies.

    Frequencies are shares of the non-missing values; values outside ``categories`` count as missing.
    """
    known = pd.Categorical(column, categories=list(categories))
    counts = pd.Series(known).value_counts(sort=False).reindex(list(categories), fill_value=0)
    present = int(counts.sum())
    return {
        "kind": "categorical",
        "count": present,
        "missing_rate": _rate(len(column) - present, len(column)),
        "counts": {str(name): int(count) for name, count in counts.items()},
        "frequencies": {str(name): _rate(int(count), present) for name, count in counts.items()},
    }


def _rate(part: int, whole: int) -> float:
    return float(part) / whole if whole else 0.0


def _percent_key(level: float) -> str:
    return f"p{level * 100:g}"


def _pairs(levels: tuple[float, ...], values: npt.NDArray[np.float64]) -> list[tuple[float, float]]:
    return [(level, float(values[index])) for index, level in enumerate(levels)]


# --- command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python preprocess.py [--data-dir ...] [--contract ...] [--output-dir ...] [--serving-sample]``
    with SageMaker's defaults."""
    parser = argparse.ArgumentParser(description="Split and encode raw data; write the drift baseline.")
    parser.add_argument("--data-dir", default=DATA_DIR, help=f"raw data folder (default {DATA_DIR})")
    parser.add_argument("--contract", default=CONTRACT_PATH, help=f"data contract JSON (default {CONTRACT_PATH})")
    parser.add_argument("--output-dir", default=OUTPUT_DIR, help=f"output root (default {OUTPUT_DIR})")
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split")
    parser.add_argument(
        "--serving-sample",
        action="store_true",
        help=f"also write {SERVING_DIR}/{SERVING_FILE}: the training rows as endpoint requests, with a header",
    )
    parser.add_argument(
        "--tracking-dir", help=f"where {tracking.STATUS_FILE} goes (default <output-dir>/{TRACKING_DIR})"
    )
    args = parser.parse_args(argv)
    tracker = tracking.Tracker.open("preprocess")
    tracking_dir = args.tracking_dir or str(Path(args.output_dir) / TRACKING_DIR)
    try:
        summary = preprocess(
            args.data_dir,
            args.contract,
            args.output_dir,
            validation_fraction=args.validation_fraction,
            test_fraction=args.test_fraction,
            seed=args.seed,
            serving_sample=args.serving_sample,
        )
    except ValueError as error:  # contract, feature and argument errors
        print(f"preprocess: {error}", file=sys.stderr)
        tracker.set_tags({"mlops.failed_step": "preprocess", "mlops.failure": str(error)})
        tracker.finish("FAILED")
        tracker.write_report(tracking_dir)
        return 2
    track(tracker, summary, vars(args))
    tracker.write_report(tracking_dir)
    splits = ", ".join(f"{name} {count}" for name, count in summary["splits"].items())
    print(f"preprocess: {summary['rows']} rows from {summary['files']} files -> {splits} ({summary['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
