"""What the DataLake stack promises: private, encrypted, TLS-only, versioned, logged storage, and a catalog."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.config import PlatformConfig
from stacks.constructs.catalog import Column, TableSpec
from stacks.data_lake_stack import DataLakeStack
from stacks.network_stack import NetworkStack
from tests.conftest import ROOT, Synthesized, new_app

STAGES = ["dev", "staging", "prod"]


def _buckets(synthesized: Synthesized, stage: str) -> dict[str, dict[str, Any]]:
    return synthesized.template(stage, "data_lake").find_resources("AWS::S3::Bucket")


def _ids(synthesized: Synthesized, stage: str) -> dict[str, str]:
    """Logical ids of the lake's key and buckets, by role."""
    stack = synthesized.stages[stage].data_lake
    storage = stack.storage
    ids = {zone: stack.get_logical_id(bucket.node.default_child) for zone, bucket in storage.buckets.items()}
    ids["access_logs"] = stack.get_logical_id(storage.access_logs.node.default_child)
    ids["delivery"] = stack.get_logical_id(storage.delivery.node.default_child)
    ids["key"] = stack.get_logical_id(storage.key.node.default_child)
    return ids


@pytest.mark.parametrize("stage", STAGES)
def test_no_bucket_is_public(synthesized: Synthesized, stage: str) -> None:
    template = synthesized.template(stage, "data_lake")
    template.all_resources_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        },
    )


@pytest.mark.parametrize("stage", STAGES)
def test_zone_buckets_are_encrypted_with_the_lake_key(synthesized: Synthesized, stage: str) -> None:
    buckets = _buckets(synthesized, stage)
    ids = _ids(synthesized, stage)
    for zone in ("raw", "curated", "artifacts", "delivery"):
        encryption = buckets[ids[zone]]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert encryption == [
            {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {
                    "KMSMasterKeyID": {"Fn::GetAtt": [ids["key"], "Arn"]},
                    "SSEAlgorithm": "aws:kms",
                },
            }
        ], zone
    # S3 delivers server access logs only into SSE-S3 buckets; that bucket holds no lake data.
    access_logs = buckets[ids["access_logs"]]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert access_logs == [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    assert len(buckets) == 5


@pytest.mark.parametrize("stage", STAGES)
def test_every_bucket_refuses_plain_http_and_old_tls(synthesized: Synthesized, stage: str) -> None:
    template = synthesized.template(stage, "data_lake")
    policies = template.find_resources("AWS::S3::BucketPolicy")
    covered = set()
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        denies = [statement for statement in statements if statement["Effect"] == "Deny"]
        conditions = [statement["Condition"] for statement in denies if statement["Action"] == "s3:*"]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions
        covered.add(policy["Properties"]["Bucket"]["Ref"])
    assert covered == set(_buckets(synthesized, stage))


@pytest.mark.parametrize("stage", STAGES)
def test_buckets_are_versioned_and_zones_log_to_the_access_log_bucket(synthesized: Synthesized, stage: str) -> None:
    buckets = _buckets(synthesized, stage)
    ids = _ids(synthesized, stage)
    for bucket in buckets.values():
        assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    for zone in ("raw", "curated", "artifacts", "delivery"):
        assert buckets[ids[zone]]["Properties"]["LoggingConfiguration"] == {
            "DestinationBucketName": {"Ref": ids["access_logs"]},
            "LogFilePrefix": f"{zone}/",
        }


@pytest.mark.parametrize("stage", STAGES)
def test_lifecycle_expires_old_versions_and_abandoned_uploads(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage).data_lake
    buckets = _buckets(synthesized, stage)
    ids = _ids(synthesized, stage)
    for zone in ("raw", "curated", "artifacts"):
        (rule,) = buckets[ids[zone]]["Properties"]["LifecycleConfiguration"]["Rules"]
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": config.noncurrent_version_expiration_days}
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": config.abort_incomplete_upload_days}
        assert rule["Status"] == "Enabled"
    (log_rule,) = buckets[ids["access_logs"]]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert log_rule["ExpirationInDays"] == platform_config.stage(stage).log_retention_days


@pytest.mark.parametrize(
    ("stage", "policy", "protected"), [("dev", "Delete", False), ("staging", "Retain", True), ("prod", "Retain", True)]
)
def test_stateful_resources_follow_the_stage_retention(
    synthesized: Synthesized, stage: str, policy: str, protected: bool
) -> None:
    stack = synthesized.stages[stage].data_lake
    template = synthesized.template(stage, "data_lake")
    for kind in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Glue::Database", "AWS::Glue::SecurityConfiguration"):
        for resource in template.find_resources(kind).values():
            assert resource["DeletionPolicy"] == policy, kind
            assert resource["UpdateReplacePolicy"] == policy, kind
    template.resource_count_is("Custom::S3AutoDeleteObjects", 0 if protected else 5)
    assert stack.termination_protection is protected


def test_lake_key_rotates_and_admits_cloudwatch_logs_of_its_region(synthesized: Synthesized) -> None:
    template = synthesized.template("prod", "data_lake")
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "PendingWindowInDays": 30,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [Match.object_like({"Principal": {"Service": "logs.us-east-1.amazonaws.com"}})]
                )
            },
        },
    )


