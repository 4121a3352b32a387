"""DataLake stack: the stage's stateful storage and catalog, retained and protected where the stage keeps data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk.aws_s3 import CfnBucket
from constructs import Construct

from stacks import naming
from stacks.config import StageConfig
from stacks.constructs.catalog import LakeCatalog, TableSpec
from stacks.constructs.curation_job import CurationJob
from stacks.constructs.data_lake import LakeStorage
from stacks.constructs.network import PrivateNetwork
from stacks.datasets import contract_path
from stacks.retention import removal_policy


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
        )
        self.catalog = LakeCatalog(
            self,
            "Catalog",
            database_name=f"{config.project}_{config.name}_lake".replace("-", "_"),
            key=self.storage.key,
            # The curation job registers curated and quarantine partitions itself; raw is crawled.
            crawled_zones={"raw": self.storage.raw},
            table_buckets={"raw": self.storage.raw, "curated": self.storage.curated},
            tables=tables,
            crawler_schedule=config.data_lake.crawler_schedule,
            removal_policy=removal_policy(config),
        )
        # S3 sends the raw zone's object events to EventBridge (a bucket property, no custom resource).
        raw_bucket = self.storage.raw.node.default_child
        assert isinstance(raw_bucket, CfnBucket)
        raw_bucket.add_property_override("NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        dataset = config.model.dataset
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
