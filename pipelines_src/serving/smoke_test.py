"""Smoke test of a deployed endpoint: what the deploy pipeline's smoke-test stage runs.

``smoke_test(invoke, contract)`` sends the endpoint requests drawn from the data contract
(values within ``min``/``max`` and the allowed categories, nulls now and then in nullable
columns) as the endpoint request contract allows them: ``text/csv`` and ``application/json``,
single rows and batches, asking for JSON and for CSV responses. It checks:

``responses``
    every well-formed request is answered;
``response_shape``
    each answer holds one finite number per row sent, in the format asked for;
``formats_agree``
    the same rows sent as CSV and as JSON get the same predictions;
``malformed_refused``
    malformed requests (a CSV row with a field missing, text in a numeric column, a body
    that is not JSON, an unsupported content type) are refused: the call raises (with a 4xx
    status where the error tells it) or returns something that is not a prediction response;
``latency``
    the 95th percentile of the well-formed requests' latency is at most ``max_p95_ms``.

``invoke(body, content_type, accept) -> bytes`` is the call to the endpoint: the SageMaker
runtime's InvokeEndpoint in production (``main``), a local function in tests. Each InvokeEndpoint
call passes an ``InferenceId`` of its own (``smoke-test-<run>-<n>``), so the smoke test's predictions
are identifiable in the data capture and no ground-truth label is ever expected for them. The clock is
injectable too. The report (``smoke_test``'s return value, ``--report``) holds every check,
the latency percentiles and what each malformed request got.

    python -m pipelines_src.serving.smoke_test --endpoint-name NAME --contract contract.json \\
        [--region R] [--max-p95-ms 500] [--requests 20] [--report smoke_test.json]

exits 0 when every check passes, 1 with one ``FAIL <check>: <detail>`` line per failed check, and
2 when it cannot start (no contract, bad arguments). It uses boto3 only.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..steps import contract as contracts
from ..steps import features

Invoke = Callable[[bytes, str, str], bytes]
Clock = Callable[[], float]

CSV = "text/csv"
JSON = "application/json"
ACCEPTS = (JSON, CSV)
DEFAULT_REQUESTS = 20
DEFAULT_MAX_P95_MS = 500.0
BATCH_ROWS = 5
NULL_SHARE = 0.2
# Numbers without a bound in the contract are drawn this far from the other bound (or from 0).
DEFAULT_SPAN = 100.0
RELATIVE_TOLERANCE = 1e-6
CHECKS = ("responses", "response_shape", "formats_agree", "malformed_refused", "latency")


@dataclass(frozen=True)
class Case:
    """One request: what it sends, what it asks for and how many rows it holds."""

    label: str
    body: bytes
    content_type: str
    accept: str
    rows: int


@dataclass
class _Run:
    """What the requests got, as they come back."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    shape_errors: list[str] = field(default_factory=list)
    rows: int = 0


