"""The parity suite: code that runs in SageMaker images, run on those images' Python and libraries.

Its tests need the image environments (``make image-envs``). Where one is missing they skip with
the reason in one line, except with ``MLOPS_REQUIRE_PARITY=1`` (CI), where they fail instead: a
skipped parity test there would hide a difference from the image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipelines_src.local import images
from pipelines_src.local.serving import XGBOOST_IMAGE

REQUIRE_VARIABLE = "MLOPS_REQUIRE_PARITY"


def _not_built(runtimes: Sequence[images.ImageRuntime]) -> None:
    """Skip (or fail, with MLOPS_REQUIRE_PARITY=1) naming each environment that is not built, in one line."""
    reasons = "; ".join(
        images.missing_python_message(runtime)
        if images.find_python(runtime.python) is None
        else f"the {runtime.name} image environment is not built (make image-envs)"
        for runtime in runtimes
    )
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"parity suite required ({REQUIRE_VARIABLE}=1) but {reasons}", pytrace=False)
    pytest.skip(f"parity suite skipped: {reasons}")


def require_image_envs(*names: str) -> list[images.ImageRuntime]:
    """The image environments (all described ones, or those named), built; else skip, or fail in CI."""
    runtimes = [runtime for runtime in images.runtimes() if not names or runtime.name in names]
    missing = [runtime for runtime in runtimes if not runtime.is_built()]
    if missing:
        _not_built(missing)
    return runtimes


def require_image(image_uri: str, known: Sequence[images.ImageRuntime] | None = None) -> images.ImageRuntime:
    """The environment of one image (among ``known``, default: every one described), built; else skip or fail."""
    runtime = images.for_image(image_uri, known)
    if not runtime.is_built():
        _not_built([runtime])
    return runtime


@pytest.fixture(scope="session")
def image_envs() -> list[images.ImageRuntime]:
    return require_image_envs()


@pytest.fixture(scope="session")
def xgboost_image() -> images.ImageRuntime:
    """The XGBoost 3.0-5 image's environment (training and serving)."""
    return require_image(XGBOOST_IMAGE)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test of the parity suite is slow: `make unit` runs before `make image-envs` builds what they need.

    Marked here, before `-m "not slow"` deselects, so a parity test without the marker cannot reach the unit run.
    """
    here = Path(__file__).resolve().parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.slow)
