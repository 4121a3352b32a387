"""A private VPC: isolated subnets, gateway and interface endpoints, flow logs.

The endpoints are what the stage's in-VPC workloads need (stacks.network_needs), each with a policy
that admits only this account's principals acting on this account's resources.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from resolver.config import NetworkConfig
from stacks.constructs.encryption import platform_key
from stacks.nag import acknowledge
from stacks.network_needs import Workload, check_met, endpoint_service

# The construct id CDK gives the singleton function behind every AwsCustomResource of a stack.
_CUSTOM_RESOURCE_PROVIDER = "AWS679f53fac002430cb0da5b7982bd2287"
_GATEWAYS = {"s3": ec2.GatewayVpcEndpointAwsService.S3, "dynamodb": ec2.GatewayVpcEndpointAwsService.DYNAMODB}


class PrivateNetwork(Construct):
    """VPC whose workloads reach AWS services through endpoints, not the internet.

    Without NAT (the default) the subnets are isolated: S3 (and DynamoDB, if a workload needs it)
    through gateway endpoints, every other service through the interface endpoints the workloads
    need, which share one security group that admits HTTPS from the VPC only. Workloads get their
    security groups from `workload_security_group`: HTTPS out to that group and to S3's prefix list only.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: NetworkConfig,
        interface_services: Sequence[str],
        gateway_services: Sequence[str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
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
        self.gateway_services = tuple(gateway_services)
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
                _gateway_id(service): ec2.GatewayVpcEndpointOptions(service=_GATEWAYS[service])
                for service in self.gateway_services
            },
        )
        self.workload_subnet_type = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS if config.nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
        )
        self.workload_subnets = ec2.SubnetSelection(subnet_type=self.workload_subnet_type)
        # Only this account's principals, on this account's resources (finding: default allow-all policies).
        for service in self.gateway_services:
            gateway = self.vpc.node.find_child(_gateway_id(service))
            assert isinstance(gateway, ec2.GatewayVpcEndpoint)
            gateway.add_to_policy(_own_account_statement(stack, service))

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
        # The first endpoint_az_count zones hold the endpoints' interfaces; the other zones reach them across.
        endpoint_subnets = ec2.SubnetSelection(
            subnets=self.vpc.select_subnets(subnet_type=self.workload_subnet_type).subnets[: config.endpoint_zones]
        )
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        for service in interface_services:
            endpoint = self.vpc.add_interface_endpoint(
                _endpoint_id(service),
                service=ec2.InterfaceVpcEndpointAwsService(*endpoint_service(service)),
                subnets=endpoint_subnets,
                security_groups=[self.endpoint_security_group],
                private_dns_enabled=True,
                open=False,
            )
            endpoint.add_to_policy(_own_account_statement(stack, service))
            self.interface_endpoints[service] = endpoint
        self._s3_prefix_list: str | None = None
        self.s3_prefix_list_id  # noqa: B018 - created here, in the Network stack, whoever asks first

    @property
    def workload_subnet_ids(self) -> list[str]:
        """Subnets where workloads (SageMaker jobs, endpoints) run: isolated, or private behind NAT."""
        return self.vpc.select_subnets(subnet_type=self.workload_subnet_type).subnet_ids

    def require(self, workload: Workload) -> None:
        """Fails the synth (ConfigError, one line) when this network lacks an endpoint the workload needs."""
        check_met(workload, self.interface_endpoints, self.gateway_services)

    @property
    def s3_prefix_list_id(self) -> str:
        """The id of the AWS-managed prefix list of S3 in the region, looked up at deploy time.

        CloudFormation has no attribute or parameter type for it, and a CDK context lookup needs
        credentials at synth time: a custom resource calls ec2:DescribeManagedPrefixLists once.
        """
        if self._s3_prefix_list is None:
            stack = Stack.of(self)
            name = f"com.amazonaws.{stack.region}.s3"
            call = cr.AwsSdkCall(
                service="EC2",
                action="describeManagedPrefixLists",
                parameters={"Filters": [{"Name": "prefix-list-name", "Values": [name]}]},
                physical_resource_id=cr.PhysicalResourceId.of(name),
                output_paths=["PrefixLists.0.PrefixListId"],
            )
            lookup = cr.AwsCustomResource(
                self,
                "S3PrefixList",
                on_create=call,
                on_update=call,
                # DescribeManagedPrefixLists has no resource-level permissions.
                policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE),
                install_latest_aws_sdk=False,
            )
            acknowledge(
                lookup,
                {
                    "AwsSolutions-IAM5[Resource::*]": "ec2:DescribeManagedPrefixLists has no resource level; it is "
                    "the lookup's only action."
                },
            )
            provider = stack.node.try_find_child(_CUSTOM_RESOURCE_PROVIDER)
            if provider is not None:
                acknowledge(
                    provider,
                    {
                        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AWSLambdaBasicExecutionRole]": "The CDK-provided handler of the S3 prefix-list lookup "
                        "writes only its own logs with it.",
                    },
                )
            self._lookup = lookup
            self._s3_prefix_list = lookup.get_response_field("PrefixLists.0.PrefixListId")
        return self._s3_prefix_list

    def workload_security_group(
        self, scope: Construct, id_: str, *, description: str, peers: bool = False
    ) -> ec2.SecurityGroup:
        """A security group for an in-VPC workload: HTTPS out to the interface endpoints and to S3, nothing else.

        ``peers``: all TCP to and from the group itself (distributed jobs; Glue's NETWORK connections
        require a self-referencing rule).
        """
        group = ec2.SecurityGroup(scope, id_, vpc=self.vpc, description=description, allow_all_outbound=False)
        if self.interface_endpoints:
            group.add_egress_rule(self.endpoint_security_group, ec2.Port.tcp(443), "HTTPS to the interface endpoints")
        group.add_egress_rule(
            ec2.Peer.prefix_list(self.s3_prefix_list_id), ec2.Port.tcp(443), "HTTPS to S3 (gateway endpoint)"
        )
        if peers:
            group.add_ingress_rule(group, ec2.Port.all_tcp(), "From the other instances of the workload")
            group.add_egress_rule(group, ec2.Port.all_tcp(), "To the other instances of the workload")
        return group


def _own_account_statement(stack: Stack, service: str) -> iam.PolicyStatement:
    """Any action, only by this account's principals on this account's resources.

    aws:ResourceAccount is absent for actions without a resource (cloudwatch:PutMetricData), hence IfExists.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourceaccount
    """
    return iam.PolicyStatement(
        sid=f"OnlyThisAccount{_endpoint_id(service).removesuffix('Endpoint')}",
        principals=[iam.AnyPrincipal()],
        actions=["*"],
        resources=["*"],
        conditions={
            "StringEquals": {"aws:PrincipalAccount": stack.account},
            "StringEqualsIfExists": {"aws:ResourceAccount": stack.account},
        },
    )


def _gateway_id(service: str) -> str:
    return {"s3": "S3", "dynamodb": "DynamoDb"}[service]


def _endpoint_id(service: str) -> str:
    """sagemaker.api -> SagemakerApiEndpoint: a stable construct id per service."""
    words = service.replace("-", ".").split(".")
    return "".join(word.capitalize() for word in words) + "Endpoint"
