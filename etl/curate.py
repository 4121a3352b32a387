"""Curate one dataset of the lake: raw CSV/Parquet files -> typed Parquet, and rejected rows kept aside.

The AWS Glue 5.0 job script (Spark 3.5). It runs alone: Glue uploads this one file, so it
imports only the standard library and PySpark (boto3 lazily, to publish metrics and to
register catalog partitions). Locally ``python -m etl.local`` runs it on folders.

Per run:

1. Read the data contract (``--contract_uri``) and list the raw files
   ``<raw_uri>/<dataset>/dt=YYYY-MM-DD/*.csv|*.csv.gz|*.parquet|*.pq`` through Spark's
   Hadoop FileSystem (``file://`` and ``s3://`` alike).
2. Compare the listing with the job's manifest (``<state_uri>/<dataset>/manifest.json``:
   path, size and modification time of every file already processed). A partition is
   processed when one of its files is new, changed or removed, or when ``--partitions``
   or ``--full_refresh`` asks for it. Every file of a processed partition is read again,
   so an output partition is always the complete result of its raw folder and a re-run
   gives the same content.
3. Parse every contract column from its raw text and check each row (``RULES``). Rows
   breaking a rule go to quarantine (raw text, first rule, all violations, source file,
   run id). Among the rows that pass, rows sharing the contract's id columns collapse
   to one when they are identical, and are all quarantined as ``conflicting_duplicate``
   when they differ.
4. Replace the processed partitions of ``<curated_uri>/<dataset>/dt=...`` and
   ``<quarantine_uri>/<dataset>/dt=...`` (dynamic partition overwrite; a processed
   partition left without rows is deleted), optionally register the partitions in the
   Glue catalog, then write the new manifest, the run report
   (``<report_uri>/<dataset>/<run_id>.json``) and, optionally, CloudWatch metrics.

Exit codes of ``main``: 0 for a run that finished (also "no new files" and "no raw
data"), 2 for an unusable argument, contract, manifest or raw file (the message names it).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as sf
from pyspark.sql import types as st

COLUMN_TYPES = ("string", "int", "float", "bool", "date", "category")
# Contract type -> Spark SQL type of the curated column (the Glue types of stacks/datasets.py).
SPARK_TYPES = {
    "string": "string",
    "category": "string",
    "int": "bigint",
    "float": "double",
    "bool": "boolean",
    "date": "date",
}
# Row rules in the order that picks a quarantined row's ``_rule`` (within a rule: contract column order).
ROW_RULES = (
    "missing_column",
    "wrong_type",
    "not_allowed_value",
    "out_of_range",
    "unexpected_null",
    "partition_mismatch",
)
RULES = (*ROW_RULES, "conflicting_duplicate")
PARTITION = "dt"
QUARANTINE_COLUMNS = ("_rule", "_violations", "_source_file", "_run_id")
METRIC_NAMESPACE = "MLOps/ETL"
METRICS_PER_CALL = 1000
CATALOG_BATCH = 100  # Glue's limit per BatchCreate/Update/DeletePartition call
SAMPLES = 5
# At most this many shared key values are broadcast to the tasks (deduplicate); more group every row.
BROADCAST_KEYS = 200_000
MANIFEST_FORMAT = 1
TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_WORDS = ("false", "f", "no", "n", "0", "0.0")
# Accepted number syntax (after trimming spaces): no hex, no NaN/Infinity, no Java suffixes like 1d.
NUMBER_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
INTEGER_PATTERN = r"^[+-]?[0-9]+$"
# A date, or a date-time at midnight (how pandas and Parquet timestamps spell a date).
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T]00:00(:00(\.0+)?)?)?$"
_FOLDER = re.compile(r"^dt=([0-9]{4}-[0-9]{2}-[0-9]{2})$")
_SUFFIXES = ((".csv.gz", "csv"), (".csv", "csv"), (".parquet", "parquet"), (".pq", "parquet"))
_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_MISSING = "_missing"
_SOURCE = "_source_file"
_OUTCOME = "_outcome"
_LARGEST_LONG = 9.2e18  # doubles beyond this do not fit a bigint

Progress = Callable[[str], None]


class JobError(Exception):
    """The job cannot run: the message names the argument, file or contract key at fault."""


class ContractError(JobError):
    """The contract is missing or unusable."""


# --- the contract -------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    nullable: bool = False
    min: float | str | None = None
    max: float | str | None = None
    allowed: tuple[str, ...] = ()
    max_null_fraction: float | None = None

    @property
    def spark_type(self) -> str:
        return SPARK_TYPES[self.type]


@dataclass(frozen=True)
class Contract:
    dataset: str
    version: str
    columns: tuple[ColumnSpec, ...]
    id_columns: tuple[str, ...] = ()
    partition_column: str | None = None
    source: str = "<contract>"

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]


def parse_contract(text: str, source: str = "<contract>") -> Contract:
    """The contract in ``text`` (JSON); ContractError naming ``source`` and the key at fault."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ContractError(f"{source}: not valid JSON: {error.msg} (line {error.lineno})") from None

    def fail(key: str, problem: str) -> ContractError:
        return ContractError(f"{source}: {key}: {problem}")

    if not isinstance(data, dict):
        raise fail("(top level)", "must be a JSON object")
    for key in ("dataset", "version"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise fail(key, "must be a non-empty string")
    raw_columns = data.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        raise fail("columns", "must be a non-empty list of column objects")
    columns = tuple(_parse_column(item, f"columns[{index}]", fail) for index, item in enumerate(raw_columns))
    names = [column.name for column in columns]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise fail(f"columns[{index}].name", f"{name!r} is defined twice")
    id_columns = data.get("id_columns", [])
    if not isinstance(id_columns, list) or any(name not in names for name in id_columns):
        raise fail("id_columns", "must be a list of column names of the contract")
    partition = data.get("partition_column")
    if partition is not None:
        if partition not in names:
            raise fail("partition_column", f"{partition!r} is not a column of the contract")
        if columns[names.index(partition)].type != "date":
            raise fail("partition_column", f"{partition!r} must be a date column to match dt=YYYY-MM-DD folders")
    return Contract(
        dataset=data["dataset"],
        version=data["version"],
        columns=columns,
        id_columns=tuple(id_columns),
        partition_column=partition,
        source=source,
    )


def _parse_column(item: object, where: str, fail: Callable[[str, str], ContractError]) -> ColumnSpec:
    if not isinstance(item, dict):
        raise fail(where, "must be a JSON object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise fail(f"{where}.name", "must be a non-empty string")
    if name == PARTITION or name.startswith("_"):
        raise fail(f"{where}.name", f"{name!r} is reserved by the ETL job (dt and names starting with _)")
    kind = item.get("type")
    if kind not in COLUMN_TYPES:
        raise fail(f"{where}.type", f"{kind!r} is not one of {', '.join(COLUMN_TYPES)}")
    nullable = item.get("nullable", False)
    if not isinstance(nullable, bool):
        raise fail(f"{where}.nullable", "must be true or false")
    allowed = item.get("allowed", [])
    if not isinstance(allowed, list) or not all(isinstance(value, str) for value in allowed):
        raise fail(f"{where}.allowed", "must be a list of strings")
    if kind == "category" and not allowed:
        raise fail(f"{where}.allowed", "a category column needs a non-empty list of allowed values")
    bounds = [_parse_bound(item.get(key), kind, f"{where}.{key}", fail) for key in ("min", "max")]
    fraction = item.get("max_null_fraction")
    if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, int | float)):
        raise fail(f"{where}.max_null_fraction", "must be a number between 0 and 1")
    if fraction is not None and not 0 <= fraction <= 1:
        raise fail(f"{where}.max_null_fraction", "must be a number between 0 and 1")
    return ColumnSpec(
        name=name,
        type=kind,
        nullable=nullable,
        min=bounds[0],
        max=bounds[1],
        allowed=tuple(allowed),
        max_null_fraction=None if fraction is None else float(fraction),
    )


