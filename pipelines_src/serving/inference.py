"""The endpoint's inference code for SageMaker's XGBoost framework container in script mode.

The registered model package runs this file (``SAGEMAKER_PROGRAM=inference.py``) from the model
itself: train.py copies it, with the step modules it imports (``features.py``, ``capture.py``,
``contract.py``), into ``code/`` of the model folder, so ``model.tar.gz`` carries the code it was
built with, and the package's ``SAGEMAKER_SUBMIT_DIRECTORY`` is ``/opt/ml/model/code``. The
container (sagemaker-containers 2.8.6 under gunicorn) copies that folder to ``/opt/ml/code``,
pip-installs it and imports this module by name. The model folder holds ``xgboost-model.json``;
the feature encoding comes from the model's ``feature_spec`` attribute (written by train.py), or
from ``features.json`` next to the model when present.

Requests follow the endpoint request contract (pipelines_src/README.md): raw feature values,
categories as their names, as ``text/csv`` rows without a header or ``application/json``
(``{"instances": [...]}`` or one object); capture.py's ``parse_request`` splits them, as the
drift job does with captured requests. A category the model does not know is encoded as a
missing value.

The container calls two functions:

``model_fn(model_dir)``
    the Model (booster and feature spec).
``transform_fn(model, request_body, content_type, accept)``
    the whole request: the container's own response object (``worker.Response``) with the
    status and Content-Type of ``respond``. The container turns any exception of a handler into
    a 500 and labels anything but its response object ``text/html``, so every refusal is a
    response, never an exception. (The container takes ``transform_fn`` or the
    input_fn/predict_fn/output_fn trio, not both: this module defines no trio.)

``respond(model, body, content_type, accept)`` is the same answer as a plain ``Reply`` (status,
Content-Type, body) for in-process callers:

- 200 with ``application/json`` ``{"predictions": [..]}`` (for an absent Accept, ``*/*`` or
  ``application/json``) or ``text/csv`` with one prediction a line (for ``text/csv``);
- 400 for a malformed body, 415 for a content type other than ``text/csv`` and
  ``application/json``, 406 for an Accept that names neither: ``text/plain`` with one line that
  names the problem.

Every prediction the container serves carries an inference id: the client's (InvokeEndpoint's
``InferenceId``, which SageMaker records in the data capture as ``eventMetadata.inferenceId`` and passes
to the container as the ``X-Amzn-SageMaker-Inference-Id`` header, as the SageMaker SDK's local mode does
too), or else one ``transform_fn`` assigns (a UUID). A 200 answer returns it in the JSON body
(``{"predictions": [...], "inference_id": "..."}``, so the capture's ``endpointOutput`` holds it) and, for
either media type, in the ``X-Amzn-SageMaker-Custom-Attributes`` response header as
``inference_id=<id>`` (InvokeEndpoint's ``CustomAttributes``). A ``text/csv`` answer keeps one prediction
a line (what Model Monitor reads), so a client asking for CSV passes its own InferenceId for the id to be
in the capture. A request of several rows has one id; its rows are ``<id>:<row>`` (capture.py).

A request without Content-Type is JSON: the container passes ``application/json`` for it, and
``respond`` does the same. The body reaches ``transform_fn`` as text when the Content-Type is
exactly ``text/csv`` or ``application/json`` (decoded by the container, undecodable bytes
replaced by U+FFFD) and as bytes otherwise; either way a body that is not UTF-8 is a 400.
``handle`` is ``respond`` for callers that want the body or an InvalidRequestError.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]
import xgboost as xgb

try:
    from ..steps import capture, features
except ImportError:  # inside the serving container: this file sits next to the step modules
    import capture  # type: ignore[no-redef, import-not-found]
    import features  # type: ignore[no-redef, import-not-found]

try:  # the serving container's response type (Flask's, with the status and mimetype given)
    from sagemaker_containers.beta.framework import worker as _worker  # type: ignore[import-not-found]
except ImportError:  # no container here (unit tests, the project venv)
    _worker = None

MODEL_FILE = "xgboost-model.json"
SPEC_ATTRIBUTE = "feature_spec"
CSV = "text/csv"
JSON = "application/json"
TEXT = "text/plain"
CONTENT_TYPES = (CSV, JSON)
ACCEPT_TYPES = (JSON, CSV)
DEFAULT_ACCEPT = JSON
# What a request without Content-Type is: the container passes application/json for it.
DEFAULT_CONTENT_TYPE = JSON
OK = 200
BAD_REQUEST = 400
NOT_ACCEPTABLE = 406
UNSUPPORTED_MEDIA_TYPE = 415
REPLACEMENT_CHARACTER = "\ufffd"
# The client's InferenceId as the container receives it, and the header a container answers custom
# attributes in (InvokeEndpoint returns it as CustomAttributes):
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
INFERENCE_ID_KEY = "inference_id"
# InvokeEndpoint's InferenceId: 1 to 64 printable characters, not starting with a space.
_INFERENCE_ID = re.compile(r"[!-~][ -~]{0,63}")


class InvalidRequestError(ValueError):
    """A request the endpoint refuses; ``status_code`` is the HTTP status the caller gets."""

    def __init__(self, message: str, status_code: int = BAD_REQUEST) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Reply:
    """An answer to one request: HTTP status, media type of the body, the body."""

    status: int
    content_type: str
    body: bytes
    inference_id: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The response headers besides Content-Type: the inference id as custom attributes."""
        return (
            {} if self.inference_id is None else {CUSTOM_ATTRIBUTES_HEADER: f"{INFERENCE_ID_KEY}={self.inference_id}"}
        )


