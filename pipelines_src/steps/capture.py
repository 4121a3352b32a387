"""Read SageMaker real-time endpoint data capture into the contract's feature columns.

SageMaker writes what an endpoint receives as JSON Lines files,
``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<name>.jsonl``, one request a line::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "...", "encoding": "CSV"},
                     "endpointOutput": {...}},
     "eventMetadata": {"eventId": "...", "inferenceId": "order-42", "inferenceTime": "2026-11-01T12:00:00Z"},
     "eventVersion": "0"}

``eventMetadata.inferenceId`` is there when the client passed InvokeEndpoint's ``InferenceId``
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html). Without it,
a JSON answer of the endpoint holds the id the endpoint assigned (``"inference_id"``, see
pipelines_src/serving/inference.py). ``request_inference_id`` reads a record's id that way, and each row
of a request is identified by ``prediction_id``: the request's id for a one-row request, ``<id>:<row>``
(0-based) for the rows of a batch. Ground-truth labels name predictions by these ids.
``captured_predictions`` reads the answer's predictions (one per request row); ``read_capture`` gives
each row its served prediction and its request's inference time, for the model-quality join (quality.py).

The endpoint's request contract (the features are ``features.from_contract``'s: the
contract's columns minus the target, id, partition and date columns, in contract order):

``text/csv``
    one or more rows, no header, each holding exactly the feature values in that order;
    an empty field is a missing value.
``application/json``
    ``{"instances": [{"<feature>": value, ...}, ...]}`` or a single ``{"<feature>": value, ...}``;
    a null or absent feature is a missing value, keys that are not features are ignored.

``parse_request`` splits one request body into feature rows by this contract; the endpoint's
inference handlers (pipelines_src/serving/inference.py) use it too, so both read requests alike.

``encoding`` says how ``data`` holds the body: ``CSV`` and ``JSON`` as text, ``BASE64``
as the base64 of its UTF-8 bytes (what SageMaker writes for content types its capture
configuration does not list). A content type may carry parameters (``text/csv; charset=utf-8``).

``read_capture`` reads every ``*.jsonl`` under a folder (recursively, in path order) and
never fails on bad data: a line that is not usable (not JSON, no ``captureData.endpointInput``,
unknown encoding or content type, undecodable body, no valid ``eventMetadata.inferenceTime``)
and a row that is not (wrong number of CSV fields, an instance that is not an object, a
value that does not parse as its column's type) are skipped and each recorded as a
``Malformed`` entry (file, line, row within the request, reason). The rows kept are typed by
the contract reader (``contract.dataset_from_frame`` over the feature columns), so drift
statistics treat them exactly like rows read from CSV or Parquet; a category the contract
does not allow stays a row (its value becomes null and counts as a schema violation, as
in a dataset). ``since`` (inclusive) and ``until`` (exclusive) keep only requests whose
inference time falls in that window.
"""

from __future__ import annotations

import base64
import binascii
import csv
import dataclasses
import datetime as dt
import io
import json
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

try:
    from . import contract as contracts
    from . import features
except ImportError:  # run as a script inside a SageMaker container
    import contract as contracts  # type: ignore[no-redef, import-not-found]
    import features  # type: ignore[no-redef, import-not-found]

CAPTURE_SUFFIX = ".jsonl"
CSV_CONTENT_TYPE = "text/csv"
JSON_CONTENT_TYPE = "application/json"
ENCODINGS = ("CSV", "JSON", "BASE64")
# Malformed entries kept with their details; every one is counted.
MAX_KEPT = 1000

# Reasons, each a stable code a report can count by.
UNREADABLE = "unreadable_file"
NOT_JSON = "not_json"
NO_INPUT = "no_endpoint_input"
BAD_TIME = "bad_inference_time"
BAD_ENCODING = "bad_encoding"
BAD_CONTENT_TYPE = "unsupported_content_type"
BAD_PAYLOAD = "bad_payload"
WRONG_COLUMN_COUNT = "wrong_column_count"
BAD_VALUE = "unparseable_value"
# Whole lines: nothing of the request could be used.
LINE_REASONS = (UNREADABLE, NOT_JSON, NO_INPUT, BAD_TIME, BAD_ENCODING, BAD_CONTENT_TYPE, BAD_PAYLOAD)
# Single rows of a request whose other rows are kept.
ROW_REASONS = (WRONG_COLUMN_COUNT, BAD_VALUE)

_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE
)


