"""The endpoint's inference code through the XGBoost image's own serving stack (sagemaker-containers,
Flask, gunicorn) over HTTP: what a caller of the endpoint gets, case by case, against the in-process answer."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines_src.definition import container_environment
from pipelines_src.local.images import ImageRuntime
from pipelines_src.local.runner import pack_model
from pipelines_src.local.serving import HTTPStatusError, ServingError, ServingStack
from pipelines_src.serving import inference, smoke_test
from tests.pipelines.test_serving import (
    CONTRACT_PATH,
    MALFORMED,
    Served,
    _row,
    csv_of,
    records_of,
    train_served,
)

pytestmark = [pytest.mark.slow, pytest.mark.parity]

REGION = "eu-west-1"
JSON = "application/json"
CSV = "text/csv"
TEXT = "text/plain; charset=utf-8"  # Flask adds the charset to text/* types
RELATIVE_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def served(xgboost_image: ImageRuntime, tmp_path_factory: pytest.TempPathFactory) -> Served:
    return train_served(tmp_path_factory.mktemp("parity-serving"))


@pytest.fixture(scope="module")
def model_archive(served: Served) -> Path:
    """model.tar.gz as the training job packs the model folder (the code/ train.py wrote included)."""
    return pack_model(served.model_dir, served.model_dir.parent / "output" / "model.tar.gz")


@pytest.fixture(scope="module")
def stack(model_archive: Path) -> Iterator[ServingStack]:
    """The model served as the registered model package's container runs it."""
    with ServingStack(model_archive, container_environment(REGION)) as running:
        yield running


def in_process(served: Served, body: bytes | str, content_type: str | None, accept: str | None) -> inference.Reply:
    return inference.respond(served.model, body, content_type, accept)


Answer = tuple[int, str | None, bytes]


def assert_same_predictions(
    served: Served, answer: Answer, body: bytes | str, content_type: str | None, accept: str | None
) -> list[float]:
    """The HTTP answer is a 200 with the in-process answer's media type and predictions (float tolerance)."""
    status, media, data = answer
    expected = in_process(served, body, content_type, accept)
    assert expected.status == 200, expected.body
    assert status == 200, data
    assert media == ("text/csv; charset=utf-8" if expected.content_type == CSV else JSON)
    got, wanted = _values(data, expected.content_type), _values(expected.body, expected.content_type)
    np.testing.assert_allclose(got, wanted, rtol=RELATIVE_TOLERANCE, atol=0)
    return got


def _values(body: bytes, media: str) -> list[float]:
    if media == CSV:
        return [float(line) for line in body.decode().splitlines()]
    values: list[float] = json.loads(body)["predictions"]
    return values


# --- predictions -------------------------------------------------------------------------------


def test_csv_and_json_batches_predict_as_in_process_and_as_evaluate(stack: ServingStack, served: Served) -> None:
    names = served.model.spec.names
    body = csv_of(served.raw, names)
    by_csv = assert_same_predictions(served, stack.invoke(body, CSV, JSON), body, CSV, JSON)
    instances = json.dumps({"instances": records_of(served.raw, names)}).encode()
    by_json = assert_same_predictions(served, stack.invoke(instances, JSON, None), instances, JSON, None)
    np.testing.assert_allclose(by_csv, served.expected, rtol=RELATIVE_TOLERANCE)
    np.testing.assert_allclose(by_json, served.expected, rtol=RELATIVE_TOLERANCE)


