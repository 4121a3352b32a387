"""The curation job's checks done in DuckDB: the reference benchmarks/etl_local.py times the job against.

Usage: python benchmarks/curate_reference.py --contract FILE --raw DATASET_DIR --out DIR [--threads 2]

It reads the same raw CSV files (``DATASET_DIR/dt=YYYY-MM-DD/*.csv``, grouped by header
so that a file lacking a contract column counts as ``missing_column``), parses every
column as etl/curate.py does (same number, date and bool spellings), applies the same
row rules in the same order, collapses identical rows sharing the id columns and
quarantines conflicting ones, and writes curated and quarantine Parquet partitioned by
dt. It prints one JSON line with the counts and the DuckDB version. A benchmark only:
it needs ``duckdb``, which the platform does not depend on, and ships nowhere.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
INTEGER = r"^[+-]?[0-9]+$"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T]00:00(:00(\.0+)?)?)?$"
TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_WORDS = ("false", "f", "no", "n", "0", "0.0")
RULES = ("missing_column", "wrong_type", "not_allowed_value", "out_of_range", "unexpected_null", "partition_mismatch")
SQL_TYPES = {"string": "VARCHAR", "category": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN"}


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def s(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def words(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(s(value) for value in values)


def parse(column: dict[str, Any]) -> str:
    raw = q(column["name"])
    text = f"trim({raw})"
    kind = column["type"]
    if kind in ("int", "float"):
        number = f"(CASE WHEN regexp_full_match({text}, {s(NUMBER)}) THEN TRY_CAST({text} AS DOUBLE) END)"
        finite = f"(isfinite({number}))"
        if kind == "float":
            return f"(CASE WHEN {finite} THEN {number} END)"
        whole = f"({finite} AND {number} = floor({number}) AND abs({number}) < 9.2e18)"
        return (
            f"(CASE WHEN regexp_full_match({text}, {s(INTEGER)}) THEN TRY_CAST({text} AS BIGINT) "
            f"WHEN {whole} THEN CAST({number} AS BIGINT) END)"
        )
    if kind == "date":
        return f"(CASE WHEN regexp_full_match({text}, {s(DATE)}) THEN TRY_CAST(substr({text}, 1, 10) AS DATE) END)"
    if kind == "bool":
        return (
            f"(CASE WHEN lower({text}) IN ({words(TRUE_WORDS)}) THEN true "
            f"WHEN lower({text}) IN ({words(FALSE_WORDS)}) THEN false END)"
        )
    if kind == "category":
        return f"(CASE WHEN {raw} IN ({words(column['allowed'])}) THEN {raw} END)"
    return f"(CASE WHEN {text} <> '' THEN {raw} END)"


def bound(value: Any, kind: str) -> str:
    return f"DATE {s(value)}" if kind == "date" else repr(float(value))


def checks(contract: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(rule, column, SQL condition over the raw and typed columns), in the job's order."""
    found: dict[str, list[tuple[str, str, str]]] = {rule: [] for rule in RULES}
    for column in contract["columns"]:
        name, kind = column["name"], column["type"]
        raw, typed = q(name), q("_t_" + name)
        missing = f"list_contains(_missing, {s(name)})"
        present = f"({raw} IS NOT NULL AND trim({raw}) <> '')"
        found["missing_column"].append(("missing_column", name, missing))
        if kind in ("int", "float", "date", "bool"):
            found["wrong_type"].append(("wrong_type", name, f"{present} AND {typed} IS NULL"))
        if kind == "category":
            found["not_allowed_value"].append(("not_allowed_value", name, f"{present} AND {typed} IS NULL"))
        outside = []
        if column.get("min") is not None:
            outside.append(f"{typed} < {bound(column['min'], kind)}")
        if column.get("max") is not None:
            outside.append(f"{typed} > {bound(column['max'], kind)}")
        if outside:
            found["out_of_range"].append(("out_of_range", name, f"{typed} IS NOT NULL AND ({' OR '.join(outside)})"))
        if not column.get("nullable", False):
            found["unexpected_null"].append(("unexpected_null", name, f"NOT {present} AND NOT {missing}"))
        if name == contract.get("partition_column"):
            found["partition_mismatch"].append(("partition_mismatch", name, f"{typed} IS NOT NULL AND {typed} <> dt"))
    return [check for rule in RULES for check in found[rule]]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--contract", type=Path, required=True)
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import duckdb

    contract = json.loads(args.contract.read_text())
    names = [column["name"] for column in contract["columns"]]
    groups: dict[tuple[str, ...], list[str]] = {}
    for path in sorted(args.raw.glob("dt=*/*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader([handle.readline().lstrip("\ufeff")]), [])
        groups.setdefault(tuple(header), []).append(str(path))
    selects = []
    for header, paths in groups.items():
        missing = [name for name in names if name not in header]
        values = [
            f"{q(name)}::VARCHAR AS {q(name)}" if name in header else f"NULL::VARCHAR AS {q(name)}" for name in names
        ]
        listed = "[" + ", ".join(s(path) for path in paths) + "]"
        selects.append(
            f"SELECT {', '.join(values)}, {('[' + words(missing) + ']') if missing else '[]::VARCHAR[]'} AS _missing, "
            f"filename AS _source_file, "
            f"CAST(regexp_extract(filename, '/dt=([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})/[^/]*$', 1) AS DATE) AS dt "
            f"FROM read_csv({listed}, all_varchar = true, header = true, filename = true, quote = '\"', escape = '\"')"
        )
    connection = duckdb.connect()
    connection.execute(f"SET threads = {args.threads}")
    connection.execute("SET preserve_insertion_order = false")
    typed = ", ".join(f"{parse(column)} AS {q('_t_' + column['name'])}" for column in contract["columns"])
    connection.execute(f"CREATE TEMP VIEW raw AS {' UNION ALL '.join(selects)}")
    connection.execute(f"CREATE TEMP VIEW parsed AS SELECT *, {typed} FROM raw")
    found = checks(contract)
    flags = ", ".join(f"coalesce({condition}, false) AS _c{index}" for index, (_, _, condition) in enumerate(found))
    first = " ".join(f"WHEN _c{index} THEN {s(rule)}" for index, (rule, _, _) in enumerate(found))
    labels = ", ".join(
        f"CASE WHEN _c{index} THEN {s(rule + ':' + column)} END" for index, (rule, column, _) in enumerate(found)
    )
    keys = contract.get("id_columns") or names
    key_list = ", ".join(q("_t_" + name) for name in keys)
    row = "row(" + ", ".join(q("_t_" + name) for name in names) + ")"
    any_flag = " OR ".join(f"_c{index}" for index in range(len(found)))
    connection.execute(f"CREATE TEMP VIEW flagged AS SELECT *, {flags} FROM parsed")
    connection.execute(
        "CREATE TEMP TABLE checked AS SELECT * EXCLUDE (" + ", ".join(f"_c{i}" for i in range(len(found))) + "), "
        f"CASE {first} END AS _rule, "
        f"CASE WHEN {any_flag} THEN concat_ws(',', {labels}) END AS _violations "
        "FROM flagged"
    )
    label = "conflicting_duplicate:" + "+".join(keys)
    connection.execute(
        "CREATE TEMP TABLE classified AS SELECT * EXCLUDE (_n, _lo, _hi, _rank, _rule, _violations), "
        "CASE WHEN _conflict THEN 'conflicting_duplicate' ELSE _rule END AS _rule, "
        f"CASE WHEN _conflict THEN {s(label)} ELSE _violations END AS _violations, "
        "CASE WHEN _rule IS NOT NULL OR _conflict THEN 'quarantined' WHEN _rank > 1 THEN 'dropped' ELSE 'curated' END "
        "AS _outcome FROM ("
        f"SELECT *, _rule IS NULL AND _n > 1 AND _lo IS DISTINCT FROM _hi AS _conflict FROM ("
        f"SELECT *, count(*) OVER w AS _n, min({row}) OVER w AS _lo, max({row}) OVER w AS _hi, "
        f"row_number() OVER (PARTITION BY _rule IS NULL, {key_list} ORDER BY dt, _source_file) AS _rank "
        f"FROM checked WINDOW w AS (PARTITION BY _rule IS NULL, {key_list})))"
    )
    curated = ", ".join(
        f"CAST({q('_t_' + column['name'])} AS {SQL_TYPES.get(column['type'], 'DATE')}) AS {q(column['name'])}"
        for column in contract["columns"]
    )
    for zone, select in (
        ("curated", f"SELECT {curated}, dt FROM classified WHERE _outcome = 'curated'"),
        (
            "quarantine",
            f"SELECT {', '.join(q(name) for name in names)}, _rule, _violations, _source_file, "
            "'reference' AS _run_id, dt "
            "FROM classified WHERE _outcome = 'quarantined'",
        ),
    ):
        target = args.out / zone
        target.parent.mkdir(parents=True, exist_ok=True)
        connection.execute(
            f"COPY ({select}) TO {s(str(target))} (FORMAT PARQUET, PARTITION_BY (dt), COMPRESSION SNAPPY)"
        )
    outcomes = dict(connection.execute("SELECT _outcome, count(*) FROM classified GROUP BY ALL").fetchall())
    by_rule = dict(
        connection.execute(
            "SELECT _rule, count(*) FROM classified WHERE _outcome = 'quarantined' GROUP BY ALL"
        ).fetchall()
    )
    order = [*RULES, "conflicting_duplicate"]
    result = {
        "version": duckdb.__version__,
        "rows_read": sum(outcomes.values()),
        "rows_written": outcomes.get("curated", 0),
        "rows_quarantined": outcomes.get("quarantined", 0),
        "duplicates_dropped": outcomes.get("dropped", 0),
        "quarantined_by_rule": {rule: by_rule[rule] for rule in order if rule in by_rule},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
