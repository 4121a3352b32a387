"""Catalog tables derived from the data contracts in pipelines_src/contracts/."""

from __future__ import annotations

import json
from pathlib import Path

from resolver.config import CONTRACTS_DIR, LABELS_SUFFIX
from stacks.constructs.catalog import Column, TableSpec

# Contract column types -> Glue (Hive) types of the curated Parquet files.
GLUE_TYPES = {
    "string": "string",
    "category": "string",
    "int": "bigint",
    "float": "double",
    "bool": "boolean",
    "date": "date",
}
PARTITION_KEY = Column("dt", "date", "partition: the day the rows belong to (from the contract's partition column)")


def contract_path(dataset: str) -> Path:
    return CONTRACTS_DIR / f"{dataset}.json"


# Ground truth of a model's predictions: the dataset <dataset>_labels, whose contract is
# pipelines_src/contracts/<dataset>_labels.json, lands in every zone under labels/<dataset>/.
LABELS_FOLDER = "labels"


def labels_dataset(dataset: str) -> str:
    """The labels dataset of a model dataset (its contract's ``dataset``)."""
    return f"{dataset}{LABELS_SUFFIX}"


def labels_folder(dataset: str) -> str:
    """Where a model dataset's labels live in each zone (the curation job's ``--dataset_folder``)."""
    return f"{LABELS_FOLDER}/{dataset}"


def curated_table(dataset: str, folder: str | None = None) -> TableSpec:
    """The curated zone's table for a dataset: every contract column, Parquet, partitioned by day.

    ``folder``: the dataset's folder in the zone (default: the dataset name; ``labels_folder`` for labels).
    """
    path = contract_path(dataset)
    contract = json.loads(path.read_text())
    columns = []
    for column in contract["columns"]:
        if column["type"] not in GLUE_TYPES:
            raise ValueError(f"{path}: column {column['name']!r} has unknown type {column['type']!r}")
        columns.append(Column(column["name"], GLUE_TYPES[column["type"]], column.get("description", "")[:255]))
    return TableSpec(
        name=f"curated_{contract['dataset']}",
        zone="curated",
        prefix=f"{folder or contract['dataset']}/",
        columns=tuple(columns),
        partition_keys=(PARTITION_KEY,),
        description=contract.get("description", f"Curated {contract['dataset']}")[:2048],
    )


# Columns the curation job adds to each quarantined row (etl/curate.py QUARANTINE_COLUMNS).
QUARANTINE_COLUMNS = (
    Column("_rule", "string", "the first rule the row broke (etl/README.md lists the order)"),
    Column("_violations", "string", "every rule the row broke, with the column: rule:column;..."),
    Column("_source_file", "string", "the raw file the row came from"),
    Column("_run_id", "string", "the curation run that quarantined it"),
)


def quarantine_table(dataset: str, prefix: str) -> TableSpec:
    """Rows of a dataset that broke its contract: every column as the raw text, plus why and where from."""
    contract = json.loads(contract_path(dataset).read_text())
    columns = tuple(Column(column["name"], "string", "raw text") for column in contract["columns"])
    return TableSpec(
        name=f"quarantine_{contract['dataset']}",
        zone="curated",
        prefix=f"{prefix}{contract['dataset']}/",
        columns=columns + QUARANTINE_COLUMNS,
        partition_keys=(Column("dt", "date", "partition: the raw folder's day"),),
        description=f"Rows of {contract['dataset']} quarantined by the curation job, with the rule they broke",
    )
