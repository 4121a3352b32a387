"""Data contract of a dataset: load it, read raw files with its types, check data against it.

A contract (``contracts/<dataset>.json``) names the dataset and its version, the target
column, the id columns (not features), the partition column, and per column its type
(``string``, ``int``, ``float``, ``bool``, ``date``, ``category``), ``min``/``max`` for
numbers and dates (ISO ``YYYY-MM-DD``), ``allowed`` values for categories, whether it
is ``nullable`` (with an optional ``max_null_fraction``) and whether it is ``unique``.

``read_dataset`` reads every CSV and Parquet file under a folder into one frame with
the contract's types; values that do not parse (or categories that are not allowed)
become nulls and are reported as violations instead of failing the read. ``check``
adds the checks on values (ranges, nulls, uniqueness) and returns every violation:
rule, column, count of offending rows and up to five sample rows naming their file.

Reading keeps memory bounded: a raw frame is typed and dropped before the next is read.
Consecutive Parquet files of one plain schema (``_read_parts``) are read as one run, one
Arrow read and one pandas conversion for up to ``RUN_BYTES`` of data, and give exactly what
reading them one by one gives (values, dtypes, violations and their samples); any other file
is read alone. Text of category and date columns is read as a dictionary, so it is typed
once per distinct value.

Typed columns: ``int`` is int64 (float64 when it holds nulls), ``float`` float64,
``bool`` bool (pandas ``boolean`` with nulls), ``date`` datetime64[ns], ``category``
a pandas categorical whose categories are the allowed values in contract order,
``string`` the reader's string dtype.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

COLUMN_TYPES = ("string", "int", "float", "bool", "date", "category")
NUMERIC_TYPES = ("int", "float")
# Every rule a violation can name, in the order a report lists them.
RULES = (
    "empty_input",
    "unreadable_file",
    "missing_column",
    "extra_column",
    "wrong_type",
    "not_allowed_value",
    "out_of_range",
    "unexpected_null",
    "too_many_nulls",
    "duplicate_value",
)
SAMPLE_ROWS = 5
FILE_KEY = "_file"
ROW_KEY = "_row"
_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})
_TOP_KEYS = ("dataset", "version", "description", "target", "id_columns", "partition_column", "columns")
_COLUMN_KEYS = ("name", "type", "nullable", "min", "max", "allowed", "max_null_fraction", "unique", "description")

Mask = npt.NDArray[np.bool_]


class ContractError(ValueError):
    """The contract file is unusable; the message names the file and the key."""


# --- the contract -----------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a contract."""

    name: str
    type: str
    nullable: bool = False
    min: float | str | None = None
    max: float | str | None = None
    allowed: tuple[str, ...] = ()
    max_null_fraction: float | None = None
    unique: bool = False
    description: str = ""

    def describe_type(self) -> str:
        """``int``, or for a category ``one of a, b, c``."""
        return "one of " + ", ".join(self.allowed) if self.type == "category" else self.type

    def describe_range(self) -> str:
        """``[0, 23]``, ``>= 0`` or ``<= 5``: the bounds as a reader would write them."""
        low, high = _show(self.min), _show(self.max)
        if self.min is not None and self.max is not None:
            return f"[{low}, {high}]"
        return f">= {low}" if self.min is not None else f"<= {high}"


def _show(bound: float | str | None) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


@dataclass(frozen=True)
class Contract:
    """A dataset's contract: what its raw data must look like."""

    dataset: str
    version: str
    target: str
    columns: tuple[ColumnSpec, ...]
    id_columns: tuple[str, ...] = ()
    partition_column: str | None = None
    description: str = ""
    source: str = "<contract>"

    @property
    def names(self) -> list[str]:
        """Column names in contract order."""
        return [column.name for column in self.columns]

    def column(self, name: str) -> ColumnSpec:
        """The column called ``name`` (KeyError naming the contract if there is none)."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.source}: no column {name!r}")

    @property
    def feature_columns(self) -> list[ColumnSpec]:
        """Columns a model sees: all but the target, the id columns, the partition column and dates."""
        excluded = {self.target, self.partition_column, *self.id_columns}
        return [column for column in self.columns if column.name not in excluded and column.type != "date"]


def read_json(path: str | Path, what: str, error: type[ValueError]) -> object:
    """The parsed content of a JSON file; ``error`` naming the file if it is missing, unreadable or not JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as failure:
        raise error(f"{path}: cannot read the {what}: {failure}") from None
    try:
        data: object = json.loads(text)
    except json.JSONDecodeError as failure:
        raise error(f"{path}: not valid JSON: {failure.msg} (line {failure.lineno}, column {failure.colno})") from None
    return data


