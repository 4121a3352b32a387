"""The champion gate on the XGBoost image's own Python: evaluate.py decides there as on the project venv."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines_src.local.images import ImageRuntime
from pipelines_src.steps.train import train
from tests.parity.compare import differences
from tests.pipelines.test_champion_gate import GOOD, WEAK

pytestmark = [pytest.mark.slow, pytest.mark.parity]

STEPS = Path(__file__).resolve().parents[2] / "pipelines_src" / "steps"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    from pipelines_src.datasets.delivery_time import generate, write_raw
    from pipelines_src.steps.preprocess import preprocess

    root = tmp_path_factory.mktemp("champion-parity")
    write_raw(generate(6000, seed=9, days=10), root / "raw")
    contract = STEPS.parent / "contracts" / "delivery_time.json"
    preprocess(root / "raw" / "delivery_time", contract, root / "splits", seed=2)
    models = {}
    for name, hyperparameters in (("good", GOOD), ("weak", WEAK)):
        models[name] = root / name
        train(root / "splits" / "train", root / "splits" / "validation", models[name], hyperparameters)
    return root / "splits", models


@pytest.mark.parametrize(("challenger", "champion", "registers"), [("good", "weak", True), ("weak", "good", False)])
def test_evaluate_with_a_champion_decides_on_the_image_as_on_the_project_venv(
    xgboost_image: ImageRuntime,
    trained: tuple[Path, dict[str, Path]],
    tmp_path: Path,
    challenger: str,
    champion: str,
    registers: bool,
) -> None:
    splits, models = trained
    code = tmp_path / "code"
    shutil.copytree(STEPS, code, ignore=shutil.ignore_patterns("__pycache__"))
    reports = {}
    for where, python in (("image", str(xgboost_image.interpreter)), ("project", sys.executable)):
        out = tmp_path / where
        arguments = [
            *("--model-dir", str(models[challenger]), "--test-dir", str(splits / "test"), "--output-dir", str(out)),
            *("--metric", "rmse", "--goal", "minimize", "--threshold", "100", "--champion-margin", "0.01"),
            *("--champion-dir", str(models[champion]), "--champion-model-data", "s3://b/v1/model.tar.gz"),
            *("--no-champion", "s3://b/code/run_step.sh"),
        ]
        result = subprocess.run([python, str(code / "evaluate.py"), *arguments], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        reports[where] = json.loads((out / "evaluation.json").read_text())
    assert reports["image"]["champion"]["status"] == "scored"
    assert reports["image"]["gate"]["register"] is registers
    assert not differences(tmp_path / "image", tmp_path / "project", ["evaluation.json"])
