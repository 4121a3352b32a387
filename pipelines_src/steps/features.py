"""Feature encoding shared by preprocess, train, evaluate and inference, derived from the data contract.

Features are the contract's columns minus the target, the id columns, the partition
column and date columns, in contract order. Numbers pass through (nulls stay NaN, which
XGBoost treats as missing); a category becomes its position in the contract's allowed
values (0, 1, ...; NaN for null or unknown values); a bool becomes 0/1. The encoding is
saved as ``features.json`` next to the model so that every later consumer encodes the
same way without the contract.

Also here: ``read_table``, the reader of the split CSVs (target first, header row) that
train and evaluate share.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from .contract import Contract

SPEC_FILE = "features.json"
FORMAT_VERSION = 1
NUMBER = "number"
CATEGORY_CODES = "category_codes"
BOOL = "bool"
ENCODINGS = (NUMBER, CATEGORY_CODES, BOOL)
_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")


class FeatureError(ValueError):
    """Data or a feature spec does not fit the encoding; the message says what and where."""


@dataclass(frozen=True)
class Feature:
    """One model input: its column name, its encoding and, for categories, their order."""

    name: str
    encoding: str
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeatureSpec:
    """The encoding of a dataset's features; ``features.json`` holds it next to the model."""

    target: str
    features: tuple[Feature, ...]
    dataset: str = ""
    contract_version: str = ""
    dropped: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """Feature names in model-input order."""
        return [feature.name for feature in self.features]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``features.json``)."""
        return {
            "format_version": FORMAT_VERSION,
            "dataset": self.dataset,
            "contract_version": self.contract_version,
            "target": self.target,
            "features": [
                {"name": feature.name, "encoding": feature.encoding, "categories": list(feature.categories)}
                if feature.encoding == CATEGORY_CODES
                else {"name": feature.name, "encoding": feature.encoding}
                for feature in self.features
            ],
            "dropped": list(self.dropped),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = SPEC_FILE) -> FeatureSpec:
        """The spec ``to_dict`` wrote; FeatureError names ``source`` and the bad key."""
        if not isinstance(data, dict) or not isinstance(data.get("features"), list):
            raise FeatureError(f"{source}: expected an object with a 'features' list")
        if not isinstance(data.get("target"), str):
            raise FeatureError(f"{source}: target: expected a column name")
        features = []
        for index, item in enumerate(data["features"]):
            where = f"{source}: features[{index}]"
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise FeatureError(f"{where}: expected an object with a name")
            if item.get("encoding") not in ENCODINGS:
                raise FeatureError(f"{where}.encoding: {item.get('encoding')!r} is not one of {', '.join(ENCODINGS)}")
            categories = item.get("categories", [])
            if not isinstance(categories, list) or not all(isinstance(value, str) for value in categories):
                raise FeatureError(f"{where}.categories: expected a list of strings")
            features.append(Feature(item["name"], item["encoding"], tuple(categories)))
        return cls(
            target=data["target"],
            features=tuple(features),
            dataset=str(data.get("dataset", "")),
            contract_version=str(data.get("contract_version", "")),
            dropped=tuple(str(name) for name in data.get("dropped", [])),
        )

    def save(self, path: str | Path) -> Path:
        """Write ``features.json`` (or ``path`` if it names a file) and return its path."""
        path = Path(path)
        if path.is_dir():
            path = path / SPEC_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureSpec:
        """Read a spec written by ``save`` (``path`` may be its folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / SPEC_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FeatureError(f"{path}: no feature spec") from None
        except json.JSONDecodeError as error:
            raise FeatureError(f"{path}: not valid JSON: {error.msg} (line {error.lineno})") from None
        return cls.from_dict(data, source=str(path))


def from_contract(contract: Contract) -> FeatureSpec:
    """The feature encoding a contract implies (see the module doc)."""
    features = []
    for column in contract.feature_columns:
        if column.type in ("int", "float"):
            features.append(Feature(column.name, NUMBER))
        elif column.type == "category":
            features.append(Feature(column.name, CATEGORY_CODES, tuple(column.allowed)))
        elif column.type == "bool":
            features.append(Feature(column.name, BOOL))
    used = {feature.name for feature in features}
    dropped = tuple(name for name in contract.names if name not in used and name != contract.target)
    return FeatureSpec(
        target=contract.target,
        features=tuple(features),
        dataset=contract.dataset,
        contract_version=contract.version,
        dropped=dropped,
    )


def names_only(names: Sequence[str], target: str) -> FeatureSpec:
    """A spec for already-encoded numeric columns (when no contract-derived spec is at hand)."""
    return FeatureSpec(target=target, features=tuple(Feature(name, NUMBER) for name in names))


def encode(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The spec's features of ``frame`` as numbers, in spec order (one column per feature).

    ``frame`` may hold typed columns (as the contract reader returns them) or raw values
    (category names as strings, numbers as text). Integer columns without nulls stay
    integers; everything else is float64 with NaN for missing values.
    """
    absent = [name for name in spec.names if name not in frame.columns]
    if absent:
        raise FeatureError(f"input lacks feature column(s) {', '.join(absent)}")
    encoded = {feature.name: _encode_column(frame[feature.name], feature) for feature in spec.features}
    return pd.DataFrame(encoded, index=frame.index, columns=spec.names)


def matrix(frame: pd.DataFrame, spec: FeatureSpec) -> npt.NDArray[np.float32]:
    """The encoded features as a float32 matrix (rows x features), ready for XGBoost."""
    return np.asarray(encode(frame, spec).to_numpy(dtype=np.float32, na_value=np.nan))


def _encode_column(column: pd.Series, feature: Feature) -> Any:
    if feature.encoding == CATEGORY_CODES:
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype) and [str(v) for v in dtype.categories] == list(feature.categories):
            codes = column.cat.codes.to_numpy()
        else:  # names as text; nulls become "nan", which is no category
            codes = pd.Categorical(column.astype(str), categories=list(feature.categories)).codes
        return codes.astype(np.int64) if (codes >= 0).all() else np.where(codes >= 0, codes, np.nan)
    if feature.encoding == BOOL:
        words = column.astype(str).str.strip().str.lower()
        return np.where(words.isin(_TRUE), 1.0, np.where(words.isin(_FALSE), 0.0, np.nan))
    if column.dtype.kind in "iu":
        return column.to_numpy()
    try:
        return pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as error:
        raise FeatureError(f"feature {feature.name}: not numeric ({error})") from None


def read_table(directory: str | Path) -> pd.DataFrame:
    """Every ``*.csv`` under ``directory`` (or the file itself), concatenated, as float32 columns.

    The layout preprocess writes: a header row, the target first, then the features.
    FeatureError says which file or column does not fit.
    """
    directory = Path(directory)
    files = [directory] if directory.is_file() else sorted(directory.rglob("*.csv"))
    files = [path for path in files if not path.name.startswith((".", "_"))]
    if not files:
        raise FeatureError(f"{directory}: no CSV files")
    tables = [_read_csv(path) for path in files]
    header = list(tables[0].columns)
    for index, table in enumerate(tables):
        if list(table.columns) != header:
            raise FeatureError(f"{files[index]}: header {list(table.columns)} differs from {files[0]}'s {header}")
    return tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=np.float32)
    except ValueError:
        pass
    table = pd.read_csv(path, low_memory=False)
    for name in table.columns:
        if not pd.api.types.is_numeric_dtype(table[name].dtype):
            bad = table[name][pd.to_numeric(table[name], errors="coerce").isna() & table[name].notna()]
            raise FeatureError(f"{path}: column {name} holds non-numeric values such as {bad.iloc[0]!r}") from None
    return table.astype(np.float32)


def split_target(table: pd.DataFrame, spec: FeatureSpec | None = None) -> tuple[pd.DataFrame, npt.NDArray[np.float32]]:
    """(features, target) of a table from ``read_table``: the target is the first column.

    With ``spec``, the features are the spec's columns in its order (FeatureError names
    any that are missing); without, every column after the first.
    """
    if table.shape[1] < 2:
        raise FeatureError(f"expected the target and at least one feature column, got {list(table.columns)}")
    target = np.asarray(table.iloc[:, 0].to_numpy(dtype=np.float32))
    if np.isnan(target).any():
        raise FeatureError(f"target column {table.columns[0]} has {int(np.isnan(target).sum())} empty values")
    if spec is None:
        return table.iloc[:, 1:], target
    absent = [name for name in spec.names if name not in table.columns]
    if absent:
        raise FeatureError(f"table lacks feature column(s) {', '.join(absent)} of the feature spec")
    return table[spec.names], target
