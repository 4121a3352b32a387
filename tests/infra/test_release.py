"""Releasing a version: the release tool the deploy builds run, with the settings the synthesized builds carry,
against an emulated account holding the target's Endpoint stack as CloudFormation stores it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from endpoint_release import tool
from stacks import release
from stacks.constructs.release_tool import release_tool_dir
from stacks.nag import flatten_reference
from tests.conftest import Synthesized
from tests.model_package_arns import wrong_arns

REGION = "us-east-1"
STAGE = "prod"
# The lake's artifacts bucket in the emulated account (a reference to the DataLake stack when synthesized).
ARTIFACTS = "artifacts"
# Tests whose behaviour differs by target run on both; the checks before any change run on production.
BOTH = pytest.mark.parametrize("account", ["staging", "production"], indirect=True)


def _deploy_settings(synthesized: Synthesized, target: str) -> dict[str, str]:
    """The release settings of the target's deploy build, as synthesized (tokens rendered as their references)."""
    resources = synthesized.template(STAGE, "cicd").to_json()["Resources"]
    (project,) = [
        r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::CodeBuild::Project" and name.startswith(f"Deploy{target}")
    ]
    return {
        variable["Name"]: flatten_reference(variable["Value"])
        for variable in project["Environment"]["EnvironmentVariables"]
        if variable["Name"].startswith("RELEASE_")
    }


@dataclass
class Account:
    settings: tool.Settings
    cloudformation: Any
    sagemaker: Any
    ssm: Any
    s3: Any
    environ: dict[str, str]

    @property
    def group(self) -> str:
        return self.settings.group

    def clients(self, service: str, region: str) -> Any:
        assert region == REGION
        return {"cloudformation": self.cloudformation, "sagemaker": self.sagemaker, "ssm": self.ssm, "s3": self.s3}[
            service
        ]

    def register(self, status: str, group: str | None = None, baseline: str = "a") -> str:
        key = f"model-build/run/baseline-{baseline}.json"
        self.s3.put_object(Bucket=ARTIFACTS, Key=key, Body=json.dumps({"baseline": baseline}).encode())
        uri = f"s3://{ARTIFACTS}/{key}"
        arn: str = self.sagemaker.create_model_package(
            ModelPackageGroupName=group or self.group,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            DriftCheckBaselines={"ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": uri}}},
        )["ModelPackageArn"]
        return arn

    def served(self) -> str:
        return tool.served_version(self.cloudformation.describe_stacks(StackName=self.settings.stack)["Stacks"][0])

    def run(self, arn: str, *extra: str) -> int:
        return tool.main(
            ["--model-package-arn", arn, *extra], environ=self.environ, clients=self.clients, sleep=lambda _: None
        )


def _endpoint_stack_template(synthesized: Synthesized, target: str) -> str:
    """The deployed Endpoint template's parameters and conditions, with one resource that shows the served
    version (moto provisions no SageMaker resources; CloudFormation's own parameter handling is what is used)."""
    endpoint = synthesized.template(STAGE, f"endpoints.{target}").to_json()
    parameters = {key: value for key, value in endpoint["Parameters"].items() if key == tool.VERSION_PARAMETER}
    return json.dumps(
        {
            "Parameters": parameters,
            "Conditions": endpoint["Conditions"],
            "Resources": {
                "Served": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {
                        "Name": f"/served/{target}",
                        "Type": "String",
                        "Value": {"Ref": tool.VERSION_PARAMETER},
                    },
                }
            },
        }
    )


@pytest.fixture(params=["staging", "production"])
def account(
    request: pytest.FixtureRequest, synthesized: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Account]:
    target: str = request.param
    environ = _deploy_settings(synthesized, target)
    if target == "production":
        environ["RELEASE_BASELINE_BUCKET"] = ARTIFACTS
    settings = tool.Settings.from_environment(environ)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", settings.account)
    with mock_aws():
        credentials = {"region_name": REGION, "aws_access_key_id": "t", "aws_secret_access_key": "t"}
        clients = {name: boto3.client(name, **credentials) for name in ("cloudformation", "sagemaker", "ssm", "s3")}
        clients["s3"].create_bucket(Bucket=ARTIFACTS)
        clients["cloudformation"].create_stack(
            StackName=settings.stack, TemplateBody=_endpoint_stack_template(synthesized, target)
        )
        for group in (settings.group, "mlops-staging-delivery-time"):
            clients["sagemaker"].create_model_package_group(ModelPackageGroupName=group)
        yield Account(settings=settings, environ=environ, **clients)