def load_contract(path: str | Path) -> Contract:
    """Read and check a contract file; ContractError names the file and the offending key."""
    return parse_contract(read_json(path, "contract", ContractError), source=str(path))


def parse_contract(data: object, source: str = "<contract>") -> Contract:
    """A Contract from parsed JSON; ContractError names ``source`` and the offending key."""
    top = _Fields(data, source, "")
    top.refuse_unknown(_TOP_KEYS)
    raw_columns = top.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        top.fail("columns", "must be a non-empty list of column objects")
    columns = tuple(_parse_column(item, source, f"columns[{index}]") for index, item in enumerate(raw_columns))
    names = [column.name for column in columns]
    for index, name in enumerate(names):
        if name in names[:index]:
            top.fail(f"columns[{index}].name", f"{name!r} is defined twice")
    target = top.text("target")
    if target not in names:
        top.fail("target", f"{target!r} is not a column of the contract")
    id_columns = top.texts("id_columns")
    for index, name in enumerate(id_columns):
        if name not in names or name == target:
            top.fail(f"id_columns[{index}]", f"{name!r} is not a column of the contract (other than the target)")
    partition = top.optional_text("partition_column")
    if partition is not None and partition not in names:
        top.fail("partition_column", f"{partition!r} is not a column of the contract")
    return Contract(
        dataset=top.text("dataset"),
        version=top.text("version"),
        target=target,
        columns=columns,
        id_columns=tuple(id_columns),
        partition_column=partition,
        description=top.optional_text("description") or "",
        source=source,
    )


def _parse_column(data: object, source: str, where: str) -> ColumnSpec:
    fields = _Fields(data, source, where)
    fields.refuse_unknown(_COLUMN_KEYS)
    name = fields.text("name")
    kind = fields.text("type")
    if kind not in COLUMN_TYPES:
        fields.fail("type", f"{kind!r} is not one of {', '.join(COLUMN_TYPES)}")
    nullable = fields.flag("nullable", default=False)
    allowed = fields.texts("allowed")
    if kind == "category" and not allowed:
        fields.fail("allowed", "a category column needs a non-empty list of allowed values")
    if kind != "category" and "allowed" in fields.data:
        fields.fail("allowed", f"only category columns take allowed values, {name!r} is {kind}")
    if len(set(allowed)) != len(allowed):
        fields.fail("allowed", "lists a value twice")
    low, high = fields.bound("min", kind), fields.bound("max", kind)
    if low is not None and high is not None and _bound_key(low) > _bound_key(high):
        fields.fail("min", f"{low} is greater than max {high}")
    max_null_fraction = fields.optional_number("max_null_fraction")
    if max_null_fraction is not None and not (nullable and 0.0 <= max_null_fraction <= 1.0):
        fields.fail("max_null_fraction", "needs nullable: true and a value between 0 and 1")
    return ColumnSpec(
        name=name,
        type=kind,
        nullable=nullable,
        min=low,
        max=high,
        allowed=tuple(allowed),
        max_null_fraction=max_null_fraction,
        unique=fields.flag("unique", default=False),
        description=fields.optional_text("description") or "",
    )


def _bound_key(bound: float | str) -> float:
    if isinstance(bound, str):
        return float(dt.date.fromisoformat(bound).toordinal())
    return bound


