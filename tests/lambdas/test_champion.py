"""The champion of a model-build execution, resolved from the served-version record and the registry (moto)."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.shared import arns, champion
from pipelines_src.definition import CHAMPION_MODEL_DATA
from tests.lambdas.conftest import ACCOUNT, CHAMPION_PARAMETER, MODEL_PACKAGE_GROUP, REGION, Aws
from tests.model_package_arns import wrong_arns

SCOPE = arns.VersionScope(partition="aws", region=REGION, account=ACCOUNT, group=MODEL_PACKAGE_GROUP)
IMAGE = f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:3.0-5"


def register(aws: Aws, status: str, *, group: str = MODEL_PACKAGE_GROUP) -> tuple[str, str]:
    """A version of ``group`` with ``status``: its ARN and model data URL."""
    sagemaker = aws.client("sagemaker")
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    if group not in {item["ModelPackageGroupName"] for item in groups}:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    count = len(sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"])
    url = f"s3://artifacts/model-build/{group}/{count + 1}/Train/model/model.tar.gz"
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": url}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    return str(arn), url


def record(aws: Aws, value: str) -> None:
    """What the release tool writes after a deployment to production succeeded."""
    aws.client("ssm").put_parameter(Name=CHAMPION_PARAMETER, Value=value, Type="String", Overwrite=True)


def resolve(aws: Aws) -> list[dict[str, str]]:
    return champion.start_parameters(
        aws.client("ssm"), aws.client("sagemaker"), parameter=CHAMPION_PARAMETER, scope=SCOPE
    )


def test_the_parameter_is_the_definitions() -> None:
    assert champion.PARAMETER == CHAMPION_MODEL_DATA


def test_nothing_deployed_means_no_champion_and_no_parameter(aws: Aws) -> None:
    assert resolve(aws) == []
    assert champion.find(aws.client("ssm"), aws.client("sagemaker"), parameter=CHAMPION_PARAMETER, scope=SCOPE) is None


def test_the_approved_served_version_is_the_champion(aws: Aws) -> None:
    register(aws, "Approved")
    arn, url = register(aws, "Approved")
    register(aws, "PendingManualApproval")  # newer, not served: not the champion
    record(aws, arn)
    assert resolve(aws) == [{"Name": "ChampionModelData", "Value": url}]
    found = champion.find(aws.client("ssm"), aws.client("sagemaker"), parameter=CHAMPION_PARAMETER, scope=SCOPE)
    assert found == champion.Champion(model_package_arn=arn, version=2, model_data_url=url)


@pytest.mark.parametrize("status", ["Rejected", "PendingManualApproval"])
def test_a_served_version_that_is_not_approved_is_refused(aws: Aws, status: str) -> None:
    arn, _ = register(aws, status)
    record(aws, arn)
    with pytest.raises(champion.ChampionError, match=f"is {status}, not Approved"):
        resolve(aws)


def test_a_version_of_another_group_is_refused_before_the_registry_is_asked(aws: Aws) -> None:
    arn, _ = register(aws, "Approved", group="someone-elses-group")
    record(aws, arn)

    class NoRegistry:
        def describe_model_package(self, **kwargs: Any) -> Any:
            raise AssertionError("the registry was asked about a version of another group")

    with pytest.raises(champion.ChampionError, match="not a version of this stage's model package group"):
        champion.start_parameters(aws.client("ssm"), NoRegistry(), parameter=CHAMPION_PARAMETER, scope=SCOPE)


@pytest.mark.parametrize(
    "value",
    [
        case
        for case in wrong_arns(region=REGION, account=ACCOUNT, group=MODEL_PACKAGE_GROUP, version=3)
        if case.values[0]
    ],
)
def test_a_record_that_is_not_a_version_arn_of_the_group_is_refused(aws: Aws, value: str) -> None:
    record(aws, value)
    with pytest.raises(champion.ChampionError, match=CHAMPION_PARAMETER):
        resolve(aws)