def test_the_deploy_builds_release_settings_name_this_stages_stack_role_and_group(synthesized: Synthesized) -> None:
    config = synthesized.stages[STAGE].config
    for target in ("staging", "production"):
        settings = tool.Settings.from_environment(
            {**_deploy_settings(synthesized, target), "RELEASE_BASELINE_BUCKET": "b"}
            if target == "production"
            else _deploy_settings(synthesized, target)
        )
        assert settings.stack == synthesized.stages[STAGE].endpoints[target].stack_name
        assert settings.account == config.account and settings.region == config.region
        resources = synthesized.template(STAGE, f"endpoints.{target}").to_json()["Resources"]
        (role_name,) = [
            r["Properties"]["RoleName"]
            for r in resources.values()
            if r["Type"] == "AWS::IAM::Role"
            and r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
            == {"Service": "cloudformation.amazonaws.com"}
        ]
        assert settings.role_arn == f"arn:aws:iam::{config.account}:role/{role_name}"
        assert (settings.baseline_prefix is not None) == (target == "production")


@BOTH
def test_a_release_updates_only_the_stacks_version_on_its_deployed_template_under_the_release_role(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = account.register("Approved")
    before = account.cloudformation.get_template(StackName=account.settings.stack)["TemplateBody"]
    assert account.served() == tool.NO_VERSION
    assert account.run(arn) == 0
    assert account.served() == arn
    stack = account.cloudformation.describe_stacks(StackName=account.settings.stack)["Stacks"][0]
    assert stack["RoleARN"] == account.settings.role_arn
    assert account.cloudformation.get_template(StackName=account.settings.stack)["TemplateBody"] == before
    assert account.ssm.get_parameter(Name=account.settings.record)["Parameter"]["Value"] == arn
    assert capsys.readouterr().out == f"release: {account.settings.target} serves {arn} (was none)\n"


@BOTH
def test_releasing_the_served_version_again_changes_nothing(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = account.register("Approved")
    assert account.run(arn) == 0
    events = len(account.cloudformation.describe_stack_events(StackName=account.settings.stack)["StackEvents"])
    assert account.run(arn) == 0
    assert len(account.cloudformation.describe_stack_events(StackName=account.settings.stack)["StackEvents"]) == events
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == f"release: {account.settings.target} already serves {arn} (was {arn})"
    )


@BOTH
def test_production_publishes_the_new_versions_baseline_with_the_release(account: Account) -> None:
    first = account.register("Approved", baseline="first")
    assert account.run(first) == 0
    if account.settings.baseline_prefix is None:
        assert account.s3.list_objects_v2(Bucket=ARTIFACTS, Prefix="deployed/").get("KeyCount", 0) == 0
        return
    key = f"{account.settings.baseline_prefix}baseline.json"
    body = json.loads(account.s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read())
    assert body == {"baseline": "first"}


class _RolledBack:
    """CloudFormation whose update of the stack fails and rolls back (as a failed canary does)."""

    def __init__(self, cloudformation: Any) -> None:
        self._cloudformation = cloudformation
        self.updated = False

    def update_stack(self, **request: Any) -> Any:
        self.updated = True
        return {"StackId": "x"}

    def describe_stacks(self, **request: Any) -> Any:
        answer = self._cloudformation.describe_stacks(**request)
        if self.updated:
            answer["Stacks"][0]["StackStatus"] = "UPDATE_ROLLBACK_COMPLETE"
        return answer

    def describe_stack_events(self, **request: Any) -> Any:
        return {
            "StackEvents": [
                {"LogicalResourceId": "Endpoint", "ResourceStatus": "UPDATE_FAILED", "ResourceStatusReason": "alarm"}
            ]
        }


@BOTH
def test_a_failed_release_leaves_the_previous_version_and_its_baseline_in_place(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    first = account.register("Approved", baseline="first")
    second = account.register("Approved", baseline="second")
    assert account.run(first) == 0
    account.cloudformation = _RolledBack(account.cloudformation)
    assert account.run(second) == 1
    err = capsys.readouterr().err
    assert "UPDATE_ROLLBACK_COMPLETE: Endpoint: alarm" in err and f"serves {first}" in err
    assert account.ssm.get_parameter(Name=account.settings.record)["Parameter"]["Value"] == first
    if account.settings.baseline_prefix is not None:
        key = f"{account.settings.baseline_prefix}baseline.json"
        assert json.loads(account.s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read()) == {"baseline": "first"}


def _refused(account: Account, arn: str, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert account.run(arn, *extra) == 2
    assert account.served() == tool.NO_VERSION
    err = capsys.readouterr().err
    assert err.startswith("release: ") and err.count("\n") == 1, "one line"
    return err


@pytest.mark.parametrize("check_only", [(), ("--check-only",)], ids=["release", "check-only"])
def test_anything_but_exactly_a_version_of_this_stage_is_refused_before_anything_changes(
    account: Account, check_only: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every wrong ARN of the table, against one registry."""
    account.register("Approved")
    settings = account.settings
    for case in wrong_arns(region=settings.region, account=settings.account, group=settings.group, version=1):
        arn = case.values[0]  # type: ignore[attr-defined]
        err = _refused(account, arn, capsys, *check_only)
        assert "not a model package version ARN" in err or "this stage's" in err, (case.id, err)  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_a_version_that_is_not_approved_is_refused(
    account: Account, status: str, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = account.register(status)
    err = _refused(account, arn, capsys)
    assert err == f"release: {arn} is {status}, not Approved: only approved versions deploy\n"


def test_an_approved_version_of_another_group_or_one_the_registry_lacks_is_refused(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    other = account.register("Approved", group="mlops-staging-delivery-time")
    assert "is not a version of this stage's model package group" in _refused(account, other, capsys)
    missing = account.settings.scope.arn(9)
    assert _refused(account, missing, capsys).startswith(f"release: cannot read {missing} from the model registry: ")


def test_check_only_changes_nothing(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    arn = account.register("Approved")
    assert account.run(arn, "--check-only") == 0
    assert capsys.readouterr().out == f"release: {arn} is an approved version of {account.group}\n"
    assert account.served() == tool.NO_VERSION


def test_incomplete_settings_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main(["--model-package-arn", "x"], environ={"RELEASE_TARGET": "staging"}) == 2
    err = capsys.readouterr().err
    assert err.startswith("release: the release settings are incomplete: RELEASE_STACK, RELEASE_ROLE_ARN")
    assert err.count("\n") == 1


def test_the_checkout_release_uses_the_settings_the_deploy_builds_get(synthesized: Synthesized) -> None:
    """`make deploy-endpoint` and the pipeline's builds release with the same settings (but the bucket, a reference)."""
    config = synthesized.stages[STAGE].config
    assert config.account is not None
    for target in ("staging", "production"):
        local = release.release_environment(config, target, account=config.account, partition="aws")
        deployed = _deploy_settings(synthesized, target)
        deployed.pop("RELEASE_BASELINE_BUCKET", None)
        assert local == deployed


def test_the_checkout_release_refuses_an_unknown_stage(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--stage", "qa", "--target", "staging", "--model-package-arn", "x"]
    assert release.main(argv, clients=lambda *_: None) == 2
    assert 'unknown stage "qa"' in capsys.readouterr().err


# What the build image's Python has beside the standard library (aws/aws-codebuild-docker-images,
# ubuntu/standard/7.0/Dockerfile: pip installs boto3 and a few tools into the 3.11 runtime).
_BOTO3 = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six", "_cffi_backend")


def test_the_release_bundle_runs_on_the_standard_library_and_boto3_alone(tmp_path: Path) -> None:
    """The bundle the deploy pipeline takes as its source imports nothing else (no make install in a deploy build)."""
    bundle = release_tool_dir()
    probe = (
        "import sys, sysconfig\n"
        "import endpoint_release.tool, pipelines_src.promote\n"
        "stdlib = (sysconfig.get_paths()['stdlib'], sysconfig.get_paths()['platstdlib'])\n"
        f"allowed = {_BOTO3!r}\n"
        "bundle = sys.argv[1]\n"
        "foreign = sorted(\n"
        "    name for name, module in sys.modules.items()\n"
        "    if getattr(module, '__file__', None)\n"
        "    and not module.__file__.startswith(stdlib + (bundle,))\n"
        "    and name.split('.')[0] not in allowed\n"
        ")\n"
        "print(foreign)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(bundle)!r}); exec({probe!r})", str(bundle)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert result.stdout.strip() == "[]", result.stdout
    assert sorted(path.name for path in bundle.iterdir()) == ["endpoint_release", "lambdas", "pipelines_src"]