@pytest.mark.parametrize("stage", STAGES)
def test_glue_writes_are_encrypted_with_the_lake_key(synthesized: Synthesized, stage: str) -> None:
    key_arn = {"Fn::GetAtt": [_ids(synthesized, stage)["key"], "Arn"]}
    synthesized.template(stage, "data_lake").has_resource_properties(
        "AWS::Glue::SecurityConfiguration",
        {
            "EncryptionConfiguration": {
                "S3Encryptions": [{"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": key_arn}],
                "CloudWatchEncryption": {"CloudWatchEncryptionMode": "SSE-KMS", "KmsKeyArn": key_arn},
                "JobBookmarksEncryption": {"JobBookmarksEncryptionMode": "CSE-KMS", "KmsKeyArn": key_arn},
            }
        },
    )


@pytest.mark.parametrize("stage", STAGES)
def test_the_crawler_catalogs_raw_under_the_security_configuration(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    stack = synthesized.stages[stage].data_lake
    template = synthesized.template(stage, "data_lake")
    database = f"mlops_{stage}_lake"
    template.has_resource_properties("AWS::Glue::Database", {"DatabaseInput": {"Name": database}})
    # Curated and quarantine partitions are registered by the curation job, not crawled.
    crawlers = template.find_resources("AWS::Glue::Crawler")
    assert len(crawlers) == 1
    security_configuration = stack.resolve(stack.catalog.security_configuration.security_configuration_name)
    ids = _ids(synthesized, stage)
    targets = set()
    for crawler in crawlers.values():
        properties = crawler["Properties"]
        assert properties["CrawlerSecurityConfiguration"] == security_configuration
        assert properties["DatabaseName"] == stack.resolve(stack.catalog.database.database_name)
        (target,) = properties["Targets"]["S3Targets"]
        targets.add(target["Path"]["Fn::Join"][1][1]["Ref"])
        schedule = properties.get("Schedule", {}).get("ScheduleExpression")
        assert schedule == config.data_lake.crawler_schedule
    assert targets == {ids["raw"]}


@pytest.mark.parametrize("stage", STAGES)
def test_crawler_role_is_scoped_to_the_lake(synthesized: Synthesized, stage: str) -> None:
    template = synthesized.template(stage, "data_lake")
    stack = synthesized.stages[stage].data_lake
    role_id = stack.get_logical_id(stack.catalog.crawler_role.node.default_child)
    role = template.find_resources("AWS::IAM::Role")[role_id]
    assert "ManagedPolicyArns" not in role["Properties"], "no broad AWS managed policy"
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    (policy,) = policies.values()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "*" in resources:
            assert statement["Action"] == "glue:GetSecurityConfiguration", statement
        assert not any(str(action).endswith(":*") for action in _as_list(statement["Action"])), statement


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_dataset_schemas_become_partitioned_parquet_tables(platform_config: PlatformConfig) -> None:
    spec = TableSpec(
        name="deliveries",
        zone="curated",
        prefix="deliveries/",
        columns=(Column("distance_km", "double"), Column("courier_count", "int"), Column("weather", "string")),
        partition_keys=(Column("dt", "date"),),
        description="Curated deliveries",
    )
    app = new_app()
    config = platform_config.stage("dev")
    network = NetworkStack(app, "Net", config=config).network
    stack = DataLakeStack(app, "Lake", config=config, network=network, tables=[spec])
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::Glue::Table",
        {
            "DatabaseName": stack.resolve(stack.catalog.database.database_name),
            "TableInput": Match.object_like(
                {
                    "Name": "deliveries",
                    "PartitionKeys": [{"Name": "dt", "Type": "date"}],
                    "Parameters": Match.object_like({"classification": "parquet", "has_encrypted_data": True}),
                    "StorageDescriptor": Match.object_like(
                        {
                            "Columns": [
                                {"Name": "distance_km", "Type": "double"},
                                {"Name": "courier_count", "Type": "int"},
                                {"Name": "weather", "Type": "string"},
                            ],
                            "Location": {
                                "Fn::Join": [
                                    "",
                                    [
                                        "s3://",
                                        {"Ref": stack.get_logical_id(stack.storage.curated.node.default_child)},
                                        "/deliveries/",
                                    ],
                                ]
                            },
                        }
                    ),
                }
            ),
        },
    )


