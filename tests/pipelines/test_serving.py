"""The endpoint's inference handlers on a real model, and the deploy pipeline's smoke test against them."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.packaging import (
    SERVING_CODE,
    SERVING_DIR,
    SERVING_PROGRAM,
    STEPS_DIR,
    build_source_tarball,
    code_sha256,
    folder_sha256,
    serving_code,
)
from pipelines_src.serving import inference, smoke_test
from pipelines_src.steps import features
from pipelines_src.steps import train as train_step
from pipelines_src.steps.contract import load_contract
from pipelines_src.steps.preprocess import preprocess
from pipelines_src.steps.train import Hyperparameters, train

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_PATH = ROOT / "pipelines_src" / "contracts" / "delivery_time.json"
SMALL = Hyperparameters(num_round=60, eta=0.3, max_depth=4, early_stopping_rounds=5, log_every=1000)
REQUEST_ROWS = 40


@dataclass(frozen=True)
class Served:
    model_dir: Path
    model: inference.Model
    raw: pd.DataFrame  # typed rows as the generator (and the contract reader) gives them
    expected: np.ndarray  # evaluate's path: preprocess's encoding in a CSV, read back, predicted


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    return train_served(tmp_path_factory.mktemp("serving"))


def train_served(root: Path) -> Served:
    """A real model trained under ``root`` on generated data, with request rows and what evaluate predicts."""
    write_raw(generate(3000, seed=41, days=5), root / "raw")
    preprocess(root / "raw" / "delivery_time", CONTRACT_PATH, root / "splits", seed=2)
    train(root / "splits" / "train", root / "splits" / "validation", root / "model", SMALL)
    model = inference.model_fn(str(root / "model"))
    raw = generate(REQUEST_ROWS, seed=99)
    raw.loc[raw.index[[1, 7]], "restaurant_rating"] = np.nan  # nulls travel as missing values
    encoded = features.encode(raw, model.spec)
    encoded.insert(0, model.spec.target, raw[model.spec.target])
    encoded.to_csv(root / "reference.csv", index=False)
    reference, _ = features.split_target(features.read_table(root / "reference.csv"), model.spec)
    expected = np.asarray(model.booster.inplace_predict(reference), dtype=np.float64)
    return Served(root / "model", model, raw, expected)


def csv_of(frame: pd.DataFrame, names: list[str]) -> bytes:
    """Rows as a client sends them: no header, categories by name, an empty field for a null."""
    return frame[names].to_csv(header=False, index=False).encode("utf-8")


def records_of(frame: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(frame[names].to_json(orient="records"))
    return loaded


def predictions(body: bytes) -> np.ndarray:
    return np.asarray(json.loads(body)["predictions"], dtype=np.float64)


# --- the handlers ------------------------------------------------------------------------------


def test_model_fn_reads_the_feature_encoding_train_stored_in_the_model(served: Served) -> None:
    assert served.model.spec.names == features.from_contract(load_contract(CONTRACT_PATH)).names
    assert sorted(path.name for path in served.model_dir.iterdir()) == ["code", "xgboost-model.json"]
    weather = next(feature for feature in served.model.spec.features if feature.name == "weather")
    assert weather.categories == ("clear", "cloudy", "rain", "snow", "storm")


def test_csv_json_batch_and_single_objects_predict_as_evaluate_does(served: Served) -> None:
    names = served.model.spec.names
    by_csv = predictions(inference.handle(served.model, csv_of(served.raw, names), "text/csv", "application/json"))
    instances = json.dumps({"instances": records_of(served.raw, names)})
    by_json = predictions(inference.handle(served.model, instances, "application/json", None))
    np.testing.assert_array_equal(by_csv, served.expected)
    np.testing.assert_array_equal(by_json, served.expected)
    for index, record in enumerate(records_of(served.raw.head(3), names)):
        single = inference.handle(served.model, json.dumps(record).encode(), "application/json; charset=utf-8", "*/*")
        assert predictions(single).tolist() == [served.expected[index]]


def test_categories_are_sent_by_name_and_encoded_as_in_training(served: Served) -> None:
    names = served.model.spec.names
    row = served.raw.head(1)
    by_name = []
    for weather in ("clear", "cloudy", "rain", "snow", "storm"):
        changed = row.assign(weather=pd.Categorical([weather], categories=row["weather"].cat.categories))
        sent = inference.handle(served.model, csv_of(changed, names), "text/csv", "text/csv")
        encoded = features.encode(changed, served.model.spec).astype(np.float32)
        assert encoded["weather"].iloc[0] == ("clear", "cloudy", "rain", "snow", "storm").index(weather)
        by_name.append(float(sent))
        assert float(sent) == pytest.approx(float(served.model.booster.inplace_predict(encoded)[0]), rel=1e-6)
    assert len(set(by_name)) > 1, "the weather changes the prediction"


def test_an_unknown_category_is_a_missing_value_not_an_error(served: Served) -> None:
    record = records_of(served.raw.head(1), served.model.spec.names)[0]
    unknown = predictions(
        inference.handle(served.model, json.dumps({**record, "weather": "hail"}), "application/json", None)
    )
    missing = predictions(
        inference.handle(served.model, json.dumps({**record, "weather": None}), "application/json", None)
    )
    absent = {key: value for key, value in record.items() if key != "weather"}
    assert unknown.tolist() == missing.tolist()
    assert predictions(inference.handle(served.model, json.dumps(absent), "application/json", None)).tolist() == (
        missing.tolist()
    )


def test_extra_json_keys_and_csv_whitespace_are_tolerated(served: Served) -> None:
    names = served.model.spec.names
    record = records_of(served.raw.head(1), names)[0]
    with_extra = json.dumps({**record, "order_id": "ORD-1", "note": {"nested": True}})
    assert predictions(inference.handle(served.model, with_extra, "application/json", None)).tolist() == [
        served.expected[0]
    ]
    lines = csv_of(served.raw.head(2), names).decode().splitlines()
    body = "\n" + "\n".join(f" {line.split(',', 1)[0]} ,{line.split(',', 1)[1]}" for line in lines) + "\n\n"
    assert predictions(inference.handle(served.model, body, "text/csv", None)).tolist() == served.expected[:2].tolist()


def _row(served: Served, **changes: Any) -> str:
    record = records_of(served.raw.head(1), served.model.spec.names)[0]
    return ",".join("" if value is None else str(value) for value in {**record, **changes}.values())


MALFORMED: list[tuple[str, Callable[[Served], str | bytes], str, int, str]] = [
    ("wrong column count", lambda s: _row(s) + ",extra", "text/csv", 400, "12 fields, expected 11"),
    ("text in a number", lambda s: _row(s, distance_km="far"), "text/csv", 400, "distance_km: 'far' is not a finite"),
    ("infinite number", lambda s: _row(s, order_value="inf"), "text/csv", 400, "order_value: 'inf' is not a finite"),
    ("bad JSON", lambda s: '{"instances": [', "application/json", 400, "body is not JSON"),
    ("JSON array", lambda s: "[1, 2]", "application/json", 400, "body is a JSON list, not an object"),
    ("instances not a list", lambda s: '{"instances": 3}', "application/json", 400, "instances is not a list"),
    ("no feature keys", lambda s: '{"instances": [{"x": 1}]}', "application/json", 400, "object without feature keys"),
    (
        "bool as a number",
        lambda s: '{"distance_km": true}',
        "application/json",
        400,
        "distance_km: True is not a number",
    ),
    ("nested value", lambda s: '{"weekday": [1]}', "application/json", 400, "weekday: [1] is not a single value"),
    ("no rows", lambda s: "\n", "text/csv", 400, "the request holds no rows"),
    ("empty instances", lambda s: '{"instances": []}', "application/json", 400, "the request holds no rows"),
    ("not UTF-8", lambda s: b"\xff\xfe1,2", "text/csv", 400, "not UTF-8"),
    ("unsupported type", lambda s: _row(s), "text/plain", 415, "content type 'text/plain' is not supported"),
    ("octet stream", lambda s: _row(s), "application/octet-stream", 415, "send text/csv or application/json"),
    # A request without Content-Type is JSON (what the serving container passes for it).
    ("no content type, CSV body", lambda s: _row(s), "", 400, "body is not JSON"),
]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_requests_are_refused_with_a_client_status_and_a_clear_message(
    served: Served, body: Callable[[Served], str | bytes], content_type: str, status: int, message: str
) -> None:
    with pytest.raises(inference.InvalidRequestError) as raised:
        inference.handle(served.model, body(served), content_type, None)
    assert isinstance(raised.value, ValueError)
    assert raised.value.status_code == status
    assert message in str(raised.value)
    assert raised.value.message == str(raised.value)
    assert "\n" not in str(raised.value)
    reply = inference.respond(served.model, body(served), content_type, None)
    assert reply == inference.Reply(status, "text/plain", f"{raised.value}\n".encode())


def test_one_bad_row_refuses_the_request_and_says_how_many(served: Served) -> None:
    body = "\n".join([_row(served), _row(served) + ",x", _row(served, weekday="Monday"), "1,2"])
    with pytest.raises(inference.InvalidRequestError, match=r"^2 of 4 rows are malformed; first: row 1: 12 fields"):
        inference.handle(served.model, body, "text/csv", None)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, b'{"predictions": [1.5, -2.0]}'),
        ("*/*", b'{"predictions": [1.5, -2.0]}'),
        ("application/json; charset=utf-8", b'{"predictions": [1.5, -2.0]}'),
        ("text/csv", b"1.5\n-2.0\n"),
        ("text/html, text/csv;q=0.9", b"1.5\n-2.0\n"),
    ],
)
def test_output_formats(accept: str | None, expected: bytes) -> None:
    assert inference.encode(np.array([1.5, -2.0], dtype=np.float32), inference.accepted(accept)) == expected


def test_an_unsupported_accept_is_refused_with_406(served: Served) -> None:
    with pytest.raises(inference.InvalidRequestError, match="accept 'application/xml' is not supported") as raised:
        inference.accepted("application/xml")
    assert raised.value.status_code == 406
    reply = inference.respond(served.model, _row(served), "text/csv", "application/xml")
    assert (reply.status, reply.content_type) == (406, "text/plain")
    assert reply.body == b"accept 'application/xml' is not supported: ask for application/json or text/csv\n"


def test_the_content_type_is_checked_before_the_accept_and_the_body(served: Served) -> None:
    reply = inference.respond(served.model, b"\xff", "text/plain", "application/xml")
    assert reply.status == 415


def test_a_request_without_content_type_is_json(served: Served) -> None:
    record = records_of(served.raw.head(1), served.model.spec.names)[0]
    for content_type in (None, "", " "):
        reply = inference.respond(served.model, json.dumps(record).encode(), content_type, None)
        assert (reply.status, reply.content_type) == (200, "application/json")
        assert predictions(reply.body).tolist() == [served.expected[0]]


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [(None, "application/json"), ("*/*", "application/json"), ("text/csv", "text/csv"), ("text/*", "text/csv")],
)
def test_answers_carry_the_content_type_of_their_body(served: Served, accept: str | None, content_type: str) -> None:
    reply = inference.respond(served.model, csv_of(served.raw.head(2), served.model.spec.names), "text/csv", accept)
    assert (reply.status, reply.content_type) == (200, content_type)
    got = predictions(reply.body) if content_type == "application/json" else np.loadtxt(io.BytesIO(reply.body))
    np.testing.assert_array_equal(got, served.expected[:2])


def test_a_body_the_container_decoded_with_replacement_characters_is_not_utf8(served: Served) -> None:
    """The container hands text/csv and application/json bodies over as text, undecodable bytes as U+FFFD."""
    decoded = b"\xff\xfe1,2".decode("utf-8", "replace")
    reply = inference.respond(served.model, decoded, "text/csv", None)
    assert reply.status == 400
    assert reply.body == b"the body is not UTF-8 text: U+FFFD at character 0\n"


def test_transform_fn_answers_with_a_response_object_outside_the_container_too(served: Served) -> None:
    """Where sagemaker_containers is not importable, transform_fn's answer reads like the container's."""
    answer = inference.transform_fn(served.model, _row(served), "text/csv", "text/csv")
    assert isinstance(answer, inference.FallbackResponse)
    assert (answer.status_code, answer.mimetype) == (200, "text/csv")
    assert float(answer.get_data()) == served.expected[0]
    refused = inference.transform_fn(served.model, "1,2", "text/csv", None)
    assert (refused.status_code, refused.mimetype) == (400, "text/plain")
    assert refused.get_data() == b"1 of 1 rows are malformed; first: row 0: 2 fields, expected 11\n"


def test_the_module_gives_the_container_transform_fn_and_not_the_trio() -> None:
    """The container refuses a module with transform_fn and any of input_fn, predict_fn, output_fn."""
    assert callable(inference.transform_fn) and callable(inference.model_fn)
    assert not [name for name in ("input_fn", "predict_fn", "output_fn") if hasattr(inference, name)]


def test_a_model_without_a_feature_spec_is_refused_at_load(tmp_path: Path) -> None:
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(np.ones((4, 2)), label=np.arange(4)), 2)
    booster.save_model(str(tmp_path / "xgboost-model.json"))
    with pytest.raises(features.FeatureError, match="no feature_spec attribute"):
        inference.model_fn(str(tmp_path))


CONTAINER_SCRIPT = """
import json, sys
import inference  # as the container imports SAGEMAKER_PROGRAM from the installed code folder

