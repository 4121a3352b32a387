"""What the Endpoint stacks promise: nothing until a version is given; then a private, encrypted, captured,
canary-deployed endpoint that rolls back on its own alarms."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from resolver import naming
from resolver.config import PlatformConfig, load_config
from stacks.endpoint_stack import ALWAYS_PRESENT
from stacks.nag import flatten_reference
from tests.conftest import Synthesized, cdk_json_context, new_app
from tests.model_package_arns import wrong_arns

STAGES = ["dev", "staging", "prod"]
TARGETS = ["staging", "production"]


def _template(synthesized: Synthesized, stage: str, target: str) -> dict[str, Any]:
    from aws_cdk.assertions import Template

    result: dict[str, Any] = Template.from_stack(synthesized.stages[stage].endpoints[target]).to_json()
    return result


def _cloudformation_roles(template: dict[str, Any]) -> list[str]:
    """The logical ids of the roles CloudFormation takes (the release role)."""
    return [
        name
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
        and r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "cloudformation.amazonaws.com"}
    ]


def _one(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (resource,) = [r for r in template["Resources"].values() if r["Type"] == kind]
    return resource


@pytest.fixture(scope="module")
def templates(synthesized: Synthesized) -> dict[tuple[str, str], dict[str, Any]]:
    return {(stage, target): _template(synthesized, stage, target) for stage in STAGES for target in TARGETS}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("target", TARGETS)
def test_without_a_model_version_the_stack_holds_only_its_roles_and_security_groups(
    templates: dict[tuple[str, str], dict[str, Any]], platform_config: PlatformConfig, stage: str, target: str
) -> None:
    template = templates[stage, target]
    # The version is the stack's own parameter: only a release changes it, and CloudFormation refuses anything
    # but none or a version of this stage's group before it changes anything.
    parameter = template["Parameters"]["ModelPackageArn"]
    assert parameter["Type"] == "String" and parameter["Default"] == "none"
    config = platform_config.stage(stage)
    pattern = re.compile(parameter["AllowedPattern"])
    group = f"mlops-{stage}-delivery-time"
    account = config.account or "123456789012"
    assert pattern.fullmatch("none")
    assert pattern.fullmatch(f"arn:aws:sagemaker:{config.region}:{account}:model-package/{group}/12")
    for wrong in wrong_arns(region=config.region, account=account, group=group, version=1):
        arn = wrong.values[0]  # type: ignore[attr-defined]
        if wrong.id in ("other account",) and config.account is None:  # type: ignore[attr-defined]
            continue  # an account the config leaves open is any account's: the release tool checks the caller's
        assert not pattern.fullmatch(arn), wrong.id  # type: ignore[attr-defined]
    for name, resource in template["Resources"].items():
        if resource["Type"] in ALWAYS_PRESENT:
            assert "Condition" not in resource, name
        elif resource["Type"] != "AWS::CDK::Metadata":
            assert resource.get("Condition") == "HasModel", name
    assert template["Conditions"]["HasModel"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ModelPackageArn"}, "none"]}]}


@pytest.mark.parametrize("stage", STAGES)
def test_no_stack_owns_a_copy_of_the_served_version(synthesized: Synthesized, stage: str) -> None:
    """A CloudFormation-managed copy (an SSM parameter created as none) is written back to none by any later
    update of it, and the next Endpoint deployment would then delete the endpoint: the version has one owner."""
    for stack in ("network", "data_lake", "ml_platform", "operations", "cicd"):
        resources = synthesized.template(stage, stack).to_json()["Resources"]
        names = [r["Properties"].get("Name", "") for r in resources.values() if r["Type"] == "AWS::SSM::Parameter"]
        assert not any(name.endswith("/model-package-arn") for name in names), (stack, names)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("target", TARGETS)
def test_the_endpoint_serves_the_given_version_in_the_private_subnets_with_the_lake_key(
    synthesized: Synthesized,
    templates: dict[tuple[str, str], dict[str, Any]],
    platform_config: PlatformConfig,
    stage: str,
    target: str,
) -> None:
    config = platform_config.stage(stage)
    template = templates[stage, target]
    model = _one(template, "AWS::SageMaker::Model")["Properties"]
    assert model["PrimaryContainer"] == {"ModelPackageName": {"Ref": "ModelPackageArn"}}
    assert len(model["VpcConfig"]["Subnets"]) == config.network.az_count
    assert model["EnableNetworkIsolation"] is True, "the container calls nothing"
    (group,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::SecurityGroup"]
    # HTTPS to S3's prefix list and, where the stage has interface endpoints, to their group; nothing else.
    assert "SecurityGroupEgress" not in group and "SecurityGroupIngress" not in group
    egress = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::SecurityGroupEgress"]
    has_endpoints = bool(synthesized.stages[stage].network.network.interface_endpoints)
    assert [(rule["FromPort"], rule["ToPort"]) for rule in egress] == [(443, 443)] * (2 if has_endpoints else 1)
    assert len([rule for rule in egress if "DestinationPrefixListId" in rule]) == 1
    to_groups = [rule for rule in egress if "DestinationSecurityGroupId" in rule]
    assert len(to_groups) == (1 if has_endpoints else 0) and has_endpoints is (stage != "dev")
    for to_group in to_groups:
        assert "EndpointSecurityGroup" in json.dumps(to_group["DestinationSecurityGroupId"])
    endpoint_config = _one(template, "AWS::SageMaker::EndpointConfig")["Properties"]
    lake = synthesized.stages[stage].data_lake
    assert flatten_reference(endpoint_config["KmsKeyId"]).find(lake.stack_name) >= 0
    (variant,) = endpoint_config["ProductionVariants"]
    assert variant["InstanceType"] == config.endpoint.instance_type
    expected_count = config.endpoint.instance_count if target == "production" else 1
    assert variant["InitialInstanceCount"] == expected_count
    endpoint = _one(template, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["EndpointName"] == naming.endpoint(config, target)


@pytest.mark.parametrize("stage", STAGES)
def test_production_captures_inputs_and_outputs_into_the_lake_and_staging_does_not(
    synthesized: Synthesized,
    templates: dict[tuple[str, str], dict[str, Any]],
    platform_config: PlatformConfig,
    stage: str,
) -> None:
    config = platform_config.stage(stage)
    capture = _one(templates[stage, "production"], "AWS::SageMaker::EndpointConfig")["Properties"]["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == config.endpoint.capture_percentage
    assert {option["CaptureMode"] for option in capture["CaptureOptions"]} == {"Input", "Output"}
    # Text, not base64: the drift job reads captured requests as they were sent.
    assert capture["CaptureContentTypeHeader"] == {
        "CsvContentTypes": ["text/csv"],
        "JsonContentTypes": ["application/json"],
    }
    destination = flatten_reference(capture["DestinationS3Uri"])
    assert destination.startswith("s3://") and destination.endswith("/datacapture")
    assert synthesized.stages[stage].data_lake.stack_name in destination  # the raw bucket, from the DataLake stack
    assert (
        capture["KmsKeyId"]
        == _one(templates[stage, "production"], "AWS::SageMaker::EndpointConfig")["Properties"]["KmsKeyId"]
    )
    staging = _one(templates[stage, "staging"], "AWS::SageMaker::EndpointConfig")["Properties"]
    assert "DataCaptureConfig" not in staging


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("target", TARGETS)
def test_a_new_version_rolls_out_as_a_canary_and_rolls_back_on_errors_or_latency(
    templates: dict[tuple[str, str], dict[str, Any]], platform_config: PlatformConfig, stage: str, target: str
) -> None:
    config = platform_config.stage(stage)
    template = templates[stage, target]
    deployment = _one(template, "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]
    policy = deployment["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": config.endpoint.canary_percent},
        "WaitIntervalInSeconds": config.endpoint.canary_wait_minutes * 60,
    }
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    endpoint = naming.endpoint(config, target)
    assert set(alarms) == {f"{endpoint}-5xx", f"{endpoint}-latency"}
    rollback = {alarm["AlarmName"] for alarm in deployment["AutoRollbackConfiguration"]["Alarms"]}
    assert rollback == set(alarms)
    errors, latency = alarms[f"{endpoint}-5xx"], alarms[f"{endpoint}-latency"]
    assert (
        errors["MetricName"] == "Invocation5XXErrors" and errors["Threshold"] == config.endpoint.max_errors_per_minute
    )
    assert latency["MetricName"] == "ModelLatency" and latency["ExtendedStatistic"] == "p99"
    assert latency["Threshold"] == config.endpoint.max_latency_ms * 1000  # microseconds
    for alarm in alarms.values():
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "EndpointName": endpoint,
            "VariantName": "AllTraffic",
        }


@pytest.mark.parametrize("stage", STAGES)
def test_production_scales_on_invocations_per_instance_within_the_configured_bounds(
    templates: dict[tuple[str, str], dict[str, Any]], platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    target = _one(templates[stage, "production"], "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert target["ResourceId"] == f"endpoint/{naming.endpoint(config)}/variant/AllTraffic"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        config.endpoint.instance_count,
        config.endpoint.max_instance_count,
    )
    policy = _one(templates[stage, "production"], "AWS::ApplicationAutoScaling::ScalingPolicy")["Properties"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == config.endpoint.invocations_per_instance
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert not [r for r in templates[stage, "staging"]["Resources"].values() if "AutoScaling" in r["Type"]]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("target", TARGETS)
def test_endpoint_role_reads_model_artifacts_writes_only_capture_and_starts_nothing(
    synthesized: Synthesized,
    templates: dict[tuple[str, str], dict[str, Any]],
    platform_config: PlatformConfig,
    stage: str,
    target: str,
) -> None:
    config = platform_config.stage(stage)
    template = templates[stage, target]
    release_roles = [{"Ref": name} for name in _cloudformation_roles(template)]
    statements = [
        statement
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and not any(role in r["Properties"]["Roles"] for role in release_roles)
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {action for statement in statements for action in _list(statement["Action"])}
    assert not {action for action in actions if action.startswith("sagemaker:Create")}
    assert "iam:PassRole" not in actions
    writes = {
        flatten_reference(resource).split("/", 1)[1]
        for statement in statements
        if "s3:PutObject" in _list(statement["Action"])
        for resource in _list(statement["Resource"])
    }
    expected = {f"datacapture/{naming.endpoint(config, target)}/*"} if target == "production" else set()
    assert writes == expected
    reads = {
        flatten_reference(resource)
        for statement in statements
        if "s3:GetObject*" in _list(statement["Action"])
        for resource in _list(statement["Resource"])
    }
    assert any(read.endswith(f"/model-build/{naming.build_pipeline(config)}/*") for read in reads)
    # Each version's model.tar.gz carries its inference code: no read on the steps tarball the stack ships,
    # which changes with every change of steps/ or inference.py.
    source = synthesized.stages[stage].ml_platform.model_build.source
    assert not [read for read in reads if source.asset_hash in read or read.endswith(".gz")]
    buckets = {read.split("/", 1)[0] for read in reads}
    assert not [bucket for bucket in buckets if "assets" in bucket or "StagingBucket" in bucket], reads
    assert {read.split("/", 1)[1] for read in reads if "/" in read} == {
        f"model-build/{naming.build_pipeline(config)}/*",
        "code/*",
        *expected,
    }


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.slow
def test_a_serverless_stage_has_no_vpc_capture_canary_or_autoscaling() -> None:
    """Serverless endpoints cannot have them (AWS's limits); the config insists drift reads curated data."""
    from aws_cdk.assertions import Template

    from stacks.app import build

    context = copy.deepcopy(cdk_json_context())
    dev = context["mlops"]["stages"]["dev"]
    dev["endpoint"] = {"serverless": {"memory_mb": 2048, "max_concurrency": 5}}
    # No capture, so no quality check either (the config refuses one).
    dev["operations"] = {"drift": {"input": "dataset"}, "quality": {"schedule": None}}
    config = load_config(context)
    app = new_app()
    (stage,) = build(app, config, ["dev"])
    for target in TARGETS:
        template = Template.from_stack(stage.endpoints[target]).to_json()
        (variant,) = _one(template, "AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
        assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
        assert "InstanceType" not in variant
        assert "VpcConfig" not in _one(template, "AWS::SageMaker::Model")["Properties"]
        assert "DataCaptureConfig" not in _one(template, "AWS::SageMaker::EndpointConfig")["Properties"]
        assert "DeploymentConfig" not in _one(template, "AWS::SageMaker::Endpoint")["Properties"]
        assert not [r for r in template["Resources"].values() if "AutoScaling" in r["Type"]]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("target", TARGETS)
def test_a_release_can_change_only_this_endpoint(
    templates: dict[tuple[str, str], dict[str, Any]], platform_config: PlatformConfig, stage: str, target: str
) -> None:
    """The release role bounds what a release does whatever the template asks: no IAM or network change, no other
    endpoint, and models and configurations only when they carry this endpoint's tag."""
    config = platform_config.stage(stage)
    endpoint = naming.endpoint(config, target)
    template = templates[stage, target]
    (role_id,) = _cloudformation_roles(template)
    assert template["Resources"][role_id]["Properties"]["RoleName"] == naming.release_role(config, target)
    statements = [
        statement
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {
        action for s in statements for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert not any("*" in action for action in actions), actions
    assert {a for a in actions if a.startswith("iam:")} == {"iam:PassRole"}
    assert not any(a.startswith(("ec2:", "s3:", "ssm:", "lambda:", "cloudformation:", "sts:")) for a in actions)
    for statement in statements:
        listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        rendered = [flatten_reference(r) for r in resources]
        if "iam:PassRole" in listed:
            assert "iam:PassedToService" in statement["Condition"]["StringEquals"]
        if {"sagemaker:CreateModel", "sagemaker:CreateEndpointConfig"} & set(listed):
            assert statement["Condition"] == {"StringEquals": {"aws:RequestTag/mlops:endpoint": endpoint}}
        if {"sagemaker:DeleteModel", "sagemaker:DeleteEndpointConfig"} & set(listed):
            assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/mlops:endpoint": endpoint}}
        if {"sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint"} & set(listed):
            assert rendered and all(r.endswith(f":endpoint/{endpoint}") for r in rendered), rendered
    tags = [
        r["Properties"].get("Tags", [])
        for r in template["Resources"].values()
        if r["Type"] in ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint")
    ]
    assert tags and all({"Key": "mlops:endpoint", "Value": endpoint} in t for t in tags)
