"""The model-quality step on the scikit-learn image's own Python (3.9, pandas 1.1.3): the same report as on the
project venv, for the hand-made case and for a generated one with labels of every bucket."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines_src.datasets.delivery_time import generate
from pipelines_src.steps import contract as contracts
from pipelines_src.steps import features
from tests.parity.compare import differences
from tests.parity.conftest import require_image_envs
from tests.pipelines.test_quality import CONTRACT, LABELS_CONTRACT, _capture_line, write_step_inputs

pytestmark = pytest.mark.parity

STEPS = Path(__file__).resolve().parents[2] / "pipelines_src" / "steps"
SKLEARN_ENV = "sagemaker-scikit-learn-1.2-1"  # where the model-quality job runs
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write_generated_inputs(root: Path, requests: int = 400, seed: int = 4) -> list[str]:
    """Requests of 1 to 3 rows over 48 hours and labels that are on time, late, repeated, unknown or missing."""
    rng = np.random.default_rng(seed)
    names = features.from_contract(contracts.load_contract(CONTRACT)).names
    rows = generate(requests * 3, seed=seed, days=2)
    lines, ids, times, targets = [], [], [], []
    used = 0
    for request in range(requests):
        size = int(rng.integers(1, 4))
        moment = START + dt.timedelta(seconds=float(rng.uniform(0, 48 * 3600)))
        chunk = rows.iloc[used : used + size]
        used += size
        answer = [float(value) for value in np.round(rng.uniform(5, 90, size), 3)]
        lines.append(_capture_line(chunk, names, _stamp(moment), f"req-{request}", answer))
        for row in range(size):
            ids.append(f"req-{request}" if size == 1 else f"req-{request}:{row}")
            times.append(moment)
            targets.append(float(chunk["delivery_minutes"].iloc[row]))
    folder = root / "capture" / "endpoint" / "AllTraffic" / "2026" / "11" / "01" / "00"
    folder.mkdir(parents=True)
    (folder / "part.jsonl").write_text("\n".join(lines) + "\n")
    label_rows = []
    for inference_id, moment, target in zip(ids, times, targets, strict=True):
        kind = rng.choice(["on_time", "late", "twice", "none"], p=[0.6, 0.1, 0.1, 0.2])
        if kind == "none":
            continue
        delay = dt.timedelta(hours=float(rng.uniform(0, 5) if kind != "late" else rng.uniform(7, 30)))
        label_rows.append((inference_id, target, _stamp(moment + delay)))
        if kind == "twice":
            label_rows.append((inference_id, target + 1.0, _stamp(moment + delay + dt.timedelta(minutes=5))))
    label_rows += [(f"nobody-{index}", 20.0, _stamp(START + dt.timedelta(hours=30))) for index in range(7)]
    frame = pd.DataFrame(label_rows, columns=["inference_id", "delivery_minutes", "event_time"])
    for day, part in frame.groupby(frame["event_time"].str[:10]):
        (root / "labels" / f"dt={day}").mkdir(parents=True)
        part.to_parquet(root / "labels" / f"dt={day}" / "part-0.parquet", index=False)
    return [
        *("--capture-dir", str(root / "capture"), "--labels-dir", str(root / "labels")),
        *("--contract", str(CONTRACT), "--labels-contract", str(LABELS_CONTRACT), "--output-dir", str(root / "out")),
        *("--since", "2026-11-01T12:00:00Z", "--until", "2026-11-02T12:00:00Z", "--lateness-hours", "6"),
        *("--metric", "rmse", "--goal", "minimize", "--max-degradation", "2", "--min-labels", "50"),
        *("--reference", "20", "--model", "delivery-time", "--stage", "dev", "--metrics"),
    ]


@pytest.mark.parametrize("case", ["hand-made", "generated"])
def test_the_quality_step_reports_on_the_image_as_on_the_project_venv(tmp_path: Path, case: str) -> None:
    (runtime,) = require_image_envs(SKLEARN_ENV)
    code = tmp_path / "code"
    shutil.copytree(STEPS, code, ignore=shutil.ignore_patterns("__pycache__"))  # as run_step.sh unpacks it
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    arguments = write_step_inputs(inputs) if case == "hand-made" else write_generated_inputs(inputs)
    out = arguments.index("--output-dir") + 1
    for where, python in (("image", str(runtime.interpreter)), ("project", sys.executable)):
        arguments[out] = str(tmp_path / where)
        result = subprocess.run(
            [python, str(code / "quality.py"), *arguments], capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "image" / "quality_report.json").read_text())
    assert report["status"] == "ok" and report["predictions"]["labelled"] >= 3
    if case == "generated":
        assert all(report["labels"][bucket] > 0 for bucket in ("used", "late", "duplicate", "unknown_id"))
        assert report["labels"]["earlier_prediction"] > 0 and report["predictions"]["unlabelled"] > 0
    assert not differences(tmp_path / "image", tmp_path / "project", ["quality_report.json", "quality_metrics.json"])
