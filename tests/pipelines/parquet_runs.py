"""Folders of Parquet (and other) files that ``read_dataset`` reads in runs, and the per-file reading to compare with.

No pytest here: the parity suite runs ``compare`` on the scikit-learn image's Python and pandas too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines_src.steps import contract as contracts

CONTRACT: dict[str, Any] = {
    "dataset": "runs",
    "version": "1.0.0",
    "target": "y",
    "columns": [
        {"name": "n", "type": "int", "min": 0, "max": 50},
        {"name": "x", "type": "float", "nullable": True},
        {"name": "colour", "type": "category", "allowed": ["red", "green", "blue"]},
        {"name": "day", "type": "date", "nullable": True},
        {"name": "flag", "type": "bool", "nullable": True},
        {"name": "y", "type": "float"},
    ],
}
# Folders: every file alike (one run), and every kind of file that ends or breaks a run.
LAYOUTS = ("alike", "mixed")


def _rows(rows: int, seed: int, *, int_nulls: bool = False, bool_nulls: bool = False) -> pd.DataFrame:
    """Raw rows: some categories not allowed, some dates that do not parse, numbers out of range."""
    rng = np.random.default_rng(seed)
    n = rng.integers(-2, 55, rows).astype(np.float64 if int_nulls else np.int64)
    if int_nulls and rows:
        n[rng.random(rows) < 0.2] = np.nan
    flag: Any = rng.random(rows) < 0.5
    if bool_nulls:
        flag = pd.array([None if index % 3 == 0 else bool(value) for index, value in enumerate(flag)], dtype="boolean")
    x = rng.normal(0.0, 1.0, rows)
    x[rng.random(rows) < 0.1] = np.nan
    colours = np.array(["red", "green", "blue", "pink", "Red"], dtype=object)[rng.integers(0, 5, rows)]
    days = np.array(["2024-01-31", "2024-02-01", "2024-02-30", "soon", None], dtype=object)[rng.integers(0, 5, rows)]
    frame = pd.DataFrame({"n": n, "x": x, "colour": colours, "day": days, "flag": flag, "y": rng.normal(5, 2, rows)})
    return frame.astype({"n": "Int64"}) if int_nulls else frame


def write(folder: Path, layout: str) -> None:
    """Write the files of ``layout`` under ``folder``."""
    for sub in "abcdefg":
        (folder / sub).mkdir(parents=True, exist_ok=True)

    def parquet(name: str, frame: pd.DataFrame, **kwargs: Any) -> None:
        frame.to_parquet(folder / name, **{"index": False, **kwargs})

    for index in range(4):  # one run: the same schema, and no integer nulls anywhere
        parquet(f"a/part-{index}.parquet", _rows(300 + 50 * index, seed=index))
    if layout == "alike":
        return
    parquet("b/empty.parquet", _rows(0, seed=9))  # no rows: pandas writes its text columns as nulls
    parquet("b/int-nulls.parquet", _rows(200, seed=10, int_nulls=True))  # n converts to floats here only
    parquet("b/int-nulls-2.parquet", _rows(150, seed=11, int_nulls=True))  # ... and here: a run of two
    for index in range(2):  # runs of two: files with nullable bools, an extra column, a missing one
        parquet(f"c/bool-nulls-{index}.parquet", _rows(120, seed=12 + index, bool_nulls=True))
        parquet(f"c/extra-{index}.parquet", _rows(100, seed=22 + index).assign(note=[1.5, None] * 50))
        parquet(f"c/missing-{index}.parquet", _rows(90 + 10 * index, seed=32 + index).drop(columns=["flag"]))
    parquet("c/unreadable.parquet", _rows(1, seed=0))
    (folder / "c" / "unreadable.parquet").write_bytes(b"not parquet at all")
    _rows(80, seed=15).to_csv(folder / "c" / "text.csv", index=False)
    parquet("d/index.parquet", _rows(70, seed=16).set_axis(np.arange(100, 170)), index=True)
    parquet("d/labelled.parquet", _rows(60, seed=17).assign(id=lambda f: [f"o{i}" for i in range(len(f))]))
    parquet("d/categorical.parquet", _rows(50, seed=18).astype({"colour": "category"}))
    zoned = _rows(40, seed=19).assign(day=pd.date_range("2024-01-01", periods=40, freq="h", tz="Europe/Paris"))
    parquet("d/zoned.parquet", zoned)
    parquet("d/stamps.parquet", _rows(40, seed=20).assign(day=pd.date_range("2024-01-01", periods=40, freq="h")))
    parquet("e/text-numbers.parquet", _rows(30, seed=21).astype({"x": str, "n": str}))
    for index in range(3):  # another run after the odd files
        parquet(f"e/part-{index}.parquet", _rows(100, seed=30 + index))
    for index in range(3):  # no pandas metadata: int64 and bool columns, with nulls in the last two files only
        _arrow_file(folder / f"f/arrow-{index}.parquet", _rows(60, seed=40 + index), nulls=index > 0)
    for index in range(2):  # pandas metadata that pandas cannot apply: each file unreadable, as pandas says
        _arrow_file(folder / f"g/bad-metadata-{index}.parquet", _rows(20, seed=50 + index), nulls=False, pandas=b"{")


def _arrow_file(path: Path, frame: pd.DataFrame, *, nulls: bool, pandas: bytes | None = None) -> None:
    """``frame`` written by pyarrow alone (as other writers do): no pandas metadata (or ``pandas``), Arrow nulls."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    missing = np.arange(len(frame)) % 4 == 0 if nulls else np.zeros(len(frame), dtype=bool)
    columns = {
        "n": pa.array(frame["n"].to_numpy(dtype=np.int64), mask=missing),
        "x": pa.array(frame["x"].to_numpy()),
        "colour": pa.array([None if pd.isna(value) else value for value in frame["colour"]], pa.string()),
        "day": pa.array([None if pd.isna(value) else value for value in frame["day"]], pa.string()),
        "flag": pa.array(frame["flag"].to_numpy(dtype=bool), mask=missing),
        "y": pa.array(frame["y"].to_numpy()),
    }
    table = pa.table(columns)
    pq.write_table(table if pandas is None else table.replace_schema_metadata({b"pandas": pandas}), path)