@pytest.mark.parametrize("stage", STAGES)
def test_the_stage_dataset_contract_becomes_the_curated_and_quarantine_tables(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    dataset = platform_config.stage(stage).model.dataset
    contract = json.loads((ROOT / "pipelines_src" / "contracts" / f"{dataset}.json").read_text())
    stack = synthesized.stages[stage].data_lake
    tables = synthesized.template(stage, "data_lake").find_resources("AWS::Glue::Table")
    by_name = {
        table["Properties"]["TableInput"]["Name"]: table["Properties"]["TableInput"] for table in tables.values()
    }
    assert set(by_name) == {f"curated_{dataset}", f"quarantine_{dataset}"}
    curated_ref = {"Ref": stack.get_logical_id(stack.storage.curated.node.default_child)}
    contract_names = [column["name"] for column in contract["columns"]]

    curated = by_name[f"curated_{dataset}"]
    assert curated["PartitionKeys"][0]["Name"] == "dt"
    names = [column["Name"] for column in curated["StorageDescriptor"]["Columns"]]
    assert names == contract_names
    assert curated["StorageDescriptor"]["Location"]["Fn::Join"][1] == ["s3://", curated_ref, f"/{dataset}/"]

    # Quarantined rows keep their raw text (a bad value may not parse), plus why and where from.
    quarantine = by_name[f"quarantine_{dataset}"]
    columns = {column["Name"]: column["Type"] for column in quarantine["StorageDescriptor"]["Columns"]}
    assert list(columns) == [*contract_names, "_rule", "_violations", "_source_file", "_run_id"]
    assert set(columns.values()) == {"string"}
    assert quarantine["PartitionKeys"][0]["Name"] == "dt"
    assert quarantine["StorageDescriptor"]["Location"]["Fn::Join"][1] == [
        "s3://",
        curated_ref,
        f"/quarantine/{dataset}/",
    ]


def test_a_table_in_an_unknown_zone_is_refused(platform_config: PlatformConfig) -> None:
    spec = TableSpec(name="x", zone="gold", prefix="x/", columns=(Column("a", "int"),))
    with pytest.raises(ValueError, match='table "x": unknown zone "gold"'):
        app = new_app()
        network = NetworkStack(app, "Net", config=platform_config.stage("dev")).network
        DataLakeStack(app, "Lake", config=platform_config.stage("dev"), network=network, tables=[spec])
