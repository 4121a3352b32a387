"""The lake's storage: one customer-managed key, the zone buckets and their access-log bucket."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from resolver.config import DataLakeConfig
from stacks.constructs.encryption import platform_key

ZONES = ("raw", "curated", "artifacts")


# Days CodePipeline artifacts are kept (each run writes new ones).
DELIVERY_ARTIFACT_DAYS = 30


class LakeStorage(Construct):
    """Raw, curated and artifacts zones, encrypted with the lake key, TLS-only, versioned and logged."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: DataLakeConfig,
        retain: bool,
        access_log_retention: Duration,
        capture_prefix: str,
    ) -> None:
        """``capture_prefix``: where the production endpoint's data capture lands in the raw zone (expires)."""
        super().__init__(scope, id_)
        removal_policy = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        self.key: kms.Key = platform_key(
            self,
            "Key",
            description="Encrypts the data lake: zone buckets, Glue catalog outputs, logs and bookmarks",
            removal_policy=removal_policy,
        )
        self.access_logs = private_bucket(
            self,
            "AccessLogs",
            retain=retain,
            # S3 delivers server access logs only to buckets with SSE-S3 default encryption.
            encryption=s3.BucketEncryption.S3_MANAGED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=access_log_retention,
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(config.abort_incomplete_upload_days),
                )
            ],
        )
        # No AwsSolutions-S1 finding to acknowledge: cdk-nag exempts a bucket other buckets log into.
        self.buckets: dict[str, s3.Bucket] = {}
        for zone in ZONES:
            lifecycle_rules = [
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(config.noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(config.abort_incomplete_upload_days),
                )
            ]
            if zone == "raw":
                # Captured requests and responses are personal payloads: kept only as long as the config says
                # (then their noncurrent versions expire with the rule above).
                lifecycle_rules.append(
                    s3.LifecycleRule(
                        id="expire-data-capture",
                        prefix=capture_prefix,
                        expiration=Duration.days(config.capture_expiration_days),
                    )
                )
            self.buckets[zone] = private_bucket(
                self,
                zone.capitalize(),
                retain=retain,
                encryption=s3.BucketEncryption.KMS,
                encryption_key=self.key,
                bucket_key_enabled=True,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=f"{zone}/",
                lifecycle_rules=lifecycle_rules,
            )

        # CI/CD: pipeline artifacts (transient) and, for the S3 source provider, the pushed source zip.
        self.delivery = private_bucket(
            self,
            "Delivery",
            retain=retain,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="delivery/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-pipeline-artifacts",
                    prefix="pipelines/",
                    expiration=Duration.days(DELIVERY_ARTIFACT_DAYS),
                ),
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(config.noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(config.abort_incomplete_upload_days),
                ),
            ],
        )
        delivery = self.delivery.node.default_child
        assert isinstance(delivery, s3.CfnBucket)
        # The S3 source provider: a new source zip starts the model-build pipeline (EventBridge, no custom resource).
        delivery.add_property_override("NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)

    @property
    def raw(self) -> s3.Bucket:
        return self.buckets["raw"]

    @property
    def curated(self) -> s3.Bucket:
        return self.buckets["curated"]

    @property
    def artifacts(self) -> s3.Bucket:
        return self.buckets["artifacts"]


def private_bucket(
    scope: Construct,
    id_: str,
    *,
    retain: bool,
    encryption: s3.BucketEncryption,
    lifecycle_rules: list[s3.LifecycleRule],
    encryption_key: kms.IKey | None = None,
    bucket_key_enabled: bool | None = None,
    server_access_logs_bucket: s3.IBucket | None = None,
    server_access_logs_prefix: str | None = None,
) -> s3.Bucket:
    """A bucket no one outside the account can reach, TLS 1.2+ only, versioned, owner-enforced."""
    return s3.Bucket(
        scope,
        id_,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        auto_delete_objects=not retain,
        encryption=encryption,
        encryption_key=encryption_key,
        bucket_key_enabled=bucket_key_enabled,
        server_access_logs_bucket=server_access_logs_bucket,
        server_access_logs_prefix=server_access_logs_prefix,
        lifecycle_rules=lifecycle_rules,
    )
