"""A registered version serves with the inference code it was built with, whatever the steps tarball holds later:
scale-out, rollback and a late approval start containers long after the build."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto import mock_aws

from pipelines_src.datasets.delivery_time import generate, write_raw
from pipelines_src.definition import SERVING_CODE_SHA256_KEY
from pipelines_src.local.images import ImageRuntime
from pipelines_src.local.run import CODE_BUCKET, run_local_pipeline
from pipelines_src.local.serving import ServingError, ServingStack
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
from pipelines_src.serving import inference

pytestmark = [pytest.mark.slow, pytest.mark.parity]

ROWS = 6000
BROKEN = 'raise RuntimeError("this inference.py is a later, broken change")\n'


@dataclass(frozen=True)
class Version:
    archive: Path  # the version's model.tar.gz, as registered
    environment: dict[str, str]  # its container's environment
    metadata: dict[str, str]  # CustomerMetadataProperties
    current_tarball: Path  # what the steps tarball's key holds after a later change
    built_code: dict[str, bytes] = field(repr=False)  # the serving code when the version was built


@pytest.fixture(scope="module")
def version(xgboost_image: ImageRuntime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Version]:
    root = tmp_path_factory.mktemp("versions")
    write_raw(generate(ROWS, seed=11), root / "raw", file_format="csv")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        run = run_local_pipeline(
            s3=s3, sagemaker=sagemaker, raw_dir=root / "raw" / "delivery_time", workdir=root / "run", on_event=print
        )
        assert run.result.status == "Succeeded", run.result.failure
        package = sagemaker.describe_model_package(ModelPackageName=run.model_package_arn)
        (container,) = package["InferenceSpecification"]["Containers"]
        bucket, key = container["ModelDataUrl"][len("s3://") :].split("/", 1)
        s3.download_file(bucket, key, str(root / "model.tar.gz"))
        # Later: steps/ and inference.py change, and the stack ships a new tarball under the same key.
        changed = root / "changed"
        shutil.copytree(STEPS_DIR, changed / "steps")
        (changed / SERVING_PROGRAM).write_text((SERVING_DIR / SERVING_PROGRAM).read_text() + BROKEN)
        program = [changed / SERVING_PROGRAM]
        tarball = build_source_tarball(changed / "steps", root / "steps.tar.gz", extra_files=program)
        s3.upload_file(str(tarball), CODE_BUCKET, "code/steps.tar.gz")
        s3.download_file(CODE_BUCKET, "code/steps.tar.gz", str(root / "current-steps.tar.gz"))
        yield Version(
            archive=root / "model.tar.gz",
            environment=dict(container["Environment"]),
            metadata=dict(package.get("CustomerMetadataProperties", {})),
            current_tarball=root / "current-steps.tar.gz",
            built_code=serving_code(),
        )


def _extracted(archive: Path, folder: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder


def _requests(model: inference.Model) -> bytes:
    rows = generate(25, seed=5)[model.spec.names]
    return rows.to_csv(header=False, index=False).encode()


def test_the_version_carries_its_code_and_its_sha256(version: Version, tmp_path: Path) -> None:
    model_dir = _extracted(version.archive, tmp_path / "model")
    assert sorted(path.name for path in model_dir.iterdir()) == ["code", "xgboost-model.json"]
    code = {path.name: path.read_bytes() for path in (model_dir / "code").iterdir()}
    assert sorted(code) == sorted(SERVING_CODE)
    assert code == version.built_code
    assert version.metadata[SERVING_CODE_SHA256_KEY] == code_sha256(code)
    # the rest is the new model's and the champion's results (first version: no champion)
    assert version.metadata["champion"] == "none" and version.metadata["champion_rmse"] == "none"
    assert folder_sha256(model_dir / "code") == version.metadata[SERVING_CODE_SHA256_KEY]
    assert version.environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert "s3://" not in json.dumps(version.environment), "the container fetches no code"


def test_the_version_still_serves_after_the_inference_code_changed(version: Version, tmp_path: Path) -> None:
    model = inference.model_fn(str(_extracted(version.archive, tmp_path / "model")))
    body = _requests(model)
    expected = inference.respond(model, body, "text/csv", "application/json")
    with ServingStack(version.archive, version.environment) as stack:
        status, media, answer = stack.invoke(body, "text/csv", "application/json")
        assert (status, media) == (200, "application/json")
        got = json.loads(answer)["predictions"]
        np.testing.assert_allclose(got, json.loads(expected.body)["predictions"], rtol=1e-6)
        assert len(got) == 25
        refused = stack.invoke(b"1,2", "text/csv", None)
        assert refused[:2] == (400, "text/plain; charset=utf-8")
        assert "this inference.py is a later, broken change" not in stack.log_text()


def test_served_from_the_current_tarball_instead_the_version_would_not_start(version: Version) -> None:
    """What a version that points at the steps tarball's key gets once that key holds other code."""
    pointing_at_tarball = {**version.environment, "SAGEMAKER_SUBMIT_DIRECTORY": str(version.current_tarball)}
    with pytest.raises(ServingError, match=r"ImportModuleError: this inference\.py is a later, broken change"):
        ServingStack(version.archive, pointing_at_tarball, startup_timeout_s=120).start()