model = inference.model_fn(sys.argv[1])
body = sys.stdin.read()
answer = inference.transform_fn(model, body, "text/csv", "application/json")
result = {"predictions": json.loads(answer.get_data())["predictions"], "status": answer.status_code}
refused = inference.transform_fn(model, "1,2", "text/csv", None)
result["refusal"] = [refused.status_code, refused.mimetype, refused.get_data().decode()]
result["modules"] = sorted(name for name in ("inference", "capture", "contract", "features") if name in sys.modules)
result["files"] = sorted({sys.modules[name].__file__.rsplit("/", 2)[-2] for name in result["modules"]})
result["package"] = "pipelines_src" in sys.modules
json.dump(result, sys.stdout)
"""


@pytest.mark.slow  # a subprocess or a whole run: end to end
def test_the_model_carries_its_code_and_it_serves_as_the_container_imports_it(served: Served, tmp_path: Path) -> None:
    """inference.py from the model's code/ folder as a top-level module beside its step modules."""
    code = served.model_dir / "code"
    assert sorted(path.name for path in code.iterdir()) == sorted(SERVING_CODE)
    for name, content in serving_code().items():
        assert (code / name).read_bytes() == content, name
    env = {**os.environ, "PYTHONPATH": str(code)}
    result = subprocess.run(
        [sys.executable, "-c", CONTAINER_SCRIPT, str(served.model_dir)],
        input=csv_of(served.raw, served.model.spec.names).decode(),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout)
    assert output["predictions"] == served.expected.tolist()
    assert output["status"] == 200
    assert output["refusal"] == [400, "text/plain", "1 of 1 rows are malformed; first: row 0: 2 fields, expected 11\n"]
    assert output["modules"] == ["capture", "contract", "features", "inference"]
    assert output["files"] == ["code"]
    assert output["package"] is False


