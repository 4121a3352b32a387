"""Experiment tracking in AWS: the stage's SageMaker managed MLflow App, its artifact store and who may use it.

Why an MLflow App (``AWS::SageMaker::MlflowApp``) and not a tracking server (``AWS::SageMaker::MlflowTrackingServer``):
CloudFormation has both (both are in the pinned aws-cdk-lib's resource spec), but a tracking server bills every
hour it runs by its size, idle or not (Small: 0.642 USD an hour, about 469 USD a month in us-east-1), while an
MLflow App is serverless and has no charge of its own: "a serverless tracking server on SageMaker AI that
automatically scales resources based on demand [...] at no cost"
(https://aws.amazon.com/blogs/machine-learning/migrate-mlflow-tracking-servers-to-amazon-sagemaker-ai-with-serverless-mlflow/,
https://aws.amazon.com/sagemaker/ai/pricing/). What it stores, it stores in the stage's artifacts bucket (S3, per
use). AWS now steers new work to Apps (https://docs.aws.amazon.com/sagemaker/latest/dg/mlflow-app-setup.html).

What an App gives up, and how the platform lives with it:
- IAM authorizes an App's whole MLflow REST API with one action, ``sagemaker:CallMlflowAppApi`` (IAM service
  authorization reference, "Actions, resources, and condition keys for Amazon SageMaker": resource type
  ``mlflow-app``; the per-operation ``sagemaker-mlflow:*`` actions apply to tracking servers only). So the
  tracking-reader role cannot be kept from writing through the MLflow API; it is read-only everywhere else (the
  artifacts in S3, the App itself). MLflow deletes are soft (restorable), and a version's lineage is also kept in
  the model registry, which only the pipeline writes.
- No MLflow version or size to choose: AWS runs and upgrades it.
- Model registration from MLflow into the SageMaker model registry is turned off: versions enter the registry
  only through the pipeline, as PendingManualApproval (the registry has one writer).

The App's own role reads and writes only the ``mlflow/`` prefix of the artifacts bucket, under the lake key, and
only through S3. The model-build steps reach the App through the VPC's interface endpoint (stacks.network_needs,
``TRACKED_BUILD_STEPS``) and may call it only from the platform's VPC.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Aws, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.nag import acknowledge_wildcards

# The IAM action that authorizes calls to an MLflow App's REST API (its data plane), and the App's control-plane
# actions a reader needs: the presigned URL of its UI and its description.
CALL_APP_API = "sagemaker:CallMlflowAppApi"
READER_APP_ACTIONS = (CALL_APP_API, "sagemaker:CreatePresignedMlflowAppUrl", "sagemaker:DescribeMlflowApp")
# Versions reach the SageMaker model registry only through the pipeline (CreateMlflowApp: ModelRegistrationMode).
REGISTRATION_DISABLED = "AutoModelRegistrationDisabled"


def _kms_through_s3(key: kms.IKey, bucket: s3.IBucket, actions: Sequence[str], sid: str) -> iam.PolicyStatement:
    """The key, only as S3 uses it for this bucket: S3 Bucket Keys make the encryption context the bucket's ARN
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html, "encryption context")."""
    stack = Stack.of(key)
    return iam.PolicyStatement(
        sid=sid,
        actions=list(actions),
        resources=[key.key_arn],
        conditions={
            "StringEquals": {
                "kms:ViaService": f"s3.{stack.region}.amazonaws.com",
                "kms:EncryptionContext:aws:s3:arn": bucket.bucket_arn,
            }
        },
    )


def _objects(bucket: s3.IBucket, prefix: str, actions: Sequence[str], sid: str) -> list[iam.PolicyStatement]:
    """Object actions under the prefix, and listing the bucket only under it."""
    return [
        iam.PolicyStatement(sid=sid, actions=list(actions), resources=[bucket.arn_for_objects(f"{prefix}*")]),
        iam.PolicyStatement(
            sid=f"{sid}List",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        ),
    ]


class ExperimentTracking(Construct):
    """The stage's MLflow App, the role it runs as, and (with reader principals) the tracking-reader role.

    ``name`` is the App's name before the suffix its stack adds (see the App below). ``artifacts_prefix`` ends with
    a slash. ``retain``: keep the App (its experiments and runs) when the stack is deleted, as the stage keeps its
    data. ``values_parameter``: the name of the SSM parameter that publishes the App's ARN (resolver/published.py),
    which the reader role may read to find it.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        artifacts: s3.IBucket,
        artifacts_prefix: str,
        key: kms.IKey,
        retain: bool,
        reader_role_name: str,
        reader_principals: Sequence[str] = (),
        values_parameter: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        if not artifacts_prefix.endswith("/"):
            raise ValueError(f"{self.node.path}: the artifacts prefix must end with '/', got {artifacts_prefix!r}")
        self.artifacts = artifacts
        self.artifacts_prefix = artifacts_prefix
        self.key = key
        self.artifact_store_uri = artifacts.s3_url_for_object(artifacts_prefix)
        self.service_role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"The MLflow App {name}: its artifact store only",
        )
        for statement in [
            *_objects(
                artifacts,
                artifacts_prefix,
                ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                "ArtifactStore",
            ),
            iam.PolicyStatement(
                sid="ArtifactStoreBucket", actions=["s3:GetBucketLocation"], resources=[artifacts.bucket_arn]
            ),
            _kms_through_s3(key, artifacts, ["kms:Decrypt", "kms:GenerateDataKey"], "ArtifactStoreKey"),
        ]:
            self.service_role.add_to_policy(statement)
        acknowledge_wildcards(
            self.service_role,
            resources=[artifacts.arn_for_objects(f"{artifacts_prefix}*")],
            reason="The App's artifact store: objects under its one prefix, keyed by experiment and run ids MLflow "
            "assigns.",
        )

        # The App's name ends with the first group of the stack's id, which is new each time the stack is created:
        # an App retained by a `cdk destroy` (its runs are history) keeps its name and ARN, and the next deployment
        # creates its own instead of colliding with it. CloudFormation cannot adopt an App on deploy (its
        # identifier is the ARN, which carries a generated id), so a fixed name would block that deployment.
        stack_id = Fn.select(0, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))))
        self.app = sagemaker.CfnMlflowApp(
            self,
            "App",
            name=Fn.join("-", [name, stack_id]),
            artifact_store_uri=self.artifact_store_uri,
            role_arn=self.service_role.role_arn,
            model_registration_mode=REGISTRATION_DISABLED,
        )
        # The App checks its artifact store with the role when it is created: the policy must be there first.
        self.app.node.add_dependency(self.service_role)
        self.app.apply_removal_policy(RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY)
        self.name = name
        self.app_arn = self.app.attr_arn

        self.reader_role: iam.Role | None = None
        if reader_principals:
            self.reader_role = self._reader(reader_role_name, reader_principals, values_parameter)

    def grant_logging(self, role: iam.IRole, vpc: ec2.IVpc) -> None:
        """What the model-build steps need to log their runs: the App's API, only from the platform's VPC (through
        its interface endpoint: aws:SourceVpc is set on requests that come through a VPC endpoint,
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-sourcevpc),
        and the artifact store, where the MLflow client writes run artifacts itself."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="LogRunsToTheStagesMlflowApp",
                actions=[CALL_APP_API],
                resources=[self.app_arn],
                conditions={"StringEquals": {"aws:SourceVpc": vpc.vpc_id}},
            )
        )
        for statement in _objects(
            self.artifacts,
            self.artifacts_prefix,
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            "RunArtifacts",
        ):
            role.add_to_principal_policy(statement)
        role.add_to_principal_policy(
            _kms_through_s3(self.key, self.artifacts, ["kms:Decrypt", "kms:GenerateDataKey"], "RunArtifactsKey")
        )
        acknowledge_wildcards(
            role,
            resources=[self.artifacts.arn_for_objects(f"{self.artifacts_prefix}*")],
            reason="Run artifacts under the App's one prefix, keyed by experiment and run ids MLflow assigns.",
        )

    def _reader(self, role_name: str, principals: Sequence[str], values_parameter: str | None) -> iam.Role:
        """A role the listed principals may assume: the App's UI (presigned URL) and API, the artifacts read-only,
        and the published values that name the App."""
        role = iam.Role(
            self,
            "ReaderRole",
            role_name=role_name,
            assumed_by=iam.CompositePrincipal(*(iam.ArnPrincipal(arn) for arn in principals)),
            description=f"Data scientists: open the MLflow UI of {self.name} and read its runs and artifacts",
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="UseTheApp", actions=list(READER_APP_ACTIONS), resources=[self.app_arn])
        )
        for statement in _objects(self.artifacts, self.artifacts_prefix, ["s3:GetObject"], "ReadRunArtifacts"):
            role.add_to_policy(statement)
        role.add_to_policy(_kms_through_s3(self.key, self.artifacts, ["kms:Decrypt"], "ReadRunArtifactsKey"))
        if values_parameter is not None:
            parameter = Stack.of(self).format_arn(
                service="ssm",
                resource="parameter",
                resource_name=values_parameter.lstrip("/"),
                arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            )
            role.add_to_policy(
                iam.PolicyStatement(sid="FindTheApp", actions=["ssm:GetParameter"], resources=[parameter])
            )
        acknowledge_wildcards(
            role,
            resources=[self.artifacts.arn_for_objects(f"{self.artifacts_prefix}*")],
            reason="Run artifacts under the App's one prefix (read only), keyed by ids MLflow assigns.",
        )
        return role
