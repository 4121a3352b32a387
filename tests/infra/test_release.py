"""Releasing a version to an endpoint target: the SSM record, the one-stack deploy, the undo on failure."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stacks import release

GROUP = "mlops-prod-delivery-time"
PARAMETER = "/mlops/prod/delivery-time/production/model-package-arn"
ARN = f"arn:aws:sagemaker:us-east-1:222222222222:model-package/{GROUP}/7"


@pytest.fixture
def ssm() -> Iterator[Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        client.put_parameter(Name=PARAMETER, Value="none", Type="String")
        yield client


class Deployer:
    def __init__(self, code: int) -> None:
        self.code = code
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> int:
        self.commands.append(list(command))
        return self.code


def test_a_release_records_the_version_and_deploys_only_the_targets_stack(ssm: Any) -> None:
    deployer = Deployer(0)
    code = release.main(
        ["--stage", "prod", "--target", "production", "--model-package-arn", ARN], deploy=deployer, ssm=ssm
    )
    assert code == 0
    assert ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"] == ARN
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


def test_a_failed_deployment_puts_the_previous_version_back(ssm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ssm.put_parameter(Name=PARAMETER, Value=ARN.replace("/7", "/6"), Type="String", Overwrite=True)
    code = release.main(
        ["--stage", "prod", "--target", "production", "--model-package-arn", ARN], deploy=Deployer(1), ssm=ssm
    )
    assert code == 1
    assert ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"].endswith("/6")
    assert "is back to" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arn,message",
    [
        (f"{GROUP}/7", "not a model package version ARN"),
        (ARN.replace("/7", "/latest"), "not a model package version ARN"),
        (ARN.replace(GROUP, "someone-elses-group"), "is not a version of this stage's model package group"),
    ],
)
def test_what_is_not_a_version_of_this_stage_is_refused_before_anything_changes(
    ssm: Any, arn: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deployer = Deployer(0)
    code = release.main(
        ["--stage", "prod", "--target", "production", "--model-package-arn", arn], deploy=deployer, ssm=ssm
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert deployer.commands == []
    assert ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"] == "none"


def test_an_unknown_stage_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = release.main(
        ["--stage", "qa", "--target", "staging", "--model-package-arn", ARN], deploy=Deployer(0), ssm=object()
    )
    assert code == 2
    assert 'unknown stage "qa"' in capsys.readouterr().err