def _imported_step_modules(path: Path) -> set[str]:
    """The step modules a file imports (``from ..steps import x``, ``from . import x``, ``import x``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.ImportFrom) and node.level > 0) or isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if (STEPS_DIR / f"{name}.py").is_file()}


def test_the_code_a_model_carries_is_inference_py_and_every_step_module_it_imports() -> None:
    closure: set[str] = set()
    pending = [SERVING_DIR / SERVING_PROGRAM]
    while pending:
        for name in _imported_step_modules(pending.pop()) - closure:
            closure.add(name)
            pending.append(STEPS_DIR / f"{name}.py")
    assert set(SERVING_CODE) == {SERVING_PROGRAM, *(f"{name}.py" for name in closure)}
    assert train_step.SERVING_CODE == SERVING_CODE


def test_train_copies_the_serving_code_from_the_steps_tarball_it_runs_from(tmp_path: Path) -> None:
    """In the training job train.py runs from the extracted tarball: the serving code is beside it."""
    extracted = tmp_path / "opt-ml-code"
    with tarfile.open(build_source_tarball(STEPS_DIR, tmp_path / "sourcedir.tar.gz")) as archive:
        archive.extractall(extracted, filter="data")
    model_code = tmp_path / "model" / "code"
    model_code.mkdir(parents=True)
    (model_code / "stale.py").write_text("left from an earlier run")
    assert train_step.copy_serving_code(model_code, here=extracted) == list(SERVING_CODE)
    assert {path.name: path.read_bytes() for path in model_code.iterdir()} == serving_code()
    assert folder_sha256(model_code) == code_sha256(serving_code())


def test_train_refuses_to_run_without_the_serving_code(tmp_path: Path) -> None:
    (tmp_path / "features.py").write_text("")
    with pytest.raises(FileNotFoundError, match=r"serving code capture\.py is neither in"):
        train_step.copy_serving_code(tmp_path / "code", here=tmp_path)


# --- the smoke test ----------------------------------------------------------------------------


class FakeClock:
    """A clock that moves ``step`` seconds each time it is read: each request then takes ``step``."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def local_invoke(model: inference.Model) -> smoke_test.Invoke:
    def invoke(body: bytes, content_type: str, accept: str) -> bytes:
        return inference.handle(model, body, content_type, accept)

    return invoke


