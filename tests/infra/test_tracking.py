"""Experiment tracking in AWS: the stage's MLflow App, its artifact store, its network path and who may use it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from resolver import naming
from resolver.config import ConfigError, PlatformConfig, load_config
from stacks.network_needs import TRACKED_BUILD_STEPS, endpoint_service, interface_endpoints, stage_workloads
from tests.conftest import Synthesized

TRACKED = ["staging", "prod"]
ALL_STAGES = ["dev", "staging", "prod"]
APP = "AWS::SageMaker::MlflowApp"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policies_of(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def _by_sid(statements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in statements if "Sid" in statement}


# --- the resource ---------------------------------------------------------------------------------------


def test_the_shipped_stages_track_in_staging_and_prod_and_dev_stays_at_its_idle_cost(
    platform_config: PlatformConfig,
) -> None:
    assert platform_config.stage("dev").tracking.mode == "none"
    for stage in TRACKED:
        assert platform_config.stage(stage).tracking.managed
    assert TRACKED_BUILD_STEPS not in stage_workloads(platform_config.stage("dev"))


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_a_tracked_stage_has_one_mlflow_app_over_its_artifacts_prefix_and_registers_nothing(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    platform = synthesized.stages[stage]
    ml = platform.ml_platform
    apps = synthesized.template(stage, "ml_platform").find_resources(APP)
    if not config.tracking.managed:
        assert apps == {} and ml.tracking is None
        return
    assert ml.tracking is not None
    ((_, app),) = apps.items()
    properties = app["Properties"]
    # mlops-<stage>-tracking-<first group of the stack id>: new with each creation of the stack, so an App a destroy
    # retained never blocks the next deployment (tests/infra/test_data_lake.py, "nothing left behind").
    separator, (prefix, suffix) = properties["Name"]["Fn::Join"]
    assert separator == "-" and prefix == naming.tracking_app(config) == f"mlops-{stage}-tracking"
    assert suffix == {
        "Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]}]
    }
    # Versions enter the SageMaker model registry only through the pipeline, as PendingManualApproval.
    assert properties["ModelRegistrationMode"] == "AutoModelRegistrationDisabled"
    assert properties["RoleArn"] == ml.resolve(ml.tracking.service_role.role_arn)
    # The artifacts bucket of the lake (SSE-KMS with the lake key), under the App's own prefix.
    store = properties["ArtifactStoreUri"]["Fn::Join"][1]
    assert store[0] == "s3://" and store[-1] == f"/{naming.TRACKING_ARTIFACTS_PREFIX}/"
    lake = platform.data_lake
    lake_template = synthesized.template(stage, "data_lake").to_json()
    (export,) = [
        output["Value"]
        for output in lake_template["Outputs"].values()
        if output.get("Export", {}).get("Name") == store[1]["Fn::ImportValue"]
    ]
    assert export == lake.resolve(lake.storage.artifacts.bucket_name)
    # Its experiments are the model's history where the stage keeps its data.
    assert app["DeletionPolicy"] == ("Retain" if config.retain_data else "Delete")
    assert app["DependsOn"], "created after its role's policy"


@pytest.mark.parametrize("stage", TRACKED)
def test_the_apps_role_reaches_only_its_prefix_and_the_lake_key_only_through_s3(
    synthesized: Synthesized, stage: str
) -> None:
    ml = synthesized.stages[stage].ml_platform
    assert ml.tracking is not None
    template = synthesized.template(stage, "ml_platform").to_json()
    role_id = ml.get_logical_id(ml.tracking.service_role.node.default_child)
    role = template["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}
    ]
    account = synthesized.stages[stage].config.account
    assert role["PermissionsBoundary"] == f"arn:aws:iam::{account}:policy/mlops-permissions-boundary"
    statements = _by_sid(_policies_of(template, role_id))
    assert set(statements) == {"ArtifactStore", "ArtifactStoreList", "ArtifactStoreBucket", "ArtifactStoreKey"}
    objects = statements["ArtifactStore"]
    assert sorted(_list(objects["Action"])) == [
        "s3:AbortMultipartUpload",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
    ]
    assert objects["Resource"]["Fn::Join"][1][-1] == "/mlflow/*"
    assert statements["ArtifactStoreList"]["Condition"] == {"StringLike": {"s3:prefix": ["mlflow/*"]}}
    key = statements["ArtifactStoreKey"]
    assert sorted(_list(key["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    lake = synthesized.stages[stage].data_lake.storage
    assert key["Resource"] == ml.resolve(lake.key.key_arn)
    assert key["Condition"]["StringEquals"]["kms:ViaService"] == "s3.us-east-1.amazonaws.com"
    assert key["Condition"]["StringEquals"]["kms:EncryptionContext:aws:s3:arn"] == ml.resolve(lake.artifacts.bucket_arn)


# --- the network path -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_tracked_stages_reach_mlflow_through_its_interface_endpoint_only_from_the_vpc(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    network = synthesized.stages[stage].network
    endpoints = synthesized.template(stage, "network").find_resources(
        "AWS::EC2::VPCEndpoint", {"Properties": {"ServiceName": f"aws.sagemaker.{config.region}.experiments"}}
    )
    if not config.tracking.managed:
        assert endpoints == {}
        return
    assert endpoint_service("sagemaker.experiments") == ("experiments", "aws.sagemaker")
    ((_, endpoint),) = endpoints.items()
    properties = endpoint["Properties"]
    assert properties["VpcEndpointType"] == "Interface" and properties["PrivateDnsEnabled"] is True
    assert properties["SecurityGroupIds"] == [
        network.resolve(network.network.endpoint_security_group.security_group_id)
    ]
    (statement,) = properties["PolicyDocument"]["Statement"]
    assert statement["Condition"]["StringEquals"] == {"aws:PrincipalAccount": network.resolve(network.account)}


def test_a_tracked_stage_whose_endpoint_list_lacks_mlflow_fails_the_synth_in_one_line(
    context: dict[str, Any],
) -> None:
    context["mlops"]["stages"]["dev"]["tracking"] = {"mode": "managed"}
    dev = load_config(context).stage("dev")
    with pytest.raises(ConfigError) as error:
        interface_endpoints(dev)
    assert str(error.value) == (
        'mlops.stages.dev.network.interface_endpoints: lacks "sagemaker.experiments", which the model-build steps '
        "that log to the stage's MLflow App (tracking.mode managed) need(s) from inside the VPC; add it, or remove "
        "the key to derive the endpoints from the workloads"
    )
    context["mlops"]["stages"]["dev"]["network"]["interface_endpoints"] = ["sagemaker.experiments"]
    assert interface_endpoints(load_config(context).stage("dev")) == ("sagemaker.experiments",)


# --- IAM scope ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", TRACKED)
def test_the_pipeline_role_may_call_only_its_stages_app_only_from_the_vpc(synthesized: Synthesized, stage: str) -> None:
    ml = synthesized.stages[stage].ml_platform
    assert ml.tracking is not None
    network = synthesized.stages[stage].network.network
    template = synthesized.template(stage, "ml_platform").to_json()
    role_id = ml.get_logical_id(ml.execution.role.node.default_child)
    statements = _by_sid(_policies_of(template, role_id))
    logging = statements["LogRunsToTheStagesMlflowApp"]
    assert logging["Action"] == "sagemaker:CallMlflowAppApi"
    assert logging["Resource"] == ml.resolve(ml.tracking.app_arn)
    assert logging["Condition"] == {"StringEquals": {"aws:SourceVpc": ml.resolve(network.vpc.vpc_id)}}
    # Run artifacts: read and write under the App's prefix only, the key only through S3 for that bucket.
    assert statements["RunArtifacts"]["Resource"]["Fn::Join"][1][-1] == "/mlflow/*"
    assert "s3:DeleteObject" not in _list(statements["RunArtifacts"]["Action"])
    assert statements["RunArtifactsKey"]["Condition"]["StringEquals"]["kms:ViaService"] == "s3.us-east-1.amazonaws.com"


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_no_role_of_the_stage_may_use_any_mlflow_but_its_own_app(synthesized: Synthesized, stage: str) -> None:
    platform = synthesized.stages[stage]
    ml = platform.ml_platform
    app = ml.resolve(ml.tracking.app_arn) if ml.tracking else None
    callers = set()
    for owner in ("network", "data_lake", "ml_platform", "operations", "cicd"):
        template = synthesized.template(stage, owner).to_json()
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                continue
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = _list(statement["Action"])
                mlflow = [a for a in actions if "mlflow" in a.lower() or a in ("sagemaker:*", "*")]
                if not mlflow or statement["Effect"] != "Allow":
                    continue
                assert not any(a.startswith("sagemaker-mlflow:") for a in mlflow), (owner, logical_id)
                assert _list(statement["Resource"]) == [app], (owner, logical_id, statement)
                callers.add((owner, logical_id))
    assert len(callers) == (1 if app else 0), "only the pipeline's role (no reader is configured)"


# --- the reader role ------------------------------------------------------------------------------------


def _reader_stack(principals: tuple[str, ...]) -> tuple[Any, Any]:
    """The tracking construct alone, in a bounded stage (as every platform stage is), with reader principals."""
    from aws_cdk import App, Environment, PermissionsBoundary, Stack, Stage
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Template

    from stacks.constructs.tracking import ExperimentTracking

    app = App()
    stage = Stage(
        app,
        "mlops-test",
        env=Environment(account="111111111111", region="us-east-1"),
        permissions_boundary=PermissionsBoundary.from_name("mlops-permissions-boundary"),
    )
    stack = Stack(stage, "Tracking")
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Artifacts", encryption_key=key, bucket_key_enabled=True)
    tracking = ExperimentTracking(
        stack,
        "Tracking",
        name="mlops-test-tracking",
        artifacts=bucket,
        artifacts_prefix="mlflow/",
        key=key,
        retain=False,
        reader_role_name="mlops-test-tracking-reader",
        reader_principals=principals,
        values_parameter="/mlops/test/m/platform-values",
    )
    return tracking, Template.from_stack(stack).to_json()


def test_the_reader_role_is_assumed_by_the_configured_roles_only_and_reads_the_artifacts_only() -> None:
    readers = (
        "arn:aws:iam::111111111111:role/data-scientist",
        "arn:aws:iam::333333333333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_DataScience_0123456789abcdef",
    )
    from aws_cdk import Stack

    tracking, template = _reader_stack(readers)
    stack = Stack.of(tracking)
    assert tracking.reader_role is not None
    role_id = stack.get_logical_id(tracking.reader_role.node.default_child)
    role = template["Resources"][role_id]["Properties"]
    assert role["RoleName"] == "mlops-test-tracking-reader"
    assert role["PermissionsBoundary"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::111111111111:policy/mlops-permissions-boundary"]]
    }
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert all(statement["Action"] == "sts:AssumeRole" and statement["Effect"] == "Allow" for statement in trust)
    assert sorted(p for statement in trust for p in _list(statement["Principal"]["AWS"])) == sorted(readers)
    assert all(set(statement["Principal"]) == {"AWS"} for statement in trust), "no service, no account root"
    statements = _by_sid(_policies_of(template, role_id))
    assert set(statements) == {
        "UseTheApp",
        "ReadRunArtifacts",
        "ReadRunArtifactsList",
        "ReadRunArtifactsKey",
        "FindTheApp",
    }
    # The published values name the App: that one parameter, read only.
    assert statements["FindTheApp"]["Action"] == "ssm:GetParameter"
    assert stack.resolve(statements["FindTheApp"]["Resource"]) == {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":ssm:us-east-1:111111111111:parameter/mlops/test/m/platform-values"],
        ]
    }
    app_arn = stack.resolve(tracking.app_arn)
    assert sorted(_list(statements["UseTheApp"]["Action"])) == [
        "sagemaker:CallMlflowAppApi",
        "sagemaker:CreatePresignedMlflowAppUrl",
        "sagemaker:DescribeMlflowApp",
    ]
    assert statements["UseTheApp"]["Resource"] == app_arn
    # Read only: no write of the artifacts, no update or deletion of the App.
    assert statements["ReadRunArtifacts"]["Action"] == "s3:GetObject"
    assert statements["ReadRunArtifactsList"]["Condition"] == {"StringLike": {"s3:prefix": ["mlflow/*"]}}
    assert statements["ReadRunArtifactsKey"]["Action"] == "kms:Decrypt"
    assert set(statements["ReadRunArtifactsKey"]["Condition"]["StringEquals"]) == {
        "kms:ViaService",
        "kms:EncryptionContext:aws:s3:arn",
    }


def test_without_reader_principals_there_is_no_reader_role() -> None:
    tracking, template = _reader_stack(())
    assert tracking.reader_role is None
    roles = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == 1, "the App's own role only"


# --- config errors --------------------------------------------------------------------------------------


def _tracking(context: dict[str, Any], block: Any, stage: str = "staging") -> Any:
    context = copy.deepcopy(context)
    context["mlops"]["stages"][stage]["tracking"] = block
    return load_config(context).stage(stage).tracking


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"mode": "local"}, 'mlops.stages.staging.tracking.mode: "local" is not one of managed, none'),
        ({"mode": "managed", "readers": []}, 'mlops.stages.staging.tracking.readers: unknown key "readers"'),
        (
            {"reader_role_arns": "arn:aws:iam::111111111111:role/ds"},
            "mlops.stages.staging.tracking.reader_role_arns: expected a list of strings, got str "
            "'arn:aws:iam::111111111111:role/ds'",
        ),
        (
            {"reader_role_arns": ["arn:aws:iam::111111111111:role/*"]},
            'mlops.stages.staging.tracking.reader_role_arns[0]: "arn:aws:iam::111111111111:role/*" is not an IAM '
            "role ARN (arn:aws:iam::<12-digit account>:role/<name>, no wildcard)",
        ),
        (
            {"reader_role_arns": ["arn:aws:iam::111111111111:user/alice"]},
            'mlops.stages.staging.tracking.reader_role_arns[0]: "arn:aws:iam::111111111111:user/alice" is not an '
            "IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>, no wildcard)",
        ),
        (
            {"reader_role_arns": ["arn:aws:iam::111111111111:role/ds", "arn:aws:iam::111111111111:role/ds"]},
            "mlops.stages.staging.tracking.reader_role_arns: lists a role twice: "
            "['arn:aws:iam::111111111111:role/ds', 'arn:aws:iam::111111111111:role/ds']",
        ),
        (
            {"mode": "none", "reader_role_arns": ["arn:aws:iam::111111111111:role/ds"]},
            "mlops.stages.staging.tracking.reader_role_arns: 1 reader role(s) but mlops.stages.staging.tracking.mode "
            'is "none": there is no tracking resource to read; set mode "managed" or remove the roles',
        ),
        ("managed", "mlops.stages.staging.tracking: expected an object, got str 'managed'"),
    ],
)
def test_a_bad_tracking_config_fails_with_one_line_naming_the_key(
    context: dict[str, Any], block: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        _tracking(context, block)
    assert str(error.value) == message


def test_tracking_defaults_to_managed_without_readers_and_takes_role_arns_with_paths(context: dict[str, Any]) -> None:
    del context["mlops"]["defaults"]["tracking"]
    del context["mlops"]["stages"]["dev"]["tracking"]
    assert load_config(context).stage("dev").tracking.managed  # absent: the default
    arns = ["arn:aws:iam::111111111111:role/team/ds", "arn:aws-us-gov:iam::222222222222:role/ds"]
    tracking = _tracking(context, {"reader_role_arns": arns})
    assert tracking.managed and tracking.reader_role_arns == tuple(arns)


def test_the_reader_role_raises_no_unacknowledged_cdk_nag_finding() -> None:
    """No stage of cdk.json configures readers, so the stages' cdk-nag check never sees this role: check it here."""
    from aws_cdk import Stack
    from cdk_nag import AwsSolutionsChecks

    tracking, _ = _reader_stack(("arn:aws:iam::111111111111:role/data-scientist",))
    report = AwsSolutionsChecks().validate_scope(Stack.of(tracking))
    ours = [
        f"{violation.rule_name} at {resource.construct_path}"
        for violation in report.violations
        for resource in violation.violating_resources
        if resource.construct_path.startswith(tracking.node.path + "/")
    ]
    assert ours == []