@dataclass(frozen=True)
class FallbackResponse:
    """What ``transform_fn`` returns where the container's response type is not importable.

    It answers like the container's (a Flask response): ``status_code``, ``mimetype``, ``get_data()``.
    """

    status_code: int
    mimetype: str
    body: bytes
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def get_data(self) -> bytes:
        return self.body


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


def transform_fn(model: Model, request_body: str | bytes, content_type: str | None, accept: str | None) -> Any:
    """Handler: the answer to one request as the container's response object (module doc), with the
    client's inference id or one assigned here."""
    reply = respond(model, request_body, content_type, accept, inference_id=request_inference_id() or new_id())
    if _worker is None:
        return FallbackResponse(reply.status, reply.content_type, reply.body, reply.headers)
    return _worker.Response(
        response=reply.body, status=reply.status, mimetype=reply.content_type, headers=reply.headers
    )


def request_inference_id() -> str | None:
    """The client's InferenceId from the request being served (its header), None outside a request or when
    it is absent or not a valid InferenceId."""
    try:
        import flask
    except ImportError:  # no web framework here: no request either
        return None
    if not flask.has_request_context():
        return None
    value = flask.request.headers.get(INFERENCE_ID_HEADER)
    return value if isinstance(value, str) and _INFERENCE_ID.fullmatch(value) else None


def new_id() -> str:
    """An inference id for a request that came without one."""
    return uuid.uuid4().hex


def respond(
    model: Model, body: str | bytes, content_type: str | None, accept: str | None, *, inference_id: str | None = None
) -> Reply:
    """The answer to one request (module doc): predictions with 200 (and ``inference_id`` in a JSON body and
    the headers, when given), or a refusal with its status as text."""
    try:
        answer = handle(model, body, content_type, accept, inference_id=inference_id)
    except InvalidRequestError as error:
        return Reply(error.status_code, TEXT, f"{error.message}\n".encode())
    return Reply(OK, accepted(accept), answer, inference_id)


def handle(
    model: Model, body: str | bytes, content_type: str | None, accept: str | None, *, inference_id: str | None = None
) -> bytes:
    """The body ``respond`` answers with 200, or the refusal as InvalidRequestError: the content type is
    checked first (415), then the body's encoding (400), the Accept (406) and the rows (400)."""
    request = read_request(body, content_type)
    media = accepted(accept)
    return encode(predict(request, model), media, inference_id=inference_id)


def read_request(request_body: str | bytes | bytearray, content_type: str | None) -> Request:
    """The body as text with its media type (``application/json`` when there is none); 415 for
    another content type, 400 for a body that is not UTF-8."""
    media = capture.media_type(content_type) or DEFAULT_CONTENT_TYPE
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
        if REPLACEMENT_CHARACTER in text:  # what the container decodes undecodable bytes to
            position = text.index(REPLACEMENT_CHARACTER)
            raise InvalidRequestError(f"the body is not UTF-8 text: U+FFFD at character {position}")
    else:
        raise InvalidRequestError(f"the body is a {type(request_body).__name__}, not text")
    return Request(str(media), text)


def predict(data: Request, model: Model) -> npt.NDArray[np.float64]:
    """One prediction per row of the request, in request order; 400 when any row is unusable."""
    frame = rows(data, model)
    trained_on = model.booster.feature_names
    if trained_on is not None and list(trained_on) != model.spec.names:  # what a DataFrame input would check
        raise ValueError(f"feature_names mismatch: the booster's {trained_on} are not {model.spec.names}")
    # The float32 matrix itself: a DataFrame of it costs more than the prediction of a few rows.
    return np.asarray(model.booster.inplace_predict(features.matrix(frame, model.spec)), dtype=np.float64).reshape(-1)


def encode(prediction: Sequence[float] | npt.NDArray[Any], media: str, *, inference_id: str | None = None) -> bytes:
    """The response body: ``{"predictions": [...]}`` (with ``"inference_id"`` when given) for
    ``application/json``, one value a line for ``text/csv``."""
    values = [float(value) for value in np.asarray(prediction, dtype=np.float64).reshape(-1)]
    if media == CSV:
        return "".join(f"{value!r}\n" for value in values).encode("utf-8")
    document: dict[str, Any] = {"predictions": values}
    if inference_id is not None:
        document[INFERENCE_ID_KEY] = inference_id
    return json.dumps(document, allow_nan=False).encode("utf-8")


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
    _check_numbers(frame, model.numeric, [position for position, _ in parsed.rows])
    for feature in model.spec.features:
        if feature.encoding == features.CATEGORY_CODES:  # an unknown name is a missing value, as in training
            known = set(feature.categories)
            sent = [None if pd.isna(value) else str(value) for value in frame[feature.name].tolist()]
            named = [text if text in known else None for text in sent]
            frame[feature.name] = pd.Series(named, index=frame.index, dtype=object)
    return frame


def _check_numbers(frame: pd.DataFrame, numeric: list[str], positions: list[int]) -> None:
    """InvalidRequestError unless every present value of the ``numeric`` columns parses as a finite number;
    it names the first column (in ``numeric`` order) with one, and its first row. One parse for all columns:
    the request's few rows cost little, each pandas call a lot."""
    if not numeric or frame.empty:
        return
    values = frame[numeric].to_numpy(dtype=object).T.reshape(-1)  # column after column
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad = np.flatnonzero(pd.notna(values) & ~np.isfinite(numbers))
    if len(bad):
        column, row = divmod(int(bad[0]), len(frame))
        value = values[bad[0]]
        raise InvalidRequestError(f"row {positions[row]}: {numeric[column]}: {value!r} is not a finite number")


def accepted(accept: str | None) -> str:
    """The response media type for an Accept header: the first listed type served; JSON for none or ``*/*``;
    406 when it lists none of them."""
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
