"""Parity tests skip when their image environment is missing, and fail instead when CI requires them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines_src.local.images import parse_requirements
from tests.parity.conftest import REQUIRE_VARIABLE, require_image


@pytest.fixture
def unbuilt(tmp_path: Path) -> Path:
    path = tmp_path / "sagemaker-example-9.9-1.txt"
    path.write_text("# image: sagemaker-example:9.9-1\n# python: 3.10\nsix==1.17.0\n")
    return path


def test_a_missing_environment_skips_with_a_one_line_reason(unbuilt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception) as raised:
        require_image("sagemaker-example:9.9-1-cpu-py3", [parse_requirements(unbuilt)])
    assert str(raised.value) == (
        "parity suite skipped: the sagemaker-example-9.9-1 image environment is not built (make image-envs)"
    )


def test_a_missing_environment_fails_when_parity_is_required(unbuilt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_VARIABLE, "1")
    with pytest.raises(
        pytest.fail.Exception,
        match=r"required \(MLOPS_REQUIRE_PARITY=1\) but the sagemaker-example-9.9-1 image environment is not built",
    ):
        require_image("sagemaker-example:9.9-1", [parse_requirements(unbuilt)])