def _parse_bound(value: object, kind: str, key: str, fail: Callable[[str, str], ContractError]) -> float | str | None:
    if value is None:
        return None
    if kind == "date":
        try:
            return dt.date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise fail(key, f"must be a date as YYYY-MM-DD, got {value!r}") from None
    if kind not in ("int", "float"):
        raise fail(key, f"only int, float and date columns take bounds, this column is {kind}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(key, f"must be a finite number, got {value!r}")
    return float(value)


# --- storage through Hadoop's FileSystem --------------------------------------------------


@dataclass(frozen=True)
class RawFile:
    """A raw data file: qualified path, path under the dataset root, size, modification time (ms), partition."""

    path: str
    relative: str
    size: int
    modified: int
    dt: str
    format: str


class Storage:
    """Files through the Hadoop FileSystem of the Spark session: the same calls for file://, s3:// and s3a://."""

    def __init__(self, spark: SparkSession) -> None:
        # py4j objects carry no static types: the JVM view and the Hadoop objects are Any.
        self._jvm: Any = spark._jvm
        self._conf: Any = spark._jsc.hadoopConfiguration()

    def _resolve(self, uri: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        return path.getFileSystem(self._conf), path

    def qualified(self, uri: str) -> str:
        fs, path = self._resolve(uri)
        return str(fs.makeQualified(path).toString())

    def exists(self, uri: str) -> bool:
        fs, path = self._resolve(uri)
        return bool(fs.exists(path))

    def read_bytes(self, uri: str) -> bytes:
        fs, path = self._resolve(uri)
        stream = fs.open(path)
        try:
            return bytes(stream.readAllBytes())
        finally:
            stream.close()

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write ``data`` to ``uri``: in one piece on object stores, through a renamed temporary file elsewhere."""
        fs, path = self._resolve(uri)
        if fs.getScheme() in ("s3", "s3a", "s3n", "gs", "abfs", "abfss"):
            target = path
        else:
            target = self._jvm.org.apache.hadoop.fs.Path(uri + ".tmp")
        stream = fs.create(target, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()
        if target is not path:
            fs.delete(path, False)
            if not fs.rename(target, path):
                raise JobError(f"{uri}: could not move the written file into place")

    def delete(self, uri: str) -> bool:
        fs, path = self._resolve(uri)
        return bool(fs.exists(path)) and bool(fs.delete(path, True))

    def list_files(self, uri: str) -> list[tuple[str, int, int]]:
        """(qualified path, size, modification time in ms) of every file under ``uri``."""
        fs, path = self._resolve(uri)
        if not fs.exists(path):
            return []
        found = []
        iterator = fs.listFiles(path, True)
        while iterator.hasNext():
            status = iterator.next()
            found.append((str(status.getPath().toString()), int(status.getLen()), int(status.getModificationTime())))
        return sorted(found)

    def first_line(self, uri: str) -> str | None:
        """The first line of a text file (decompressed by its suffix, e.g. .gz); None for an empty file."""
        fs, path = self._resolve(uri)
        stream = fs.open(path)
        codec = self._jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(self._conf).getCodec(path)
        if codec is not None:
            stream = codec.createInputStream(stream)
        reader = self._jvm.java.io.BufferedReader(self._jvm.java.io.InputStreamReader(stream, "UTF-8"))
        try:
            line = reader.readLine()
        finally:
            reader.close()
        return None if line is None else str(line)

    def parquet_schema(self, uri: str) -> tuple[str, list[str]]:
        """The Parquet schema of a file (as text) and its top-level column names, from the footer."""
        _fs, path = self._resolve(uri)
        hadoop = self._jvm.org.apache.parquet.hadoop
        reader = hadoop.ParquetFileReader.open(hadoop.util.HadoopInputFile.fromPath(path, self._conf))
        try:
            schema = reader.getFooter().getFileMetaData().getSchema()
        finally:
            reader.close()
        return str(schema.toString()), [str(column.getName()) for column in schema.getFields()]


def file_format(name: str) -> str | None:
    """``csv`` or ``parquet`` from a file name's suffix; None for anything else."""
    lowered = name.lower()
    return next((kind for suffix, kind in _SUFFIXES if lowered.endswith(suffix)), None)


def select_raw_files(listing: Iterable[tuple[str, int, int]], root: str) -> tuple[list[RawFile], list[str]]:
    """The data files of a qualified dataset root, and the relative paths of the files ignored.

    A data file sits directly in a ``dt=YYYY-MM-DD`` folder (a real date) and has a CSV
    or Parquet suffix. Hidden and ``_``-prefixed names (``_SUCCESS``) are skipped silently.
    """
    prefix = root.rstrip("/") + "/"
    files: list[RawFile] = []
    ignored: list[str] = []
    for path, size, modified in listing:
        relative = path[len(prefix) :] if path.startswith(prefix) else path
        parts = relative.split("/")
        if any(part.startswith((".", "_")) for part in parts):
            continue
        kind = file_format(parts[-1])
        match = _FOLDER.match(parts[0]) if len(parts) == 2 else None
        day = _valid_date(match.group(1)) if match else None
        if kind is None or day is None:
            ignored.append(relative)
            continue
        files.append(RawFile(path=path, relative=relative, size=size, modified=modified, dt=day, format=kind))
    return files, ignored


def _valid_date(text: str) -> str | None:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        return None


# --- what to process ----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Files that are new, changed or removed since the manifest, and the partitions to rebuild."""

    new: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    partitions: tuple[str, ...]


def plan_run(
    files: Sequence[RawFile],
    manifest: Mapping[str, Mapping[str, Any]],
    *,
    forced: Iterable[str] = (),
    full_refresh: bool = False,
) -> Plan:
    """Compare the listing with the manifest (relative path -> size, modified, dt): which partitions to rebuild.

    Files are known by their path under the dataset root, so a copied or moved raw zone
    (same names, sizes and modification times) is not new.
    """
    listed = {file.relative: file for file in files}
    new = sorted(path for path in listed if path not in manifest)
    changed = sorted(
        path
        for path, file in listed.items()
        if path in manifest
        and (manifest[path].get("size") != file.size or manifest[path].get("modified") != file.modified)
    )
    removed = sorted(path for path in manifest if path not in listed)
    touched = {listed[path].dt for path in (*new, *changed)}
    touched.update(str(manifest[path].get("dt")) for path in removed)
    touched.update(forced)
    if full_refresh:
        touched.update(file.dt for file in files)
        touched.update(str(entry.get("dt")) for entry in manifest.values())
    return Plan(tuple(new), tuple(changed), tuple(removed), tuple(sorted(touched)))


def manifest_entries(files: Iterable[RawFile]) -> dict[str, dict[str, Any]]:
    return {file.relative: {"size": file.size, "modified": file.modified, "dt": file.dt} for file in files}


def parse_manifest(text: str, source: str) -> dict[str, dict[str, Any]]:
    """The files of a manifest document; JobError naming ``source`` if it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise JobError(
            f"{source}: the manifest is not valid JSON ({error.msg}); run with --full_refresh true to rebuild it"
        ) from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(isinstance(entry, dict) for entry in files.values()):
        raise JobError(f"{source}: the manifest has no 'files' object; run with --full_refresh true to rebuild it")
    return files


# --- reading ------------------------------------------------------------------------------


@dataclass
class RawRead:
    """Raw rows as text, and what reading found about whole files."""

    frame: DataFrame
    files_read: int
    warnings: list[dict[str, Any]] = field(default_factory=list)


def read_raw(spark: SparkSession, storage: Storage, files: Sequence[RawFile], contract: Contract) -> RawRead:
    """Every row of ``files``: each contract column as text, ``_missing``, ``_source_file`` and ``dt``.

    Files are grouped by header (CSV) or Parquet schema, so each group is read with the
    right column names; a contract column a file lacks is null and named in ``_missing``.
    """
    groups: dict[tuple[str, ...], list[RawFile]] = {}
    columns_of: dict[tuple[str, ...], list[str]] = {}
    empty: list[str] = []
    extra: dict[str, list[str]] = {}
    for file in files:
        try:
            if file.format == "csv":
                line = storage.first_line(file.path)
                if line is None:
                    empty.append(file.path)
                    continue
                names = next(csv.reader([line.lstrip("\ufeff")]), [])
                key = ("csv", *names)
            else:
                schema, names = storage.parquet_schema(file.path)
                key = ("parquet", schema)
        except Exception as error:  # py4j wraps the JVM's IO and format errors
            raise JobError(f"{file.path}: cannot read the file: {_first_line(error)}") from None
        groups.setdefault(key, []).append(file)
        columns_of[key] = names
        for name in names:
            if name not in contract.names:
                extra.setdefault(name, []).append(file.path)
    frames = [_read_group(spark, key[0], columns_of[key], group, contract) for key, group in groups.items()]
    warnings: list[dict[str, Any]] = []
    if empty:
        warnings.append(_warning("empty_file", None, len(empty), "files without a header row were skipped", empty))
    for name, paths in sorted(extra.items()):
        warnings.append(_warning("extra_column", name, len(paths), "column is not in the contract, dropped", paths))
    if not frames:
        empty_schema = st.StructType(
            [st.StructField(name, st.StringType()) for name in contract.names]
            + [
                st.StructField(_MISSING, st.ArrayType(st.StringType())),
                st.StructField(_SOURCE, st.StringType()),
                st.StructField(PARTITION, st.DateType()),
            ]
        )
        return RawRead(spark.createDataFrame([], empty_schema), 0, warnings)
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other)
    return RawRead(frame, sum(len(group) for group in groups.values()), warnings)


def _read_group(
    spark: SparkSession, kind: str, names: list[str], files: list[RawFile], contract: Contract
) -> DataFrame:
    paths = [file.path for file in files]
    # The dataset root as basePath: Spark takes dt from each file's dt=YYYY-MM-DD folder once per file
    # (a partition value), instead of extracting it from the file name of every row.
    root = files[0].path[: len(files[0].path) - len(files[0].relative)]
    position = {name: index for index, name in reversed(list(enumerate(names)))}  # first occurrence wins
    if kind == "csv":
        # Positional field names: headers may repeat names or hold dots and spaces.
        schema = st.StructType(
            [st.StructField(f"_c{index}", st.StringType()) for index in range(len(names))]
            + [st.StructField(PARTITION, st.DateType())]
        )
        frame = (
            spark.read.schema(schema)
            .options(header=True, enforceSchema=True, escape='"', mode="PERMISSIVE", encoding="UTF-8")
            .option("basePath", root)
            .csv(paths)
        )
        field_of = {name: f"_c{index}" for name, index in position.items()}
    else:
        frame = spark.read.option("mergeSchema", "false").option("basePath", root).parquet(*paths)
        field_of = {name: frame.columns[index] for name, index in position.items()}
    missing = [name for name in contract.names if name not in field_of]
    values = [
        _col(field_of[name]).cast("string").alias(name) if name in field_of else sf.lit(None).cast("string").alias(name)
        for name in contract.names
    ]
    return frame.select(
        *values,
        sf.array(*[sf.lit(name) for name in missing]).cast("array<string>").alias(_MISSING),
        sf.input_file_name().alias(_SOURCE),
        sf.col(PARTITION).cast("date").alias(PARTITION),
    )


def _col(name: str) -> Column:
    return sf.col("`" + name.replace("`", "``") + "`")


def _typed(name: str) -> str:
    return f"_typed_{name}"


# --- checking -----------------------------------------------------------------------------


def _numbers(raw: Column) -> Column:
    """The text of ``raw`` (trimmed) as a double when it has the accepted number syntax, else null."""
    text = sf.trim(raw)
    return sf.when(text.rlike(NUMBER_PATTERN), text.cast("double"))


def _parse(raw: Column, spec: ColumnSpec) -> Column:
    """The value of ``raw`` (text) in the column's Spark type; null when absent or not of that type.

    An int is read from its digits when it has integer syntax (the common case: one
    pattern and one cast); only other spellings (``3.0``, ``3e2``, ...) are parsed as a
    number first and kept when whole.
    """
    text = sf.trim(raw)
    if spec.type in ("int", "float"):
        number = _numbers(raw)
        finite = number.isNotNull() & (sf.abs(number) < sf.lit(math.inf))
        if spec.type == "float":
            return sf.when(finite, number)
        whole = finite & (number == sf.floor(number)) & (sf.abs(number) < sf.lit(_LARGEST_LONG))
        return sf.when(text.rlike(INTEGER_PATTERN), text.cast("bigint")).when(whole, number.cast("bigint"))
    if spec.type == "date":
        return sf.when(text.rlike(DATE_PATTERN), sf.substring(text, 1, 10).cast("date"))
    if spec.type == "bool":
        word = sf.lower(text)
        return sf.when(word.isin(*TRUE_WORDS), sf.lit(True)).when(word.isin(*FALSE_WORDS), sf.lit(False))
    if spec.type == "category":
        return sf.when(raw.isin(*spec.allowed), raw)
    return sf.when(text != "", raw)


def _bound(value: float | str, spec: ColumnSpec) -> Column:
    return sf.lit(value).cast("date") if spec.type == "date" else sf.lit(value)


def _present(raw: Column) -> Column:
    return raw.isNotNull() & (sf.trim(raw) != "")


def _value_means_present(spec: ColumnSpec) -> bool:
    """Whether a parsed (non-null) value implies the raw text is present (not null, not blank).

    True for every type but a category that allows a blank value.
    """
    return spec.type != "category" or all(value.strip(" ") for value in spec.allowed)


def row_checks(contract: Contract) -> list[tuple[str, str, Column]]:
    """(rule, column, condition) of every row check, in the order that picks a row's first rule.

    A condition is true when the row breaks the check, and false or null otherwise. Each
    one tests the parsed value first: a valid value decides most checks without looking
    at the raw text again.
    """
    by_rule: dict[str, list[tuple[str, str, Column]]] = {rule: [] for rule in ROW_RULES}
    for spec in contract.columns:
        raw, typed = _col(spec.name), sf.col(_typed(spec.name))
        missing = sf.array_contains(sf.col(_MISSING), spec.name)
        present = _present(raw)
        by_rule["missing_column"].append(("missing_column", spec.name, missing))
        if spec.type in ("int", "float", "date", "bool"):
            by_rule["wrong_type"].append(("wrong_type", spec.name, typed.isNull() & present))
        if spec.type == "category":
            by_rule["not_allowed_value"].append(("not_allowed_value", spec.name, typed.isNull() & present))
        outside = [typed < _bound(spec.min, spec)] if spec.min is not None else []
        outside += [typed > _bound(spec.max, spec)] if spec.max is not None else []
        if outside:
            condition = outside[0] if len(outside) == 1 else outside[0] | outside[1]
            by_rule["out_of_range"].append(("out_of_range", spec.name, typed.isNotNull() & condition))
        if not spec.nullable:
            absent = ~present & ~missing
            if _value_means_present(spec):
                absent = typed.isNull() & absent
            by_rule["unexpected_null"].append(("unexpected_null", spec.name, absent))
        if spec.name == contract.partition_column:
            mismatch = typed.isNotNull() & (typed != sf.col(PARTITION))
            by_rule["partition_mismatch"].append(("partition_mismatch", spec.name, mismatch))
    return [check for rule in ROW_RULES for check in by_rule[rule]]


def check_rows(raw: DataFrame, contract: Contract) -> DataFrame:
    """``raw`` (text columns, ``_missing``, ``dt``) with each column parsed and the row rules applied.

    Adds ``_typed_<column>`` (the contract type, null when absent or invalid), ``_rule``
    (the first rule broken, null for a valid row) and ``_violations`` (every rule:column
    broken, comma-separated, null for a valid row).

    Three projections: the parsed values; ``_rule``, one CASE over the checks (for a
    valid row, every check is a comparison of a parsed value that is false); and the
    violation text, assembled only for a row whose ``_rule`` is set.
    """
    parsed = raw.select("*", *[_parse(_col(spec.name), spec).alias(_typed(spec.name)) for spec in contract.columns])
    checks = row_checks(contract)
    if not checks:
        none = sf.lit(None).cast("string")
        return parsed.select("*", none.alias("_rule"), none.alias("_violations"))
    first = sf.when(checks[0][2], sf.lit(checks[0][0]))
    for rule, _, condition in checks[1:]:
        first = first.when(condition, sf.lit(rule))
    ruled = parsed.select("*", first.alias("_rule"))
    labels = [sf.when(condition, sf.lit(f"{rule}:{column}")) for rule, column, condition in checks]
    return ruled.select(
        *parsed.columns,
        "_rule",
        sf.when(sf.col("_rule").isNotNull(), sf.concat_ws(",", *labels)).alias("_violations"),
    )


def _keys(contract: Contract) -> list[str]:
    """The columns that identify a row: the id columns, or every contract column when there are none."""
    return list(contract.id_columns) or contract.names


def duplicate_keys(checked: DataFrame, contract: Contract) -> DataFrame:
    """The key values (typed, as ``_key_<i>``) that more than one row passing the row checks shares."""
    keys = _keys(contract)
    return (
        checked.filter(sf.col("_rule").isNull())
        .groupBy(*[sf.col(_typed(name)).alias(f"_key_{index}") for index, name in enumerate(keys)])
        .agg(sf.count(sf.lit(1)).alias("_rows"))
        .filter(sf.col("_rows") > 1)
        .drop("_rows")
    )


def _decide(checked: DataFrame, contract: Contract) -> DataFrame:
    """``checked`` with ``_outcome``, its rows grouped by key with a window (valid rows apart from the others)."""
    valid = sf.col("_rule").isNull()
    keys = _keys(contract)
    group = Window.partitionBy(valid, *[sf.col(_typed(name)) for name in keys])
    row = sf.struct(*[sf.col(_typed(name)) for name in contract.names])
    rows = sf.count(sf.lit(1)).over(group)
    same = sf.min(row).over(group).eqNullSafe(sf.max(row).over(group))
    rank = sf.row_number().over(group.orderBy(PARTITION, _SOURCE))
    conflict = valid & (rows > 1) & ~same
    label = "conflicting_duplicate:" + "+".join(keys)
    return checked.select(
        *[name for name in checked.columns if name not in ("_rule", "_violations")],
        sf.when(conflict, sf.lit("conflicting_duplicate")).otherwise(sf.col("_rule")).alias("_rule"),
        sf.when(conflict, sf.lit(label)).otherwise(sf.col("_violations")).alias("_violations"),
        sf.when(~valid | conflict, sf.lit("quarantined"))
        .when(rank > 1, sf.lit("dropped"))
        .otherwise(sf.lit("curated"))
        .alias(_OUTCOME),
    )


def deduplicate(checked: DataFrame, contract: Contract, duplicates: DataFrame | None = None) -> DataFrame:
    """Adds ``_outcome``: ``curated``, ``dropped`` (an exact duplicate) or ``quarantined``.

    Only rows that pass the row checks take part. Rows with the same id columns (every
    contract column when the contract names none) that are identical in every contract
    column keep one row (the one of the earliest dt, then source file); when they differ
    in any column they are all quarantined with rule ``conflicting_duplicate``.

    ``duplicates`` (``duplicate_keys`` of ``checked``, default: computed here) is small:
    it is broadcast, so a row whose key no other valid row shares is decided where it
    is, without a shuffle, and only the rows of shared keys are grouped and ranked.
    For many shared keys ``deduplicate_all`` groups every row instead (same outcome).
    """
    if duplicates is None:
        duplicates = duplicate_keys(checked, contract)
    keys = _keys(contract)
    marked = checked.join(
        sf.broadcast(duplicates.withColumn("_shared", sf.lit(True))),
        on=functools.reduce(
            lambda left, right: left & right,
            [checked[_typed(name)].eqNullSafe(sf.col(f"_key_{index}")) for index, name in enumerate(keys)],
        ),
        how="left",
    )
    shared = sf.col("_rule").isNull() & sf.coalesce(sf.col("_shared"), sf.lit(False))
    columns = [*checked.columns]
    alone = marked.filter(~shared).select(
        *columns,
        sf.when(sf.col("_rule").isNull(), sf.lit("curated")).otherwise(sf.lit("quarantined")).alias(_OUTCOME),
    )
    grouped = _decide(marked.filter(shared).select(*columns), contract).select(*columns, _OUTCOME)
    return alone.unionByName(grouped)


def deduplicate_all(checked: DataFrame, contract: Contract) -> DataFrame:
    """What ``deduplicate`` returns, by grouping and ranking every row (for many shared keys: no broadcast)."""
    return _decide(checked, contract).select(*checked.columns, _OUTCOME)


def classify(raw: DataFrame, contract: Contract) -> DataFrame:
    """Row checks then deduplication: every raw row with its typed values, rule and ``_outcome``."""
    return deduplicate(check_rows(raw, contract), contract)


def curated_rows(classified: DataFrame, contract: Contract) -> DataFrame:
    """The curated rows: every contract column in its type, in contract order, then ``dt``."""
    return classified.filter(sf.col(_OUTCOME) == "curated").select(
        *[sf.col(_typed(spec.name)).cast(spec.spark_type).alias(spec.name) for spec in contract.columns],
        PARTITION,
    )


def quarantine_rows(classified: DataFrame, contract: Contract, run_id: str) -> DataFrame:
    """The quarantined rows: every contract column as raw text, the rule columns, then ``dt``."""
    return classified.filter(sf.col(_OUTCOME) == "quarantined").select(
        *[_col(name) for name in contract.names],
        "_rule",
        "_violations",
        _SOURCE,
        sf.lit(run_id).alias("_run_id"),
        PARTITION,
    )


# --- counting -----------------------------------------------------------------------------


@dataclass
class PartitionCounts:
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    duplicates_dropped: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined,
            "duplicates_dropped": self.duplicates_dropped,
        }


@dataclass
class Counts:
    """Row counts of a run, per partition and per quarantine rule, and the nulls of the nullable columns."""

    partitions: dict[str, PartitionCounts] = field(default_factory=dict)
    by_rule: dict[str, int] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)
    unclassified: int = 0

    def total(self) -> PartitionCounts:
        total = PartitionCounts()
        for part in self.partitions.values():
            total.rows_read += part.rows_read
            total.rows_written += part.rows_written
            total.rows_quarantined += part.rows_quarantined
            total.duplicates_dropped += part.duplicates_dropped
        return total


def _null(index: int) -> str:
    return f"_null_{index}"


def _limited(contract: Contract) -> list[ColumnSpec]:
    """The columns with a ``max_null_fraction``, whose nulls are counted."""
    return [spec for spec in contract.columns if spec.max_null_fraction is not None]


def kept_rows(checked: DataFrame, contract: Contract) -> DataFrame:
    """What the rest of the run reads of the checked rows (the frame it caches).

    The raw text and the parsed value of every contract column, ``_source_file``, ``dt``,
    ``_rule`` and ``_violations``, and ``_null_<i>``: whether the i-th column with a
    ``max_null_fraction`` is null or blank (and not missing from its file).
    """
    nulls = [
        (~_present(_col(spec.name)) & ~sf.array_contains(sf.col(_MISSING), spec.name)).alias(_null(index))
        for index, spec in enumerate(_limited(contract))
    ]
    return checked.select(
        *[_col(name) for name in contract.names],
        _SOURCE,
        PARTITION,
        *[_typed(name) for name in contract.names],
        "_rule",
        "_violations",
        *nulls,
    )


def count_outcomes(classified: DataFrame, contract: Contract) -> Counts:
    """One aggregation over the classified rows (of ``kept_rows``): counts per dt, outcome and rule, and nulls."""
    limited = _limited(contract)
    nulls = [sf.sum(sf.col(_null(index)).cast("long")).alias(_null(index)) for index in range(len(limited))]
    grouped = classified.groupBy(PARTITION, _OUTCOME, "_rule").agg(sf.count(sf.lit(1)).alias("rows"), *nulls)
    counts = Counts(nulls={spec.name: 0 for spec in limited})
    for record in grouped.collect():
        day = record[PARTITION].isoformat() if record[PARTITION] is not None else "unknown"
        part = counts.partitions.setdefault(day, PartitionCounts())
        rows = int(record["rows"])
        part.rows_read += rows
        outcome = record[_OUTCOME]
        if outcome == "curated":
            part.rows_written += rows
        elif outcome == "dropped":
            part.duplicates_dropped += rows
        elif outcome == "quarantined":
            part.rows_quarantined += rows
            counts.by_rule[record["_rule"]] = counts.by_rule.get(record["_rule"], 0) + rows
        else:
            counts.unclassified += rows
        for index, spec in enumerate(limited):
            counts.nulls[spec.name] += int(record[_null(index)] or 0)
    counts.by_rule = {rule: counts.by_rule[rule] for rule in RULES if rule in counts.by_rule}
    return counts


def check_invariant(counts: Counts) -> None:
    """Every row read is written, quarantined or dropped as a duplicate, exactly once."""
    total = counts.total()
    accounted = total.rows_written + total.rows_quarantined + total.duplicates_dropped
    if total.rows_read != accounted or counts.unclassified:
        raise JobError(
            f"row counts do not add up: read {total.rows_read}, written {total.rows_written} + quarantined "
            f"{total.rows_quarantined} + duplicates {total.duplicates_dropped} = {accounted} "
            f"({counts.unclassified} rows without an outcome)"
        )


def dataset_warnings(counts: Counts, contract: Contract) -> list[dict[str, Any]]:
    """Dataset-level rules (``too_many_nulls``): reported, they quarantine no rows."""
    rows = counts.total().rows_read
    found = []
    for spec in contract.columns:
        if spec.max_null_fraction is None or not rows:
            continue
        nulls = counts.nulls.get(spec.name, 0)
        if nulls > spec.max_null_fraction * rows:
            detail = f"{nulls / rows:.1%} of rows, at most {spec.max_null_fraction:.1%} may be null"
            found.append(_warning("too_many_nulls", spec.name, nulls, detail, []))
    return found


def _warning(rule: str, column: str | None, count: int, detail: str, samples: Sequence[str]) -> dict[str, Any]:
    return {"rule": rule, "column": column, "count": count, "detail": detail, "samples": list(samples[:SAMPLES])}


# --- metrics and catalog ------------------------------------------------------------------


def metric_data(report: Mapping[str, Any], stage: str, timestamp: dt.datetime | None = None) -> list[dict[str, Any]]:
    """CloudWatch MetricData of a run report: totals per Dataset and Stage, quarantined rows also per Rule."""
    dimensions = [{"Name": "Dataset", "Value": str(report["dataset"])}, {"Name": "Stage", "Value": stage}]
    counts = report["counts"]
    values = (
        ("RowsRead", counts["rows_read"]),
        ("RowsWritten", counts["rows_written"]),
        ("RowsQuarantined", counts["rows_quarantined"]),
        ("DuplicatesDropped", counts["duplicates_dropped"]),
        ("FilesProcessed", report["files"]["read"]),
    )
    data: list[dict[str, Any]] = [
        {"MetricName": name, "Dimensions": list(dimensions), "Value": float(value), "Unit": "Count"}
        for name, value in values
    ]
    for rule, count in counts["quarantined_by_rule"].items():
        data.append(
            {
                "MetricName": "RowsQuarantined",
                "Dimensions": [*dimensions, {"Name": "Rule", "Value": rule}],
                "Value": float(count),
                "Unit": "Count",
            }
        )
    if timestamp is not None:
        for entry in data:
            entry["Timestamp"] = timestamp
    return data


def publish_metrics(data: Sequence[Mapping[str, Any]], client: Any = None, namespace: str = METRIC_NAMESPACE) -> int:
    """Send ``data`` with put_metric_data in batches of at most 1000 entries; returns the number of calls."""
    if client is None:
        import boto3  # type: ignore[import-untyped,unused-ignore]

        client = boto3.client("cloudwatch")
    calls = 0
    for start in range(0, len(data), METRICS_PER_CALL):
        client.put_metric_data(Namespace=namespace, MetricData=list(data[start : start + METRICS_PER_CALL]))
        calls += 1
    return calls


_SD_KEYS = (
    "Columns",
    "InputFormat",
    "OutputFormat",
    "Compressed",
    "NumberOfBuckets",
    "SerdeInfo",
    "BucketColumns",
    "SortColumns",
    "Parameters",
    "StoredAsSubDirectories",
)


def register_partitions(
    glue: Any, database: str, table: str, locations: Mapping[str, str], removed: Iterable[str] = ()
) -> dict[str, int]:
    """Create (or refresh) the dt partitions ``locations`` (dt -> folder) of a Glue table; delete ``removed``.

    Storage descriptors are the table's with the partition's location. Partitions that
    already exist are updated; removing a partition that does not exist is not an error.
    """
    try:
        descriptor = glue.get_table(DatabaseName=database, Name=table)["Table"]["StorageDescriptor"]
    except glue.exceptions.EntityNotFoundException:
        raise JobError(f"--catalog_database: table {database}.{table} does not exist") from None
    base = {key: descriptor[key] for key in _SD_KEYS if key in descriptor}
    result = {"created": 0, "updated": 0, "deleted": 0}
    entries = [
        {"Values": [day], "StorageDescriptor": {**base, "Location": location}}
        for day, location in sorted(locations.items())
    ]
    for start in range(0, len(entries), CATALOG_BATCH):
        batch = entries[start : start + CATALOG_BATCH]
        response = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=batch)
        existing = []
        for error in response.get("Errors", []):
            if error["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException":
                raise JobError(f"{database}.{table} partition {error['PartitionValues']}: {error['ErrorDetail']}")
            existing.append(error["PartitionValues"])
        result["created"] += len(batch) - len(existing)
        updates = [
            {"PartitionValueList": entry["Values"], "PartitionInput": entry}
            for entry in batch
            if entry["Values"] in existing
        ]
        if updates:
            glue.batch_update_partition(DatabaseName=database, TableName=table, Entries=updates)
            result["updated"] += len(updates)
    gone: list[dict[str, Any]] = [{"Values": [day]} for day in sorted(removed)]
    for start in range(0, len(gone), CATALOG_BATCH):
        chunk = gone[start : start + CATALOG_BATCH]
        response = glue.batch_delete_partition(DatabaseName=database, TableName=table, PartitionsToDelete=chunk)
        result["deleted"] += len(chunk) - len(response.get("Errors", []))
    return result


# --- the run ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The job's arguments; unknown ones (Glue's --JOB_NAME, --job-bookmark-option, ...) are ignored."""
    parser = argparse.ArgumentParser(prog="curate", description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--dataset", required=True)
    parser.add_argument(
        "--dataset_folder",
        default="",
        help="the dataset's folder under each zone root (default: the dataset name; labels/<model dataset> for labels)",
    )
    parser.add_argument("--contract_uri", required=True, help="contract JSON (local path or s3://)")
    parser.add_argument("--raw_uri", required=True, help="raw zone root: <raw_uri>/<dataset>/dt=YYYY-MM-DD/")
    parser.add_argument("--curated_uri", required=True)
    parser.add_argument("--quarantine_uri", required=True)
    parser.add_argument("--state_uri", required=True, help="where the processed-files manifest lives")
    parser.add_argument("--report_uri", required=True, help="run reports go to <report_uri>/<dataset>/<run_id>.json")
    parser.add_argument("--run_id", default=None, help="default: the UTC start time")
    parser.add_argument("--stage", default="dev", help="the Stage dimension of the metrics")
    parser.add_argument("--publish_metrics", type=_flag, default=False)
    parser.add_argument("--catalog_database", default="", help="Glue database whose partitions to register")
    parser.add_argument("--partitions", default="", help="comma-separated dt values to reprocess")
    parser.add_argument("--full_refresh", type=_flag, default=False)
    args, _unknown = parser.parse_known_args(argv)
    return args


def _flag(text: str) -> bool:
    word = text.strip().lower()
    if word in ("true", "1", "yes"):
        return True
    if word in ("false", "0", "no", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def configure(spark: SparkSession) -> None:
    """Runtime settings the job relies on (Glue's session exists already, so only runtime SQL settings)."""
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.ansi.enabled", "false")


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _forced_partitions(text: str) -> list[str]:
    days = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        day = _valid_date(item) if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", item) else None
        if day is None:
            raise JobError(f"--partitions: {item!r} is not a date as YYYY-MM-DD")
        days.append(day)
    return days


def _print(message: str) -> None:
    print(f"[curate] {message}", flush=True)


def _dataset_folder(folder: str) -> str:
    """``--dataset_folder``: relative path segments of letters, digits, ``._-`` (no ``..``)."""
    parts = folder.strip("/").split("/")
    if not all(_RUN_ID.match(part) and part not in (".", "..") for part in parts):
        raise JobError(f"--dataset_folder: {folder!r} must be a relative path of letters, digits, '.', '_', '-'")
    return "/".join(parts)


def run(spark: SparkSession, args: argparse.Namespace, *, progress: Progress = _print) -> dict[str, Any]:
    """One run of the job (see the module docstring); returns the run report, also written to report_uri."""
    started = _now()
    clock = time.perf_counter()
    steps: dict[str, float] = {}

    def step(name: str, since: float) -> float:
        now = time.perf_counter()
        steps[name] = round(now - since, 3)
        return now

    configure(spark)
    run_id = args.run_id or started.strftime("%Y%m%dT%H%M%S.%fZ")
    if not _RUN_ID.match(run_id):
        raise JobError(f"--run_id: {run_id!r} may hold only letters, digits, '.', '_' and '-'")
    forced = _forced_partitions(args.partitions or "")
    storage = Storage(spark)
    dataset = args.dataset
    contract = _load_contract(storage, args.contract_uri)
    if contract.dataset != dataset:
        raise JobError(f"--contract_uri: {args.contract_uri} is the contract of {contract.dataset!r}, not {dataset!r}")
    if not storage.exists(args.raw_uri):
        raise JobError(f"--raw_uri: {args.raw_uri} does not exist")
    folder = _dataset_folder(getattr(args, "dataset_folder", "") or dataset)
    raw_root = storage.qualified(_join(args.raw_uri, folder))
    out = {
        "curated": _join(args.curated_uri, folder),
        "quarantine": _join(args.quarantine_uri, folder),
        "manifest": _join(args.state_uri, folder, "manifest.json"),
        "report": _join(args.report_uri, folder, f"{run_id}.json"),
    }
    files, ignored = select_raw_files(storage.list_files(raw_root), raw_root)
    manifest = _load_manifest(storage, out["manifest"], tolerate_invalid=args.full_refresh)
    plan = plan_run(files, manifest, forced=forced, full_refresh=args.full_refresh)
    mark = step("list", clock)
    progress(
        f"{len(files)} raw files under {raw_root} ({len(plan.new)} new, {len(plan.changed)} changed, "
        f"{len(plan.removed)} removed, {len(ignored)} ignored); partitions to process: "
        f"{', '.join(plan.partitions) if plan.partitions else 'none'}"
    )
    warnings: list[dict[str, Any]] = []
    if ignored:
        warnings.append(
            _warning("ignored_file", None, len(ignored), "not a CSV/Parquet file in a dt=YYYY-MM-DD folder", ignored)
        )
    report: dict[str, Any] = {
        "run_id": run_id,
        "dataset": dataset,
        "contract_version": contract.version,
        "status": "processed",
        "started": started.isoformat(),
        "finished": None,
        "seconds": None,
        "files": {
            "listed": len(files),
            "new": len(plan.new),
            "changed": len(plan.changed),
            "removed": len(plan.removed),
            "ignored": len(ignored),
            "read": 0,
        },
        "partitions_processed": list(plan.partitions),
        "partitions": {},
        "counts": {
            "rows_read": 0,
            "rows_written": 0,
            "rows_quarantined": 0,
            "duplicates_dropped": 0,
            "quarantined_by_rule": {},
        },
        "warnings": warnings,
        "catalog": None,
        "outputs": {"raw": raw_root, **out},
        "step_seconds": steps,
    }
    if not plan.partitions:
        report["status"] = "no_raw_data" if not files and not manifest else "no_new_files"
        progress("nothing to do: " + ("no raw data" if report["status"] == "no_raw_data" else "no new files"))
    else:
        _process(spark, storage, contract, files, plan, args, run_id, report, out, progress, mark, step)
    finished = _now()
    report["finished"] = finished.isoformat()
    report["seconds"] = round(time.perf_counter() - clock, 3)
    storage.write_bytes(out["report"], (json.dumps(report, indent=2) + "\n").encode())
    if args.publish_metrics:
        calls = publish_metrics(metric_data(report, args.stage, finished))
        progress(f"published metrics to {METRIC_NAMESPACE} in {calls} call(s)")
    progress(f"report: {out['report']}")
    return report


def _process(
    spark: SparkSession,
    storage: Storage,
    contract: Contract,
    files: Sequence[RawFile],
    plan: Plan,
    args: argparse.Namespace,
    run_id: str,
    report: dict[str, Any],
    out: Mapping[str, str],
    progress: Progress,
    mark: float,
    step: Callable[[str, float], float],
) -> None:
    wanted = set(plan.partitions)
    to_read = [file for file in files if file.dt in wanted]
    raw = read_raw(spark, storage, to_read, contract)
    report["files"]["read"] = raw.files_read
    report["warnings"].extend(raw.warnings)
    checked = kept_rows(check_rows(raw.frame, contract), contract).persist(StorageLevel.MEMORY_AND_DISK)
    duplicates = duplicate_keys(checked, contract).persist(StorageLevel.MEMORY_AND_DISK)
    grouped: DataFrame | None = None
    try:
        # One pass reads, parses and checks every row (into the cache) and finds the shared keys;
        # the counts, the curated and the quarantine rows are then read from the cache.
        shared_keys = duplicates.count()
        if shared_keys <= BROADCAST_KEYS:
            # Few shared keys: only their rows are grouped (and kept aside), the others stay where they are.
            classified = deduplicate(checked, contract, duplicates)
        else:
            classified = deduplicate_all(checked, contract).persist(StorageLevel.MEMORY_AND_DISK)
            grouped = classified
        counts = count_outcomes(classified, contract)
        check_invariant(counts)
        mark = step("read_and_check", mark)
        total = counts.total()
        progress(
            f"read {total.rows_read} rows from {raw.files_read} files: {total.rows_written} to write, "
            f"{total.rows_quarantined} to quarantine, {total.duplicates_dropped} exact duplicates "
            f"({steps_text(report)})"
        )
        written = {day for day, part in counts.partitions.items() if part.rows_written}
        quarantined = {day for day, part in counts.partitions.items() if part.rows_quarantined}
        if written:
            _write(curated_rows(classified, contract), out["curated"])
        if quarantined:
            _write(quarantine_rows(classified, contract, run_id), out["quarantine"])
    finally:
        for frame in (grouped, duplicates, checked):
            if frame is not None:
                frame.unpersist()
    for day in sorted(wanted - written):
        storage.delete(_join(out["curated"], f"{PARTITION}={day}"))
    for day in sorted(wanted - quarantined):
        storage.delete(_join(out["quarantine"], f"{PARTITION}={day}"))
    mark = step("write", mark)
    progress(f"wrote {len(written)} curated and {len(quarantined)} quarantine partitions ({steps_text(report)})")
    if args.catalog_database:
        report["catalog"] = _register(contract.dataset, args.catalog_database, out, wanted, written, quarantined)
        report["warnings"].extend(report["catalog"].pop("warnings"))
        mark = step("catalog", mark)
    document = {
        "format": MANIFEST_FORMAT,
        "dataset": contract.dataset,
        "raw_root": report["outputs"]["raw"],
        "run_id": run_id,
        "files": manifest_entries(files),
    }
    storage.write_bytes(out["manifest"], (json.dumps(document, indent=1, sort_keys=True) + "\n").encode())
    step("manifest", mark)
    report["partitions"] = {day: counts.partitions.get(day, PartitionCounts()).to_dict() for day in plan.partitions}
    report["counts"] = {**total.to_dict(), "quarantined_by_rule": counts.by_rule}
    report["warnings"].extend(dataset_warnings(counts, contract))
    empty = sorted(day for day in wanted if day not in counts.partitions)
    if empty:
        report["warnings"].append(
            _warning("empty_partition", None, len(empty), "processed partitions without raw rows", empty)
        )


def steps_text(report: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report["step_seconds"].items())


def _write(frame: DataFrame, uri: str) -> None:
    (
        frame.repartition(PARTITION)
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .option("compression", "snappy")
        .partitionBy(PARTITION)
        .parquet(uri)
    )


def _register(
    dataset: str,
    database: str,
    out: Mapping[str, str],
    processed: set[str],
    written: set[str],
    quarantined: set[str],
) -> dict[str, Any]:
    import boto3

    glue = boto3.client("glue")
    result: dict[str, Any] = {"database": database, "warnings": []}
    for zone, days in (("curated", written), ("quarantine", quarantined)):
        table = f"{zone}_{dataset}"
        locations = {day: _join(out[zone], f"{PARTITION}={day}") + "/" for day in days}
        try:
            result[table] = register_partitions(glue, database, table, locations, removed=processed - days)
        except JobError:
            if zone == "curated":
                raise
            detail = "table does not exist, quarantine partitions not registered"
            result["warnings"].append(_warning("catalog_table_missing", None, 0, detail, [f"{database}.{table}"]))
    return result


def _load_contract(storage: Storage, uri: str) -> Contract:
    try:
        if not storage.exists(uri):
            raise ContractError(f"--contract_uri: {uri} does not exist")
        text = storage.read_bytes(uri).decode("utf-8")
    except ContractError:
        raise
    except Exception as error:  # py4j errors of the file system, invalid UTF-8
        raise ContractError(f"--contract_uri: cannot read {uri}: {_first_line(error)}") from None
    return parse_contract(text, source=uri)


def _load_manifest(storage: Storage, uri: str, *, tolerate_invalid: bool) -> dict[str, dict[str, Any]]:
    if not storage.exists(uri):
        return {}
    try:
        return parse_manifest(storage.read_bytes(uri).decode("utf-8", errors="replace"), uri)
    except JobError:
        if tolerate_invalid:
            return {}
        raise


def summary(report: Mapping[str, Any]) -> str:
    """A few lines a person reads at the end of a run."""
    counts = report["counts"]
    lines = [
        f"run {report['run_id']} of {report['dataset']} (contract {report['contract_version']}): "
        f"{report['status']} in {report['seconds']:.1f} s",
        f"files: {report['files']['read']} read of {report['files']['listed']} listed "
        f"({report['files']['new']} new, {report['files']['changed']} changed, {report['files']['removed']} removed)",
        f"partitions: {', '.join(report['partitions_processed']) or 'none'}",
        f"rows: {counts['rows_read']} read, {counts['rows_written']} written, {counts['rows_quarantined']} "
        f"quarantined, {counts['duplicates_dropped']} duplicates dropped",
    ]
    if counts["quarantined_by_rule"]:
        lines.append("quarantined by rule: " + ", ".join(f"{k} {v}" for k, v in counts["quarantined_by_rule"].items()))
    lines.extend(f"warning: {item['rule']} {item['column'] or ''} {item['detail']}" for item in report["warnings"])
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run once on the current (Glue's or a local) Spark session, print the summary."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName(f"curate-{args.dataset}").getOrCreate()
    try:
        report = run(spark, args)
    except JobError as error:
        print(f"curate: error: {error}", file=sys.stderr)
        return 2
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