def summary(dataset: contracts.Dataset, contract: contracts.Contract) -> dict[str, Any]:
    """Everything a Dataset holds, JSON-ready: typed frame (values and dtypes), files, offsets, masks, violations."""
    frame = dataset.frame
    return {
        "columns": list(frame.columns),
        "dtypes": {name: str(dtype) for name, dtype in frame.dtypes.items()},
        "categories": {
            name: [str(value) for value in frame[name].cat.categories]
            for name in frame.columns
            if isinstance(frame[name].dtype, pd.CategoricalDtype)
        },
        "values": {name: [contracts.json_safe(value) for value in frame[name].tolist()] for name in frame.columns},
        "files": dataset.files,
        "offsets": dataset.offsets.tolist(),
        "reported": {name: mask.tolist() for name, mask in sorted(dataset.reported.items())},
        "violations": [violation.to_dict() for violation in contracts.check(dataset, contract)],
    }


def per_file(root: Path, contract: contracts.Contract) -> contracts.Dataset:
    """``read_dataset`` as it read before runs: every file alone with ``pd.read_parquet``/``read_csv``, text as text."""
    plain, dictionaries = contracts._plain_table, contracts._dictionary_columns
    contracts._plain_table = lambda *arguments: None
    contracts._dictionary_columns = lambda contract: []
    try:
        return contracts.read_dataset(root, contract)
    finally:
        contracts._plain_table, contracts._dictionary_columns = plain, dictionaries


def compare(root: Path, contract_path: Path) -> dict[str, Any]:
    """The runs' reading and the per-file reading of ``root`` (their summaries), and how many parts the runs made."""
    contract = contracts.load_contract(contract_path)
    parts = [part.labels for part in contracts._read_parts(_labelled(root), contract)]
    return {
        "runs": summary(contracts.read_dataset(root, contract), contract),
        "per_file": summary(per_file(root, contract), contract),
        "parts": parts,
    }


def _labelled(root: Path) -> list[tuple[str, Path]]:
    return [(path.relative_to(root).as_posix(), path) for path in contracts.data_files(root)]


def main(root: str, contract_path: str) -> None:
    print(json.dumps(compare(Path(root), Path(contract_path))))