@dataclass(frozen=True)
class Malformed:
    """One skipped line (``row`` None) or one skipped row of a request (``row`` its 0-based position)."""

    file: str
    line: int
    reason: str
    detail: str
    row: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the drift report."""
        return {"file": self.file, "line": self.line, "row": self.row, "reason": self.reason, "detail": self.detail}


@dataclass
class CaptureData:
    """Captured requests as a Dataset of the feature columns, and what reading them skipped.

    ``dataset`` is typed with ``feature_contract(contract)``; its ``files`` are the capture
    files (relative to the folder) and ``offsets`` their row ranges. ``lines[i]`` is the
    line of its file that row ``i`` came from. ``malformed`` keeps the first MAX_KEPT
    entries; ``counts`` counts every one by reason.
    """

    dataset: contracts.Dataset
    lines: npt.NDArray[np.int64]
    requests: int
    outside_window: int
    malformed: list[Malformed] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    first_inference_time: str | None = None
    last_inference_time: str | None = None
    # Row i's prediction id (``prediction_id``), None when its request carries no inference id.
    inference_ids: list[str | None] = field(default_factory=list)
    # Row i's served prediction (``captured_predictions``; NaN when the answer holds none for it) and its
    # request's inference time (seconds since the epoch, UTC).
    predictions: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    inference_times: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    @property
    def malformed_count(self) -> int:
        """Skipped lines plus skipped rows."""
        return sum(self.counts.values())

    def summary(self, max_entries: int = 20) -> dict[str, Any]:
        """JSON-ready account of the read: files, requests, rows, skipped lines and rows by reason, examples."""
        return {
            "files": len(self.dataset.files),
            "requests": self.requests,
            "rows": self.dataset.rows,
            "outside_window": self.outside_window,
            "first_inference_time": self.first_inference_time,
            "last_inference_time": self.last_inference_time,
            "malformed_count": self.malformed_count,
            "malformed_lines": sum(self.counts[reason] for reason in LINE_REASONS),
            "malformed_rows": sum(self.counts[reason] for reason in ROW_REASONS),
            "rows_without_inference_id": sum(1 for value in self.inference_ids if value is None),
            "malformed_by_reason": {reason: self.counts[reason] for reason in sorted(self.counts)},
            "malformed": [entry.to_dict() for entry in self.malformed[:max_entries]],
        }


def feature_contract(contract: contracts.Contract) -> contracts.Contract:
    """``contract`` narrowed to its model features: what a request to the endpoint holds."""
    names = set(features.from_contract(contract).names)
    columns = tuple(column for column in contract.columns if column.name in names)
    return dataclasses.replace(contract, columns=columns, id_columns=(), partition_column=None)


def capture_files(root: str | Path) -> list[Path]:
    """``*.jsonl`` files under ``root`` (or ``root`` itself), in path order; hidden and ``_`` entries skipped."""
    root = Path(root)
    if root.is_file():
        return [root] if root.name.endswith(CAPTURE_SUFFIX) else []
    if not root.is_dir():
        return []
    found = [
        path
        for path in root.rglob(f"*{CAPTURE_SUFFIX}")
        if path.is_file() and not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)
    ]
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 date-time as an aware UTC datetime (no offset: UTC); ValueError otherwise."""
    match = _TIME.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time such as 2026-11-01T12:00:00Z")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    moment = dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=dt.timezone.utc)
    if offset and offset.upper() != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        moment -= sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment


INFERENCE_ID_KEY = "inference_id"


def request_inference_id(event: Mapping[str, Any]) -> str | None:
    """A capture record's inference id: ``eventMetadata.inferenceId`` (the client's), else the
    ``inference_id`` of the endpoint's JSON answer (the one it assigned); None when it has neither."""
    given = _dig(event, "eventMetadata", "inferenceId")
    if isinstance(given, str) and given:
        return given
    output = _dig(event, "captureData", "endpointOutput")
    if not isinstance(output, dict) or media_type(output.get("observedContentType")) != JSON_CONTENT_TYPE:
        return None
    body = _body({**output, "observedContentType": JSON_CONTENT_TYPE})
    if isinstance(body, _Skip):
        return None
    try:
        answer = json.loads(body[1])
    except ValueError:
        return None
    assigned = answer.get(INFERENCE_ID_KEY) if isinstance(answer, dict) else None
    return assigned if isinstance(assigned, str) and assigned else None


