"""Wall time and peak memory of the model-quality join and metric on 1M predictions with 1M labels.

Usage: python benchmarks/quality.py [--predictions 1000000] [--labels 1000000] [--repeats 5] [--python PATH]

Synthetic, seeded data over a one-day window with a 6-hour lateness bound: predictions (ids
``req-<n>``, a tenth of them rows of 4-row batches ``req-<n>:<row>``, one in a hundred without an
answer), and as many labels, each for a prediction drawn at random (so about a quarter repeat one): on
time, late, for unknown ids and observed after the window; predictions of the hour before the window
give labels of an earlier prediction, so every bucket of ``quality.join`` is filled.

``join + metric``
    ``quality.join`` then ``Verdict.judge`` (regression_metrics on the used labels) on the
    in-memory arrays (what ``check_quality`` has after reading), median wall time of ``--repeats``
    runs; peak memory as tracemalloc's peak of one call (numpy and pandas buffers included) and
    the growth of the resident set's high-water mark (VmHWM) during it.
``read_labels``
    typing the labels from one Parquet file with the labels contract, event times parsed (once).

The join is single-threaded numpy and pandas (hash lookups of the ids, one lexsort); the machine's
second core is idle during it. ``--python`` runs the same measurement on another interpreter, e.g.
the scikit-learn image's (``.venv-images/sagemaker-scikit-learn-1.2-1/bin/python``, pandas 1.1.3),
where the job runs.

Measured 2026-12-02 on 2 cores shared with other work (load average about 2.4), ``python
benchmarks/quality.py`` on the project venv (Python 3.11, pandas 3.1, numpy 2.4): join + metric 1.0 s
(median of 5, runs 0.92 to 1.15 s), tracemalloc peak 127 MiB, resident set growth 30 MiB; read_labels
0.30 s. The join factorizes every id (predictions' and labels') once and works on integer codes; with
a pandas Index lookup and ``duplicated`` on the strings instead it took 2.4 s and 264 MiB. Reading the
capture itself (``capture.read_capture``, one JSON line at a time) is not part of this measurement.
On the scikit-learn image's interpreter (``--python .venv-images/sagemaker-scikit-learn-1.2-1/bin/python``:
Python 3.9, pandas 1.1.3, numpy 1.24), under a load average of about 6.5: join + metric 2.9 s, the project
venv 3.2 s at the same load; tracemalloc peak 127 MiB, resident set growth 47 MiB; read_labels 2.3 s
(pandas 1.1's date-time parsing), against 1.0 s. Both found the same buckets and rmse.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # type: ignore[import-untyped]  # noqa: E402

from pipelines_src.steps import contract as contracts  # noqa: E402
from pipelines_src.steps import quality  # noqa: E402

LABELS_CONTRACT = ROOT / "pipelines_src" / "contracts" / "delivery_time_labels.json"
SINCE = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)  # noqa: UP017 (runs on 3.9 too)
WINDOW = quality.Window(SINCE, SINCE + dt.timedelta(days=1), dt.timedelta(hours=6))
HOUR = 3600.0


def synthetic(predictions: int, labels: int, seed: int = 0) -> tuple[quality.Predictions, pd.DataFrame]:
    """Predictions over the window (and the hour before it) and the labels' raw frame (ids, target, ISO time)."""
    rng = np.random.default_rng(seed)
    start = WINDOW.since.timestamp()
    numbers = np.arange(predictions)
    batch = numbers % 10 == 0
    ids = np.where(
        batch,
        np.char.add(np.char.add("req-", (numbers // 4).astype(str)), np.char.add(":", (numbers % 4).astype(str))),
        np.char.add("req-", numbers.astype(str)),
    )
    times = start + rng.uniform(-HOUR, 24 * HOUR, predictions)
    values = rng.uniform(5, 90, predictions)
    values[rng.random(predictions) < 0.01] = np.nan
    picked = rng.integers(0, predictions, labels)
    kind = rng.choice(4, size=labels, p=[0.85, 0.05, 0.05, 0.05])  # on time, late, unknown id, observed after
    delay = np.where(kind == 1, rng.uniform(7, 30, labels), rng.uniform(0, 5, labels)) * HOUR
    label_times = times[picked] + delay
    label_times[kind == 3] = start + 40 * HOUR
    label_ids = ids[picked].astype(object)
    label_ids[kind == 2] = np.char.add("nobody-", np.arange(int((kind == 2).sum())).astype(str))
    stamps = pd.to_datetime(label_times, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
    frame = pd.DataFrame(
        {"inference_id": label_ids, "delivery_minutes": np.round(rng.uniform(5, 90, labels), 2), "event_time": stamps}
    )
    return quality.Predictions(list(ids), values, times), frame


def _vm_hwm() -> int:
    """The resident set's high-water mark in bytes (Linux), 0 where it cannot be read."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_hwm() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def measure(predictions: int, labels: int, repeats: int) -> dict[str, Any]:
    served, raw = synthetic(predictions, labels)
    verdict = quality.Verdict("rmse", "minimize", 1.0, 100)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "dt=2026-11-01").mkdir()
        raw.to_parquet(Path(folder) / "dt=2026-11-01" / "part-0.parquet", index=False)
        contract = contracts.load_contract(LABELS_CONTRACT)
        clock = time.perf_counter()
        labelled = quality.read_labels(folder, contract)
        read_seconds = time.perf_counter() - clock
    del raw
    seconds = []
    for _ in range(repeats):
        clock = time.perf_counter()
        joined = quality.join(served, labelled, WINDOW)
        judged = verdict.judge(joined, reference=20.0)
        seconds.append(time.perf_counter() - clock)
    _reset_hwm()
    before = _vm_hwm()
    tracemalloc.start()
    quality.join(served, labelled, WINDOW)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "predictions": predictions,
        "labels": labels,
        "join_and_metric_seconds": round(statistics.median(seconds), 3),
        "join_and_metric_runs": [round(value, 3) for value in seconds],
        "read_labels_seconds": round(read_seconds, 3),
        "tracemalloc_peak_mib": round(peak / 2**20, 1),
        "rss_growth_mib": round(max(_vm_hwm() - before, 0) / 2**20, 1),
        "label_buckets": joined.labels,
        "prediction_buckets": joined.predictions,
        "rmse": judged["value"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--python", help="run the measurement on this interpreter (e.g. an image's)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    if args.python:
        command = [args.python, __file__, "--predictions", str(args.predictions), "--labels", str(args.labels)]
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        completed = subprocess.run([*command, "--repeats", str(args.repeats), "--json"], env=environment, check=False)
        return completed.returncode
    result = measure(args.predictions, args.labels, args.repeats)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"quality join + metric, {result['predictions']:,} predictions x {result['labels']:,} labels "
        f"(Python {result['python']}, pandas {result['pandas']}, numpy {result['numpy']}):"
    )
    runs = result["join_and_metric_runs"]
    print(f"  join + metric: {result['join_and_metric_seconds']} s (median of {args.repeats}: {runs})")
    peak, growth = result["tracemalloc_peak_mib"], result["rss_growth_mib"]
    print(f"  peak memory of the join: tracemalloc {peak} MiB, resident set growth {growth} MiB")
    print(f"  read_labels (one Parquet file, event times parsed): {result['read_labels_seconds']} s")
    print(f"  labels: {result['label_buckets']}")
    print(f"  predictions: {result['prediction_buckets']}; rmse {result['rmse']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
