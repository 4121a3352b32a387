"""What the DataLake stack promises: private, encrypted, TLS-only, versioned, logged storage, and a catalog."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

from resolver import naming
from resolver.config import ConfigError, PlatformConfig, load_config
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
    # Zones, delivery, access logs, and the audit trail's own bucket where the stage has a trail.
    trail = synthesized.stages[stage].data_lake.trail
    assert len(buckets) == 5 + (trail is not None)


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
        rules = {rule["Id"]: rule for rule in buckets[ids[zone]]["Properties"]["LifecycleConfiguration"]["Rules"]}
        assert set(rules) == (
            {"expire-noncurrent-versions", "expire-data-capture"} if zone == "raw" else {"expire-noncurrent-versions"}
        )
        rule = rules["expire-noncurrent-versions"]
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
    for kind in ("AWS::S3::Bucket", "AWS::KMS::Key"):
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
        # Only the dataset's prefix: not the whole zone with the endpoint's captured requests in it.
        assert target["Path"]["Fn::Join"][1][2] == f"/{config.model.dataset}/"
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


# Data protection (trust boundaries, finding 11): capture expiry, dataset-only crawls, backups.


@pytest.mark.parametrize("stage", STAGES)
def test_captured_requests_and_responses_expire(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    raw = _buckets(synthesized, stage)[_ids(synthesized, stage)["raw"]]
    rules = {rule["Id"]: rule for rule in raw["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-data-capture"] == {
        "Id": "expire-data-capture",
        "Prefix": naming.capture_prefix(config),
        "ExpirationInDays": config.data_lake.capture_expiration_days,
        "Status": "Enabled",
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_crawler_role_reads_only_the_dataset_prefix(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    dataset = platform_config.stage(stage).model.dataset
    stack = synthesized.stages[stage].data_lake
    template = synthesized.template(stage, "data_lake")
    role_id = stack.get_logical_id(stack.catalog.crawler_role.node.default_child)
    (policy,) = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}).values()
    raw_arn = {"Fn::GetAtt": [_ids(synthesized, stage)["raw"], "Arn"]}
    objects = []
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        for resource in _as_list(statement["Resource"]):
            if isinstance(resource, dict) and "Fn::Join" in resource and resource["Fn::Join"][1][0] == raw_arn:
                objects.append(resource["Fn::Join"][1][1])
    assert objects and set(objects) == {f"/{dataset}/*"}


def test_a_whole_zone_crawl_still_skips_the_data_capture(
    context: dict[str, Any], platform_config: PlatformConfig
) -> None:
    context["mlops"]["stages"]["dev"]["data_lake"]["crawl_datasets_only"] = False
    config = load_config(context).stage("dev")
    app = new_app()
    stack = DataLakeStack(app, "Lake", config=config, network=NetworkStack(app, "Net", config=config).network)
    (crawler,) = Template.from_stack(stack).find_resources("AWS::Glue::Crawler").values()
    (target,) = crawler["Properties"]["Targets"]["S3Targets"]
    assert target["Path"]["Fn::Join"][1][2] == "/"
    assert target["Exclusions"] == [f"{naming.capture_prefix(config)}**"]


def _backup_resources(synthesized: Synthesized, stage: str, kind: str) -> list[dict[str, Any]]:
    return list(synthesized.template(stage, "data_lake").find_resources(kind).values())


def test_prod_backs_up_every_zone_continuously_into_a_vault_of_its_own(
    synthesized: Synthesized, platform_config: PlatformConfig
) -> None:
    backup = platform_config.stage("prod").data_lake.backup
    ids = _ids(synthesized, "prod")
    (plan,) = _backup_resources(synthesized, "prod", "AWS::Backup::BackupPlan")
    (rule,) = plan["Properties"]["BackupPlan"]["BackupPlanRule"]
    assert rule["EnableContinuousBackup"] is True
    assert rule["Lifecycle"] == {"DeleteAfterDays": backup.retention_days}
    (selection,) = _backup_resources(synthesized, "prod", "AWS::Backup::BackupSelection")
    resources = selection["Properties"]["BackupSelection"]["Resources"]
    assert resources == [{"Fn::GetAtt": [ids[zone], "Arn"]} for zone in ("raw", "curated", "artifacts")]
    (vault,) = _backup_resources(synthesized, "prod", "AWS::Backup::BackupVault")
    key = vault["Properties"]["EncryptionKeyArn"]["Fn::GetAtt"][0]
    assert key != ids["key"], "backups are encrypted with a key of their own, not the lake key"


def test_the_backup_vault_refuses_deletes_and_outlives_the_stack(synthesized: Synthesized) -> None:
    (vault,) = _backup_resources(synthesized, "prod", "AWS::Backup::BackupVault")
    assert vault["DeletionPolicy"] == "Retain"
    (statement,) = vault["Properties"]["AccessPolicy"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == {"AWS": "*"}
    assert set(statement["Action"]) == {"backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle"}
    # Its name is not a literal a redeployment would ask for again (it ends in the stack id's first part).
    assert not isinstance(vault["Properties"]["BackupVaultName"], str)


def test_the_backup_role_reads_only_the_lake(synthesized: Synthesized) -> None:
    stack = synthesized.stages["prod"].data_lake
    assert stack.backup is not None
    template = synthesized.template("prod", "data_lake")
    role_id = stack.get_logical_id(stack.backup.role.node.default_child)
    role = template.find_resources("AWS::IAM::Role")[role_id]
    assert "ManagedPolicyArns" not in role["Properties"], "not AWS's account-wide backup policies"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "backup.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "222222222222"}}
    (policy,) = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}).values()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if any(str(action).startswith("s3:Get") for action in _as_list(statement["Action"])):
            assert "*" not in _as_list(statement["Resource"]), statement


@pytest.mark.parametrize("stage", ["dev", "staging"])
def test_stages_without_backup_have_no_vault(synthesized: Synthesized, stage: str) -> None:
    assert _backup_resources(synthesized, stage, "AWS::Backup::BackupVault") == []


def test_backup_needs_a_stage_that_keeps_data(context: dict[str, Any]) -> None:
    context["mlops"]["stages"]["dev"]["data_lake"] = {"backup": {"enabled": True}}
    with pytest.raises(ConfigError, match=r"^mlops.stages.dev.data_lake.backup.enabled: needs .*retain_data true"):
        load_config(context)


# Detection (finding 10): an account trail with the lake's S3 data events.


def test_prod_has_an_account_trail_with_the_lakes_data_events(synthesized: Synthesized) -> None:
    stack = synthesized.stages["prod"].data_lake
    assert stack.trail is not None
    ids = _ids(synthesized, "prod")
    (trail,) = _backup_resources(synthesized, "prod", "AWS::CloudTrail::Trail")
    properties = trail["Properties"]
    assert properties["EnableLogFileValidation"] is True
    assert properties["IsMultiRegionTrail"] is True
    assert properties["IncludeGlobalServiceEvents"] is True
    key_id = stack.get_logical_id(stack.trail.key.node.default_child)
    assert properties["KMSKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key_id != ids["key"]
    bucket_id = stack.get_logical_id(stack.trail.bucket.node.default_child)
    assert properties["S3BucketName"] == {"Ref": bucket_id}
    (data_events,) = [selector for selector in properties["EventSelectors"] if selector.get("DataResources")]
    (resource,) = data_events["DataResources"]
    assert resource["Type"] == "AWS::S3::Object"
    assert data_events["ReadWriteType"] == "All"
    logged = {value["Fn::Join"][1][0]["Fn::GetAtt"][0] for value in resource["Values"]}
    assert logged == {ids["raw"], ids["curated"], ids["artifacts"], ids["delivery"]}
    # The trail's bucket: no public access, encrypted with the trail key (the all-bucket tests cover TLS).
    bucket = _buckets(synthesized, "prod")[bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_the_trail_key_admits_cloudtrail_of_this_account_only(synthesized: Synthesized) -> None:
    stack = synthesized.stages["prod"].data_lake
    assert stack.trail is not None
    key_id = stack.get_logical_id(stack.trail.key.node.default_child)
    key = synthesized.template("prod", "data_lake").find_resources("AWS::KMS::Key")[key_id]
    statements = [
        statement
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if statement.get("Principal") == {"Service": "cloudtrail.amazonaws.com"}
    ]
    assert statements
    for statement in statements:
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "222222222222", statement


@pytest.mark.parametrize("stage", ["dev", "staging"])
def test_stages_without_the_option_have_no_trail(synthesized: Synthesized, stage: str) -> None:
    assert _backup_resources(synthesized, stage, "AWS::CloudTrail::Trail") == []


# Redeploying after `cdk destroy` (issue 13, seam 8).

# Resource types CloudFormation can import into a stack on deploy (cdk deploy --import-existing-resources) when
# the template names them with a literal and retains them: the documented auto-import requirements,
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/import-resources-automatically.html
ADOPTABLE_ON_REDEPLOY = {"AWS::SageMaker::ModelPackageGroup"}
_NAME_PROPERTIES = {
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::Glue::SecurityConfiguration": "Name",
    "AWS::Backup::BackupVault": "BackupVaultName",
    "AWS::Backup::BackupPlan": "BackupPlan.BackupPlanName",
    "AWS::Glue::Database": "DatabaseInput.Name",
    "AWS::CloudTrail::Trail": "TrailName",
    "AWS::SSM::Parameter": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
}


def _literal_name(resource: dict[str, Any]) -> str | None:
    """The physical name a resource asks for, if the template gives it as a literal."""
    properties = resource.get("Properties", {})
    path = _NAME_PROPERTIES.get(resource["Type"])
    if path is None:
        names = [value for key, value in properties.items() if key.endswith("Name") and isinstance(value, str)]
        return names[0] if names else None
    value: Any = properties
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


@pytest.mark.parametrize("stage", STAGES)
def test_nothing_left_behind_by_a_destroy_blocks_the_next_deployment(synthesized: Synthesized, stage: str) -> None:
    """A resource kept on stack deletion either has a name CloudFormation draws, or one the next deploy adopts."""
    for stack in synthesized.stages[stage].node.children:
        if not isinstance(stack, Stack):
            continue
        for logical_id, resource in Template.from_stack(stack).to_json()["Resources"].items():
            if resource.get("DeletionPolicy", "Delete") == "Delete":
                continue
            name = _literal_name(resource)
            if name is None:
                continue
            where = f"{stack.stack_name}/{logical_id} ({resource['Type']} {name})"
            assert resource["Type"] in ADOPTABLE_ON_REDEPLOY, f"{where}: retained with a fixed name"
            # Auto-import takes Retain or RetainExceptOnCreate; the latter also cleans up after a failed creation.
            assert resource["DeletionPolicy"] == "RetainExceptOnCreate", where


@pytest.mark.parametrize("stage", STAGES)
def test_the_catalog_is_deleted_with_the_stack_in_every_stage(synthesized: Synthesized, stage: str) -> None:
    """Derived metadata with fixed names (module doc of stacks/constructs/catalog.py)."""
    template = synthesized.template(stage, "data_lake")
    for kind in ("AWS::Glue::Database", "AWS::Glue::SecurityConfiguration"):
        (resource,) = template.find_resources(kind).values()
        assert resource["DeletionPolicy"] == "Delete", kind
        assert resource["UpdateReplacePolicy"] == "Delete", kind


def test_the_trail_bucket_takes_logs_of_this_accounts_trails_only(synthesized: Synthesized) -> None:
    stack = synthesized.stages["prod"].data_lake
    assert stack.trail is not None
    bucket_id = stack.get_logical_id(stack.trail.bucket.node.default_child)
    (policy,) = (
        synthesized.template("prod", "data_lake")
        .find_resources("AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": bucket_id}}})
        .values()
    )
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [
        s for s in statements if s["Effect"] == "Deny" and s["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    ]
    assert deny["Condition"] == {"StringNotEquals": {"aws:SourceAccount": "222222222222"}}
    assert set(deny["Action"]) == {"s3:PutObject", "s3:GetBucketAcl"}