def captured_predictions(event: Mapping[str, Any]) -> list[float] | None:
    """The predictions of a capture record's answer (``captureData.endpointOutput``), one per request row:
    ``{"predictions": [...]}`` for JSON, one number a line for CSV (pipelines_src/serving/inference.py
    ``encode``); None when the answer is absent or holds anything else (a refusal)."""
    output = _dig(event, "captureData", "endpointOutput")
    media = media_type(output.get("observedContentType")) if isinstance(output, dict) else None
    if media not in (CSV_CONTENT_TYPE, JSON_CONTENT_TYPE):
        return None
    body = _body(output)
    if isinstance(body, _Skip):
        return None
    try:
        if media == JSON_CONTENT_TYPE:
            answer = json.loads(body[1])
            values = answer.get("predictions") if isinstance(answer, dict) else None
        else:
            values = [line for line in body[1].splitlines() if line.strip()]
        if not isinstance(values, list) or any(isinstance(value, (bool, dict, list)) for value in values):
            return None
        return [float(value) for value in values]
    except (TypeError, ValueError):
        return None


def prediction_id(inference_id: str, row: int, rows: int) -> str:
    """The id of row ``row`` of a request of ``rows`` rows: the request's id alone, or ``<id>:<row>``."""
    return inference_id if rows == 1 else f"{inference_id}:{row}"


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.timezone.utc)


# --- one request body (shared with the endpoint's inference handlers) ----------------------


class RequestError(ValueError):
    """A request body, or one row of it, that does not follow the request contract.

    ``reason`` is one of the reason codes above, ``detail`` says what is wrong and ``row``
    is the row's 0-based position in the request (None when the whole body is unusable).
    """

    def __init__(self, reason: str, detail: str, row: int | None = None) -> None:
        super().__init__(detail if row is None else f"row {row}: {detail}")
        self.reason = reason
        self.detail = detail
        self.row = row


@dataclass(frozen=True)
class RequestRows:
    """The rows of one request body: the usable rows' values in feature order, and the unusable rows.

    ``rows`` pairs each usable row's 0-based position in the request with its raw values (text
    from CSV, JSON values from JSON; None for missing); ``problems`` holds the rows that were
    not usable, each a RequestError with ``row`` set (WRONG_COLUMN_COUNT or BAD_VALUE).
    """

    rows: list[tuple[int, list[Any]]]
    problems: list[RequestError]


def media_type(content_type: object) -> str | None:
    """The media type of a Content-Type value, lower case without parameters (``text/csv; charset=utf-8``
    gives ``text/csv``); None when it is not a string or empty."""
    if not isinstance(content_type, str):
        return None
    media = content_type.split(";")[0].strip().lower()
    return media or None


def parse_request(media: str, body: str, names: Sequence[str], *, numeric: Collection[str] = ()) -> RequestRows:
    """The feature rows of one request body as the endpoint request contract (module doc) defines them.

    ``media`` is ``text/csv`` or ``application/json`` (see ``media_type``), ``names`` the feature
    names in order, ``numeric`` those whose JSON values may not be booleans. Values are not
    typed here: callers type them (a contract reader, a feature encoder). A body that is unusable
    as a whole raises RequestError (BAD_CONTENT_TYPE or BAD_PAYLOAD); unusable rows are returned
    in ``problems`` and the other rows are kept.
    """
    if media == CSV_CONTENT_TYPE:
        return _csv_request(body, names)
    if media == JSON_CONTENT_TYPE:
        return _json_request(body, names, frozenset(numeric))
    raise RequestError(BAD_CONTENT_TYPE, f"content type {media!r} is not {CSV_CONTENT_TYPE} or {JSON_CONTENT_TYPE}")


def _csv_request(body: str, names: Sequence[str]) -> RequestRows:
    try:
        records = [fields for fields in csv.reader(io.StringIO(body, newline="")) if fields]
    except csv.Error as error:
        raise RequestError(BAD_PAYLOAD, f"body is not CSV: {error}") from None
    parsed = RequestRows([], [])
    width = len(names)
    for row, fields in enumerate(records):
        if len(fields) != width:
            parsed.problems.append(RequestError(WRONG_COLUMN_COUNT, f"{len(fields)} fields, expected {width}", row))
            continue
        parsed.rows.append((row, [value if value.strip() else None for value in fields]))
    return parsed


def _json_request(body: str, names: Sequence[str], numeric: frozenset[str]) -> RequestRows:
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise RequestError(BAD_PAYLOAD, f"body is not JSON: {error}") from None
    if isinstance(payload, dict) and "instances" in payload:
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise RequestError(BAD_PAYLOAD, "instances is not a list")
    elif isinstance(payload, dict):
        instances = [payload]
    else:
        raise RequestError(BAD_PAYLOAD, f"body is a JSON {type(payload).__name__}, not an object")
    parsed = RequestRows([], [])
    for row, instance in enumerate(instances):
        if not isinstance(instance, dict) or not any(name in instance for name in names):
            what = "object without feature keys" if isinstance(instance, dict) else type(instance).__name__
            parsed.problems.append(RequestError(WRONG_COLUMN_COUNT, f"instance is a {what}", row))
            continue
        values = [instance.get(name) for name in names]
        wrong = [problem for problem in map(_json_problem, names, values, [numeric] * len(names)) if problem]
        if wrong:
            parsed.problems.append(RequestError(BAD_VALUE, wrong[0], row))
            continue
        parsed.rows.append((row, values))
    return parsed