class _Fields:
    """Typed access to one JSON object of a contract, with errors naming file and key."""

    def __init__(self, data: object, source: str, where: str) -> None:
        self.source = source
        self.where = where
        if not isinstance(data, dict):
            self.fail("", f"must be a JSON object, got {type(data).__name__}")
        self.data: dict[str, Any] = data

    def fail(self, key: str, message: str) -> NoReturn:
        path = ".".join(part for part in (self.where, key) if part) or "top level"
        raise ContractError(f"{self.source}: {path}: {message}")

    def refuse_unknown(self, known: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in known:
                self.fail(str(key), f"unknown key (known keys: {', '.join(known)})")

    def get(self, key: str) -> Any:
        if key not in self.data:
            self.fail(key, "is required")
        return self.data[key]

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.data.get(key) is not None else None

    def texts(self, key: str) -> list[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            self.fail(key, f"must be a list of non-empty strings, got {value!r}")
        return list(value)

    def flag(self, key: str, *, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {value!r}")
        return value

    def optional_number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(key, f"must be a finite number, got {value!r}")
        return float(value)

    def bound(self, key: str, kind: str) -> float | str | None:
        if self.data.get(key) is None:
            return None
        if kind == "date":
            value = self.data[key]
            try:
                dt.date.fromisoformat(value)
            except (TypeError, ValueError):
                self.fail(key, f"must be a date as YYYY-MM-DD, got {value!r}")
            return str(value)
        if kind not in NUMERIC_TYPES:
            self.fail(key, f"only int, float and date columns take bounds, this column is {kind}")
        return self.optional_number(key)


# --- violations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """Data breaking one rule of the contract in one column (``column`` None: the whole input)."""

    rule: str
    column: str | None
    count: int
    message: str
    samples: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the validation report."""
        return {
            "rule": self.rule,
            "column": self.column,
            "count": self.count,
            "message": self.message,
            "samples": list(self.samples),
        }


@dataclass
class _Finding:
    count: int
    detail: str
    samples: list[dict[str, Any]]


class _Findings:
    """Violations gathered file by file, merged per (rule, column)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str | None], _Finding] = {}

    def add(self, rule: str, column: str | None, count: int, detail: str, samples: list[dict[str, Any]]) -> None:
        found = self._items.get((rule, column))
        if found is None:
            self._items[(rule, column)] = _Finding(count, detail, samples[:SAMPLE_ROWS])
            return
        found.count += count
        found.samples.extend(samples[: SAMPLE_ROWS - len(found.samples)])

    def copy(self) -> _Findings:
        duplicate = _Findings()
        for key, found in self._items.items():
            duplicate._items[key] = _Finding(found.count, found.detail, list(found.samples))
        return duplicate

    def violations(self, contract: Contract) -> list[Violation]:
        names = contract.names

        def order(key: tuple[str, str | None]) -> tuple[int, int, str]:
            rule, column = key
            position = names.index(column) if column in names else len(names)
            return RULES.index(rule), position, column or ""

        return [
            Violation(rule, column, found.count, _message(rule, column, found), tuple(found.samples))
            for (rule, column), found in sorted(self._items.items(), key=lambda item: order(item[0]))
        ]


def _message(rule: str, column: str | None, found: _Finding) -> str:
    templates = {
        "empty_input": "no rows to check: {detail}",
        "unreadable_file": "{count} file(s) could not be read as CSV or Parquet",
        "missing_column": "column {column} is missing ({count} rows)",
        "extra_column": "column {column} is not in the contract ({count} rows)",
        "wrong_type": "{count} values of {column} are not {detail}",
        "not_allowed_value": "{count} values of {column} are not {detail}",
        "out_of_range": "{count} values of {column} are outside {detail}",
        "unexpected_null": "{count} rows have no {column}, which is not nullable",
        "too_many_nulls": "{count} rows have no {column}: {detail}",
        "duplicate_value": "{count} rows repeat an earlier {column}, which must be unique",
    }
    return templates[rule].format(count=found.count, column=column, detail=found.detail)


# --- reading ----------------------------------------------------------------------------


@dataclass
class Dataset:
    """Data read with a contract's types, and what reading it found wrong.

    ``frame`` holds the contract's columns in contract order; rows of ``files[i]`` are
    ``frame`` rows ``offsets[i]:offsets[i + 1]``. ``reported`` marks, per column, rows
    whose value is null because a reading violation (wrong type, disallowed value,
    missing column) already accounts for it.
    """

    frame: pd.DataFrame
    files: list[str]
    offsets: npt.NDArray[np.int64]
    findings: _Findings = field(default_factory=_Findings)
    reported: dict[str, Mask] = field(default_factory=dict)
    source: str = ""

    @property
    def rows(self) -> int:
        """Number of rows read."""
        return len(self.frame)


def data_files(root: str | Path) -> list[Path]:
    """CSV (``.csv``, ``.csv.gz``) and Parquet (``.parquet``, ``.pq``) files under ``root``, sorted.

    Hidden files and folders and ``_``-prefixed markers (``_SUCCESS``, ``_temporary/``)
    are skipped. ``root`` may also be one data file.
    """
    root = Path(root)
    if root.is_file():
        return [root] if _file_kind(root) else []
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root).parts
        if any(part.startswith((".", "_")) for part in relative) or not path.is_file():
            continue
        if _file_kind(path):
            found.append(path)
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def _file_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return None


def read_dataset(root: str | Path, contract: Contract) -> Dataset:
    """Every data file under ``root`` as one frame with the contract's types (see the module doc).

    Never fails on bad data: unreadable files, missing and extra columns, values that
    do not parse and disallowed categories are recorded in the returned Dataset.
    """
    root = Path(root)
    files = data_files(root) if root.exists() else []
    base = root.parent if root.is_file() else root
    labelled = [(path.relative_to(base).as_posix(), path) for path in files]
    return _assemble(_read_parts(labelled, contract), contract, source=str(root))


