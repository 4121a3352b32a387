"""End to end on moto: an approval in the registry starts the synthesized deploy pipeline with the version's ARN.

The function's configuration is the environment the Operations stack gives it; the pipeline is the
CICD stack's deploy pipeline (its name, its V2 variable, its stages), created in moto; the event is
the one SageMaker sends. What the deploy actions read (#{variables.ModelPackageArn}) is what the
function set.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from resolver import naming
from resolver.config import PlatformConfig
from tests.conftest import Synthesized
from tests.lambdas.conftest import TABLE, TOPIC_ARN, Aws
from tests.lambdas.test_registry_approval import state_change_event

from registry_approval import handler  # isort: skip  (resolved through lambdas/ on sys.path)
from shared.arns import VersionScope  # isort: skip

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time:UserWarning")
STAGE = "prod"


def _resources(synthesized: Synthesized, stack: str, kind: str) -> list[dict[str, Any]]:
    template = synthesized.template(STAGE, stack).to_json()
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def _api_shape(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The template's stages as the CodePipeline API takes them (deploy-time values left out)."""
    shaped = []
    for stage in stages:
        actions = []
        for action in stage["Actions"]:
            type_id = action["ActionTypeId"]
            actions.append(
                {
                    "name": action["Name"],
                    "actionTypeId": {
                        "category": type_id["Category"],
                        "owner": type_id["Owner"],
                        "provider": type_id["Provider"],
                        "version": type_id["Version"],
                    },
                    "runOrder": action.get("RunOrder", 1),
                    "inputArtifacts": [{"name": a["Name"]} for a in action.get("InputArtifacts", [])],
                    "outputArtifacts": [{"name": a["Name"]} for a in action.get("OutputArtifacts", [])],
                }
            )
        shaped.append({"name": stage["Name"], "actions": actions})
    return shaped


def _approval_environment(synthesized: Synthesized) -> dict[str, Any]:
    """The registry-approval function's environment, as the Operations stack sets it."""
    (function,) = [
        f
        for f in _resources(synthesized, "operations", "AWS::Lambda::Function")
        if f["Handler"] == "registry_approval.handler.lambda_handler"
    ]
    return dict(function["Environment"]["Variables"])


def test_an_approval_starts_the_deploy_pipeline_with_the_versions_arn(
    synthesized: Synthesized, platform_config: PlatformConfig, aws: Aws
) -> None:
    config = platform_config.stage(STAGE)
    environment = _approval_environment(synthesized)
    # The two deploy-time values point at moto's topic and table.
    environment.update(NOTIFICATION_TOPIC_ARN=TOPIC_ARN, IDEMPOTENCY_TABLE=TABLE)
    function_config = handler.load_config(environment)

    (pipeline,) = [
        p
        for p in _resources(synthesized, "cicd", "AWS::CodePipeline::Pipeline")
        if p["Name"] == naming.deploy_pipeline(config)
    ]
    assert function_config.deploy_pipeline_name == pipeline["Name"]
    assert pipeline["PipelineType"] == "V2"
    (variable,) = pipeline["Variables"]
    iam = aws.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role_arn = iam.create_role(RoleName="synthesized-deploy-pipeline", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    codepipeline = aws.client("codepipeline")
    codepipeline.create_pipeline(
        pipeline={
            "name": pipeline["Name"],
            "roleArn": role_arn,
            "pipelineType": "V2",
            "artifactStore": {"type": "S3", "location": "delivery-bucket"},
            "variables": [{"name": variable["Name"], "description": variable["Description"]}],
            "stages": _api_shape(pipeline["Stages"]),
        }
    )

    group = naming.model_package_group(config)
    # The function passes on versions of the stage's group in the stage's account and region only.
    assert function_config.versions == VersionScope(
        partition="aws", region=config.region, account=str(config.account), group=group
    )
    event = state_change_event("Approved", group=group, version=7)
    arn = event["detail"]["ModelPackageArn"] = function_config.versions.arn(7)
    clients = handler.Clients(codepipeline=codepipeline, sns=aws.sns, dynamodb=aws.dynamodb)
    result = handler.handle_event(event, config=function_config, clients=clients)
    assert result["status"] == "deploy_started"
    execution = codepipeline.get_pipeline_execution(
        pipelineName=pipeline["Name"], pipelineExecutionId=result["pipelineExecutionId"]
    )["pipelineExecution"]
    assert execution["variables"] == [{"name": variable["Name"], "resolvedValue": arn}]

    # Every deploy action reads exactly that variable.
    references = set()
    for stage in pipeline["Stages"]:
        for action in stage["Actions"]:
            variables = json.loads(action.get("Configuration", {}).get("EnvironmentVariables", "[]"))
            references |= {v["value"] for v in variables if v["name"] == "MODEL_PACKAGE_ARN"}
    assert references == {f"#{{variables.{variable['Name']}}}"}
    assert re.fullmatch(rf"arn:aws:sagemaker:[a-z0-9-]+:\d{{12}}:model-package/{group}/7", arn)

    # The same approval delivered again starts nothing more.
    again = handler.handle_event(event, config=function_config, clients=clients)
    assert again == result
    runs = codepipeline.list_pipeline_executions(pipelineName=pipeline["Name"])["pipelineExecutionSummaries"]
    assert len(runs) == 1


def test_rejecting_the_version_production_serves_alerts_through_the_synthesized_wiring(
    synthesized: Synthesized, platform_config: PlatformConfig, aws: Aws
) -> None:
    """The function, configured as the Operations stack configures it, finds the version where release.py records it."""
    config = platform_config.stage(STAGE)
    environment = _approval_environment(synthesized)
    environment.update(NOTIFICATION_TOPIC_ARN=TOPIC_ARN, IDEMPOTENCY_TABLE=TABLE)
    function_config = handler.load_config(environment)
    group = naming.model_package_group(config)
    arn = function_config.versions.arn(7)
    ssm = aws.client("ssm")
    for target in ("staging", "production"):
        # What release.py writes when a target serves a version (stacks/release.py).
        ssm.put_parameter(
            Name=naming.deployed_version_parameter(config, target),
            Value=arn if target == "production" else "none",
            Type="String",
            Overwrite=True,
        )
    event = state_change_event("Rejected", group=group, version=7, description="bias found")
    event["detail"]["ModelPackageArn"] = arn
    clients = handler.Clients(codepipeline=None, sns=aws.sns, dynamodb=aws.dynamodb, ssm=ssm, sagemaker=None)

    result = handler.handle_event(event, config=function_config, clients=clients)

    assert result["serving"] == ["production"]
    (message,) = aws.published()
    assert message["Subject"] == f"Model {group} v7 rejected while it serves production"
