"""Inference handlers for SageMaker's XGBoost framework container in script mode.

The registered model package runs this file (``SAGEMAKER_PROGRAM=inference.py``) from the
steps source tarball (``SAGEMAKER_SUBMIT_DIRECTORY``), where it sits at the root next to
``features.py`` and ``capture.py``: the container extracts the tarball into its code folder,
puts that folder on ``sys.path`` and imports this module. The model folder holds only
``xgboost-model.json``; the feature encoding comes from the model's ``feature_spec``
attribute (written by train.py), or from ``features.json`` next to the model when present.

Requests follow the endpoint request contract (pipelines_src/README.md): raw feature values,
categories as their names, as ``text/csv`` rows without a header or ``application/json``
(``{"instances": [...]}`` or one object); capture.py's ``parse_request`` splits them, as the
drift job does with captured requests. A category the model does not know is encoded as a
missing value. Responses: ``application/json`` (the default) ``{"predictions": [..]}``, or
``text/csv`` with one prediction a line.

The handlers, as the container calls them:

``model_fn(model_dir)``
    the Model (booster and feature spec).
``input_fn(request_body, content_type)``
    the body as text with its media type (a Request); the model is not known here.
``predict_fn(data, model)``
    the body's rows against the model's features, encoded as in training, and one prediction
    per row (float64).
``output_fn(prediction, accept)``
    the response body (bytes).

A request that cannot be served raises InvalidRequestError, a ValueError that carries an HTTP
status: 400 for a malformed body, 415 for an unsupported content type, 406 for an unsupported
Accept. Where the SageMaker inference toolkit is importable (inside the container) it also
derives from the toolkit's BaseInferenceToolkitError, whose status the toolkit returns to the
caller instead of a 500.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]
import xgboost as xgb

try:
    from ..steps import capture, features
except ImportError:  # inside the serving container: this file sits next to the step modules
    import capture  # type: ignore[no-redef, import-not-found]
    import features  # type: ignore[no-redef, import-not-found]

MODEL_FILE = "xgboost-model.json"
SPEC_ATTRIBUTE = "feature_spec"
CSV = "text/csv"
JSON = "application/json"
CONTENT_TYPES = (CSV, JSON)
ACCEPT_TYPES = (JSON, CSV)
DEFAULT_ACCEPT = JSON
BAD_REQUEST = 400
NOT_ACCEPTABLE = 406
UNSUPPORTED_MEDIA_TYPE = 415


def _toolkit_error() -> type[Exception]:
    """The inference toolkit's error base class where it is installed (the container), else Exception."""
    try:
        module = importlib.import_module("sagemaker_inference.errors")
    except ImportError:
        return Exception
    base = getattr(module, "BaseInferenceToolkitError", None)
    return base if isinstance(base, type) and issubclass(base, Exception) else Exception


if TYPE_CHECKING:
    _ErrorBase = Exception
else:
    _ErrorBase = _toolkit_error()


class InvalidRequestError(ValueError, _ErrorBase):
    """A request the endpoint refuses; ``status_code`` is the HTTP status the caller gets.

    ``message`` and ``phrase`` are what the inference toolkit sends back with the status.
    """

    def __init__(self, message: str, status_code: int = BAD_REQUEST) -> None:
        ValueError.__init__(self, message)
        self.status_code = status_code
        self.message = message
        self.phrase = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Model:
    """What model_fn loads: the booster and the encoding of its features."""

    booster: xgb.Booster
    spec: features.FeatureSpec

    @property
    def numeric(self) -> list[str]:
        """Features whose values must be numbers (not categories or bools)."""
        return [feature.name for feature in self.spec.features if feature.encoding == features.NUMBER]


@dataclass(frozen=True)
class Request:
    """A request body as text, with its media type (``text/csv`` or ``application/json``)."""

    media: str
    body: str


def load_model(model_dir: str | Path) -> Model:
    """The model in ``model_dir`` (``xgboost-model.json``) with its feature spec; FeatureError if it has none."""
    folder = Path(model_dir)
    booster = xgb.Booster()
    booster.load_model(str(folder / MODEL_FILE))
    spec_file = folder / features.SPEC_FILE
    if spec_file.is_file():
        return Model(booster, features.FeatureSpec.load(spec_file))
    stored = booster.attr(SPEC_ATTRIBUTE)
    if not stored:
        raise features.FeatureError(f"{folder / MODEL_FILE}: no {SPEC_ATTRIBUTE} attribute and no {features.SPEC_FILE}")
    return Model(booster, features.FeatureSpec.from_dict(json.loads(stored), source=MODEL_FILE))


