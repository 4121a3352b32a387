"""What the MLPlatform stack promises: the deployed pipeline is the one the definition function builds, locked down."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from pipelines_src.definition import TRACKED_STEPS, list_placeholders
from resolver.config import PlatformConfig
from stacks.constructs.model_build import asset_uri
from tests.conftest import ROOT, Synthesized, exported_value

STAGES = ["dev", "staging", "prod"]


def _pipeline(
    synthesized: Synthesized, stage: str, suffix: str = "build"
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(properties, parsed definition, Fn::Sub variables) of the stage's model-build or drift-check pipeline."""
    pipelines = synthesized.template(stage, "ml_platform").find_resources(
        "AWS::SageMaker::Pipeline", {"Properties": {"PipelineName": f"mlops-{stage}-delivery-time-{suffix}"}}
    )
    (pipeline,) = pipelines.values()
    body, variables = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    return pipeline["Properties"], json.loads(body), variables


def _steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from _steps(step["Arguments"].get("IfSteps", []))
            yield from _steps(step["Arguments"].get("ElseSteps", []))


def _by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in _steps(definition["Steps"])}


@pytest.mark.parametrize("stage", STAGES)
def test_the_deployed_definition_is_the_one_the_definition_function_builds(
    synthesized: Synthesized, stage: str
) -> None:
    model_build = synthesized.stages[stage].ml_platform.model_build
    _, definition, variables = _pipeline(synthesized, stage)
    assert definition == json.loads(model_build.definition)
    # Fn::Sub gets a value for every placeholder the definition uses, and for nothing else
    assert set(variables) == set(list_placeholders(model_build.definition))


@pytest.mark.parametrize("stage", STAGES)
def test_step_graph_validates_before_training_and_registers_only_past_the_threshold(
    synthesized: Synthesized, stage: str
) -> None:
    _, definition, _ = _pipeline(synthesized, stage)
    assert [step["Name"] for step in definition["Steps"]] == ["ValidateData", "CheckDataContract", "CheckMetric"]
    steps = _by_name(definition)
    kinds = {name: step["Type"] for name, step in steps.items()}
    assert kinds == {
        "ValidateData": "Processing",
        "CheckDataContract": "Condition",
        "Preprocess": "Processing",
        "Train": "Training",
        "Evaluate": "Processing",
        "CheckMetric": "Condition",
        "RegisterModel": "RegisterModel",
        "MetricNotMet": "Fail",
        "DataContractViolated": "Fail",
    }
    branches = {
        name: ([s["Name"] for s in step["Arguments"]["IfSteps"]], [s["Name"] for s in step["Arguments"]["ElseSteps"]])
        for name, step in steps.items()
        if step["Type"] == "Condition"
    }
    assert branches["CheckDataContract"][1] == ["DataContractViolated"]
    assert "Preprocess" in branches["CheckDataContract"][0]
    assert branches["CheckMetric"] == (["RegisterModel"], ["MetricNotMet"])