def failed(report: dict[str, Any]) -> set[str]:
    return {check["name"] for check in report["checks"] if not check["passed"]}


def test_the_smoke_test_passes_against_the_handlers(served: Served) -> None:
    seen: list[tuple[str, str]] = []

    def invoke(body: bytes, content_type: str, accept: str) -> bytes:
        seen.append((content_type, accept))
        return inference.handle(served.model, body, content_type, accept)

    report = smoke_test.smoke_test(invoke, CONTRACT_PATH, requests=8, clock=FakeClock(0.004))
    assert report["passed"], report["failures"]
    assert [check["name"] for check in report["checks"]] == list(smoke_test.CHECKS)
    assert report["failures"] == []
    assert report["requests"] == 8 + 2 and report["rows"] == 2 * (1 + 5 + 1 + 5) + 2 * 5
    assert report["latency_ms"] == {"count": 10, "p50": 4.0, "p95": 4.0, "max": 4.0}
    assert {(result["case"], result["refused"], result["status"]) for result in report["malformed"]} == {
        ("csv_missing_field", True, 400),
        ("csv_text_in_number", True, 400),
        ("json_not_json", True, 400),
        ("unsupported_content_type", True, 415),
    }
    assert {pair for pair in seen[:8]} == {
        (ct, accept) for ct in ("text/csv", "application/json") for accept in ("application/json", "text/csv")
    }
    json.dumps(report, allow_nan=False)