def test_the_clients_inference_id_reaches_the_handler_and_comes_back_through_the_real_stack(
    stack: ServingStack, served: Served
) -> None:
    """The image's Flask worker gives the handler the request's headers: the client's InferenceId is the one
    answered, in the JSON body and in the custom attributes (InvokeEndpoint's CustomAttributes)."""
    body = _row(served).encode()
    status, media, data, headers = stack.exchange(body, CSV, JSON, inference_id="order-7")
    assert (status, media) == (200, JSON)
    assert json.loads(data)["inference_id"] == "order-7"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "inference_id=order-7"
    status, media, data, headers = stack.exchange(body, CSV, CSV, inference_id="order-8")
    assert (
        len(data.decode().splitlines()) == 1 and headers["X-Amzn-SageMaker-Custom-Attributes"] == "inference_id=order-8"
    )
    # without one, the endpoint assigns one per request and returns it
    first = json.loads(stack.exchange(body, CSV, JSON)[2])["inference_id"]
    second = json.loads(stack.exchange(body, CSV, JSON)[2])["inference_id"]
    assert first != second and len(first) == 32


def test_single_objects_with_parameters_and_any_accept(stack: ServingStack, served: Served) -> None:
    for index, record in enumerate(records_of(served.raw.head(3), served.model.spec.names)):
        body = json.dumps(record).encode()
        content_type = "application/json; charset=utf-8"  # reaches transform_fn as bytes, not text
        got = assert_same_predictions(served, stack.invoke(body, content_type, "*/*"), body, content_type, "*/*")
        assert got == pytest.approx([served.expected[index]], rel=RELATIVE_TOLERANCE)


@pytest.mark.parametrize("accept", ["text/csv", "text/csv; q=0.9", "text/html, text/csv;q=0.9", "text/*"])
def test_csv_answers_are_text_csv(stack: ServingStack, served: Served, accept: str) -> None:
    body = csv_of(served.raw.head(4), served.model.spec.names)
    status, media, data = stack.invoke(body, CSV, accept)
    assert (status, media) == (200, "text/csv; charset=utf-8")
    np.testing.assert_allclose(np.loadtxt(io.BytesIO(data)), served.expected[:4], rtol=RELATIVE_TOLERANCE)


def test_categories_by_name_and_an_unknown_category_as_missing(stack: ServingStack, served: Served) -> None:
    names = served.model.spec.names
    row = served.raw.head(1)
    answers = []
    for weather in ("clear", "cloudy", "rain", "snow", "storm"):
        changed = row.assign(weather=pd.Categorical([weather], categories=row["weather"].cat.categories))
        body = csv_of(changed, names)
        answers.append(assert_same_predictions(served, stack.invoke(body, CSV, CSV), body, CSV, CSV)[0])
    assert len(set(answers)) > 1, "the weather changes the prediction"
    record = records_of(row, names)[0]
    unknown = json.dumps({**record, "weather": "hail"}).encode()
    missing = json.dumps({**record, "weather": None}).encode()
    assert _values(stack.invoke(unknown, JSON, JSON)[2], JSON) == _values(stack.invoke(missing, JSON, JSON)[2], JSON)


def test_extra_json_keys_and_csv_whitespace_are_tolerated(stack: ServingStack, served: Served) -> None:
    names = served.model.spec.names
    record = records_of(served.raw.head(1), names)[0]
    extra = json.dumps({**record, "order_id": "ORD-1", "note": {"nested": True}}).encode()
    assert_same_predictions(served, stack.invoke(extra, JSON, None), extra, JSON, None)
    lines = csv_of(served.raw.head(2), names).decode().splitlines()
    padded = "\n".join(f" {line.split(',', 1)[0]} ,{line.split(',', 1)[1]}" for line in lines)
    spaced = f"\n{padded}\n\n".encode()
    got = assert_same_predictions(served, stack.invoke(spaced, CSV, None), spaced, CSV, None)
    np.testing.assert_allclose(got, served.expected[:2], rtol=RELATIVE_TOLERANCE)


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_requests_get_the_client_status_and_the_message_over_http(
    stack: ServingStack,
    served: Served,
    body: Callable[[Served], str | bytes],
    content_type: str,
    status: int,
    message: str,
) -> None:
    sent = body(served)
    data = sent.encode() if isinstance(sent, str) else sent
    got_status, media, answer = stack.invoke(data, content_type or None, None)
    assert (got_status, media) == (status, TEXT), answer
    text = answer.decode("utf-8")
    assert message in text and text.endswith("\n") and text.count("\n") == 1
    expected = in_process(served, data, content_type or None, None)
    assert expected.status == status
    if message != "not UTF-8":  # the container hands text/csv over decoded, undecodable bytes as U+FFFD
        assert answer == expected.body


