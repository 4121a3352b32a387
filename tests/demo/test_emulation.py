"""What the demo's emulation adds to moto so the platform's code sees SageMaker's behaviour."""

from __future__ import annotations

from demo import emulation
from demo.executions import sagemaker_backend


def test_an_approval_keeps_the_versions_metadata_as_sagemaker_does() -> None:
    with emulation.moto_server() as url, emulation.environment(emulation.aws_environment(url, "eu-west-1")):
        emulation.keep_metadata_on_update(sagemaker_backend(emulation.ACCOUNT, "eu-west-1"))
        import boto3

        sagemaker = boto3.client("sagemaker", region_name="eu-west-1", endpoint_url=url)
        sagemaker.create_model_package_group(ModelPackageGroupName="group")
        arn = sagemaker.create_model_package(
            ModelPackageGroupName="group",
            ModelApprovalStatus="PendingManualApproval",
            CustomerMetadataProperties={"challenger_rmse": "4.2", "champion": "none"},
        )["ModelPackageArn"]
        sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        assert sagemaker.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"] == {
            "challenger_rmse": "4.2",
            "champion": "none",
        }
        sagemaker.update_model_package(
            ModelPackageArn=arn,
            CustomerMetadataProperties={"champion": "v0"},
            CustomerMetadataPropertiesToRemove=["challenger_rmse"],
        )
        assert sagemaker.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"] == {
            "champion": "v0"
        }
