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
    assert names[:4] == ["Source", "Build", "Approve", "UpdatePipeline"]
    assert names[-1] == config.prefix
    infra = config.source.infrastructure
    assert infra is not None
    (source,) = pipeline["Stages"][0]["Actions"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == infra.connection_arn
    assert source["Configuration"]["FullRepositoryId"] == infra.repository
    assert source["Configuration"]["BranchName"] == infra.branch
    deployed = {
        action["Configuration"]["StackName"]
        for action in pipeline["Stages"][-1]["Actions"]
        if action["ActionTypeId"]["Provider"] == "CloudFormation" and "StackName" in action["Configuration"]
    }
    # The Endpoint stacks are the model-deploy pipeline's (test_endpoint_stacks_have_one_writer).
    stacks = ("Network", "DataLake", "MLPlatform", "Operations", "CICD")
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


def test_prod_infrastructure_comes_from_its_own_repository_not_the_model_code(
    synthesized: Synthesized, platform_config: PlatformConfig
) -> None:
    config = platform_config.stage("prod")
    pipeline, _ = _pipeline(synthesized)
    (source,) = pipeline["Stages"][0]["Actions"]
    assert source["Configuration"]["FullRepositoryId"] != config.source.repository
    assert config.source.infrastructure is not None and config.source.infrastructure.separate


def test_prod_infrastructure_waits_for_a_person_before_it_changes_anything(synthesized: Synthesized) -> None:
    pipeline, _ = _pipeline(synthesized)
    names = [stage["Name"] for stage in pipeline["Stages"]]
    (approve,) = pipeline["Stages"][names.index("Approve")]["Actions"]
    assert approve["ActionTypeId"] == {"Category": "Approval", "Owner": "AWS", "Provider": "Manual", "Version": "1"}
    # Before the self-mutation (a pushed pipeline change takes effect only after approval) and every deployment.
    assert names.index("Approve") < names.index("UpdatePipeline") < names.index("Assets")
    for stage in pipeline["Stages"][: names.index("Approve")]:
        for action in stage["Actions"]:
            assert action["ActionTypeId"]["Provider"] not in ("CloudFormation", "Manual"), action["Name"]


def test_no_build_of_the_pipeline_may_start_any_project_but_its_own(synthesized: Synthesized) -> None:
    _, resources = _pipeline(synthesized)
    projects = {name for name, r in resources.items() if r["Type"] == "AWS::CodeBuild::Project"}
    asset_projects = {name for name in projects if name.startswith("PipelineAssets")}
    assert asset_projects
    starting = 0
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "codebuild:StartBuild" not in actions:
                continue
            starting += 1
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert "*" not in targets, name
            started = {target["Fn::GetAtt"][0] for target in targets}
            assert started <= projects, name
            if name.startswith("PipelineAssetsFileRole"):
                assert started == asset_projects, name
    assert starting >= 2  # the pipeline's CodeBuild action role and the asset role


def test_endpoint_stacks_have_one_writer_the_model_deploy_pipeline(
    synthesized: Synthesized, platform_config: PlatformConfig
) -> None:
    from stacks.release import cdk_command

    for name, stage in synthesized.stages.items():
        config = platform_config.stage(name)
        endpoints = {endpoint.stack_name for endpoint in stage.endpoints.values()}
        assert endpoints == {f"{config.prefix}-Endpoint-{target}" for target in ("staging", "production")}
        # The model-deploy pipeline deploys each through make deploy-endpoint -> stacks.release (cdk deploy of it).
        cicd = Template.from_stack(stage.cicd).to_json()["Resources"]
        specs = [
            r["Properties"]["Source"]["BuildSpec"] for r in cicd.values() if r["Type"] == "AWS::CodeBuild::Project"
        ]
        for target in ("staging", "production"):
            assert any(f"make deploy-endpoint STAGE={name} TARGET={target}" in spec for spec in specs), (name, target)
            assert f"{config.prefix}/Endpoint-{target}" in cdk_command(name, target, config.prefix)
        # ...and no infrastructure pipeline deploys them.
        if stage.infra_pipeline is not None:
            pipeline = next(
                r["Properties"]
                for r in Template.from_stack(stage.infra_pipeline).to_json()["Resources"].values()
                if r["Type"] == "AWS::CodePipeline::Pipeline"
            )
            touched = {
                action.get("Configuration", {}).get("StackName")
                for st in pipeline["Stages"]
                for action in st["Actions"]
            }
            assert not touched & endpoints, name
