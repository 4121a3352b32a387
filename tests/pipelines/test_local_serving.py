"""The local serving harness without its image environment: what it refuses before starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines_src.local import serving
from pipelines_src.local.images import ImageEnvironmentError, ImageRuntime


def test_an_unbuilt_image_environment_is_one_line_naming_make_image_envs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageRuntime, "is_built", lambda self: False)
    stack = serving.ServingStack(tmp_path, {"SAGEMAKER_PROGRAM": "inference.py"}, scratch=tmp_path / "scratch")
    with pytest.raises(ImageEnvironmentError) as raised:
        stack.start()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("the sagemaker-xgboost-3.0-5 image environment is not built")
    assert message.endswith("run `make image-envs`")
    assert not (tmp_path / "scratch").exists(), "nothing was laid out"


def test_requests_need_a_started_stack(tmp_path: Path) -> None:
    stack = serving.ServingStack(tmp_path, {})
    with pytest.raises(serving.ServingError, match="not started"):
        stack.invoke(b"", None, None)


@pytest.mark.parametrize("workers", [0, -1])
def test_at_least_one_worker(tmp_path: Path, workers: int) -> None:
    with pytest.raises(ValueError, match="workers: must be at least 1"):
        serving.ServingStack(tmp_path, {}, workers=workers)


def test_a_missing_model_is_refused_and_leaves_no_scratch_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageRuntime, "is_built", lambda self: True)
    scratch = tmp_path / "scratch"
    monkeypatch.setattr(serving.tempfile, "mkdtemp", lambda **_: str(scratch))
    stack = serving.ServingStack(tmp_path / "none.tar.gz", {"SAGEMAKER_PROGRAM": "inference.py"})
    with pytest.raises(FileNotFoundError, match=r"none\.tar\.gz: no such file or folder"):
        stack.start()
    assert not scratch.exists()
    assert stack.scratch is None
