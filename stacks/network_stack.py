"""Network stack: the private VPC every workload of the stage runs in, with the endpoints they need."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, Fn, Stack
from constructs import Construct

from resolver.config import StageConfig
from stacks.constructs.network import PrivateNetwork
from stacks.network_needs import describe, gateway_services, interface_endpoints, lost_telemetry, stage_workloads
from stacks.retention import log_retention, removal_policy


class NetworkStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: StageConfig, **kwargs: Any) -> None:
        self._az_count = config.network.az_count
        super().__init__(scope, id_, **kwargs)
        self.network = PrivateNetwork(
            self,
            "Network",
            config=config.network,
            interface_services=interface_endpoints(config),
            gateway_services=gateway_services(stage_workloads(config)),
            log_retention=log_retention(config),
            removal_policy=removal_policy(config),
        )
        self.vpc = self.network.vpc
        lost = lost_telemetry(config)
        if lost:
            # network.interface_endpoints leaves out what SageMaker sends these workloads' logs and metrics
            # through (stacks/network_needs.py): they run, but their logs and instance metrics stay out of CloudWatch.
            Annotations.of(self).add_info(
                f"{config.prefix}: no CloudWatch logs or instance metrics through the missing endpoints: "
                f"{describe(lost)}"
            )

    @property
    def availability_zones(self) -> list[str]:
        """The first N zones of the region, resolved at deploy time.

        CDK would otherwise need a credentialed context lookup for an account-bound
        stack, or cap an account-agnostic one at two zones.
        """
        return [Fn.select(index, Fn.get_azs()) for index in range(self._az_count)]
