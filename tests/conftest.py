"""Shared fixtures: the cdk.json context, its config, and ONE synthesized app holding every stage."""

from __future__ import annotations

import copy
import functools
import gc
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from resolver.config import PlatformConfig, load_config

if TYPE_CHECKING:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from stacks.platform import PlatformStage

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

# The test process holds about 800k long-lived objects (the CDK's generated bindings, the SageMaker SDK,
# pandas, botocore's models); with Python's default thresholds (700, 10, 10) the collector walks them
# all some twenty times, 0.3 s each, while the tests' own garbage is young. Collecting the young
# generation every 10k allocations instead of every 700 leaves full collections to the few runs
# that need them (measured on tests/infra and tests/lambdas: 7 s of collections down to 1 s).
gc.set_threshold(10_000, 20, 20)

# What botocore's loaders read, by method: the service models, endpoints and other data files, and the
# directory listings that locate them.
_LOADER_METHODS = (
    "load_service_model",
    "load_data_with_path",
    "list_available_services",
    "determine_latest_version",
    "list_api_versions",
)


def share_botocore_data() -> None:
    """Every botocore loader of the test run shares what it reads from the installed data files.

    botocore caches a parsed service model per session, and moto's ``mock_aws`` starts each block with
    no default boto3 session: every ``boto3.client`` in such a block parses the service's JSON model
    again (the costliest part of most moto tests). One session already hands the same parsed model to
    all its clients; sharing them between sessions is the same, keyed by the loader's search paths
    (the files it can find) and arguments. The files do not change while the tests run.
    """
    from botocore import loaders

    shared: dict[tuple[Any, ...], Any] = {}

    def sharing(name: str, method: Any) -> Any:
        def shared_method(self: Any, *args: Any, **kwargs: Any) -> Any:
            key = (name, tuple(self.search_paths), tuple(self.extras_types), args, tuple(sorted(kwargs.items())))
            if key not in shared:
                shared[key] = method(self, *args, **kwargs)
            return shared[key]

        shared_method.shared = True  # type: ignore[attr-defined]
        return shared_method

    for name in _LOADER_METHODS:
        method = getattr(loaders.Loader, name)
        if not getattr(method, "shared", False):
            setattr(loaders.Loader, name, sharing(name, method))


share_botocore_data()


def read_installed_once() -> None:
    """The definition cache's key lists every installed distribution, parsing each one's metadata (about
    0.1 s a key, a few dozen keys a run); nothing is installed while the tests run, so it is read once.
    Tests that change the list monkeypatch ``_installed`` itself, over this."""
    from pipelines_src import definition

    if getattr(definition._installed, "once", False):
        return
    read = functools.cache(definition._installed)

    def installed() -> list[str]:
        return list(read())

    installed.once = True  # type: ignore[attr-defined]
    definition._installed = installed


read_installed_once()


def cdk_json_context() -> dict[str, Any]:
    """The context the CDK CLI hands the app: cdk.json's, feature flags included."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def new_app(**kwargs: Any) -> App:
    """An app with cdk.json's context (feature flags included), as the CLI would build it (the demo's app)."""
    from demo.assembly import new_app as app_with

    return app_with(cdk_json_context(), **kwargs)


@pytest.fixture
def context() -> dict[str, Any]:
    """A fresh, mutable copy of the cdk.json context for tests that break it."""
    return copy.deepcopy(cdk_json_context())


@pytest.fixture(scope="session")
def platform_config() -> PlatformConfig:
    return load_config(cdk_json_context())


@dataclass
class Synthesized:
    app: App
    stages: dict[str, PlatformStage]
    outdir: Path

    def template(self, stage: str, stack: str) -> Template:
        from aws_cdk.assertions import Template

        # "endpoints.<target>": a target's Endpoint stack
        owner, _, target = stack.partition(".")
        value = getattr(self.stages[stage], owner)
        return Template.from_stack(value[target] if target else value)


def exported_value(producer: dict[str, Any], reference: dict[str, Any]) -> Any:
    """The value behind an ``Fn::ImportValue`` of one of ``producer``'s exports (a template as JSON)."""
    name = reference["Fn::ImportValue"]
    (value,) = [
        output["Value"]
        for output in producer.get("Outputs", {}).values()
        if output.get("Export", {}).get("Name") == name
    ]
    return value


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory, platform_config: PlatformConfig) -> Synthesized:
    """Every stage of cdk.json in one app, synthesized once with the CloudFormation validation off (speed)."""
    from stacks.app import build

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = new_app(outdir=str(outdir))
    stages = build(app, platform_config, platform_config.stages)
    app.synth()
    return Synthesized(app=app, stages={stage.config.name: stage for stage in stages}, outdir=outdir)


@pytest.fixture
def moto_server() -> Iterator[str]:
    """The URL of an embedded AWS server (moto) on 127.0.0.1, for jobs that reach AWS from their own process:
    the demo's own server (demo/emulation.py), reset and stopped afterwards."""
    from demo.emulation import moto_server as embedded_server

    with embedded_server() as url:
        yield url