def _json_problem(name: str, value: Any, numeric: frozenset[str]) -> str | None:
    """Why a JSON value cannot be a feature value (callers type the rest), or None."""
    if isinstance(value, (dict, list)):
        return f"{name}: {value!r} is not a single value"
    if isinstance(value, bool) and name in numeric:  # JSON true is not the number 1
        return f"{name}: {value!r} is not a number"
    return None


class _Reader:
    """Accumulates the rows of every file column by column, and what was skipped."""

    def __init__(self, narrowed: contracts.Contract, since: dt.datetime | None, until: dt.datetime | None) -> None:
        self.names = narrowed.names
        self.numeric = {spec.name for spec in narrowed.columns if spec.type in contracts.NUMERIC_TYPES}
        self.since = since
        self.until = until
        self.columns: dict[str, list[Any]] = {name: [] for name in self.names}
        self.lines: list[int] = []
        self.rows_of_row: list[int] = []
        self.ids: list[str | None] = []
        self.predictions: list[float] = []
        self.times: list[float] = []
        self.files: list[str] = []
        self.file_rows: list[int] = []
        self.requests = 0
        self.outside_window = 0
        self.malformed: list[Malformed] = []
        self.counts: Counter[str] = Counter()
        self.first: dt.datetime | None = None
        self.last: dt.datetime | None = None

    def skip(self, label: str, line: int, reason: str, detail: str, row: int | None = None) -> None:
        self.counts[reason] += 1
        if len(self.malformed) < MAX_KEPT:
            self.malformed.append(Malformed(label, line, reason, detail[:300], row))

    def read_file(self, path: Path, label: str) -> None:
        before = len(self.lines)
        try:
            handle = path.open(encoding="utf-8", errors="replace")
        except OSError as error:
            self.skip(label, 0, UNREADABLE, f"cannot read the file: {error}")
            return
        with handle:
            for number, text in enumerate(handle, start=1):
                if text.strip():
                    self.read_line(text, label, number)
        self.files.append(label)
        self.file_rows.append(len(self.lines) - before)

    def read_line(self, text: str, label: str, line: int) -> None:
        try:
            event = json.loads(text)
        except ValueError as error:
            self.skip(label, line, NOT_JSON, str(error))
            return
        endpoint_input = _dig(event, "captureData", "endpointInput")
        if endpoint_input is None:
            self.skip(label, line, NO_INPUT, "no captureData.endpointInput object")
            return
        raw_time = _dig(event, "eventMetadata", "inferenceTime")
        try:
            moment = parse_time(raw_time) if isinstance(raw_time, str) else None
        except ValueError:
            moment = None
        if moment is None:
            self.skip(label, line, BAD_TIME, f"eventMetadata.inferenceTime is {raw_time!r}")
            return
        if (self.since is not None and moment < self.since) or (self.until is not None and moment >= self.until):
            self.outside_window += 1
            return
        self.requests += 1
        self.first = moment if self.first is None else min(self.first, moment)
        self.last = moment if self.last is None else max(self.last, moment)
        body = _body(endpoint_input)
        if isinstance(body, _Skip):
            self.skip(label, line, body.reason, body.detail)
            return
        self._rows(*body, label, line, request_inference_id(event), captured_predictions(event), moment.timestamp())

    def _add(self, values: list[Any], line: int, row: int, inference_id: str | None) -> None:
        for name, value in contracts.zip_equal(self.names, values):
            self.columns[name].append(value)
        self.lines.append(line)
        self.rows_of_row.append(row)
        self.ids.append(inference_id)

    def _rows(
        self,
        media: str,
        body: str,
        label: str,
        line: int,
        inference_id: str | None,
        predicted: list[float] | None = None,
        moment: float = float("nan"),
    ) -> None:
        try:
            request = parse_request(media, body, self.names, numeric=self.numeric)
        except RequestError as error:
            self.skip(label, line, error.reason, error.detail)
            return
        for problem in request.problems:
            self.skip(label, line, problem.reason, problem.detail, problem.row)
        count = len(request.rows) + len(request.problems)
        answered = predicted is not None and len(predicted) == count
        for position, values in request.rows:
            row_id = None if inference_id is None else prediction_id(inference_id, position, count)
            self._add(values, line, position, row_id)
            self.predictions.append(predicted[position] if answered and predicted is not None else float("nan"))
            self.times.append(moment)


