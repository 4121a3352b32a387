"""Parquet runs on the scikit-learn image's Python, pandas 1.1.3 and pyarrow 14: what reading file by file gives.

``read_dataset`` reads consecutive Parquet files of one plain schema with one Arrow read and one
pandas conversion; whether that equals reading them one by one depends on the pandas and pyarrow
that convert them, so the comparison runs where ValidateData, Preprocess and DetectDrift run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.parity.conftest import require_image_envs
from tests.parity.scripts import run_json
from tests.pipelines.parquet_runs import CONTRACT

pytestmark = [pytest.mark.slow, pytest.mark.parity]

ROOT = Path(__file__).resolve().parents[2]
SKLEARN_ENV = "sagemaker-scikit-learn-1.2-1"

SCRIPT = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import pandas as pd
import pyarrow
from tests.pipelines.parquet_runs import compare, write

root, contract = Path(sys.argv[2]), Path(sys.argv[3])
write(root, "mixed")
folders = [root, *sorted(path for path in root.iterdir() if any(path.iterdir()))]
found = {path.name: compare(path, contract) for path in folders}
print(json.dumps({
    "versions": [pd.__version__, pyarrow.__version__],
    "same": {name: json.dumps(item["runs"]) == json.dumps(item["per_file"]) for name, item in found.items()},
    "violations": len(found[root.name]["runs"]["violations"]),
    "longest_run": max(len(labels) for labels in found[root.name]["parts"]),
}))
"""


def test_runs_equal_per_file_reading_on_the_image(tmp_path: Path) -> None:
    (runtime,) = require_image_envs(SKLEARN_ENV)
    (tmp_path / "contract.json").write_text(json.dumps(CONTRACT))
    found = run_json(runtime, SCRIPT, str(ROOT), str(tmp_path / "data"), str(tmp_path / "contract.json"))
    assert found["versions"] == ["1.1.3", "14.0.1"]
    assert found["same"] and all(found["same"].values()), found["same"]
    assert found["violations"] and found["longest_run"] >= 4
