"""Wiring: one CDK Stage per platform stage, its stacks passed to each other as objects."""

from __future__ import annotations

from aws_cdk import Environment, PermissionsBoundary, Stack, Stage, Tags
from constructs import Construct

from resolver import naming
from resolver.config import StageConfig
from stacks.cicd_stack import CICDStack
from stacks.constructs.curation_job import QUARANTINE_PREFIX
from stacks.data_lake_stack import DataLakeStack
from stacks.datasets import curated_table, quarantine_table
from stacks.endpoint_stack import TARGETS, EndpointStack
from stacks.ml_platform_stack import MLPlatformStack
from stacks.network_stack import NetworkStack
from stacks.operations_stack import OperationsStack


class PlatformStage(Stage):
    """Every stack of one stage (dev, staging, prod), named <project>-<stage>-<Stack>."""

    def __init__(self, scope: Construct, config: StageConfig) -> None:
        # Every IAM role of the stage carries the project's permissions boundary (bootstrap/, README "Trust model").
        super().__init__(
            scope,
            config.prefix,
            env=Environment(account=config.account, region=config.region),
            permissions_boundary=PermissionsBoundary.from_name(naming.permissions_boundary(config)),
        )
        self.config = config
        # Set by stacks.app.build when the stage updates itself from its repository.
        self.infra_pipeline: Stack | None = None
        self.network = NetworkStack(self, "Network", config=config, description=f"{config.prefix}: private VPC")
        self.data_lake = DataLakeStack(
            self,
            "DataLake",
            config=config,
            network=self.network.network,
            tables=[curated_table(config.model.dataset), quarantine_table(config.model.dataset, QUARANTINE_PREFIX)],
            description=f"{config.prefix}: data lake storage and catalog",
        )
        self.ml_platform = MLPlatformStack(
            self,
            "MLPlatform",
            config=config,
            network=self.network.network,
            lake=self.data_lake.storage,
            description=f"{config.prefix}: model registry and model-build pipeline",
        )
        self.endpoints = {
            target: EndpointStack(
                self,
                f"Endpoint-{target}",
                config=config,
                target=target,
                network=self.network.network,
                lake=self.data_lake.storage,
                description=f"{config.prefix}: {target} endpoint of {config.model.name} (empty until a version is "
                "approved)",
            )
            for target in TARGETS
        }
        for endpoint in self.endpoints.values():
            # CloudFormation reads the deployed-version parameter the MLPlatform stack creates.
            endpoint.add_stack_dependency(self.ml_platform)
        self.operations = OperationsStack(
            self,
            "Operations",
            config=config,
            lake=self.data_lake.storage,
            description=f"{config.prefix}: notifications, event-driven functions, drift alarms, schedules, dashboard",
        )
        # Rules and schedules name the pipelines and the registry group; create those first.
        self.operations.add_stack_dependency(self.ml_platform)
        self.cicd = CICDStack(
            self,
            "CICD",
            config=config,
            lake=self.data_lake.storage,
            topic=self.operations.topic,
            description=f"{config.prefix}: model-build and model-deploy CodePipelines",
        )
        Tags.of(self).add("mlops:project", config.project)
        Tags.of(self).add("mlops:stage", config.name)
