"""The steps' MLflow client on the images' own interpreters: the scikit-learn image (Python 3.9, botocore
1.31) runs Preprocess, the XGBoost image (Python 3.10, botocore 1.20) Train and Evaluate. Neither image has
mlflow; the client is steps/tracking.py, shipped in the steps tarball, and it logs, uploads and signs there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipelines_src.local import images
from tests.parity.conftest import require_image_envs
from tests.parity.scripts import run_json
from tests.pipelines import fake_mlflow

pytestmark = pytest.mark.parity

STEPS = images.ROOT / "pipelines_src" / "steps"

# Runs on the image's interpreter with the steps folder on sys.path, as run_step.sh runs a step script.
SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import tracking
from botocore.credentials import Credentials
environment = {
    tracking.URI_VARIABLE: sys.argv[2], tracking.EXPERIMENT_VARIABLE: "delivery-time",
    tracking.RUN_NAME_VARIABLE: "exec-parity", tracking.COMMIT_VARIABLE: "abc123",
}
tracker = tracking.Tracker.open("step", environment)
tracker.log_params({"eta": 0.2})
tracker.log_series({"curve": [3.0, 2.0, 1.0]})
tracker.log_text(tracking.bar_chart_svg("importance", {"a": 1.0}), "train/importance.svg")
tracker.finish()
signer = tracking.sigv4_signer(
    "arn:aws:sagemaker:us-east-1:111122223333:mlflow-tracking-server/s", "us-east-1", Credentials("AKID", "secret")
)
signed = signer("GET", "https://us-east-1.experiments.sagemaker.aws/api/2.0/mlflow/runs/get?run_id=x", b"", {})
result = {"report": tracker.report(), "python": sys.version.split()[0], "authorization": signed["Authorization"]}
print(json.dumps(result))
"""


@pytest.fixture
def store() -> Iterator[fake_mlflow.Store]:
    with fake_mlflow.running() as state:
        yield state


@pytest.mark.parametrize(
    ("environment", "python"),
    [("sagemaker-scikit-learn-1.2-1", "3.9"), ("sagemaker-xgboost-3.0-5", "3.10")],
)
def test_the_client_logs_and_signs_on_the_images_python(
    store: fake_mlflow.Store, environment: str, python: str
) -> None:
    (runtime,) = require_image_envs(environment)
    result = run_json(runtime, SCRIPT, str(STEPS), store.url)
    assert result["python"].startswith(python + ".")
    report = result["report"]
    assert report["status"] == "ok" and report["failed_calls"] == 0, report
    run = store.run(report["run_id"])
    assert run["params"] == {"eta": "0.2"}
    assert run["metrics"]["curve"] == [(0, 3.0), (1, 2.0), (2, 1.0)]
    assert run["tags"]["mlops.git_commit"] == "abc123" and run["info"]["status"] == "FINISHED"
    assert store.artifacts[f"1/{report['run_id']}/artifacts/train/importance.svg"].startswith(b"<svg")
    assert "/us-east-1/sagemaker-mlflow/aws4_request" in result["authorization"]
