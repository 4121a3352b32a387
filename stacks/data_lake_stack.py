"""DataLake stack: the stage's stateful storage and catalog, retained and protected where the stage keeps data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk.aws_s3 import CfnBucket
from constructs import Construct

from resolver import naming
from resolver.config import StageConfig
from stacks.constructs.catalog import CrawlTarget, LakeCatalog, TableSpec
from stacks.constructs.curation_job import CurationJob
from stacks.constructs.data_lake import LakeStorage
from stacks.constructs.lake_protection import AuditTrail, LakeBackup
from stacks.constructs.network import PrivateNetwork
from stacks.datasets import contract_path


class DataLakeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        network: PrivateNetwork,
        tables: Sequence[TableSpec] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, termination_protection=config.retain_data, **kwargs)
        self.storage = LakeStorage(
            self,
            "Lake",
            config=config.data_lake,
            retain=config.retain_data,
            access_log_retention=Duration.days(config.log_retention_days),
            capture_prefix=naming.capture_prefix(config),
        )
        lake = config.data_lake
        dataset = config.model.dataset
        raw = self.storage.raw
        self.catalog = LakeCatalog(
            self,
            "Catalog",
            database_name=naming.lake_database(config),
            key=self.storage.key,
            # The curation job registers curated and quarantine partitions itself; raw is crawled: the dataset's
            # prefix only, or (crawl_datasets_only false) the whole zone but the endpoint's data capture.
            crawled_zones={
                "raw": CrawlTarget(raw, prefixes=(f"{dataset}/",))
                if lake.crawl_datasets_only
                else CrawlTarget(raw, exclusions=(f"{naming.capture_prefix(config)}**",))
            },
            table_buckets={"raw": raw, "curated": self.storage.curated},
            tables=tables,
            crawler_schedule=lake.crawler_schedule,
        )
        # S3 sends the raw zone's object events to EventBridge (a bucket property, no custom resource).
        raw_bucket = self.storage.raw.node.default_child
        assert isinstance(raw_bucket, CfnBucket)
        raw_bucket.add_property_override("NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        self.curation = CurationJob(
            self,
            "Curation",
            job_name=naming.curation_job(config),
            dataset=dataset,
            contract=contract_path(dataset),
            stage=config.name,
            config=config.data_lake.etl,
            key=self.storage.key,
            raw=self.storage.raw,
            curated=self.storage.curated,
            artifacts=self.storage.artifacts,
            database=self.catalog.database,
            table_names=[f"curated_{dataset}", f"quarantine_{dataset}"],
            security_configuration=self.catalog.security_configuration,
            network=network,
        )
        zones = dict(self.storage.buckets)
        self.backup: LakeBackup | None = None
        if lake.backup.enabled:
            self.backup = LakeBackup(
                self,
                "Backup",
                buckets=zones,
                bucket_key=self.storage.key,
                config=lake.backup,
                name_prefix=f"{config.prefix}-lake",
            )
        self.trail: AuditTrail | None = None
        if lake.trail:
            self.trail = AuditTrail(
                self,
                "Audit",
                # Every bucket that holds lake data or what is built from it (not the access logs: a loop).
                data_event_buckets=[*zones.values(), self.storage.delivery],
                access_logs=self.storage.access_logs,
                retain=config.retain_data,
                log_retention=Duration.days(config.log_retention_days),
                abort_incomplete_upload_days=lake.abort_incomplete_upload_days,
            )
