"""The drift step's counting on the scikit-learn image's pandas and numpy: code counts equal row-labelled counts.

``label_counts`` counts categorical columns on their codes and labels each category once;
on pandas 1.1 a row's label can depend on the column (integer categories of a column with
nulls read as floats), so the equality is checked where the step runs, on the columns of
every dtype the drift step may get and on the random data read by the contract reader.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines_src.steps.drift import bin_counts
from tests.parity.conftest import require_image_envs
from tests.parity.scripts import run_json
from tests.pipelines.test_drift_counting import CONTRACT, EDGES, ODD_COLUMNS, raw_rows

pytestmark = [pytest.mark.slow, pytest.mark.parity]

ROOT = Path(__file__).resolve().parents[2]
SKLEARN_ENV = "sagemaker-scikit-learn-1.2-1"  # where ValidateData, Preprocess and DetectDrift run

SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import pandas as pd
from pipelines_src.steps import contract as contracts
from pipelines_src.steps.drift import bin_counts, category_labels, label_counts

def by_rows(column):
    counted = category_labels(column).value_counts(dropna=True)
    return {str(label): int(count) for label, count in counted.items() if count > 0}

columns = {name: eval(source, {"pd": pd}) for name, source in json.loads(sys.argv[2]).items()}
contract = contracts.load_contract(sys.argv[3])
typed = contracts.read_dataset(sys.argv[4], contract).frame
columns.update(colour=typed["colour"], flag=typed["flag"])
values = np.concatenate([np.random.default_rng(7).uniform(-5.0, 15.0, 10000), np.array(json.loads(sys.argv[5]))])
print(json.dumps({
    "pandas": pd.__version__,
    "counts": {name: [label_counts(column), by_rows(column)] for name, column in columns.items()},
    "bins": bin_counts(values, json.loads(sys.argv[5])).tolist(),
}))
"""


def test_code_counts_equal_row_labelled_counts_on_the_image(tmp_path: Path) -> None:
    (runtime,) = require_image_envs(SKLEARN_ENV)
    (tmp_path / "contract.json").write_text(json.dumps(CONTRACT))
    data = tmp_path / "data"
    data.mkdir()
    raw_rows(2_000, seed=3).astype({"x": str}).to_csv(data / "part-0.csv", index=False)
    found = run_json(
        runtime,
        SCRIPT,
        str(ROOT),
        json.dumps(ODD_COLUMNS),
        str(tmp_path / "contract.json"),
        str(data),
        json.dumps(EDGES),
    )
    assert found["pandas"] == "1.1.3"
    for name, (by_codes, by_rows) in found["counts"].items():
        assert by_codes == by_rows, name
    assert found["counts"]["colour"][0], "the typed category column has values"
    values = np.concatenate([np.random.default_rng(7).uniform(-5.0, 15.0, 10_000), np.array(EDGES)])
    assert found["bins"] == bin_counts(values, EDGES).tolist()  # the image's numpy bins as the project's
