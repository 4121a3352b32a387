"""The optional self-updating infrastructure pipeline (prod in cdk.json): push -> synth -> update itself -> deploy."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.config import ConfigError, PlatformConfig, load_config
from tests.conftest import Synthesized, cdk_json_context


def _pipeline(synthesized: Synthesized) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    stack = synthesized.stages["prod"].infra_pipeline
    assert stack is not None
    resources: dict[str, dict[str, Any]] = Template.from_stack(stack).to_json()["Resources"]
    (pipeline,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return pipeline, resources


def test_only_stages_that_ask_for_it_get_one(synthesized: Synthesized, platform_config: PlatformConfig) -> None:
    for name, stage in synthesized.stages.items():
        wanted = platform_config.stage(name).source.self_update
        assert (stage.infra_pipeline is not None) == wanted, name


def test_a_push_synthesizes_with_make_updates_the_pipeline_then_deploys_every_stack_of_the_stage(
    synthesized: Synthesized, platform_config: PlatformConfig
) -> None:
    config = platform_config.stage("prod")
    pipeline, resources = _pipeline(synthesized)
    names = [stage["Name"] for stage in pipeline["Stages"]]
    assert names[:3] == ["Source", "Build", "UpdatePipeline"]
    assert names[-1] == config.prefix
    (source,) = pipeline["Stages"][0]["Actions"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == config.source.connection_arn
    assert source["Configuration"]["FullRepositoryId"] == config.source.repository
    assert source["Configuration"]["BranchName"] == config.source.branch
    deployed = {
        action["Configuration"]["StackName"]
        for action in pipeline["Stages"][-1]["Actions"]
        if action["ActionTypeId"]["Provider"] == "CloudFormation" and "StackName" in action["Configuration"]
    }
    stacks = ("Network", "DataLake", "MLPlatform", "Endpoint-staging", "Endpoint-production", "Operations", "CICD")
    assert deployed == {f"{config.prefix}-{stack}" for stack in stacks}
    synth = [
        json.loads(r["Properties"]["Source"]["BuildSpec"])
        for r in resources.values()
        if r["Type"] == "AWS::CodeBuild::Project" and "make synth" in r["Properties"]["Source"].get("BuildSpec", "")
    ]
    (spec,) = synth
    assert spec["phases"]["install"]["commands"] == ["make install"]
    assert spec["phases"]["build"]["commands"] == ["make synth STAGE=prod"]


def test_its_artifacts_are_encrypted_and_its_buckets_private(synthesized: Synthesized) -> None:
    pipeline, resources = _pipeline(synthesized)
    store = pipeline["ArtifactStore"]
    assert store["EncryptionKey"]["Type"] == "KMS"
    buckets = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::S3::Bucket"]
    assert len(buckets) == 2
    for bucket in buckets:
        assert bucket["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


def test_self_update_needs_a_source_it_can_watch() -> None:
    context = copy.deepcopy(cdk_json_context())
    context["mlops"]["stages"]["dev"]["source"] = {"provider": "s3", "self_update": True}
    with pytest.raises(ConfigError, match=r"mlops.stages.dev.source.self_update: needs provider codeconnections"):
        load_config(context)
