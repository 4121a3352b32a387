"""The job's pieces on small inputs: value parsing and rules, deduplication, the contract, planning, errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as st

from etl import curate
from etl.local import CONTRACTS_DIR, job_argv
from pipelines_src.steps.contract import load_contract

CONTRACT = {
    "dataset": "t",
    "version": "1",
    "id_columns": ["id"],
    "partition_column": "day",
    "columns": [
        {"name": "id", "type": "string"},
        {"name": "day", "type": "date", "min": "2020-01-01", "max": "2030-12-31"},
        {"name": "n", "type": "int", "min": 0, "max": 10},
        {"name": "x", "type": "float", "nullable": True, "min": 0.5},
        {"name": "flag", "type": "bool", "nullable": True},
        {"name": "color", "type": "category", "allowed": ["red", "blue"]},
    ],
}
GOOD = {"day": "2024-01-01", "n": "3", "x": "1.5", "flag": "true", "color": "red"}
# (id, changes to GOOD, folder dt, missing columns) -> (rule, violations, outcome)
CASES: list[tuple[str, dict[str, Any], str, list[str], tuple[str | None, str | None, str]]] = [
    ("good", {}, "2024-01-01", [], (None, None, "curated")),
    (
        "spelled",
        {"n": " 3.0 ", "x": "2", "flag": "Y", "day": "2024-01-01 00:00:00"},
        "2024-01-01",
        [],
        (None, None, "curated"),
    ),
    ("signed", {"n": "+7", "x": "1e1", "flag": None}, "2024-01-01", [], (None, None, "curated")),
    ("fraction", {"n": "3.5"}, "2024-01-01", [], ("wrong_type", "wrong_type:n", "quarantined")),
    ("hex", {"n": "0x10", "x": "NaN"}, "2024-01-01", [], ("wrong_type", "wrong_type:n,wrong_type:x", "quarantined")),
    ("huge", {"x": "1e999"}, "2024-01-01", [], ("wrong_type", "wrong_type:x", "quarantined")),
    ("feb30", {"day": "2024-02-30"}, "2024-01-01", [], ("wrong_type", "wrong_type:day", "quarantined")),
    ("noon", {"day": "2024-01-01T12:00:00"}, "2024-01-01", [], ("wrong_type", "wrong_type:day", "quarantined")),
    ("maybe", {"flag": "maybe"}, "2024-01-01", [], ("wrong_type", "wrong_type:flag", "quarantined")),
    (
        "green",
        {"color": "green", "n": "11"},
        "2024-01-01",
        [],
        ("not_allowed_value", "not_allowed_value:color,out_of_range:n", "quarantined"),
    ),
    ("Red", {"color": "Red"}, "2024-01-01", [], ("not_allowed_value", "not_allowed_value:color", "quarantined")),
    ("small", {"x": "0.1"}, "2024-01-01", [], ("out_of_range", "out_of_range:x", "quarantined")),
    (
        "old",
        {"day": "2019-12-31"},
        "2019-12-31",
        [],
        ("out_of_range", "out_of_range:day", "quarantined"),
    ),
    (
        "nocolor",
        {"color": None, "x": ""},
        "2024-01-01",
        [],
        ("unexpected_null", "unexpected_null:color", "quarantined"),
    ),
    ("blank", {"n": "   "}, "2024-01-01", [], ("unexpected_null", "unexpected_null:n", "quarantined")),
    ("moved", {"day": "2024-01-02"}, "2024-01-01", [], ("partition_mismatch", "partition_mismatch:day", "quarantined")),
    (
        "lacking",
        {"n": None, "x": None, "color": "pink"},
        "2024-01-01",
        ["n", "x"],
        ("missing_column", "missing_column:n,missing_column:x,not_allowed_value:color", "quarantined"),
    ),
    ("same", {}, "2024-01-01", [], (None, None, "curated")),
    ("same", {}, "2024-01-01", [], (None, None, "dropped")),
    ("nullsame", {"x": None}, "2024-01-01", [], (None, None, "curated")),
    ("nullsame", {"x": ""}, "2024-01-01", [], (None, None, "dropped")),  # blank and null are the same value
    ("twin", {}, "2024-01-01", [], ("conflicting_duplicate", "conflicting_duplicate:id", "quarantined")),
    ("twin", {"x": "1.6"}, "2024-01-01", [], ("conflicting_duplicate", "conflicting_duplicate:id", "quarantined")),
    ("twin", {"x": "1.6"}, "2024-01-01", [], ("conflicting_duplicate", "conflicting_duplicate:id", "quarantined")),
    ("halfbad", {}, "2024-01-01", [], (None, None, "curated")),
    ("halfbad", {"n": "many"}, "2024-01-01", [], ("wrong_type", "wrong_type:n", "quarantined")),
]


def _contract(**changes: Any) -> curate.Contract:
    return curate.parse_contract(json.dumps({**CONTRACT, **changes}), source="test.json")


@pytest.fixture(scope="module")
def classified(spark: SparkSession) -> list[dict[str, Any]]:
    names = [column["name"] for column in CONTRACT["columns"]]
    schema = st.StructType(
        [st.StructField(name, st.StringType()) for name in names]
        + [
            st.StructField("_missing", st.ArrayType(st.StringType())),
            st.StructField("_source_file", st.StringType()),
            st.StructField("dt", st.DateType()),
        ]
    )
    rows = []
    for index, (identifier, changes, day, missing, _) in enumerate(CASES):
        values = {"id": identifier, **GOOD, **changes}
        rows.append((*[values[name] for name in names], missing, f"file-{index:02d}.csv", dt.date.fromisoformat(day)))
    frame = spark.createDataFrame(rows, schema)
    result = curate.classify(frame, _contract()).orderBy("_source_file").collect()
    return [row.asDict() for row in result]


def test_each_row_gets_its_first_rule_every_violation_and_an_outcome(classified: list[dict[str, Any]]) -> None:
    found = [(row["id"], row["_rule"], row["_violations"], row["_outcome"]) for row in classified]

    assert found == [(identifier, *expected) for identifier, _, _, _, expected in CASES]


def test_valid_values_are_parsed_into_the_contract_types(classified: list[dict[str, Any]]) -> None:
    by_id = {row["id"]: row for row in classified if row["_outcome"] == "curated"}

    spelled, signed = by_id["spelled"], by_id["signed"]
    assert (spelled["_typed_n"], spelled["_typed_x"], spelled["_typed_flag"]) == (3, 2.0, True)
    assert spelled["_typed_day"] == dt.date(2024, 1, 1)
    assert (signed["_typed_n"], signed["_typed_x"], signed["_typed_flag"]) == (7, 10.0, None)
    assert by_id["good"]["_typed_color"] == "red"


def test_the_checks_follow_the_rule_order() -> None:
    checks = curate.row_checks(_contract())

    rules = [rule for rule, _, _ in checks]
    assert rules == sorted(rules, key=curate.RULES.index)
    assert ("partition_mismatch", "day") in [(rule, column) for rule, column, _ in checks]


def test_the_shipped_contract_reads_as_the_model_pipeline_reads_it() -> None:
    path = CONTRACTS_DIR / "delivery_time.json"

    ours = curate.parse_contract(path.read_text(), source=str(path))
    theirs = load_contract(path)

    assert ours.names == theirs.names
    assert ours.id_columns == theirs.id_columns
    assert ours.partition_column == theirs.partition_column
    for mine, other in zip(ours.columns, theirs.columns, strict=True):
        assert (mine.type, mine.nullable, mine.allowed, mine.max_null_fraction) == (
            other.type,
            other.nullable,
            other.allowed,
            other.max_null_fraction,
        )
        assert (mine.min, mine.max) == (other.min, other.max)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "test.json: not valid JSON"),
        (json.dumps({**CONTRACT, "columns": []}), "test.json: columns: must be a non-empty list"),
        (
            json.dumps({**CONTRACT, "columns": [{"name": "id", "type": "text"}]}),
            r"columns\[0\].type: 'text' is not one of",
        ),
        (json.dumps({**CONTRACT, "columns": [{"name": "dt", "type": "date"}]}), "reserved by the ETL job"),
        (json.dumps({**CONTRACT, "partition_column": "n"}), "partition_column: 'n' must be a date column"),
        (json.dumps({**CONTRACT, "id_columns": ["nope"]}), "id_columns: must be a list of column names"),
    ],
)
def test_an_unusable_contract_is_named_with_its_key(text: str, message: str) -> None:
    with pytest.raises(curate.ContractError, match=message):
        curate.parse_contract(text, source="test.json")


def _file(relative: str, size: int = 10, modified: int = 1) -> curate.RawFile:
    return curate.RawFile(f"s3://b/raw/t/{relative}", relative, size, modified, relative[3:13], "csv")


def test_the_plan_rebuilds_partitions_with_new_changed_or_removed_files() -> None:
    files = [_file("dt=2024-01-01/a.csv"), _file("dt=2024-01-02/a.csv", size=11), _file("dt=2024-01-03/a.csv")]
    manifest = curate.manifest_entries([_file("dt=2024-01-02/a.csv"), _file("dt=2024-01-03/a.csv")])
    manifest["dt=2024-01-04/gone.csv"] = {"size": 1, "modified": 1, "dt": "2024-01-04"}

    plan = curate.plan_run(files, manifest)

    assert plan.new == ("dt=2024-01-01/a.csv",)
    assert plan.changed == ("dt=2024-01-02/a.csv",)
    assert plan.removed == ("dt=2024-01-04/gone.csv",)
    assert plan.partitions == ("2024-01-01", "2024-01-02", "2024-01-04")
    assert curate.plan_run(files, curate.manifest_entries(files)).partitions == ()
    assert curate.plan_run(files, curate.manifest_entries(files), forced=["2024-01-03"]).partitions == ("2024-01-03",)
    full = curate.plan_run(files, manifest, full_refresh=True)
    assert full.partitions == ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")


def test_only_data_files_in_dt_folders_are_raw_files() -> None:
    root = "s3://b/raw/t"
    listing = [
        (f"{root}/dt=2024-01-01/part-0.csv", 5, 1),
        (f"{root}/dt=2024-01-01/part-1.PARQUET", 5, 1),
        (f"{root}/dt=2024-01-01/part-2.csv.gz", 5, 1),
        (f"{root}/dt=2024-01-01/_SUCCESS", 0, 1),
        (f"{root}/dt=2024-01-01/.hidden.csv", 5, 1),
        (f"{root}/dt=2024-02-30/part-0.csv", 5, 1),
        (f"{root}/dt=2024-01-01/nested/part-0.csv", 5, 1),
        (f"{root}/dt=2024-01-01/notes.txt", 5, 1),
        (f"{root}/loose.csv", 5, 1),
    ]

    files, ignored = curate.select_raw_files(listing, root + "/")

    assert [(f.relative, f.format, f.dt) for f in files] == [
        ("dt=2024-01-01/part-0.csv", "csv", "2024-01-01"),
        ("dt=2024-01-01/part-1.PARQUET", "parquet", "2024-01-01"),
        ("dt=2024-01-01/part-2.csv.gz", "csv", "2024-01-01"),
    ]
    assert ignored == [
        "dt=2024-02-30/part-0.csv",
        "dt=2024-01-01/nested/part-0.csv",
        "dt=2024-01-01/notes.txt",
        "loose.csv",
    ]


def test_glue_arguments_are_read_and_unknown_ones_ignored() -> None:
    args = curate.parse_args(
        [
            *job_argv(Path("raw"), Path("lake")),
            *("--JOB_NAME", "curate", "--job-bookmark-option", "job-bookmark-disable"),
            *("--publish_metrics", "TRUE", "--full_refresh", "false"),
        ]
    )

    assert (args.dataset, args.publish_metrics, args.full_refresh, args.stage) == (
        "delivery_time",
        True,
        False,
        "local",
    )


def _main(tmp_path: Path, *extra: str, contract: Path | None = None, raw: Path | None = None) -> int:
    argv = job_argv(raw or tmp_path / "raw", tmp_path / "lake", contract=contract, extra=extra)
    return curate.main(argv)


def test_a_missing_or_invalid_contract_stops_the_job_naming_it(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "raw").mkdir()
    broken = tmp_path / "broken.json"
    broken.write_text('{"dataset": "delivery_time",')

    assert _main(tmp_path, contract=tmp_path / "nope.json") == 2
    assert f"--contract_uri: {tmp_path / 'nope.json'} does not exist" in capsys.readouterr().err
    assert _main(tmp_path, contract=broken) == 2
    assert f"{broken}: not valid JSON" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps(CONTRACT))
    assert _main(tmp_path, contract=other) == 2
    assert "is the contract of 't', not 'delivery_time'" in capsys.readouterr().err


def test_a_missing_raw_root_stops_the_job_and_bad_arguments_are_named(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main(tmp_path) == 2
    assert f"--raw_uri: {(tmp_path / 'raw').resolve()} does not exist" in capsys.readouterr().err
    (tmp_path / "raw").mkdir()
    assert _main(tmp_path, "--partitions", "2024-13-01") == 2
    assert "--partitions: '2024-13-01' is not a date" in capsys.readouterr().err
    assert _main(tmp_path, "--run_id", "a/b") == 2
    assert "--run_id: 'a/b' may hold only" in capsys.readouterr().err


def test_no_raw_data_is_a_successful_run_that_says_so(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    (tmp_path / "raw" / "delivery_time" / "dt=2024-01-01").mkdir(parents=True)
    (tmp_path / "raw" / "delivery_time" / "README.txt").write_text("not data")

    assert _main(tmp_path, "--run_id", "empty") == 0

    assert "no_raw_data" in capsys.readouterr().out
    report = json.loads((tmp_path / "lake" / "reports" / "delivery_time" / "empty.json").read_text())
    assert report["status"] == "no_raw_data"
    assert report["files"]["ignored"] == 1
    assert [item["rule"] for item in report["warnings"]] == ["ignored_file"]
    assert not (tmp_path / "lake" / "curated").exists()
    assert not (tmp_path / "lake" / "state").exists()