def dataset_from_frame(frame: pd.DataFrame, contract: Contract, label: str = "<frame>") -> Dataset:
    """An in-memory frame (raw or typed) as a Dataset, as if read from one file called ``label``."""
    return _assemble([_Part.of_file(label, frame)], contract, source=label)


@dataclass(frozen=True)
class _Part:
    """One raw frame (or the error reading it) of files ``labels``: file i is rows ``offsets[i]:offsets[i + 1]``."""

    labels: list[str]
    offsets: npt.NDArray[np.int64]
    raw: pd.DataFrame | Exception

    @classmethod
    def of_file(cls, label: str, raw: pd.DataFrame | Exception) -> _Part:
        rows = 0 if isinstance(raw, Exception) else len(raw)
        return cls([label], np.array([0, rows], dtype=np.int64), raw)

    def files(self) -> Iterator[tuple[str, int, int]]:
        """Each file's label and its first and last-plus-one row in ``raw``."""
        return zip(self.labels, self.offsets[:-1].tolist(), self.offsets[1:].tolist())

    def add(
        self,
        findings: _Findings,
        rule: str,
        column: str | None,
        rows: Mask | None,
        detail: str,
        raw: pd.DataFrame,
        *,
        every_row: bool = False,
    ) -> None:
        """Record ``rule`` file by file, as reading each file alone would.

        ``rows`` marks the sample rows (None: each file's first row). A file counts its marked
        rows and is recorded only if it has some, or with ``every_row`` counts all its rows and
        is always recorded.
        """
        for label, first, end in self.files():
            if rows is None:
                positions = np.arange(first, min(end, first + 1))
            else:
                positions = np.flatnonzero(rows[first:end]) + first
            if every_row:
                findings.add(rule, column, end - first, detail, _raw_samples(raw, positions, label, first))
            elif len(positions):
                findings.add(rule, column, len(positions), detail, _raw_samples(raw, positions, label, first))


def _read_file(path: Path, contract: Contract) -> pd.DataFrame | Exception:
    """The file's raw frame; text columns come as strings (category/date columns as categoricals)."""
    try:
        if _file_kind(path) == "parquet":
            return pd.read_parquet(path, read_dictionary=_dictionary_columns(contract))
        dtypes: dict[str, Any] = {}
        for column in contract.columns:
            if column.type == "string":
                dtypes[column.name] = str
            elif column.type in ("category", "date"):
                dtypes[column.name] = "category"
        return pd.read_csv(path, dtype=dtypes, low_memory=False, encoding="utf-8-sig")  # BOM or not
    except Exception as error:  # any reader failure is a finding about this file, not a crash
        return error


def _dictionary_columns(contract: Contract) -> list[str]:
    """Columns whose Parquet text is read as a dictionary (a categorical): typed per distinct value, not per row."""
    return [column.name for column in contract.columns if column.type in ("category", "date")]


def _read_parts(files: Sequence[tuple[str, Path]], contract: Contract) -> Iterator[_Part]:
    """The files' raw frames in order: runs of Parquet files of one plain schema as one frame, the rest one by one.

    A run's frame is what reading its files one by one and joining the frames would give:
    its files have the same Arrow schema (pandas metadata included), of types whose pandas
    conversion depends on the type alone (numbers, bools, dictionaries of text, dates,
    timestamps without a zone; not plain text, whose conversion depends on pandas' string
    option), and each integer or bool column holds nulls in every file of the run or in
    none (an integer column with nulls converts to floats). Every other file, and any file
    pyarrow cannot read, is read alone by ``_read_file``, which records its error as before.
    A run holds at most ``RUN_BYTES`` of Arrow data (a file larger than that is a run of its own).
    """
    try:
        import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
    except ImportError:  # no pyarrow: CSV only, Parquet files fail in _read_file as before
        pa = pq = None
    dictionaries = _dictionary_columns(contract)
    run: list[tuple[str, Path, Any]] = []
    key: Any = None
    for label, path in files:
        table = _plain_table(path, pa, pq, dictionaries) if pq is not None and _file_kind(path) == "parquet" else None
        if table is None:
            yield from _joined(run, contract)
            yield _Part.of_file(label, _read_file(path, contract))
            continue
        table_key = (table.schema, _null_columns(table, pa))
        if run and (not _same_run(key, table_key) or sum(item.nbytes for *_, item in run) + table.nbytes > RUN_BYTES):
            yield from _joined(run, contract)
        if not run:
            key = table_key
        run.append((label, path, table))
        del table  # the run holds it: converting the run releases it
    yield from _joined(run, contract)


# Arrow bytes a run holds at most before it is converted (then held a second time, as pandas, column by column).
RUN_BYTES = 64 * 1024 * 1024