def sample_rows(contract: contracts.Contract, count: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """``count`` rows of the contract's model features with valid values (None now and then where nullable)."""
    names = features.from_contract(contract).names
    specs = [contract.column(name) for name in names]
    return [{spec.name: _value(spec, rng) for spec in specs} for _ in range(count)]


def _value(spec: contracts.ColumnSpec, rng: np.random.Generator) -> Any:
    if spec.nullable and rng.random() < NULL_SHARE:
        return None
    if spec.type == "category":
        return str(spec.allowed[int(rng.integers(len(spec.allowed)))])
    if spec.type == "bool":
        return bool(rng.random() < 0.5)
    low, high = _bounds(spec)
    if spec.type == "int":
        return int(rng.integers(math.ceil(low), math.floor(high) + 1))
    return min(max(round(float(rng.uniform(low, high)), 3), low), high)


def _bounds(spec: contracts.ColumnSpec) -> tuple[float, float]:
    """The range to draw a number from: the contract's bounds, DEFAULT_SPAN wide where one is missing."""
    low = float(spec.min) if isinstance(spec.min, (int, float)) else None
    high = float(spec.max) if isinstance(spec.max, (int, float)) else None
    if low is None:
        low = 0.0 if high is None or high >= 0 else high - DEFAULT_SPAN
    if high is None:
        high = low + DEFAULT_SPAN
    return low, high


def csv_body(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> bytes:
    """The rows as ``text/csv`` without a header: values in ``names`` order, empty for None, bools as true/false."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([_csv_field(row.get(name)) for name in names])
    return buffer.getvalue().encode("utf-8")


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def json_body(rows: Sequence[dict[str, Any]], *, single: bool = False) -> bytes:
    """The rows as ``application/json``: one object when ``single`` (one row), else ``{"instances": [...]}``."""
    if single:
        if len(rows) != 1:
            raise ValueError(f"a single-object body holds one row, not {len(rows)}")
        return json.dumps(rows[0]).encode("utf-8")
    return json.dumps({"instances": list(rows)}).encode("utf-8")


def parse_predictions(body: bytes, accept: str) -> list[float]:
    """The predictions of a response body in the ``accept`` format; ValueError when it is not one."""
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else str(body)
    if accept == CSV:
        values: list[Any] = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        document = json.loads(text)
        if not isinstance(document, dict) or not isinstance(document.get("predictions"), list):
            raise ValueError('expected {"predictions": [...]}')
        values = document["predictions"]
    numbers = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"{value!r} is not a number")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        numbers.append(number)
    return numbers


def cases(contract: contracts.Contract, requests: int, rng: np.random.Generator) -> list[Case]:
    """``requests`` well-formed requests: CSV and JSON, single rows and batches, each format of response."""
    names = features.from_contract(contract).names
    shapes = [("csv", 1), ("csv", BATCH_ROWS), ("json-object", 1), ("json-instances", BATCH_ROWS)]
    found = []
    for index in range(requests):
        shape, count = shapes[index % len(shapes)]
        accept = ACCEPTS[(index // len(shapes)) % len(ACCEPTS)]
        rows = sample_rows(contract, count, rng)
        if shape == "csv":
            body, content_type = csv_body(rows, names), CSV
        else:
            body, content_type = json_body(rows, single=shape == "json-object"), JSON
        found.append(Case(f"{shape} x{count} -> {accept}", body, content_type, accept, count))
    return found


def malformed_cases(contract: contracts.Contract, rng: np.random.Generator) -> list[Case]:
    """Requests the endpoint must refuse."""
    spec = features.from_contract(contract)
    names = spec.names
    row = sample_rows(contract, 1, rng)[0]
    short = csv_body([row], names[:-1])
    found = [
        Case("csv_missing_field", short, CSV, JSON, 1),
        Case("json_not_json", b'{"instances": [', JSON, JSON, 1),
        Case("unsupported_content_type", csv_body([row], names), "application/x-unsupported", JSON, 1),
    ]
    numeric = [feature.name for feature in spec.features if feature.encoding == features.NUMBER]
    if numeric:
        found.insert(
            1, Case("csv_text_in_number", csv_body([{**row, numeric[0]: "not-a-number"}], names), CSV, JSON, 1)
        )
    return found


def smoke_test(
    invoke: Invoke,
    contract: contracts.Contract | str | Path,
    *,
    requests: int = DEFAULT_REQUESTS,
    seed: int = 0,
    max_p95_ms: float = DEFAULT_MAX_P95_MS,
    clock: Clock = time.perf_counter,
) -> dict[str, Any]:
    """Run the checks (module doc) against ``invoke``; the report says ``passed`` and what each check found."""
    if requests < 1:
        raise ValueError(f"requests: must be at least 1, got {requests}")
    if not math.isfinite(max_p95_ms) or max_p95_ms <= 0:
        raise ValueError(f"max_p95_ms: must be a positive number, got {max_p95_ms}")
    if not isinstance(contract, contracts.Contract):
        contract = contracts.load_contract(contract)
    rng = np.random.default_rng(seed)
    run = _Run()
    for case in cases(contract, requests, rng):
        _send(invoke, case, run, clock)
    agree = _formats_agree(invoke, contract, rng, run, clock)
    malformed = [_refusal(invoke, case) for case in malformed_cases(contract, rng)]
    latency = _latency(run.latencies_ms)
    checks = [
        _check("responses", not run.errors, _first(run.errors, "every request was answered")),
        _shape_check(run),
        _check("formats_agree", agree is None, agree or "CSV and JSON requests get the same predictions"),
        _malformed_check(malformed),
        _latency_check(latency, max_p95_ms),
    ]
    return {
        "passed": all(check["passed"] for check in checks),
        "requests": len(run.latencies_ms) + len(run.errors),
        "rows": run.rows,
        "latency_ms": latency,
        "max_p95_ms": max_p95_ms,
        "checks": checks,
        "failures": [f"{check['name']}: {check['detail']}" for check in checks if not check["passed"]],
        "malformed": malformed,
    }


def _send(invoke: Invoke, case: Case, run: _Run, clock: Clock) -> list[float] | None:
    """One well-formed request: its latency, answer and shape recorded in ``run``; the predictions if usable."""
    started = clock()
    try:
        body = invoke(case.body, case.content_type, case.accept)
    except Exception as error:  # any failure of the call is a finding, not a crash of the test
        run.errors.append(f"{case.label}: {type(error).__name__}: {error}")
        return None
    run.latencies_ms.append((clock() - started) * 1000.0)
    run.rows += case.rows
    try:
        predictions = parse_predictions(body, case.accept)
    except (ValueError, UnicodeDecodeError) as error:
        run.shape_errors.append(f"{case.label}: not a {case.accept} prediction response ({error}): {body[:200]!r}")
        return None
    if len(predictions) != case.rows:
        run.shape_errors.append(f"{case.label}: {len(predictions)} predictions for {case.rows} rows")
        return None
    return predictions


def _formats_agree(
    invoke: Invoke, contract: contracts.Contract, rng: np.random.Generator, run: _Run, clock: Clock
) -> str | None:
    """None when one batch sent as CSV and as JSON gets the same predictions, else what differed."""
    names = features.from_contract(contract).names
    rows = sample_rows(contract, BATCH_ROWS, rng)
    by_csv = _send(invoke, Case("agreement csv", csv_body(rows, names), CSV, JSON, len(rows)), run, clock)
    by_json = _send(invoke, Case("agreement json", json_body(rows), JSON, JSON, len(rows)), run, clock)
    if by_csv is None or by_json is None:
        return "no usable answer to compare (see responses and response_shape)"
    for index, (left, right) in enumerate(zip(by_csv, by_json, strict=True)):
        if not math.isclose(left, right, rel_tol=RELATIVE_TOLERANCE, abs_tol=RELATIVE_TOLERANCE):
            return f"row {index}: {left!r} for CSV, {right!r} for JSON"
    return None


def _refusal(invoke: Invoke, case: Case) -> dict[str, Any]:
    """What a malformed request got: refused or not, the HTTP status where known, the error."""
    try:
        body = invoke(case.body, case.content_type, case.accept)
    except Exception as error:  # refusal is the expected outcome
        status = _status(error)
        return {
            "case": case.label,
            "refused": status is None or status < 500,
            "status": status,
            "error": f"{type(error).__name__}: {str(error)[:300]}",
        }
    try:
        parse_predictions(body, case.accept)
    except (ValueError, UnicodeDecodeError):
        return {"case": case.label, "refused": True, "status": None, "error": f"answered {body[:200]!r}"}
    return {"case": case.label, "refused": False, "status": None, "error": None}


def _status(error: Exception) -> int | None:
    """The HTTP status a refusal carries: the model's (SageMaker runtime ModelError) or the error's own."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        for value in (response.get("OriginalStatusCode"), response.get("ResponseMetadata", {}).get("HTTPStatusCode")):
            if isinstance(value, int):
                return value
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def _latency(latencies_ms: list[float]) -> dict[str, float | int | None]:
    if not latencies_ms:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    values = np.asarray(latencies_ms, dtype=np.float64)
    return {
        "count": len(latencies_ms),
        "p50": round(float(np.percentile(values, 50)), 3),
        "p95": round(float(np.percentile(values, 95)), 3),
        "max": round(float(values.max()), 3),
    }


def _check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "passed": passed, "detail": detail}


def _first(problems: list[str], fine: str) -> str:
    if not problems:
        return fine
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more


def _shape_check(run: _Run) -> dict[str, Any]:
    if not run.latencies_ms:
        return _check("response_shape", False, "no request was answered")
    return _check("response_shape", not run.shape_errors, _first(run.shape_errors, "one finite number per row"))


def _malformed_check(results: list[dict[str, Any]]) -> dict[str, Any]:
    accepted = [result for result in results if not result["refused"]]
    if not accepted:
        return _check("malformed_refused", True, f"{len(results)} malformed requests refused")
    problems = [
        f"{result['case']} got HTTP {result['status']}, not a 4xx refusal"
        if result["status"] is not None
        else f"{result['case']} was answered as if it were valid"
        for result in accepted
    ]
    return _check("malformed_refused", False, "; ".join(problems))


def _latency_check(latency: dict[str, Any], max_p95_ms: float) -> dict[str, Any]:
    p95 = latency["p95"]
    if p95 is None:
        return _check("latency", False, "no request was answered")
    detail = f"p95 {p95:.1f} ms (p50 {latency['p50']:.1f} ms) over {latency['count']} requests, limit {max_p95_ms:g} ms"
    return _check("latency", p95 <= max_p95_ms, detail)


INFERENCE_ID_PREFIX = "smoke-test-"


def endpoint_invoke(client: Any, endpoint_name: str, *, run: str | None = None) -> Invoke:
    """``invoke`` over the SageMaker runtime client's InvokeEndpoint, with an InferenceId per call
    (``smoke-test-<run>-<n>``; ``run`` defaults to a new random token)."""
    token = run or uuid.uuid4().hex[:12]
    numbers = itertools.count()

    def invoke(body: bytes, content_type: str, accept: str) -> bytes:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name,
            Body=body,
            ContentType=content_type,
            Accept=accept,
            InferenceId=f"{INFERENCE_ID_PREFIX}{token}-{next(numbers)}",
        )
        return bytes(response["Body"].read())

    return invoke


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Smoke-test a deployed SageMaker endpoint.", allow_abbrev=False)
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument("--contract", required=True, help="the dataset's data contract (JSON)")
    parser.add_argument("--region", default=None, help="AWS region (default: boto3's)")
    parser.add_argument("--max-p95-ms", type=float, default=DEFAULT_MAX_P95_MS)
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", default=None, help="write the report (JSON) here")
    return parser


