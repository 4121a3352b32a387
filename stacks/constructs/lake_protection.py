"""Protection of the lake beyond its buckets: AWS Backup of the zones, and an audit trail of who read what.

Backup or replication? The lake is backed up with AWS Backup rather than replicated, because the
threat is a wrong write or a delete (a bad job, a leaked role, ransomware), not the loss of a region.
Replication copies deletes and overwrites of current objects within seconds and keeps no point in
time; AWS Backup's continuous backups of S3 restore a bucket (or a prefix) to any second of the last
35 days, from a vault with its own key and an access policy that refuses to delete recovery points,
optionally under Vault Lock. It needs S3 Versioning, which every lake bucket has. See
https://docs.aws.amazon.com/aws-backup/latest/devguide/s3-backups.html and
https://docs.aws.amazon.com/aws-backup/latest/devguide/point-in-time-recovery.html

The trail records management events of every region and the S3 data events (object reads and
writes) of the lake's buckets, encrypted with a key of its own, with log file validation, into a
bucket no one outside the account can reach (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-data-events-with-cloudtrail.html).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from resolver.config import BackupConfig
from stacks.constructs.data_lake import private_bucket
from stacks.constructs.encryption import platform_key
from stacks.nag import acknowledge_wildcards

# The role AWS Backup assumes to read the buckets: the statements of AWS's documented S3 backup policy
# (AWSBackupServiceRolePolicyForS3Backup, https://docs.aws.amazon.com/aws-backup/latest/devguide/security-iam-awsmanpol.html),
# limited to the lake's buckets and keys instead of every bucket of the account.
S3_BUCKET_BACKUP_ACTIONS = (
    "s3:GetInventoryConfiguration",
    "s3:PutInventoryConfiguration",
    "s3:ListBucketVersions",
    "s3:ListBucket",
    "s3:GetBucketVersioning",
    "s3:GetBucketNotification",
    "s3:PutBucketNotification",
    "s3:GetBucketLocation",
    "s3:GetBucketTagging",
    "s3:GetBucketAcl",
)
S3_OBJECT_BACKUP_ACTIONS = (
    "s3:GetObjectAcl",
    "s3:GetObject",
    "s3:GetObjectVersionTagging",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectTagging",
    "s3:GetObjectVersion",
)
# Continuous backups of S3 follow changes through EventBridge rules AWS Backup manages itself.
BACKUP_MANAGED_RULE_ACTIONS = (
    "events:DeleteRule",
    "events:PutTargets",
    "events:DescribeRule",
    "events:EnableRule",
    "events:PutRule",
    "events:RemoveTargets",
    "events:ListTargetsByRule",
    "events:DisableRule",
)


class LakeBackup(Construct):
    """Continuous (point-in-time) AWS Backup of the given buckets into a vault that refuses deletes."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        buckets: Mapping[str, s3.IBucket],
        bucket_key: kms.IKey,
        config: BackupConfig,
        name_prefix: str,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        # Recovery points outlive the stack: a vault that holds any cannot be deleted anyway.
        self.key = platform_key(
            self,
            "VaultKey",
            description="Encrypts the data lake's backups (AWS Backup vault)",
            removal_policy=RemovalPolicy.RETAIN,
        )
        retention = Duration.days(config.retention_days)
        self.vault = backup.BackupVault(
            self,
            "Vault",
            # The vault outlives the stack, so its name must not be one a redeployment would ask for again:
            # it ends in the first part of the stack's id (a UUID CloudFormation draws per stack creation).
            backup_vault_name=Fn.join(
                "-", [name_prefix, Fn.select(0, Fn.split("-", Fn.select(2, Fn.split("/", stack.stack_id))))]
            ),
            encryption_key=self.key,
            # Nobody, whatever their IAM rights, may delete a recovery point or shorten its life.
            block_recovery_point_deletion=True,
            # Governance mode (no changeable_for): recovery points cannot be deleted before their retention ends;
            # https://docs.aws.amazon.com/aws-backup/latest/devguide/vault-lock.html
            lock_configuration=backup.LockConfiguration(min_retention=retention) if config.vault_lock else None,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.plan = backup.BackupPlan(
            self, "Plan", backup_plan_name=f"{name_prefix}-continuous", backup_vault=self.vault
        )
        self.plan.add_rule(
            backup.BackupPlanRule(
                rule_name="Continuous",
                enable_continuous_backup=True,
                delete_after=retention,
                schedule_expression=events.Schedule.cron(hour="3", minute="0"),
            )
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "backup.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="AWS Backup: reads the data lake's buckets into the lake's vault",
        )
        bucket_arns = [bucket.bucket_arn for bucket in buckets.values()]
        object_arns = [bucket.arn_for_objects("*") for bucket in buckets.values()]
        rule_arn = stack.format_arn(service="events", resource="rule", resource_name="AwsBackupManagedRule*")
        self.role.add_to_policy(
            iam.PolicyStatement(sid="S3BucketBackup", actions=list(S3_BUCKET_BACKUP_ACTIONS), resources=bucket_arns)
        )
        self.role.add_to_policy(
            iam.PolicyStatement(sid="S3ObjectBackup", actions=list(S3_OBJECT_BACKUP_ACTIONS), resources=object_arns)
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ManagedChangeRules", actions=list(BACKUP_MANAGED_RULE_ACTIONS), resources=[rule_arn]
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="NoResourceLevel",
                actions=["events:ListRules", "cloudwatch:GetMetricData", "s3:ListAllMyBuckets"],
                resources=["*"],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadObjectsEncryptedWithTheLakeKey",
                actions=["kms:Decrypt", "kms:DescribeKey"],
                resources=[bucket_key.key_arn],
                conditions={"StringLike": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            )
        )
        self.key.grant_encrypt_decrypt(self.role)
        self.selection = self.plan.add_selection(
            "Zones",
            resources=[backup.BackupResource.from_arn(arn) for arn in bucket_arns],
            role=self.role,
            # The scoped statements above replace AWS's account-wide managed policies.
            disable_default_backup_policy=True,
        )
        acknowledge_wildcards(
            self.role,
            actions=["kms:ReEncrypt*", "kms:GenerateDataKey*"],
            resources=[*object_arns, rule_arn, "*"],
            reason="AWS Backup reads every object version of the lake's buckets (keys are data) and manages its "
            "own AwsBackupManagedRule* EventBridge rules to follow changes; events:ListRules, "
            "cloudwatch:GetMetricData and s3:ListAllMyBuckets support no resource-level permission; the vault key "
            "grant covers its data keys.",
        )


class AuditTrail(Construct):
    """An account trail (every region) with the S3 data events of the given buckets, validated and encrypted."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        data_event_buckets: Sequence[s3.IBucket],
        access_logs: s3.IBucket,
        retain: bool,
        log_retention: Duration,
        abort_incomplete_upload_days: int,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        removal_policy = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        # Its own key: readers of the lake cannot read who else read it.
        self.key = platform_key(
            self, "Key", description="Encrypts the account's CloudTrail logs", removal_policy=removal_policy
        )
        # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudTrailOfThisAccountToEncryptLogs",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": stack.format_arn(
                            service="cloudtrail", region="*", resource="trail", resource_name="*"
                        )
                    },
                },
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudTrailOfThisAccountToDescribeTheKey",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:DescribeKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.bucket = private_bucket(
            self,
            "Logs",
            retain=retain,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="trail/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-trail-logs",
                    expiration=log_retention,
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(abort_incomplete_upload_days),
                )
            ],
        )
        # The trail's own grants on the bucket name only the service; writes for another account's trail are refused
        # (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html).
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTrailsOfThisAccount",
                effect=iam.Effect.DENY,
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["s3:PutObject", "s3:GetBucketAcl"],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
                conditions={"StringNotEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            bucket=self.bucket,
            encryption_key=self.key,
            enable_file_validation=True,
            is_multi_region_trail=True,
            include_global_service_events=True,
            management_events=cloudtrail.ReadWriteType.ALL,
        )
        self.trail.add_s3_event_selector(
            [cloudtrail.S3EventSelector(bucket=bucket) for bucket in data_event_buckets],
            read_write_type=cloudtrail.ReadWriteType.ALL,
            include_management_events=True,
        )
