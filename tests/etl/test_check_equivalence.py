"""The row checks' shortcuts (the parsed value tested first) give the rules' plain meaning."""

from __future__ import annotations

import json

from pyspark.sql import SparkSession

from etl import curate

CONTRACT = {
    "dataset": "t",
    "version": "1",
    "columns": [
        {"name": "id", "type": "string"},
        {"name": "mark", "type": "category", "allowed": [" ", "a"]},
        {"name": "n", "type": "int", "min": 0, "max": 10},
    ],
}


def test_an_allowed_blank_category_value_is_still_an_unexpected_null(spark: SparkSession) -> None:
    contract = curate.parse_contract(json.dumps(CONTRACT))
    rows = [("1", " ", "3"), ("2", "a", " 3.0 "), ("3", None, "3"), ("4", "b", "x")]
    raw = spark.createDataFrame(rows, "id string, mark string, n string").selectExpr(
        "*", "CAST(array() AS array<string>) AS _missing", "'f.csv' AS _source_file", "DATE'2024-01-01' AS dt"
    )

    found = sorted(
        tuple(row) for row in curate.check_rows(raw, contract).select("id", "_rule", "_violations").collect()
    )

    assert found == [
        ("1", "unexpected_null", "unexpected_null:mark"),
        ("2", None, None),
        ("3", "unexpected_null", "unexpected_null:mark"),
        ("4", "wrong_type", "wrong_type:n,not_allowed_value:mark"),
    ]
