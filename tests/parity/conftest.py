"""Parity tests run code on a SageMaker image's own Python environment (``.venv-images``, ``make image-envs``).

``require_image(image_uri)`` gives the image's environment; when it is not built the test is skipped
with a one-line reason, or fails when ``MLOPS_REQUIRE_PARITY=1`` (CI, where a skipped parity test
would hide a difference from the image).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

from pipelines_src.local.images import ImageRuntime, for_image
from pipelines_src.local.serving import XGBOOST_IMAGE

REQUIRE_VARIABLE = "MLOPS_REQUIRE_PARITY"


def require_image(image_uri: str, known: Sequence[ImageRuntime] | None = None) -> ImageRuntime:
    """The image's environment (among ``known``, default: every one described); skip (or fail, with
    MLOPS_REQUIRE_PARITY=1) when it is not built."""
    runtime = for_image(image_uri, known)
    if runtime.is_built():
        return runtime
    reason = f"the {runtime.name} image environment is not built (make image-envs)"
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{reason}; {REQUIRE_VARIABLE}=1 requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def xgboost_image() -> ImageRuntime:
    """The XGBoost 3.0-5 image's environment (training and serving)."""
    return require_image(XGBOOST_IMAGE)