def _plain_table(path: Path, pa: Any, pq: Any, dictionaries: list[str]) -> Any:
    """The file as an Arrow table, read as ``pd.read_parquet`` reads it, if its schema is plain; else None."""
    try:
        if not _plain_schema(pq.read_schema(path), pa, dictionaries):
            return None
        return pq.read_table(path, use_pandas_metadata=True, read_dictionary=dictionaries)
    except Exception:  # then read alone: its error is recorded as pandas reports it
        return None


def _null_columns(table: Any, pa: Any) -> tuple[bool, ...]:
    """Per column, whether it is an integer or bool column holding nulls (pandas converts those by content)."""
    return tuple(
        (pa.types.is_integer(column.type) or pa.types.is_boolean(column.type)) and column.null_count > 0
        for column in table.columns
    )


def _same_run(key: Any, other: Any) -> bool:
    return bool(key[0].equals(other[0], check_metadata=True)) and key[1] == other[1]


def _joined(run: list[tuple[str, Path, Any]], contract: Contract) -> Iterator[_Part]:
    """The run's tables as one raw frame (and the run emptied); its files one by one if pandas cannot convert it."""
    if not run:
        return
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    files = [(label, path) for label, path, _ in run]
    offsets = np.concatenate([[0], np.cumsum([len(table) for *_, table in run], dtype=np.int64)]).astype(np.int64)
    table = pa.concat_tables([table for *_, table in run])
    run.clear()
    try:  # each Arrow column is released once converted (the run's tables are gone), one pandas block a column
        raw = table.to_pandas(self_destruct=True, split_blocks=True)
    except Exception:  # e.g. pandas metadata it cannot apply: each file alone, its error as pandas reports it
        raw = None
    del table
    pa.default_memory_pool().release_unused()  # the allocator would keep the run's Arrow memory for the next run
    if raw is None:
        for label, path in files:
            yield _Part.of_file(label, _read_file(path, contract))
        return
    yield _Part([label for label, _ in files], offsets, raw)
    del raw


def _plain_schema(schema: Any, pa: Any, dictionaries: list[str]) -> bool:
    names = list(schema.names)
    if len(set(names)) != len(names):
        return False
    for field_ in schema:
        kind = field_.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            if field_.name not in dictionaries:
                return False
        elif pa.types.is_dictionary(kind):
            if not (pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type)):
                return False
        elif pa.types.is_timestamp(kind):
            if kind.tz is not None:
                return False
        elif not (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_date32(kind)
        ):
            return False
    return True


def _assemble(parts: Iterable[_Part], contract: Contract, source: str) -> Dataset:
    findings = _Findings()
    frames: list[dict[str, Any]] = []
    labels: list[str] = []
    lengths: list[int] = []
    masks: list[dict[str, Mask]] = []
    for part in parts:
        if isinstance(part.raw, Exception):
            reason = f"{type(part.raw).__name__}: {part.raw}".strip()
            for label in part.labels:
                findings.add("unreadable_file", None, 1, "", [{FILE_KEY: label, "error": reason[:500]}])
            continue
        typed, invalid = _coerce_file(part.raw, contract, part, findings)
        frames.append(typed)
        masks.append(invalid)
        labels.extend(part.labels)
        lengths.extend(np.diff(part.offsets).tolist())
        del part  # its raw frame, before the next one is read
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    frame_lengths = [len(next(iter(frame.values()))) if frame else 0 for frame in frames]
    frame = _concat(frames, contract)
    reported: dict[str, Mask] = {}
    for name in {name for invalid in masks for name in invalid}:
        pieces = [invalid.get(name, np.zeros(frame_lengths[index], dtype=bool)) for index, invalid in enumerate(masks)]
        reported[name] = np.concatenate(pieces)
    return Dataset(frame, labels, offsets, findings, reported, source)


def _coerce_file(
    raw: pd.DataFrame, contract: Contract, part: _Part, findings: _Findings
) -> tuple[dict[str, Any], dict[str, Mask]]:
    """A part's frame in the contract's types; records its files' violations, returns its null-because-invalid masks."""
    rows = len(raw)
    raw = raw.reset_index(drop=True)  # a Parquet file may carry its own index
    typed: dict[str, Any] = {}
    invalid: dict[str, Mask] = {}
    for extra in [name for name in raw.columns if name not in contract.names]:
        part.add(findings, "extra_column", str(extra), raw[extra].notna().to_numpy(), "", raw, every_row=True)
    for spec in contract.columns:
        if spec.name not in raw.columns:
            typed[spec.name] = _empty_column(spec, rows)
            invalid[spec.name] = np.ones(rows, dtype=bool)
            part.add(findings, "missing_column", spec.name, None, "", raw, every_row=True)
            continue
        values, bad = coerce_column(raw[spec.name], spec)
        typed[spec.name] = values
        if bad is not None and bad.any():
            invalid[spec.name] = bad
            rule = "not_allowed_value" if spec.type == "category" else "wrong_type"
            part.add(findings, rule, spec.name, bad, spec.describe_type(), raw)
    # Columns, not a frame: a frame would consolidate them into one copy per dtype, and _concat
    # would then hold every file's frame and the whole result at once.
    return typed, invalid


