"""Shared fixtures: the cdk.json context, its config, and ONE synthesized app holding every stage."""

from __future__ import annotations

import copy
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
