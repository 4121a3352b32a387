"""Parquet files read in runs (one Arrow read and conversion per run) give what reading them one by one gave."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines_src.steps import contract as contracts
from tests.pipelines.parquet_runs import CONTRACT, LAYOUTS, compare, write


@pytest.fixture
def contract_path(tmp_path: Path) -> Path:
    path = tmp_path / "contract.json"
    path.write_text(json.dumps(CONTRACT))
    return path


@pytest.mark.parametrize("layout", LAYOUTS)
def test_runs_give_the_per_file_dataset_and_violations(tmp_path: Path, contract_path: Path, layout: str) -> None:
    write(tmp_path / "data", layout)
    for root in [tmp_path / "data", *sorted(path for path in (tmp_path / "data").iterdir() if any(path.iterdir()))]:
        found = compare(root, contract_path)  # each folder alone too: its files' rows are the samples
        assert json.dumps(found["runs"]) == json.dumps(found["per_file"]), root.name  # 1 and 1.0 differ
        assert found["runs"]["violations"], "the data breaks the contract"
    assert max(len(labels) for labels in compare(tmp_path / "data", contract_path)["parts"]) >= 4


def test_files_of_one_plain_schema_are_one_run_the_others_alone(tmp_path: Path, contract_path: Path) -> None:
    write(tmp_path / "data", "mixed")
    parts = compare(tmp_path / "data", contract_path)["parts"]
    assert ["a/part-0.parquet", "a/part-1.parquet", "a/part-2.parquet", "a/part-3.parquet"] in parts
    assert ["b/int-nulls-2.parquet", "b/int-nulls.parquet"] in parts  # integer nulls in both: floats in both
    for kind in ("bool-nulls", "extra", "missing"):
        assert [f"c/{kind}-0.parquet", f"c/{kind}-1.parquet"] in parts
    assert ["f/arrow-0.parquet"] in parts  # no integer or bool nulls, unlike the next two
    assert ["f/arrow-1.parquet", "f/arrow-2.parquet"] in parts
    assert ["g/bad-metadata-0.parquet"] in parts and ["g/bad-metadata-1.parquet"] in parts  # not convertible
    alone = {labels[0] for labels in parts if len(labels) == 1}
    text = {"d/labelled.parquet", "e/text-numbers.parquet"}  # plain text: pandas' string option converts it
    assert {"c/unreadable.parquet", "c/text.csv", "d/zoned.parquet", "d/index.parquet", *text} <= alone


def test_a_run_holds_at_most_run_bytes(tmp_path: Path, contract_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "data", "alike")
    whole = compare(tmp_path / "data", contract_path)
    monkeypatch.setattr(contracts, "RUN_BYTES", 20_000)  # about one file
    split = compare(tmp_path / "data", contract_path)
    assert len(split["parts"]) > len(whole["parts"]) == 1
    assert json.dumps(split["runs"]) == json.dumps(whole["runs"]) == json.dumps(split["per_file"])


def test_the_typed_frame_shares_no_memory_with_the_frame_it_was_given() -> None:
    contract = contracts.parse_contract(CONTRACT)
    raw = pd.DataFrame({"n": [1, 2], "x": [0.5, None], "colour": ["red", "blue"], "day": ["2024-01-31", None]})
    typed = contracts.dataset_from_frame(raw.assign(flag=[True, False], y=[1.0, 2.0]), contract).frame
    for name in ("n", "x"):
        assert not np.shares_memory(typed[name].to_numpy(), raw[name].to_numpy()), name