def _concat(frames: list[dict[str, Any]], contract: Contract) -> pd.DataFrame:
    """Every file's typed columns as one frame, built column by column.

    Each file's column is released as soon as it is joined, so the peak is the data plus
    one column, not two copies of the data.
    """
    if not frames:
        return pd.DataFrame({spec.name: _empty_column(spec, 0) for spec in contract.columns})
    columns: dict[str, Any] = {}
    for spec in contract.columns:
        pieces = [_series(frame.pop(spec.name)) for frame in frames]
        column = pieces[0] if len(pieces) == 1 else pd.concat(pieces, ignore_index=True)
        del pieces
        if spec.type == "int" and column.dtype.kind == "f" and not column.isna().any():
            column = column.astype(np.int64)
        elif spec.type == "bool" and column.dtype != bool and not column.isna().any():
            column = column.astype(bool)
        elif spec.type == "category" and not isinstance(column.dtype, pd.CategoricalDtype):
            column = pd.Series(pd.Categorical(column, categories=list(spec.allowed)))
        columns[spec.name] = column
    return pd.DataFrame(columns, copy=False)


def _series(values: Any) -> pd.Series:
    """``values`` as a Series numbered from 0; an array is copied only if it is a view (of a raw frame's data)."""
    if isinstance(values, np.ndarray):
        values = pd.Series(values, copy=values.base is not None or not values.flags.writeable)
    series = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    index = series.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return series
    return series.reset_index(drop=True)


def _empty_column(spec: ColumnSpec, rows: int) -> Any:
    """A column of ``rows`` nulls in the type ``spec`` gives it."""
    if spec.type == "category":
        return pd.Categorical.from_codes(np.full(rows, -1), categories=list(spec.allowed))
    if spec.type == "date":
        return pd.Series(np.full(rows, np.datetime64("NaT"), dtype="datetime64[ns]"))
    if spec.type == "bool":
        return pd.array([None] * rows, dtype="boolean")
    if spec.type == "string":
        return pd.Series([None] * rows, dtype=object)
    return np.full(rows, np.nan)


# --- types ------------------------------------------------------------------------------


def coerce_column(raw: pd.Series, spec: ColumnSpec) -> tuple[Any, Mask | None]:
    """``raw`` in the type ``spec`` gives it, and the mask of values present but not of that type.

    Values that do not parse (or categories that are not allowed) become nulls.
    """
    converters = {
        "int": _as_int,
        "float": _as_float,
        "bool": _as_bool,
        "date": _as_date,
        "category": _as_category,
        "string": _as_string,
    }
    return converters[spec.type](raw, spec)


def _numbers(raw: pd.Series) -> tuple[npt.NDArray[np.float64], Mask | None]:
    """float64 values of ``raw``; the mask marks present values that are not numbers."""
    present = raw.notna().to_numpy()
    if pd.api.types.is_bool_dtype(raw.dtype):  # True/False are not numbers here
        return np.full(len(raw), np.nan), present
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.to_numpy(dtype=np.float64, na_value=np.nan), None
    source = raw.astype(object) if isinstance(raw.dtype, pd.CategoricalDtype) else raw
    parsed = pd.to_numeric(source, errors="coerce")
    values = np.asarray(parsed, dtype=np.float64)
    return values, present & np.isnan(values)


def _as_float(raw: pd.Series, spec: ColumnSpec) -> tuple[Any, Mask | None]:
    values, bad = _numbers(raw)
    infinite = np.isinf(values)
    if infinite.any():
        bad = infinite if bad is None else bad | infinite
        values = np.where(infinite, np.nan, values)
    return values, bad


def _as_int(raw: pd.Series, spec: ColumnSpec) -> tuple[Any, Mask | None]:
    if raw.dtype.kind in "iu" and not raw.isna().any():
        return raw.to_numpy(dtype=np.int64), None
    values, bad = _as_float(raw, spec)
    fractional = np.isfinite(values) & (values != np.floor(values))
    if fractional.any():
        bad = fractional if bad is None else bad | fractional
        values = np.where(fractional, np.nan, values)
    if not np.isnan(values).any():
        return values.astype(np.int64), bad
    return values, bad


