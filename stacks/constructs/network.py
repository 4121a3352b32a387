"""A private VPC: isolated subnets, gateway and interface endpoints, flow logs."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import NetworkConfig
from stacks.constructs.encryption import platform_key


class PrivateNetwork(Construct):
    """VPC whose workloads reach AWS services through endpoints, not the internet.

    Without NAT (the default) the subnets are isolated: S3 and DynamoDB through
    gateway endpoints, every other service through the configured interface
    endpoints, which share one security group that admits HTTPS from the VPC only.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: NetworkConfig,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        if config.nat_gateways:
            subnets = [
                ec2.SubnetConfiguration(
                    name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=config.subnet_prefix_length
                ),
                ec2.SubnetConfiguration(
                    name="Private",
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                    cidr_mask=config.subnet_prefix_length,
                ),
            ]
        else:
            subnets = [
                ec2.SubnetConfiguration(
                    name="Isolated",
                    subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                    cidr_mask=config.subnet_prefix_length,
                )
            ]
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
            max_azs=config.az_count,
            nat_gateways=config.nat_gateways,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        self.workload_subnet_type = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS if config.nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
        )
        self.workload_subnets = ec2.SubnetSelection(subnet_type=self.workload_subnet_type)

        self.flow_log_key = platform_key(
            self,
            "FlowLogKey",
            description="Encrypts the VPC flow log group",
            removal_policy=removal_policy,
        )
        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogGroup",
            encryption_key=self.flow_log_key,
            retention=log_retention,
            removal_policy=removal_policy,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="Interface endpoints: HTTPS from inside the VPC only",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(config.vpc_cidr), ec2.Port.tcp(443), "HTTPS from the VPC"
        )
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        for service in config.interface_endpoints:
            self.interface_endpoints[service] = self.vpc.add_interface_endpoint(
                _endpoint_id(service),
                service=ec2.InterfaceVpcEndpointAwsService(service),
                subnets=self.workload_subnets,
                security_groups=[self.endpoint_security_group],
                private_dns_enabled=True,
                open=False,
            )

    @property
    def workload_subnet_ids(self) -> list[str]:
        """Subnets where workloads (SageMaker jobs, endpoints) run: isolated, or private behind NAT."""
        return self.vpc.select_subnets(subnet_type=self.workload_subnet_type).subnet_ids


def _endpoint_id(service: str) -> str:
    """sagemaker.api -> SagemakerApiEndpoint: a stable construct id per service."""
    words = service.replace("-", ".").split(".")
    return "".join(word.capitalize() for word in words) + "Endpoint"
