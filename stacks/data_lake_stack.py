"""DataLake stack: the stage's stateful storage and catalog, retained and protected where the stage keeps data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, Stack
from constructs import Construct

from stacks.config import StageConfig
from stacks.constructs.catalog import LakeCatalog, TableSpec
from stacks.constructs.data_lake import LakeStorage
from stacks.retention import removal_policy


class DataLakeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
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
            crawled_zones={"raw": self.storage.raw, "curated": self.storage.curated},
            table_buckets={"raw": self.storage.raw, "curated": self.storage.curated},
            tables=tables,
            crawler_schedule=config.data_lake.crawler_schedule,
            removal_policy=removal_policy(config),
        )
