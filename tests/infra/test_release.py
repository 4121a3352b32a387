"""Releasing a version to an endpoint target: only an approved version of the stage's group, the SSM record,
the one-stack deploy, the undo on failure."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stacks import release
from tests.model_package_arns import wrong_arns

ACCOUNT = "222222222222"  # the prod stage's account in cdk.json
REGION = "us-east-1"
GROUP = "mlops-prod-delivery-time"
PARAMETER = "/mlops/prod/delivery-time/production/model-package-arn"
PREFIX = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/"
APPROVED, PENDING, REJECTED = (f"{PREFIX}{version}" for version in (1, 2, 3))


@dataclass(frozen=True)
class Aws:
    ssm: Any
    sagemaker: Any

    def main(self, arn: str, *extra: str, deploy: Deployer) -> int:
        argv = ["--stage", "prod", "--target", "production", "--model-package-arn", arn, *extra]
        return release.main(argv, deploy=deploy, ssm=self.ssm, sagemaker=self.sagemaker)

    def register(self, group: str, status: str) -> str:
        arn: str = self.sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgb:1"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        return arn


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    with mock_aws():
        credentials = {"region_name": REGION, "aws_access_key_id": "t", "aws_secret_access_key": "t"}
        aws = Aws(ssm=boto3.client("ssm", **credentials), sagemaker=boto3.client("sagemaker", **credentials))
        aws.ssm.put_parameter(Name=PARAMETER, Value="none", Type="String")
        for group in (GROUP, "mlops-staging-delivery-time"):
            aws.sagemaker.create_model_package_group(ModelPackageGroupName=group)
        assert [aws.register(GROUP, status) for status in ("Approved", "PendingManualApproval", "Rejected")] == [
            APPROVED,
            PENDING,
            REJECTED,
        ]
        yield aws


class Deployer:
    def __init__(self, code: int) -> None:
        self.code = code
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> int:
        self.commands.append(list(command))
        return self.code


def test_a_release_records_the_version_and_deploys_only_the_targets_stack(aws: Aws) -> None:
    deployer = Deployer(0)
    assert aws.main(APPROVED, deploy=deployer) == 0
    assert aws.ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"] == APPROVED
    (command,) = deployer.commands
    assert command[1:] == [
        "deploy",
        "mlops-prod/Endpoint-production",
        "-c",
        "stage=prod",
        "--exclusively",
        "--require-approval",
        "never",
    ]


def test_a_failed_deployment_puts_the_previous_version_back(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.ssm.put_parameter(Name=PARAMETER, Value=f"{PREFIX}6", Type="String", Overwrite=True)
    assert aws.main(APPROVED, deploy=Deployer(1)) == 1
    assert aws.ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"] == f"{PREFIX}6"
    assert "is back to" in capsys.readouterr().err


def test_check_only_accepts_an_approved_version_and_changes_nothing(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    deployer = Deployer(0)
    assert aws.main(APPROVED, "--check-only", deploy=deployer) == 0
    assert capsys.readouterr().out == f"release: {APPROVED} is an approved version of {GROUP}\n"
    assert deployer.commands == []
    assert aws.ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"] == "none"


def _refused(aws: Aws, arn: str, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    deployer = Deployer(0)
    assert aws.main(arn, *extra, deploy=deployer) == 2
    assert deployer.commands == []
    assert aws.ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"] == "none"
    err = capsys.readouterr().err
    assert err.startswith("release: ") and err.count("\n") == 1, "one line"
    return err


@pytest.mark.parametrize("check_only", [(), ("--check-only",)], ids=["release", "check-only"])
def test_anything_but_exactly_a_version_of_this_stage_is_refused_before_anything_changes(
    aws: Aws, check_only: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every wrong ARN of the table, against one registry (a registry a case is cheaper than its check)."""
    for case in wrong_arns(region=REGION, account=ACCOUNT, group=GROUP, version=1):
        arn = case.values[0]  # type: ignore[attr-defined]
        err = _refused(aws, arn, capsys, *check_only)
        assert "not a model package version ARN" in err or "this stage's" in err, (case.id, err)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("arn", "status"), [(PENDING, "PendingManualApproval"), (REJECTED, "Rejected")])
@pytest.mark.parametrize("check_only", [(), ("--check-only",)], ids=["release", "check-only"])
def test_a_version_that_is_not_approved_is_refused(
    aws: Aws, arn: str, status: str, check_only: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(aws, arn, capsys, *check_only)
    assert err == f"release: {arn} is {status}, not Approved: only approved versions deploy\n"


def test_an_approved_version_of_another_group_is_refused(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    other = aws.register("mlops-staging-delivery-time", "Approved")
    err = _refused(aws, other, capsys)
    assert "is not a version of this stage's model package group mlops-prod-delivery-time" in err


def test_a_version_the_registry_does_not_have_is_refused(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(aws, f"{PREFIX}9", capsys)
    assert err.startswith(f"release: cannot read {PREFIX}9 from the model registry: ")


def test_a_stage_without_an_account_checks_against_the_callers(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.sagemaker.create_model_package_group(ModelPackageGroupName="mlops-dev-delivery-time")
    arn = aws.register("mlops-dev-delivery-time", "Approved")
    argv = ["--stage", "dev", "--target", "staging", "--model-package-arn", arn, "--check-only"]
    assert release.main(argv, deploy=Deployer(0), ssm=aws.ssm, sagemaker=aws.sagemaker) == 0
    argv[-2] = arn.replace(f":{ACCOUNT}:", ":999999999999:")
    assert release.main(argv, deploy=Deployer(0), ssm=aws.ssm, sagemaker=aws.sagemaker) == 2
    assert f"is in account 999999999999, not this stage's {ACCOUNT}" in capsys.readouterr().err


def test_an_unknown_stage_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = release.main(
        ["--stage", "qa", "--target", "staging", "--model-package-arn", APPROVED],
        deploy=Deployer(0),
        ssm=object(),
        sagemaker=object(),
    )
    assert code == 2
    assert 'unknown stage "qa"' in capsys.readouterr().err
