"""The parity suite: code that runs in SageMaker images, run on those images' Python and libraries.

Its tests need the image environments (``make image-envs``). Where one is missing they skip with
the reason in one line, except with ``MLOPS_REQUIRE_PARITY=1`` (CI), where they fail instead.
"""

from __future__ import annotations

import os

import pytest

from pipelines_src.local import images


def require_image_envs(*names: str) -> list[images.ImageRuntime]:
    """The image environments (all described ones, or those named), built; else skip, or fail in CI."""
    runtimes = [runtime for runtime in images.runtimes() if not names or runtime.name in names]
    missing = [runtime for runtime in runtimes if not runtime.is_built()]
    if missing:
        reasons = "; ".join(
            images.missing_python_message(runtime)
            if images.find_python(runtime.python) is None
            else f"{runtime.name} is not built (make image-envs)"
            for runtime in missing
        )
        if os.environ.get("MLOPS_REQUIRE_PARITY") == "1":
            pytest.fail(f"parity suite required (MLOPS_REQUIRE_PARITY=1) but {reasons}", pytrace=False)
        pytest.skip(f"parity suite skipped: {reasons}")
    return runtimes


@pytest.fixture(scope="session")
def image_envs() -> list[images.ImageRuntime]:
    return require_image_envs()
