"""Fixtures shared by the pipeline tests: definitions built once per session (each build takes the SDK a second)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def placeholder_definition() -> str:
    """The model-build definition of ``placeholder_settings()`` (the deploy-time values as placeholders)."""
    from pipelines_src.definition import build_definition
    from tests.pipelines.test_definition import placeholder_settings

    return build_definition(placeholder_settings())
