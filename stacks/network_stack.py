"""Network stack: the private VPC every workload of the stage runs in, with the endpoints they need."""

from __future__ import annotations

from typing import Any

from aws_cdk import Fn, Stack
from constructs import Construct

from stacks.config import StageConfig
from stacks.constructs.network import PrivateNetwork
from stacks.network_needs import gateway_services, interface_endpoints, stage_workloads
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

    @property
    def availability_zones(self) -> list[str]:
        """The first N zones of the region, resolved at deploy time.

        CDK would otherwise need a credentialed context lookup for an account-bound
        stack, or cap an account-agnostic one at two zones.
        """
        return [Fn.select(index, Fn.get_azs()) for index in range(self._az_count)]