def test_one_bad_row_refuses_the_request_and_says_how_many(stack: ServingStack, served: Served) -> None:
    body = "\n".join([_row(served), _row(served) + ",x", _row(served, weekday="Monday"), "1,2"]).encode()
    status, media, answer = stack.invoke(body, CSV, JSON)
    assert (status, media) == (400, TEXT)
    assert answer.decode().startswith("2 of 4 rows are malformed; first: row 1: 12 fields")


@pytest.mark.parametrize("accept", ["application/xml", "image/png, text/html"])
def test_an_unsupported_accept_gets_406(stack: ServingStack, served: Served, accept: str) -> None:
    status, media, answer = stack.invoke(_row(served).encode(), CSV, accept)
    assert (status, media) == (406, TEXT)
    assert answer == f"accept {accept!r} is not supported: ask for application/json or text/csv\n".encode()


def test_a_request_without_content_type_is_json(stack: ServingStack, served: Served) -> None:
    record = json.dumps(records_of(served.raw.head(1), served.model.spec.names)[0]).encode()
    status, media, answer = stack.invoke(record, None, None)
    assert (status, media) == (200, JSON)
    assert _values(answer, JSON) == pytest.approx([served.expected[0]], rel=RELATIVE_TOLERANCE)
    status, media, answer = stack.invoke(_row(served).encode(), None, None)
    assert (status, media) == (400, TEXT)
    assert answer.decode().startswith("body is not JSON")


def test_the_smoke_test_passes_against_the_real_server(stack: ServingStack) -> None:
    report = smoke_test.smoke_test(stack.call, CONTRACT_PATH, requests=12)
    assert report["passed"], report["failures"]
    assert {(result["case"], result["refused"], result["status"]) for result in report["malformed"]} == {
        ("csv_missing_field", True, 400),
        ("csv_text_in_number", True, 400),
        ("json_not_json", True, 400),
        ("unsupported_content_type", True, 415),
    }


def test_refusals_reach_the_smoke_test_with_their_status(stack: ServingStack, served: Served) -> None:
    with pytest.raises(HTTPStatusError) as raised:
        stack.call(_row(served).encode(), "text/plain", JSON)
    assert raised.value.status_code == 415 and raised.value.content_type == TEXT


# --- installing the code in an isolated container -------------------------------------------------

PEP517 = {"PIP_USE_PEP517": "1"}  # what pip >= 25.3 does for every project: build in an isolated environment


def test_the_package_environment_installs_the_code_offline_where_pip_builds_in_isolation(
    model_archive: Path, served: Served
) -> None:
    with ServingStack(model_archive, {**container_environment(REGION), **PEP517}) as running:
        body = csv_of(served.raw.head(2), served.model.spec.names)
        assert_same_predictions(served, running.invoke(body, CSV, JSON), body, CSV, JSON)
        assert "Building wheel for inference (pyproject.toml)" in running.log_text()


def test_without_build_isolation_off_an_isolated_container_cannot_install_the_code(model_archive: Path) -> None:
    environment = dict(container_environment(REGION))
    del environment["PIP_NO_BUILD_ISOLATION"]
    stack = ServingStack(model_archive, {**environment, **PEP517}, startup_timeout_s=120)
    with pytest.raises(ServingError, match="exited with 1 before /ping answered") as raised:
        stack.start()
    assert "InstallModuleError" in str(raised.value)


def test_a_submit_directory_in_s3_is_refused_here(model_archive: Path) -> None:
    environment = {**container_environment(REGION), "SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/code/sourcedir.tar.gz"}
    with pytest.raises(ValueError, match="reaches no S3"):
        ServingStack(model_archive, environment)