def _categories(raw: pd.Series) -> tuple[pd.Index, npt.NDArray[np.int64]]:
    """Distinct values of ``raw`` and each row's position among them (-1 for null)."""
    categorical = raw if isinstance(raw.dtype, pd.CategoricalDtype) else raw.astype("category")
    return categorical.cat.categories, categorical.cat.codes.to_numpy().astype(np.int64)


def _through_categories(codes: npt.NDArray[np.int64], per_category: npt.NDArray[Any], null: Any) -> npt.NDArray[Any]:
    """Each row's value from its category's value (``null`` where the row is null)."""
    lookup = np.append(per_category, np.array([null], dtype=per_category.dtype))
    return np.asarray(lookup[codes])  # code -1 picks the appended null


def _as_category(raw: pd.Series, spec: ColumnSpec) -> tuple[Any, Mask | None]:
    categories, codes = _categories(raw)
    position = {value: index for index, value in enumerate(spec.allowed)}
    per_category = np.array([position.get(str(value), -1) for value in categories], dtype=np.int64)
    new_codes = _through_categories(codes, per_category, -1)
    bad = (codes >= 0) & (new_codes < 0)
    return pd.Categorical.from_codes(new_codes, categories=list(spec.allowed)), bad


def _as_date(raw: pd.Series, spec: ColumnSpec) -> tuple[Any, Mask | None]:
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        if getattr(raw.dtype, "tz", None) is not None:
            raw = raw.dt.tz_convert("UTC").dt.tz_localize(None)
        return raw.astype("datetime64[ns]"), None
    categories, codes = _categories(raw)
    if categories.inferred_type in ("string", "empty"):
        parsed = pd.to_datetime(pd.Index(categories.astype(str)), format="%Y-%m-%d", errors="coerce")
        per_category = np.asarray(parsed.to_numpy(dtype="datetime64[ns]"))
        for index in np.flatnonzero(np.isnat(per_category)):  # few distinct values: ISO date-times
            per_category[index] = _iso_datetime(str(categories[index]))
    elif categories.inferred_type in ("date", "datetime", "datetime64"):
        per_category = np.asarray(pd.to_datetime(categories, errors="coerce").to_numpy(dtype="datetime64[ns]"))
    else:  # numbers and anything else are not dates
        per_category = np.full(len(categories), np.datetime64("NaT"), dtype="datetime64[ns]")
    values = _through_categories(codes, per_category, np.datetime64("NaT", "ns"))
    bad = (codes >= 0) & np.isnat(values)
    return pd.Series(values, dtype="datetime64[ns]"), bad