def main(argv: Sequence[str] | None = None, *, client: Any = None) -> int:
    """The CLI (module doc); ``client`` replaces the boto3 ``sagemaker-runtime`` client."""
    args = _parser().parse_args(argv)
    try:
        contract = contracts.load_contract(args.contract)
    except (OSError, ValueError) as error:
        print(f"smoke_test: {error}", file=sys.stderr)
        return 2
    if client is None:
        import boto3

        client = boto3.client("sagemaker-runtime", region_name=args.region)
    try:
        report = smoke_test(
            endpoint_invoke(client, args.endpoint_name),
            contract,
            requests=args.requests,
            seed=args.seed,
            max_p95_ms=args.max_p95_ms,
        )
    except ValueError as error:
        print(f"smoke_test: {error}", file=sys.stderr)
        return 2
    report = {"endpoint_name": args.endpoint_name, **report}
    if args.report:
        path = Path(args.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for failure in report["failures"]:
        print(f"FAIL {failure}")
    latency = report["latency_ms"]
    outcome = "passed" if report["passed"] else "failed"
    print(
        f"smoke test of {args.endpoint_name} {outcome}: {report['requests']} requests, {report['rows']} rows, "
        f"p50 {latency['p50']} ms, p95 {latency['p95']} ms"
    )
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