@dataclass(frozen=True)
class _Skip:
    reason: str
    detail: str


def _dig(event: object, *keys: str) -> Any:
    """``event[k1][k2]...`` when every level is an object and the leaf is present, else None."""
    value: Any = event
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _body(endpoint_input: Mapping[str, Any]) -> tuple[str, str] | _Skip:
    """(media type, body text) of a captured request, or why it is unusable."""
    if not isinstance(endpoint_input, dict):
        return _Skip(NO_INPUT, "captureData.endpointInput is not an object")
    raw_type = endpoint_input.get("observedContentType")
    media = media_type(raw_type)
    if media is None or media not in (CSV_CONTENT_TYPE, JSON_CONTENT_TYPE):
        return _Skip(
            BAD_CONTENT_TYPE, f"observedContentType {raw_type!r} is not {CSV_CONTENT_TYPE} or {JSON_CONTENT_TYPE}"
        )
    encoding = endpoint_input.get("encoding")
    data = endpoint_input.get("data")
    if encoding not in ENCODINGS or not isinstance(data, str):
        return _Skip(BAD_ENCODING, f"encoding {encoding!r} with data of type {type(data).__name__}")
    if encoding != "BASE64":
        return media, data
    try:
        return media, base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as error:
        return _Skip(BAD_ENCODING, f"data is not base64 of UTF-8 text: {error}")


def read_capture(
    root: str | Path,
    contract: contracts.Contract,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> CaptureData:
    """The feature rows of every capture file under ``root`` (see the module doc); never fails on bad data.

    ``since``/``until`` without a time zone are UTC.
    """
    narrowed = feature_contract(contract)
    names = narrowed.names
    root = Path(root)
    reader = _Reader(narrowed, _utc(since), _utc(until))
    base = root.parent if root.is_file() else root
    for path in capture_files(root):
        reader.read_file(path, path.relative_to(base).as_posix())
    raw = pd.DataFrame({name: pd.Series(reader.columns[name], dtype=object) for name in names})
    lines = np.asarray(reader.lines, dtype=np.int64)
    file_index = np.repeat(np.arange(len(reader.files)), reader.file_rows)
    keep = np.ones(len(raw), dtype=bool)
    for spec in narrowed.columns:
        if spec.type == "category":  # a category that is not allowed is data (a schema violation), not a bad row
            continue
        _, bad = contracts.coerce_column(raw[spec.name], spec)
        if bad is None:
            continue
        for position in np.flatnonzero(bad & keep):
            value = raw[spec.name].iloc[position]
            reader.skip(
                reader.files[file_index[position]],
                int(lines[position]),
                BAD_VALUE,
                f"{spec.name}: {value!r} is not {spec.describe_type()}",
                reader.rows_of_row[position],
            )
        keep &= ~bad
    order = sorted(range(len(reader.malformed)), key=lambda index: _position(reader.malformed[index]))
    ids = reader.ids
    predictions = np.asarray(reader.predictions, dtype=np.float64)
    times = np.asarray(reader.times, dtype=np.float64)
    if not keep.all():
        raw = raw.loc[keep].reset_index(drop=True)
        lines = lines[keep]
        file_index = file_index[keep]
        ids = [value for value, kept in zip(ids, keep.tolist()) if kept]
        predictions, times = predictions[keep], times[keep]
    dataset = contracts.dataset_from_frame(raw, narrowed, label=str(root))
    counts = np.bincount(file_index, minlength=len(reader.files)) if len(reader.files) else np.zeros(0, np.int64)
    dataset.files = list(reader.files)
    dataset.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return CaptureData(
        dataset=dataset,
        lines=lines,
        requests=reader.requests,
        outside_window=reader.outside_window,
        malformed=[reader.malformed[index] for index in order],
        counts=reader.counts,
        first_inference_time=_iso(reader.first),
        last_inference_time=_iso(reader.last),
        inference_ids=ids,
        predictions=predictions,
        inference_times=times,
    )


def _position(entry: Malformed) -> tuple[str, int, int]:
    return entry.file, entry.line, -1 if entry.row is None else entry.row


def _iso(moment: dt.datetime | None) -> str | None:
    """``2026-11-01T12:00:00Z``, with as many fractional digits as the time has (milliseconds or microseconds)."""
    if moment is None:
        return None
    micro = moment.microsecond
    spec = "seconds" if not micro else "milliseconds" if micro % 1000 == 0 else "microseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
