"""The lake's Glue catalog: database, security configuration, crawlers, and tables from dataset schemas."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs.encryption import log_group_statement
from stacks.nag import acknowledge_wildcards

# Reading and writing partitions of a table (crawlers; the curation job registers its own).
PARTITION_WRITE_ACTIONS = (
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
    "glue:CreatePartition",
    "glue:BatchCreatePartition",
    "glue:UpdatePartition",
    "glue:BatchUpdatePartition",
)


@dataclass(frozen=True)
class CrawlTarget:
    """What a crawler of one zone reads: the given prefixes of the bucket, or (none given) all of it but exclusions."""

    bucket: s3.IBucket
    prefixes: tuple[str, ...] = ()
    # Glob patterns, relative to the bucket root, that a whole-bucket crawl skips (e.g. the data capture).
    exclusions: tuple[str, ...] = ()

    def paths(self) -> list[tuple[str, list[str]]]:
        """(S3 path, exclusions) per crawler target."""
        root = f"s3://{self.bucket.bucket_name}/"
        if self.prefixes:
            return [(f"{root}{prefix}", []) for prefix in self.prefixes]
        return [(root, list(self.exclusions))]

    def object_patterns(self) -> list[str]:
        """The key patterns the crawler may read."""
        return [f"{prefix}*" for prefix in self.prefixes] or ["*"]


@dataclass(frozen=True)
class Column:
    name: str
    glue_type: str  # a Hive/Glue type string: string, bigint, double, boolean, date, timestamp, decimal(10,2)
    comment: str = ""


@dataclass(frozen=True)
class TableSpec:
    """A Parquet table over a prefix of one lake zone, e.g. a dataset's curated form."""

    name: str
    zone: str
    prefix: str
    columns: tuple[Column, ...]
    partition_keys: tuple[Column, ...] = ()
    description: str = ""


class LakeCatalog(Construct):
    """Glue database over the lake, crawlers for the given zones and tables for the given specs.

    Crawlers and jobs run under one security configuration that encrypts what Glue
    writes (S3 output, CloudWatch logs, job bookmarks) with the lake key.

    The database and the security configuration are deleted with the stack in every stage,
    although their names are fixed (the curation job, the crawlers and Athena users name them): both
    are derived metadata, not data. The data lives in the zone buckets, which a stage that keeps
    data retains; a redeployed stack gets new buckets (their names are generated), so a retained
    catalog would only describe buckets the platform no longer uses, and its fixed names would make
    the redeployment fail with AlreadyExists.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        database_name: str,
        key: kms.IKey,
        crawled_zones: dict[str, CrawlTarget],
        table_buckets: dict[str, s3.IBucket],
        tables: Sequence[TableSpec] = (),
        crawler_schedule: str | None,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.database = glue.Database(
            self,
            "Database",
            database_name=database_name,
            description="MLOps platform data lake: raw and curated zones",
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.security_configuration = glue.SecurityConfiguration(
            self,
            "SecurityConfiguration",
            s3_encryption=glue.S3Encryption.kms(key),
            cloud_watch_encryption=glue.CloudWatchEncryption.kms(key),
            job_bookmarks_encryption=glue.JobBookmarksEncryption.client_side_kms(key),
            removal_policy=RemovalPolicy.DESTROY,
        )

        self.crawler_role = iam.Role(
            self,
            "CrawlerRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Glue crawlers of the lake: read the zones, write the catalog and their logs",
        )
        object_arns = []
        for target in crawled_zones.values():
            for pattern in target.object_patterns():
                target.bucket.grant_read(self.crawler_role, pattern)
                object_arns.append(target.bucket.arn_for_objects(pattern))
        tables_arn = stack.format_arn(service="glue", resource="table", resource_name=f"{database_name}/*")
        key.grant_encrypt_decrypt(self.crawler_role)
        self.crawler_role.add_to_policy(
            iam.PolicyStatement(
                sid="CatalogWrite",
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    *PARTITION_WRITE_ACTIONS,
                    "glue:CreatePartitionIndex",
                    "glue:GetPartitionIndexes",
                ],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    self.database.database_arn,
                    tables_arn,
                ],
            )
        )
        logs_statement, log_arns = log_group_statement(
            self, sid="CrawlerLogs", name_pattern="/aws-glue/crawlers*", extra_actions=("logs:AssociateKmsKey",)
        )
        self.crawler_role.add_to_policy(logs_statement)
        self.crawler_role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadSecurityConfiguration",
                actions=["glue:GetSecurityConfiguration"],
                resources=["*"],
            )
        )
        acknowledge_wildcards(
            self.crawler_role,
            actions=["s3:GetObject*", "s3:GetBucket*", "s3:List*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            resources=[*object_arns, tables_arn, *log_arns, "*"],
            reason="Crawlers read the objects under the dataset prefixes they catalog (keys are data, unknown at "
            "deploy time) through the bucket grants, with the lake key; they create and update any table of this "
            "one Glue database and write Glue's own crawler log groups. glue:GetSecurityConfiguration "
            "supports no resource-level permission.",
        )

        self.crawlers: dict[str, glue.CfnCrawler] = {}
        for zone, target in crawled_zones.items():
            self.crawlers[zone] = glue.CfnCrawler(
                self,
                f"{zone.capitalize()}Crawler",
                description=f"Catalogs the {zone} zone into {database_name}",
                role=self.crawler_role.role_arn,
                database_name=self.database.database_name,
                table_prefix=f"{zone}_",
                crawler_security_configuration=self.security_configuration.security_configuration_name,
                targets=glue.CfnCrawler.TargetsProperty(
                    s3_targets=[
                        glue.CfnCrawler.S3TargetProperty(path=path, exclusions=exclusions or None)
                        for path, exclusions in target.paths()
                    ]
                ),
                # Landing data arrives in new dated folders; crawl only those, log schema changes.
                recrawl_policy=glue.CfnCrawler.RecrawlPolicyProperty(recrawl_behavior="CRAWL_NEW_FOLDERS_ONLY"),
                schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                    update_behavior="LOG", delete_behavior="LOG"
                ),
                configuration=json.dumps(
                    {
                        "Version": 1.0,
                        "CreatePartitionIndex": True,
                        "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"},
                    },
                    sort_keys=True,
                ),
                schedule=glue.CfnCrawler.ScheduleProperty(schedule_expression=crawler_schedule)
                if crawler_schedule
                else None,
            )

        self.tables: dict[str, glue.S3Table] = {}
        for spec in tables:
            if spec.zone not in table_buckets:
                raise ValueError(f'table "{spec.name}": unknown zone "{spec.zone}"; known: {sorted(table_buckets)}')
            self.tables[spec.name] = glue.S3Table(
                self,
                f"Table-{spec.name}",
                database=self.database,
                table_name=spec.name,
                description=spec.description or None,
                # The bucket's default encryption is the lake key: objects are encrypted server side.
                storage=glue.S3TableStorage.from_bucket(table_buckets[spec.zone]),
                has_encrypted_data=True,
                s3_prefix=spec.prefix,
                columns=[_column(column) for column in spec.columns],
                partition_keys=[_column(column) for column in spec.partition_keys] or None,
                data_format=glue.DataFormat.PARQUET,
            )


def _column(column: Column) -> glue.Column:
    return glue.Column(
        name=column.name,
        type=glue.Schema.custom(column.glue_type, is_primitive="<" not in column.glue_type),
        comment=column.comment or None,
    )