def test_the_smoke_test_names_wrong_shapes(served: Served) -> None:
    def one_value(body: bytes, content_type: str, accept: str) -> bytes:
        return b"1.0\n" if accept == "text/csv" else b'{"predictions": [1.0]}'

    report = smoke_test.smoke_test(one_value, CONTRACT_PATH, requests=8, clock=FakeClock(0.001))
    assert not report["passed"]
    assert failed(report) == {"response_shape", "formats_agree", "malformed_refused"}
    shape = next(check for check in report["checks"] if check["name"] == "response_shape")
    assert "1 predictions for 5 rows" in shape["detail"]
    assert any(
        failure.startswith("malformed_refused: csv_missing_field was answered") for failure in report["failures"]
    )


def test_the_smoke_test_names_non_finite_and_unparseable_answers(served: Served) -> None:
    def broken(body: bytes, content_type: str, accept: str) -> bytes:
        if content_type == "application/x-unsupported":
            raise RuntimeError("refused")
        return b'{"predictions": [NaN]}' if b"instances" not in body else b"<html>oops</html>"

    report = smoke_test.smoke_test(broken, CONTRACT_PATH, requests=4, clock=FakeClock(0.001))
    assert "response_shape" in failed(report)
    detail = next(check["detail"] for check in report["checks"] if check["name"] == "response_shape")
    assert "not a finite number" in detail or "not a application/json prediction response" in detail