def _iso_datetime(text: str) -> np.datetime64:
    """``2024-01-31 00:00:00`` and other ISO 8601 date-times; NaT for anything else."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return np.datetime64("NaT", "ns")
    offset = moment.utcoffset()
    if offset is not None:  # as UTC
        moment = moment.replace(tzinfo=None) - offset
    return np.datetime64(moment, "ns")


def _as_bool(raw: pd.Series, spec: ColumnSpec) -> tuple[Any, Mask | None]:
    if pd.api.types.is_bool_dtype(raw.dtype):
        return (raw.to_numpy(dtype=bool) if not raw.isna().any() else raw.astype("boolean")), None
    categories, codes = _categories(raw)
    words = [str(value).strip().lower() for value in categories]
    per_category = np.array([1 if word in _TRUE else 0 if word in _FALSE else -1 for word in words], dtype=np.int8)
    values = _through_categories(codes, per_category, -2)
    bad = values == -1
    result = pd.array(values == 1, dtype="boolean")
    result[values < 0] = pd.NA
    return result, bad


def _as_string(raw: pd.Series, spec: ColumnSpec) -> tuple[Any, Mask | None]:
    textual = raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype)
    if textual and not isinstance(raw.dtype, pd.CategoricalDtype):
        return raw, None
    return raw.astype(str).astype(object).where(raw.notna().to_numpy(), None), None


# --- checks -----------------------------------------------------------------------------


def check(dataset: Dataset, contract: Contract) -> list[Violation]:
    """Every violation of ``contract`` in ``dataset``: those found reading it and those of its values."""
    findings = dataset.findings.copy()
    if dataset.rows == 0:
        if dataset.files:
            detail = f"{len(dataset.files)} data file(s) under {dataset.source} hold no rows"
        elif Path(dataset.source).exists():
            detail = f"no CSV or Parquet files under {dataset.source}"
        else:
            detail = f"{dataset.source} does not exist"

        findings.add("empty_input", None, 0, detail, [])
        return findings.violations(contract)
    for spec in contract.columns:
        _check_column(dataset, spec, findings)
    return findings.violations(contract)


def validate_frame(frame: pd.DataFrame, contract: Contract) -> list[Violation]:
    """Every violation of ``contract`` in an in-memory frame (raw strings or typed values)."""
    return check(dataset_from_frame(frame, contract), contract)


def _check_column(dataset: Dataset, spec: ColumnSpec, findings: _Findings) -> None:
    column = dataset.frame[spec.name]
    null = column.isna().to_numpy()
    reported = dataset.reported.get(spec.name)
    missing = null & ~reported if reported is not None else null
    missing_count = int(missing.sum())
    if missing_count and not spec.nullable:
        findings.add("unexpected_null", spec.name, missing_count, "", _samples(dataset, missing))
    elif spec.max_null_fraction is not None and missing_count > spec.max_null_fraction * dataset.rows:
        detail = f"{missing_count / dataset.rows:.1%} of rows, at most {spec.max_null_fraction:.1%} may be null"
        findings.add("too_many_nulls", spec.name, missing_count, detail, _samples(dataset, missing))
    if spec.min is not None or spec.max is not None:
        outside = _outside(column, spec)
        if outside.any():
            findings.add(
                "out_of_range", spec.name, int(outside.sum()), spec.describe_range(), _samples(dataset, outside)
            )
    if spec.unique:
        repeated = column.duplicated(keep="first").to_numpy() & ~null
        if repeated.any():
            findings.add("duplicate_value", spec.name, int(repeated.sum()), "", _samples(dataset, repeated))


def _outside(column: pd.Series, spec: ColumnSpec) -> Mask:
    """Rows whose value lies outside the column's bounds (nulls are inside)."""
    values: npt.NDArray[Any]
    low: Any
    high: Any
    if spec.type == "date":
        values = column.to_numpy(dtype="datetime64[ns]")
        low = None if spec.min is None else np.datetime64(str(spec.min), "ns")
        high = None if spec.max is None else np.datetime64(str(spec.max), "ns")
    else:
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        low = None if spec.min is None else float(spec.min)
        high = None if spec.max is None else float(spec.max)
    outside = np.zeros(len(values), dtype=bool)
    if low is not None:
        outside |= values < low
    if high is not None:
        outside |= values > high
    return outside


# --- samples ----------------------------------------------------------------------------


def _raw_samples(raw: pd.DataFrame, positions: npt.NDArray[np.int64], label: str, first: int) -> list[dict[str, Any]]:
    """Up to SAMPLE_ROWS rows of a raw frame, as read, naming ``label`` and the row in that file (row 0: ``first``)."""
    picked = [int(position) for position in positions[:SAMPLE_ROWS]]
    rows = raw.iloc[picked].to_dict(orient="records") if picked else []
    return [_sample(row, label, position - first) for row, position in _with_positions(rows, picked)]


def _samples(dataset: Dataset, mask: Mask) -> list[dict[str, Any]]:
    """Up to SAMPLE_ROWS typed rows where ``mask`` holds, each naming its file and row in that file."""
    picked = [int(position) for position in np.flatnonzero(mask)[:SAMPLE_ROWS]]
    rows = dataset.frame.iloc[picked].to_dict(orient="records") if picked else []
    samples = []
    for row, position in _with_positions(rows, picked):
        index = int(np.searchsorted(dataset.offsets, position, side="right")) - 1
        samples.append(_sample(row, dataset.files[index], position - int(dataset.offsets[index])))
    return samples


def _with_positions(rows: list[dict[str, Any]], positions: list[int]) -> Iterator[tuple[dict[str, Any], int]]:
    """Pairs of equally long lists."""
    return zip_equal(rows, positions)


def zip_equal(*sequences: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
    """``zip`` of sequences that must be equally long; ValueError otherwise.

    ``zip(strict=True)`` does the same from Python 3.10; the scikit-learn image runs 3.9.
    """
    lengths = {len(sequence) for sequence in sequences}
    if len(lengths) > 1:
        raise ValueError(f"sequences of unequal lengths {[len(sequence) for sequence in sequences]} zipped")
    return zip(*sequences)


def _sample(row: Mapping[Any, Any], label: str, position: int) -> dict[str, Any]:
    sample: dict[str, Any] = {FILE_KEY: label, ROW_KEY: position}
    sample.update({str(key): json_safe(value) for key, value in row.items()})
    return sample


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars to Python, NaN/NaT/NA to None, dates to ISO text."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return None
        return number if math.isfinite(number) else str(number)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return str(value)
    return str(value)
