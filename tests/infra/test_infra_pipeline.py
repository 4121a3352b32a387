"""The optional self-updating infrastructure pipeline (prod in cdk.json): push -> synth -> update itself -> deploy."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from resolver import naming
from resolver.config import ConfigError, PlatformConfig, load_config
from stacks.infra_pipeline_stack import ACTION_EXECUTION_STATE_CHANGE, APPROVAL_STAGE
from tests.conftest import Synthesized, cdk_json_context
from tests.infra.test_operations import _event, _matches, _render


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
    for name, stage in synthesized.stages.items():
        config = platform_config.stage(name)
        endpoints = {endpoint.stack_name for endpoint in stage.endpoints.values()}
        assert endpoints == {f"{config.prefix}-Endpoint-{target}" for target in ("staging", "production")}
        # The model-deploy pipeline's release tool updates each (its deploy build's RELEASE_STACK).
        cicd = Template.from_stack(stage.cicd).to_json()["Resources"]
        released = {
            variable["Value"]
            for r in cicd.values()
            if r["Type"] == "AWS::CodeBuild::Project"
            for variable in r["Properties"]["Environment"].get("EnvironmentVariables", [])
            if variable["Name"] == "RELEASE_STACK"
        }
        assert released == endpoints, name
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


def _approval_event(config: Any, pipeline: str, state: str, **detail: Any) -> dict[str, Any]:
    """CodePipeline's "Action Execution State Change" of a manual approval (the CodePipeline user guide's
    EventBridge examples)."""
    event = _event(
        "aws.codepipeline",
        ACTION_EXECUTION_STATE_CHANGE,
        {
            "pipeline": pipeline,
            "execution-id": "01234567-0123-0123-0123-012345678901",
            "stage": APPROVAL_STAGE,
            "action": APPROVAL_STAGE,
            "state": state,
            "region": config.region,
            "type": {"owner": "AWS", "provider": "Manual", "category": "Approval", "version": "1"},
            "version": 1,
            **detail,
        },
        config.account,
    )
    event["resources"] = [f"arn:aws:codepipeline:{config.region}:{config.account}:{pipeline}"]
    return event


def test_a_prod_run_waiting_for_approval_notifies_the_stage_topic(
    synthesized: Synthesized, platform_config: PlatformConfig
) -> None:
    config = platform_config.stage("prod")
    operations = synthesized.stages["prod"].operations
    resources = synthesized.template("prod", "operations").to_json()["Resources"]
    (rule,) = [
        r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Events::Rule" and name.startswith("InfrastructureApprovalRule")
    ]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": operations.get_logical_id(operations.topic.node.default_child)}
    pipeline = naming.infrastructure_pipeline(config)
    pipeline_properties, _ = _pipeline(synthesized)
    assert pipeline_properties["Name"] == pipeline
    assert _matches(rule, _approval_event(config, pipeline, "STARTED"))
    assert not _matches(rule, _approval_event(config, pipeline, "SUCCEEDED"))
    assert not _matches(rule, _approval_event(config, naming.deploy_pipeline(config), "STARTED"))
    assert not _matches(rule, _approval_event(config, pipeline, "STARTED", stage="Build", action="Synth"))
    message = _render(target, _approval_event(config, pipeline, "STARTED"))
    assert message.startswith(f"Run 01234567-0123-0123-0123-012345678901 of {pipeline} waits for approval"), message
    assert f"/codepipeline/pipelines/{pipeline}/view" in message
    # Stages without an infrastructure pipeline have no such rule.
    for name in ("dev", "staging"):
        rules = synthesized.template(name, "operations").find_resources("AWS::Events::Rule")
        assert not [rule for rule in rules if rule.startswith("InfrastructureApprovalRule")], name