def test_the_smoke_test_fails_a_slow_endpoint_on_latency_only(served: Served) -> None:
    report = smoke_test.smoke_test(local_invoke(served.model), CONTRACT_PATH, max_p95_ms=500, clock=FakeClock(0.8))
    assert failed(report) == {"latency"}
    assert report["failures"] == ["latency: p95 800.0 ms (p50 800.0 ms) over 22 requests, limit 500 ms"]


def test_the_smoke_test_fails_an_endpoint_that_errors(served: Served) -> None:
    def down(body: bytes, content_type: str, accept: str) -> bytes:
        raise ConnectionError("endpoint unreachable")

    report = smoke_test.smoke_test(down, CONTRACT_PATH, requests=3, clock=FakeClock(0.001))
    assert failed(report) == {"responses", "response_shape", "formats_agree", "latency"}
    assert "ConnectionError: endpoint unreachable (and 4 more)" in report["failures"][0]


class ModelError(Exception):
    """What boto3 raises when the model container answers with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"Received error ({status}) from primary")
        self.response = {"Error": {"Code": "ModelError"}, "OriginalStatusCode": status}


def test_a_malformed_request_that_crashes_the_server_is_not_a_refusal(served: Served) -> None:
    handlers = local_invoke(served.model)

    def crashing(body: bytes, content_type: str, accept: str) -> bytes:
        try:
            return handlers(body, content_type, accept)
        except inference.InvalidRequestError as error:
            raise ModelError(500 if error.status_code == 415 else error.status_code) from error

    report = smoke_test.smoke_test(crashing, CONTRACT_PATH, requests=4, clock=FakeClock(0.001))
    assert failed(report) == {"malformed_refused"}
    assert report["failures"] == ["malformed_refused: unsupported_content_type got HTTP 500, not a 4xx refusal"]


def test_sampled_rows_respect_the_contract() -> None:
    contract = load_contract(CONTRACT_PATH)
    rows = smoke_test.sample_rows(contract, 400, np.random.default_rng(3))
    names = features.from_contract(contract).names
    assert all(list(row) == names for row in rows)
    for name in names:
        spec = contract.column(name)
        values = [row[name] for row in rows]
        present = [value for value in values if value is not None]
        assert len(present) < len(values) if spec.nullable else len(present) == len(values), name
        if spec.type == "category":
            assert set(present) == set(spec.allowed), name
        else:
            assert all(isinstance(value, int if spec.type == "int" else float) for value in present), name
            assert all(float(spec.min) <= value <= float(spec.max) for value in present), name
    assert smoke_test.sample_rows(contract, 5, np.random.default_rng(3)) == rows[:5]


# --- the command --------------------------------------------------------------------------------


class FakeRuntime:
    """The sagemaker-runtime client's invoke_endpoint over an invoke function."""

    def __init__(self, invoke: smoke_test.Invoke) -> None:
        self.invoke = invoke
        self.calls: list[dict[str, Any]] = []

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"Body": io.BytesIO(self.invoke(kwargs["Body"], kwargs["ContentType"], kwargs["Accept"]))}


@pytest.fixture
def runtime(served: Served) -> Iterator[FakeRuntime]:
    yield FakeRuntime(local_invoke(served.model))