@pytest.mark.parametrize("stage", STAGES)
def test_parameters_default_to_the_stage_config(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    model = platform_config.stage(stage).model
    _, definition, variables = _pipeline(synthesized, stage)
    ml_platform = synthesized.stages[stage].ml_platform
    build = ml_platform.model_build
    defaults = {parameter["Name"]: parameter.get("DefaultValue") for parameter in definition["Parameters"]}
    assert defaults == {
        "InputDataUri": "${InputDataUri}",
        "ProcessingInstanceType": model.processing_instance_type,
        "TrainingInstanceType": model.training_instance_type,
        "MetricThreshold": model.threshold,
        # the code deployed with the definition: the stack's assets (CI passes the pushed code instead)
        **{
            name: asset_uri(ml_platform, asset)
            for name, asset in (
                ("RunnerUri", build.runner),
                ("SourceTarUri", build.source),
                ("ContractUri", build.contract),
            )
        },
        # no champion until a caller resolves one: the deployed runner, an object that exists (definition.py)
        "ChampionModelData": asset_uri(ml_platform, build.runner),
        # the commit CI trains (pipelines_src/cicd.py); nothing passed: unknown
        "GitCommit": "unknown",
    }
    # the input default is the dataset's prefix of the curated zone: what the curation job wrote
    joined = variables["InputDataUri"]["Fn::Join"][1]
    assert joined[0] == "s3://" and joined[-1] == f"/{model.dataset}/"
    lake_stack = synthesized.stages[stage].data_lake
    curated = lake_stack.resolve(lake_stack.storage.curated.bucket_name)
    raw = lake_stack.resolve(lake_stack.storage.raw.bucket_name)
    assert exported_value(synthesized.template(stage, "data_lake").to_json(), joined[1]) == curated != raw


@pytest.mark.parametrize("stage", STAGES)
def test_conditions_check_the_contract_report_and_the_configured_metric(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    model = platform_config.stage(stage).model
    steps = _by_name(_pipeline(synthesized, stage)[1])
    (contract,) = steps["CheckDataContract"]["Arguments"]["Conditions"]
    assert contract["Type"] == "Equals"
    assert contract["LeftValue"]["Std:JsonGet"]["Path"] == "violation_count"
    assert contract["RightValue"] == 0
    metric, champion = steps["CheckMetric"]["Arguments"]["Conditions"]
    assert champion["Type"] == "Equals" and champion["RightValue"] is True
    assert champion["LeftValue"]["Std:JsonGet"]["Path"] == "gate.not_worse"
    assert metric["Type"] == ("LessThanOrEqualTo" if model.goal == "minimize" else "GreaterThanOrEqualTo")
    assert metric["LeftValue"]["Std:JsonGet"]["Path"] == f"regression_metrics.{model.metric}.value"
    assert metric["LeftValue"]["Std:JsonGet"]["PropertyFile"] == {
        "Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"
    }
    assert metric["RightValue"] == {"Get": "Parameters.MetricThreshold"}
    arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--champion-margin") + 1] == repr(model.champion_margin)
    assert arguments[arguments.index("--goal") + 1] == model.goal
    assert steps["RegisterModel"]["Arguments"]["ModelApprovalStatus"] == "PendingManualApproval"


@pytest.mark.parametrize("stage", STAGES)
def test_every_job_runs_isolated_in_the_platform_subnets_with_the_lake_key(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    platform = synthesized.stages[stage]
    _, definition, variables = _pipeline(synthesized, stage)
    subnets = [f"${{Subnet{index}}}" for index in range(platform_config.stage(stage).network.az_count)]
    stack = platform.ml_platform
    lake = platform.data_lake
    key = exported_value(synthesized.template(stage, "data_lake").to_json(), variables["KmsKeyArn"])
    assert key == lake.resolve(lake.storage.key.key_arn)
    assert variables["JobsSecurityGroup"] == stack.resolve(stack.jobs_security_group.security_group_id)
    jobs = [step for step in _by_name(definition).values() if step["Type"] in ("Processing", "Training")]
    assert len(jobs) == 4
    for job in jobs:
        arguments = job["Arguments"]
        if job["Type"] == "Processing":
            network = arguments["NetworkConfig"]
            vpc, isolated = network["VpcConfig"], network["EnableNetworkIsolation"]
            assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
            assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == "${KmsKeyArn}"
        else:
            vpc, isolated = arguments["VpcConfig"], arguments["EnableNetworkIsolation"]
            assert arguments["ResourceConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
            assert arguments["OutputDataConfig"]["KmsKeyId"] == "${KmsKeyArn}"
        assert vpc == {"Subnets": subnets, "SecurityGroupIds": ["${JobsSecurityGroup}"]}, job["Name"]
        # with tracking on, the steps that log to the stage's MLflow App need the network (TRACKED_STEPS)
        tracked = platform_config.stage(stage).tracking.managed and job["Name"] in TRACKED_STEPS
        assert isolated is not tracked, job["Name"]
        assert arguments["RoleArn"] == "${RoleArn}"


@pytest.mark.parametrize(
    ("stage", "deletion"), [("dev", "Delete"), ("staging", "RetainExceptOnCreate"), ("prod", "RetainExceptOnCreate")]
)
def test_model_package_group_is_named_for_the_stage_and_retained_where_the_stage_keeps_data(
    synthesized: Synthesized, stage: str, deletion: str
) -> None:
    """A stage that keeps data keeps the group's versions, in a form a redeployment can import (ModelRegistry)."""
    template = synthesized.template(stage, "ml_platform")
    (group,) = template.find_resources("AWS::SageMaker::ModelPackageGroup").values()
    assert group["Properties"]["ModelPackageGroupName"] == f"mlops-{stage}-delivery-time"
    assert group["DeletionPolicy"] == deletion
    assert group["UpdateReplacePolicy"] == ("Delete" if deletion == "Delete" else "Retain")


def _role_statements(synthesized: Synthesized, stage: str, role: str = "execution") -> list[dict[str, Any]]:
    stack = synthesized.stages[stage].ml_platform
    template = synthesized.template(stage, "ml_platform")
    role_id = stack.get_logical_id(getattr(stack, role).role.node.default_child)
    (policy,) = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}).values()
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _object_part(resource: Any) -> str | None:
    """'/key-or-pattern' of an S3 object ARN (literal, or joined from a bucket reference), else None."""
    if isinstance(resource, str) and resource.startswith("arn:aws:s3:::") and "/" in resource:
        return "/" + resource.split("/", 1)[1]
    if isinstance(resource, dict) and "Fn::Join" in resource:
        tail = resource["Fn::Join"][1][-1]
        if isinstance(tail, str) and tail.startswith("/"):
            return tail
    return None


@pytest.mark.parametrize("stage", STAGES)
def test_execution_role_uses_star_only_where_iam_has_no_resource_level(synthesized: Synthesized, stage: str) -> None:
    allowed_star = {
        "JobNetworkInterfacesInThePlatformVpc",
        "DescribeNetwork",
        "JobMetrics",
        "EcrLogin",
    }
    for statement in _role_statements(synthesized, stage):
        if statement["Effect"] == "Allow" and "*" in _list(statement["Resource"]):
            assert statement.get("Sid") in allowed_star, statement
    by_sid = {statement.get("Sid"): statement for statement in _role_statements(synthesized, stage)}
    assert "ec2:Vpc" in by_sid["JobNetworkInterfacesInThePlatformVpc"]["Condition"]["ArnEquals"]
    assert by_sid["JobMetrics"]["Condition"] == {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}}
    assert by_sid["PassOnlyItselfToSageMaker"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


PENDING_ONLY = {"StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}


def _policy_statements(synthesized: Synthesized) -> Iterator[tuple[str, dict[str, Any]]]:
    """(template file and resource, statement) of every identity policy in every synthesized stack of every stage."""
    templates = sorted(synthesized.outdir.rglob("*.template.json"))
    assert len(templates) >= 3 * len(STAGES)
    for path in templates:
        for name, resource in json.loads(path.read_text()).get("Resources", {}).items():
            documents = []
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                documents.append(resource["Properties"]["PolicyDocument"])
            if resource["Type"] == "AWS::IAM::Role":
                documents += [policy["PolicyDocument"] for policy in resource["Properties"].get("Policies", [])]
                managed = [json.dumps(arn) for arn in resource["Properties"].get("ManagedPolicyArns", [])]
                assert not [arn for arn in managed if "SageMaker" in arn], (path.name, name, managed)
            for document in documents:
                for statement in _list(document["Statement"]):
                    yield f"{path.name}:{name}", statement


def _grants(statement: dict[str, Any], action: str) -> bool:
    return statement["Effect"] == "Allow" and any(
        fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in _list(statement["Action"])
    )


def test_no_role_of_the_platform_can_register_or_set_a_version_as_approved(synthesized: Synthesized) -> None:
    registering = []
    for where, statement in _policy_statements(synthesized):
        assert not _grants(statement, "sagemaker:UpdateModelPackage"), (where, statement)
        if _grants(statement, "sagemaker:CreateModelPackage"):
            assert statement.get("Condition") == PENDING_ONLY, (where, statement)
            registering.append(where)
    # the model-build pipeline's execution role of each stage registers, and nothing else does
    assert len(registering) == len(STAGES), registering


@pytest.mark.parametrize("stage", STAGES)
def test_execution_role_is_denied_approving_versions_whatever_else_it_is_granted(
    synthesized: Synthesized, stage: str
) -> None:
    denied = {
        action: statement
        for statement in _role_statements(synthesized, stage)
        if statement["Effect"] == "Deny"
        for action in _list(statement["Action"])
    }
    assert denied["sagemaker:CreateModelPackage"]["Resource"] == "*"
    assert denied["sagemaker:CreateModelPackage"]["Condition"] == {
        "StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
    }
    assert denied["sagemaker:UpdateModelPackage"]["Resource"] == "*"
    assert "Condition" not in denied["sagemaker:UpdateModelPackage"]


@pytest.mark.parametrize("stage", STAGES)
def test_execution_role_reaches_only_the_dataset_and_pipeline_prefixes(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    dataset = platform_config.stage(stage).model.dataset
    object_resources = []
    for statement in _role_statements(synthesized, stage):
        for resource in _list(statement["Resource"]):
            tail = _object_part(resource)
            if tail:
                object_resources.append((tuple(_list(statement["Action"])), tail))
    model_build = synthesized.stages[stage].ml_platform.model_build
    code_objects = {
        f"/{asset.asset_hash}{suffix}"
        for asset, suffix in ((model_build.source, ".gz"), (model_build.runner, ".sh"), (model_build.contract, ".json"))
    }
    tails = {tail for _, tail in object_resources}
    # With tracking, the MLflow client writes run artifacts under the App's prefix (stacks/constructs/tracking.py).
    tracked = {"/mlflow/*"} if platform_config.stage(stage).tracking.managed else set()
    # The step code: the stack's assets, and what CI's train stage uploads under code/ (read only).
    assert tails == {
        f"/{dataset}/*",
        f"/model-build/mlops-{stage}-delivery-time-build/*",
        "/code/*",
        *code_objects,
        *tracked,
    }
    writes = {tail for actions, tail in object_resources if "s3:PutObject" in actions}
    assert writes == {f"/model-build/mlops-{stage}-delivery-time-build/*", *tracked}, "the pipeline and run prefixes"
    for actions, _ in object_resources:
        assert not any(action.startswith("s3:Delete") for action in actions)


def test_step_code_ships_as_content_addressed_assets(synthesized: Synthesized) -> None:
    hashes = {
        stage: {
            name: getattr(synthesized.stages[stage].ml_platform.model_build, name).asset_hash
            for name in ("source", "runner", "contract")
        }
        for stage in STAGES
    }
    assert hashes["dev"] == hashes["staging"] == hashes["prod"], "the same code gives the same assets"
    settings = synthesized.stages["dev"].ml_platform.model_build.settings
    assert settings.source_tar_uri.endswith(f"/{hashes['dev']['source']}.gz")
    assert settings.runner_uri.endswith(f"/{hashes['dev']['runner']}.sh")


@pytest.mark.parametrize("stage", STAGES)
def test_jobs_security_group_allows_https_out_and_its_own_members_only(synthesized: Synthesized, stage: str) -> None:
    template = synthesized.template(stage, "ml_platform")
    (group_id, group), *others = template.find_resources("AWS::EC2::SecurityGroup").items()
    assert not others
    # No 0.0.0.0/0: HTTPS to the interface endpoints' group and S3's prefix list, all TCP to its own members.
    assert "SecurityGroupEgress" not in group["Properties"]
    egress = [rule["Properties"] for rule in template.find_resources("AWS::EC2::SecurityGroupEgress").values()]
    itself = {"Fn::GetAtt": [group_id, "GroupId"]}
    (to_s3,) = [rule for rule in egress if "DestinationPrefixListId" in rule]
    (to_members,) = [rule for rule in egress if rule.get("DestinationSecurityGroupId") == itself]
    to_endpoints = [rule for rule in egress if rule not in (to_s3, to_members)]
    # To the interface endpoints only where the stage has some (dev has none: network.interface_endpoints []).
    assert len(to_endpoints) == (1 if synthesized.stages[stage].network.network.interface_endpoints else 0)
    for rule in to_endpoints:
        assert "EndpointSecurityGroup" in json.dumps(rule["DestinationSecurityGroupId"])
        assert (rule["FromPort"], rule["ToPort"]) == (443, 443)
    assert (to_s3["FromPort"], to_s3["ToPort"]) == (443, 443)
    assert (to_members["FromPort"], to_members["ToPort"]) == (0, 65535)
    assert "SecurityGroupIngress" not in group["Properties"]
    (ingress,) = template.find_resources("AWS::EC2::SecurityGroupIngress").values()
    assert ingress["Properties"]["SourceSecurityGroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}


@pytest.mark.parametrize("stage", STAGES)
def test_the_deployed_drift_check_is_the_one_its_definition_function_builds_from_the_stage_config(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    drift_check = synthesized.stages[stage].ml_platform.drift_check
    drift = platform_config.stage(stage).operations.drift
    _, definition, variables = _pipeline(synthesized, stage, "drift-check")
    assert definition == json.loads(drift_check.definition)
    assert set(variables) == set(list_placeholders(drift_check.definition))
    parameters = {parameter["Name"]: parameter.get("DefaultValue") for parameter in definition["Parameters"]}
    assert parameters["InputFormat"] == drift.input
    assert parameters["WindowHours"] == drift.window_hours
    assert parameters["ProcessingInstanceType"] == drift.instance_type
    assert parameters["BaselineUri"] == "${BaselineUri}" and parameters["DataUri"] == "${DataUri}"
    (step,) = definition["Steps"]
    arguments = step["Arguments"]
    container = arguments["AppSpecification"]["ContainerArguments"]
    assert container[container.index("--psi-threshold") + 1] == str(drift.psi_threshold)
    assert ["--metrics", "--model", "delivery-time", "--stage", stage] == container[container.index("--metrics") :][:5]
    # It writes its metrics to S3 and calls nothing: network-isolated, in the VPC, with the lake key.
    assert arguments["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert arguments["NetworkConfig"]["VpcConfig"]["SecurityGroupIds"] == ["${JobsSecurityGroup}"]
    assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
    # The same step code as the model-build pipeline: one set of assets.
    model_build = synthesized.stages[stage].ml_platform.model_build
    assert drift_check.settings.source_tar_uri == model_build.settings.source_tar_uri


@pytest.mark.parametrize("stage", STAGES)
def test_drift_role_reads_capture_dataset_and_deployed_baseline_writes_only_its_reports(
    synthesized: Synthesized, stage: str
) -> None:
    statements = _role_statements(synthesized, stage, "drift_execution")
    object_resources = [
        (tuple(_list(statement["Action"])), tail)
        for statement in statements
        for resource in _list(statement["Resource"])
        if (tail := _object_part(resource))
    ]
    tails = {tail for _, tail in object_resources}
    pipeline = f"mlops-{stage}-delivery-time-drift-check"
    assert {"/datacapture/*", "/delivery_time/*", f"/deployed/mlops-{stage}-delivery-time/baseline/*"} <= tails
    writes = {tail for actions, tail in object_resources if "s3:PutObject" in actions}
    assert writes == {f"/drift-check/{pipeline}/*"}
    by_sid = {statement.get("Sid"): statement for statement in statements}
    assert "RegisterModelVersions" not in by_sid
    # SageMaker's own job metrics only: the job cannot call CloudWatch, its drift metrics leave as a file.
    assert by_sid["JobMetrics"]["Condition"] == {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}}


# --- SageMaker jobs may start only in the platform's network, encrypted with its key -------------------

JOB_ROLES = {"execution": "build", "drift_execution": "drift-check", "quality_execution": "quality-check"}


def _create_job_statements(synthesized: Synthesized, stage: str, role: str) -> list[dict[str, Any]]:
    return [
        statement
        for statement in _role_statements(synthesized, stage, role)
        if _grants(statement, "sagemaker:CreateProcessingJob") or _grants(statement, "sagemaker:CreateTrainingJob")
    ]


def _job_request(step: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """The condition keys a step's Create*Job request carries (absent keys left out), placeholders resolved."""

    def value(item: Any) -> Any:
        if isinstance(item, list):
            return [value(element) for element in item]
        if isinstance(item, str) and item.startswith("${") and item.endswith("}"):
            return variables[item[2:-1]]
        return item

    arguments = step["Arguments"]
    if step["Type"] == "Processing":
        network = arguments.get("NetworkConfig", {})
        vpc = network.get("VpcConfig", {})
        fields = {
            "sagemaker:VolumeKmsKey": arguments["ProcessingResources"]["ClusterConfig"].get("VolumeKmsKeyId"),
            "sagemaker:OutputKmsKey": arguments.get("ProcessingOutputConfig", {}).get("KmsKeyId"),
            "sagemaker:NetworkIsolation": network.get("EnableNetworkIsolation"),
            "sagemaker:InterContainerTrafficEncryption": network.get("EnableInterContainerTrafficEncryption"),
        }
    else:
        vpc = arguments.get("VpcConfig", {})
        fields = {
            "sagemaker:VolumeKmsKey": arguments["ResourceConfig"].get("VolumeKmsKeyId"),
            "sagemaker:OutputKmsKey": arguments["OutputDataConfig"].get("KmsKeyId"),
            "sagemaker:NetworkIsolation": arguments.get("EnableNetworkIsolation"),
            "sagemaker:InterContainerTrafficEncryption": arguments.get("EnableInterContainerTrafficEncryption"),
        }
    fields["sagemaker:VpcSubnets"] = vpc.get("Subnets")
    fields["sagemaker:VpcSecurityGroupIds"] = vpc.get("SecurityGroupIds")
    return {key: value(item) for key, item in fields.items() if item is not None}


def _conditions_hold(conditions: dict[str, dict[str, Any]], request: dict[str, Any]) -> bool:
    """IAM's semantics for the operators these statements use (IAM JSON policy reference, condition operators):
    Null false = the key is present; ForAllValues on an absent key holds (vacuously); ArnEquals and Bool on an
    absent key do not hold."""
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            present = key in request
            if operator == "Null":
                ok = present == (expected == "false")
            elif operator == "ForAllValues:StringEquals":
                ok = not present or all(item in _list(expected) for item in request[key])
            elif operator == "ArnEquals":
                ok = present and request[key] in _list(expected)
            elif operator == "Bool":
                ok = present and str(request[key]).lower() == expected
            else:
                raise AssertionError(f"operator {operator} not modelled")
            if not ok:
                return False
    return True


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("role", sorted(JOB_ROLES))
def test_jobs_may_start_only_in_the_platform_network_with_its_key_and_never_without_the_keys(
    synthesized: Synthesized, stage: str, role: str
) -> None:
    stack = synthesized.stages[stage].ml_platform
    network = synthesized.stages[stage].network.network
    key = synthesized.stages[stage].data_lake.storage.key
    (statement,) = _create_job_statements(synthesized, stage, role)
    assert sorted(_list(statement["Action"])) == ["sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob"]
    conditions = statement["Condition"]
    for name in ("sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds", "sagemaker:VolumeKmsKey"):
        assert conditions["Null"][name] == "false", name
    assert conditions["Null"]["sagemaker:OutputKmsKey"] == "false"
    assert conditions["ForAllValues:StringEquals"] == {
        "sagemaker:VpcSubnets": [stack.resolve(subnet) for subnet in network.workload_subnet_ids],
        "sagemaker:VpcSecurityGroupIds": [stack.resolve(stack.jobs_security_group.security_group_id)],
    }
    key_arn = stack.resolve(key.key_arn)
    assert conditions["ArnEquals"] == {"sagemaker:VolumeKmsKey": key_arn, "sagemaker:OutputKmsKey": key_arn}
    assert conditions["Bool"]["sagemaker:InterContainerTrafficEncryption"] == "true"
    # The drift and quality jobs call no AWS API, and without tracking neither do the model-build steps: every
    # job of theirs must be isolated. The steps that log to the stage's MLflow App need the network
    # (TRACKED_BUILD_STEPS).
    isolated = role in ("drift_execution", "quality_execution") or not synthesized.stages[stage].config.tracking.managed
    assert conditions["Bool"].get("sagemaker:NetworkIsolation") == ("true" if isolated else None)
    # Describe/Stop support none of these keys: no other statement may create jobs.
    for other in _role_statements(synthesized, stage, role):
        if other != statement:
            assert not _grants(other, "sagemaker:CreateProcessingJob"), other
            assert not _grants(other, "sagemaker:CreateTrainingJob"), other


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("role", sorted(JOB_ROLES))
def test_every_deployed_job_satisfies_the_conditions_and_a_job_without_them_is_refused(
    synthesized: Synthesized, stage: str, role: str
) -> None:
    (statement,) = _create_job_statements(synthesized, stage, role)
    conditions = statement["Condition"]
    _, definition, variables = _pipeline(synthesized, stage, JOB_ROLES[role])
    jobs = [step for step in _by_name(definition).values() if step["Type"] in ("Processing", "Training")]
    assert jobs
    for job in jobs:
        request = _job_request(job, variables)
        assert _conditions_hold(conditions, request), (job["Name"], request)
        # What a pushed definition could try instead: each is refused.
        for missing in ("sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds", "sagemaker:VolumeKmsKey"):
            assert not _conditions_hold(conditions, {k: v for k, v in request.items() if k != missing}), missing
        assert not _conditions_hold(conditions, {**request, "sagemaker:VpcSubnets": ["subnet-0attacker"]})
        assert not _conditions_hold(conditions, {**request, "sagemaker:OutputKmsKey": "arn:aws:kms:::key/other"})
        assert not _conditions_hold(conditions, {**request, "sagemaker:InterContainerTrafficEncryption": False})
        if role == "execution" and not synthesized.stages[stage].config.tracking.managed:
            assert not _conditions_hold(conditions, {**request, "sagemaker:NetworkIsolation": False})


# --- ECR: only AWS's image repositories of the stage's region -------------------------------------------


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2", "sa-east-1"])
def test_image_repositories_are_the_ones_the_sdk_retrieves_for_the_region(region: str) -> None:
    from sagemaker.core import image_uris  # type: ignore[import-untyped]

    from stacks.constructs.sagemaker_access import framework_image_repositories

    uris = [
        image_uris.retrieve("sklearn", region=region, version="1.2-1", py_version="py3", image_scope="training"),
        image_uris.retrieve("xgboost", region=region, version="3.0-5", py_version="py3", image_scope="training"),
        image_uris.retrieve("xgboost", region=region, version="3.0-5", py_version="py3", image_scope="inference"),
        image_uris.retrieve("model-monitor", region=region),
    ]
    expected = set()
    for uri in uris:
        registry, _, rest = uri.partition("/")
        account, _, host = registry.partition(".dkr.ecr.")
        assert host.startswith(f"{region}.")
        expected.add((account, rest.split(":")[0]))
    assert set(framework_image_repositories(region)) == expected
    assert len({account for account, _ in expected}) >= 1


def test_reading_the_image_repositories_imports_no_sagemaker_sdk() -> None:
    """The synth of a stage whose definitions come from their cache needs no SDK: its import costs seconds."""
    program = (
        "import json, sys\n"
        "from stacks.constructs.sagemaker_access import framework_image_repositories\n"
        "pairs = framework_image_repositories('eu-west-1')\n"
        "sdk = sorted(m for m in sys.modules if m == 'sagemaker' or m.startswith('sagemaker.'))\n"
        "print(json.dumps({'pairs': pairs, 'sdk': sdk}))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True)
    answer = json.loads(result.stdout)
    assert answer["sdk"] == []
    assert len(answer["pairs"]) >= 3


def test_a_region_without_the_images_fails_synth_with_its_name() -> None:
    from stacks.constructs.sagemaker_access import framework_image_repositories

    with pytest.raises(ValueError, match=r"region xx-nowhere-1 has no SageMaker sklearn 1\.2-1 image"):
        framework_image_repositories("xx-nowhere-1")


@pytest.mark.parametrize("stage", STAGES)
def test_roles_pull_images_only_from_the_aws_image_accounts_of_the_stage_region(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    from stacks.constructs.sagemaker_access import framework_image_repositories

    region = platform_config.stage(stage).region
    expected = sorted(
        f"arn:aws:ecr:{region}:{account}:repository/{repository}"
        for account, repository in framework_image_repositories(region)
    )
    pulls = 0
    for where, statement in _policy_statements(synthesized):
        if not where.replace("-", "").startswith(f"mlops{stage}"):
            continue
        if _grants(statement, "ecr:BatchGetImage"):
            resources = [
                "".join(part if isinstance(part, str) else "aws" for part in r["Fn::Join"][1])
                if isinstance(r, dict)
                else r
                for r in _list(statement["Resource"])
            ]
            assert sorted(resources) == expected, where
            pulls += 1
    assert pulls >= 3  # the model-build, drift-check and endpoint roles at least