def model_fn(model_dir: str) -> Model:
    """Handler: load the model the container extracted into ``model_dir``."""
    return load_model(model_dir)


def input_fn(request_body: str | bytes | bytearray, content_type: str | None) -> Request:
    """Handler: the body as text with its media type; 415 for another content type, 400 for a body that is not UTF-8."""
    media = capture.media_type(content_type)
    if media not in CONTENT_TYPES:
        raise InvalidRequestError(
            f"content type {content_type!r} is not supported: send {' or '.join(CONTENT_TYPES)}",
            UNSUPPORTED_MEDIA_TYPE,
        )
    if isinstance(request_body, (bytes, bytearray)):
        try:
            text = bytes(request_body).decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidRequestError(f"the body is not UTF-8 text: {error}") from None
    elif isinstance(request_body, str):
        text = request_body
    else:
        raise InvalidRequestError(f"the body is a {type(request_body).__name__}, not text")
    return Request(str(media), text)


def predict_fn(data: Request, model: Model) -> npt.NDArray[np.float64]:
    """Handler: one prediction per row of the request, in request order; 400 when any row is unusable."""
    frame = rows(data, model)
    encoded = pd.DataFrame(features.matrix(frame, model.spec), columns=model.spec.names)
    return np.asarray(model.booster.inplace_predict(encoded), dtype=np.float64).reshape(-1)


def output_fn(prediction: Sequence[float] | npt.NDArray[Any], accept: str | None) -> bytes:
    """Handler: ``{"predictions": [...]}`` for ``application/json`` (also for no Accept or ``*/*``),
    one value a line for ``text/csv``; 406 for anything else."""
    media = _accepted(accept)
    values = [float(value) for value in np.asarray(prediction, dtype=np.float64).reshape(-1)]
    if media == CSV:
        return "".join(f"{value!r}\n" for value in values).encode("utf-8")
    return json.dumps({"predictions": values}, allow_nan=False).encode("utf-8")


def handle(model: Model, body: str | bytes, content_type: str | None, accept: str | None) -> bytes:
    """The four handlers in the order the container runs them: a response body, or InvalidRequestError."""
    return output_fn(predict_fn(input_fn(body, content_type), model), accept)


def rows(data: Request, model: Model) -> pd.DataFrame:
    """The request's rows as a frame of raw values, one column per feature in model order.

    Numbers must parse as finite numbers; categories and bools are left to the encoder (an
    unknown value becomes missing). InvalidRequestError names the first unusable row and how
    many there are.
    """
    names = model.spec.names
    try:
        parsed = capture.parse_request(data.media, data.body, names, numeric=model.numeric)
    except capture.RequestError as error:
        raise InvalidRequestError(str(error)) from None
    if parsed.problems:
        total = len(parsed.problems) + len(parsed.rows)
        first = parsed.problems[0]
        raise InvalidRequestError(f"{len(parsed.problems)} of {total} rows are malformed; first: {first}")
    if not parsed.rows:
        raise InvalidRequestError("the request holds no rows")
    frame = pd.DataFrame([values for _, values in parsed.rows], columns=names, dtype=object)
    for name in model.numeric:
        _check_numbers(frame[name], name, [position for position, _ in parsed.rows])
    for feature in model.spec.features:
        if feature.encoding == features.CATEGORY_CODES:  # an unknown name is a missing value, as in training
            names_sent = frame[feature.name].map(str)
            known = frame[feature.name].notna() & names_sent.isin(feature.categories)
            frame[feature.name] = names_sent.where(known, None)
    return frame


def _check_numbers(column: pd.Series, name: str, positions: list[int]) -> None:
    """InvalidRequestError unless every present value of ``column`` parses as a finite number."""
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(column.notna().to_numpy() & ~np.isfinite(numbers))
    if len(bad):
        value = column.iloc[bad[0]]
        raise InvalidRequestError(f"row {positions[bad[0]]}: {name}: {value!r} is not a finite number")


def _accepted(accept: str | None) -> str:
    """The response media type for an Accept header: the first listed type served; JSON for none or ``*/*``."""
    if accept is None or not accept.strip():
        return DEFAULT_ACCEPT
    for item in accept.split(","):
        media = capture.media_type(item)
        if media in ("*/*", "application/*"):
            return DEFAULT_ACCEPT
        if media == "text/*":
            return CSV
        if media in ACCEPT_TYPES:
            return str(media)
    raise InvalidRequestError(
        f"accept {accept!r} is not supported: ask for {' or '.join(ACCEPT_TYPES)}", NOT_ACCEPTABLE
    )