def test_the_command_passes_writes_its_report_and_exits_0(
    runtime: FakeRuntime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "out" / "smoke.json"
    arguments = ["--endpoint-name", "dt-staging", "--contract", str(CONTRACT_PATH), "--max-p95-ms", "60000"]
    code = smoke_test.main([*arguments, "--requests", "4", "--report", str(report_path)], client=runtime)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "FAIL" not in out
    assert out.startswith("smoke test of dt-staging passed: 6 requests, 22 rows, p50 ")
    report = json.loads(report_path.read_text())
    assert report["endpoint_name"] == "dt-staging" and report["passed"] is True
    assert {call["EndpointName"] for call in runtime.calls} == {"dt-staging"}
    assert all(isinstance(call["Body"], bytes) for call in runtime.calls)
    # every request is identifiable in the capture as the smoke test's, each by an id of its own
    ids = [call["InferenceId"] for call in runtime.calls]
    assert len(set(ids)) == len(ids) == len(runtime.calls)
    assert all(re.fullmatch(r"smoke-test-[0-9a-f]{12}-\d+", value) for value in ids), ids


def test_the_command_prints_one_line_per_failed_check_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    runtime = FakeRuntime(lambda body, content_type, accept: b'{"predictions": []}')
    code = smoke_test.main(
        ["--endpoint-name", "e", "--contract", str(CONTRACT_PATH), "--requests", "2"], client=runtime
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert [line.split(":")[0] for line in lines if line.startswith("FAIL")] == [
        "FAIL response_shape",
        "FAIL formats_agree",
        "FAIL malformed_refused",
    ]
    assert lines[-1].startswith("smoke test of e failed: ")


def test_the_command_needs_a_readable_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = smoke_test.main(["--endpoint-name", "e", "--contract", str(tmp_path / "none.json")], client=object())
    assert code == 2
    assert "none.json" in capsys.readouterr().err


# --- inference ids ------------------------------------------------------------------------------


def _served_in_a_request(served: Served, accept: str, headers: dict[str, str]) -> Any:
    """transform_fn inside a web request with these headers, as the container's Flask worker calls it."""
    import flask

    app = flask.Flask("inference-id-test")
    with app.test_request_context("/invocations", method="POST", headers=headers):
        return inference.transform_fn(served.model, _row(served), "text/csv", accept)


def test_the_clients_inference_id_comes_back_in_the_json_body_and_the_custom_attributes(served: Served) -> None:
    answer = _served_in_a_request(served, "application/json", {"X-Amzn-SageMaker-Inference-Id": "order-42"})
    assert answer.status_code == 200
    document = json.loads(answer.get_data())
    assert document["inference_id"] == "order-42" and len(document["predictions"]) == 1
    assert answer.headers["X-Amzn-SageMaker-Custom-Attributes"] == "inference_id=order-42"


def test_without_an_inference_id_the_endpoint_assigns_a_new_one_per_request(served: Served) -> None:
    first = json.loads(_served_in_a_request(served, "application/json", {}).get_data())["inference_id"]
    second = json.loads(_served_in_a_request(served, "application/json", {}).get_data())["inference_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second
    # an id SageMaker would not accept is not taken over either
    invalid = json.loads(
        _served_in_a_request(served, "application/json", {"X-Amzn-SageMaker-Inference-Id": "x" * 65}).get_data()
    )["inference_id"]
    assert invalid != "x" * 65 and re.fullmatch(r"[0-9a-f]{32}", invalid)


def test_a_csv_answer_keeps_one_prediction_a_line_and_carries_the_id_in_the_custom_attributes(served: Served) -> None:
    answer = _served_in_a_request(served, "text/csv", {"X-Amzn-SageMaker-Inference-Id": "order-43"})
    assert answer.status_code == 200 and len(answer.get_data().decode().splitlines()) == 1
    float(answer.get_data())
    assert answer.headers["X-Amzn-SageMaker-Custom-Attributes"] == "inference_id=order-43"


def test_a_refusal_carries_no_inference_id(served: Served) -> None:
    import flask

    with flask.Flask("refusal").test_request_context("/invocations", method="POST"):
        refused = inference.transform_fn(served.model, "1,2", "text/csv", None)
    assert refused.status_code == 400 and "X-Amzn-SageMaker-Custom-Attributes" not in refused.headers
