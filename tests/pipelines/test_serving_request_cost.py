"""The endpoint's per-request work in few pandas calls, with the answers of the column-by-column path.

``rows`` checks every numeric column with one parse and maps category names in plain Python;
``predict`` hands the booster the float32 matrix rather than a DataFrame of it. These tests pin
what the straightforward path gives: the same predictions to the bit, the same first bad value
named (first numeric column in model order, then first row), unknown names as missing values,
and a booster whose feature names differ from the spec's still refused.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipelines_src.serving import inference
from pipelines_src.steps import features
from tests.pipelines.test_serving import Served, csv_of, records_of, train_served

JSON = "application/json"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    return train_served(tmp_path_factory.mktemp("request-cost"))


def _straightforward(served: Served, frame: pd.DataFrame) -> np.ndarray:
    """Predictions through a DataFrame of the encoded rows, as the booster validates names on."""
    encoded = pd.DataFrame(features.matrix(frame, served.model.spec), columns=served.model.spec.names)
    return np.asarray(served.model.booster.inplace_predict(encoded), dtype=np.float64)


def test_predictions_equal_the_dataframe_path_to_the_bit(served: Served) -> None:
    names = served.model.spec.names
    body = json.dumps({"instances": records_of(served.raw, names)})
    request = inference.read_request(body, JSON)
    got = inference.predict(request, served.model)
    assert got.tobytes() == _straightforward(served, inference.rows(request, served.model)).tobytes()
    csv = inference.read_request(csv_of(served.raw, names), "text/csv")
    assert inference.predict(csv, served.model).tobytes() == got.tobytes()


def test_the_first_bad_number_is_named_column_first_then_row(served: Served) -> None:
    names = served.model.spec.names
    numeric = served.model.numeric
    assert len(numeric) >= 2
    records = records_of(served.raw.head(5), names)
    records[3][numeric[1]] = "many"  # a later column, an earlier row ...
    records[1][numeric[1]] = "lots"
    records[4][numeric[0]] = "infinity"  # ... lose to the first column
    records[2][numeric[0]] = "1e999"
    with pytest.raises(inference.InvalidRequestError) as raised:
        inference.rows(inference.read_request(json.dumps({"instances": records}), JSON), served.model)
    assert str(raised.value) == f"row 2: {numeric[0]}: '1e999' is not a finite number"


def test_category_names_are_kept_known_or_made_missing(served: Served) -> None:
    names = served.model.spec.names
    feature = next(item for item in served.model.spec.features if item.encoding == features.CATEGORY_CODES)
    records = records_of(served.raw.head(4), names)
    records[0][feature.name] = "no such name"
    records[1][feature.name] = None
    records[2][feature.name] = 7  # a number is its text, which no category is
    frame = inference.rows(inference.read_request(json.dumps({"instances": records}), JSON), served.model)
    column = frame[feature.name]
    assert column.isna().tolist() == [True, True, True, False]
    assert column.iloc[3] == str(served.raw[feature.name].iloc[3])
    codes = features.matrix(frame, served.model.spec)[:, served.model.spec.names.index(feature.name)]
    assert np.isnan(codes[:3]).all() and codes[3] == feature.categories.index(column.iloc[3])


def test_a_booster_trained_on_other_feature_names_is_refused(served: Served) -> None:
    booster = served.model.booster.copy()
    booster.feature_names = [f"other_{index}" for index in range(booster.num_features())]
    model = inference.Model(booster, served.model.spec)
    body = json.dumps({"instances": records_of(served.raw.head(2), served.model.spec.names)})
    with pytest.raises(ValueError, match="feature_names mismatch"):
        inference.predict(inference.read_request(body, JSON), model)
