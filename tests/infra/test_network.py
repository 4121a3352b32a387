"""What the Network stack promises: private subnets, endpoints instead of internet, logged traffic."""

from __future__ import annotations

import dataclasses

import pytest
from aws_cdk.assertions import Match, Template

from stacks.config import PlatformConfig
from stacks.network_stack import NetworkStack
from tests.conftest import Synthesized, new_app

STAGES = ["dev", "staging", "prod"]


@pytest.mark.parametrize("stage", STAGES)
def test_no_route_to_the_internet_by_default(synthesized: Synthesized, stage: str) -> None:
    template = synthesized.template(stage, "network")
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::InternetGateway", 0)
    template.resource_count_is("AWS::EC2::EIP", 0)
    for subnet in template.find_resources("AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


@pytest.mark.parametrize("stage", STAGES)
def test_one_isolated_subnet_per_configured_zone(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage).network
    template = synthesized.template(stage, "network")
    subnets = template.find_resources("AWS::EC2::Subnet")
    assert len(subnets) == config.az_count
    zones = sorted(subnet["Properties"]["AvailabilityZone"]["Fn::Select"][0] for subnet in subnets.values())
    assert zones == list(range(config.az_count)), "each subnet in its own zone, picked at deploy time"
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": config.vpc_cidr, "EnableDnsHostnames": True})


@pytest.mark.parametrize("stage", STAGES)
def test_gateway_endpoints_for_s3_and_dynamodb(synthesized: Synthesized, stage: str) -> None:
    template = synthesized.template(stage, "network")
    gateways = template.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Gateway"}})
    services = sorted(str(endpoint["Properties"]["ServiceName"]) for endpoint in gateways.values())
    assert len(services) == 2
    assert "dynamodb" in services[0] and "s3" in services[1]


@pytest.mark.parametrize("stage", STAGES)
def test_configured_interface_endpoints_behind_the_endpoint_security_group(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    stack = synthesized.stages[stage].network
    network = stack.network
    template = synthesized.template(stage, "network")
    interfaces = template.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}})
    expected = {f"com.amazonaws.{config.region}.{service}" for service in config.network.interface_endpoints}
    assert {endpoint["Properties"]["ServiceName"] for endpoint in interfaces.values()} == expected
    sg_id = stack.resolve(network.endpoint_security_group.security_group_id)
    for endpoint in interfaces.values():
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True
        assert endpoint["Properties"]["SecurityGroupIds"] == [sg_id]
        assert len(endpoint["Properties"]["SubnetIds"]) == config.network.az_count


def test_sagemaker_needs_are_in_the_default_endpoints(platform_config: PlatformConfig) -> None:
    needed = {"sagemaker.api", "sagemaker.runtime", "sts", "logs", "monitoring", "ecr.api", "ecr.dkr", "kms", "events"}
    for stage in platform_config.stages.values():
        assert needed <= set(stage.network.interface_endpoints), stage.name


@pytest.mark.parametrize("stage", STAGES)
def test_endpoint_security_group_admits_only_https_from_the_vpc(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    template = synthesized.template(stage, "network")
    groups = template.find_resources("AWS::EC2::SecurityGroup")
    assert len(groups) == 1
    (group,) = groups.values()
    assert group["Properties"]["SecurityGroupIngress"] == [
        {
            "CidrIp": platform_config.stage(stage).network.vpc_cidr,
            "Description": "HTTPS from the VPC",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    # CDK's marker rule for "no egress": an ICMP type that does not exist.
    assert group["Properties"]["SecurityGroupEgress"][0]["CidrIp"] == "255.255.255.255/32"
    template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)


@pytest.mark.parametrize("stage", STAGES)
def test_default_security_group_is_stripped(synthesized: Synthesized, stage: str) -> None:
    template = synthesized.template(stage, "network")
    template.has_resource_properties(
        "Custom::VpcRestrictDefaultSG",
        {"DefaultSecurityGroupId": {"Fn::GetAtt": [Match.any_value(), "DefaultSecurityGroup"]}},
    )


@pytest.mark.parametrize("stage", STAGES)
def test_all_traffic_flow_logs_to_an_encrypted_log_group_with_stage_retention(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    template = synthesized.template(stage, "network")
    stack = synthesized.stages[stage].network
    network, resolve = stack.network, stack.resolve
    template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {
            "ResourceType": "VPC",
            "TrafficType": "ALL",
            "LogDestinationType": "cloud-watch-logs",
            "LogGroupName": resolve(network.flow_log_group.log_group_name),
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "KmsKeyId": resolve(network.flow_log_key.key_arn),
            "RetentionInDays": platform_config.stage(stage).log_retention_days,
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_flow_log_key_admits_only_log_groups_of_its_own_account_and_region(synthesized: Synthesized) -> None:
    prod_log_groups = "arn:aws:logs:us-east-1:222222222222:log-group:*"
    template = synthesized.template("prod", "network")
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": prod_log_groups}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_nat_is_created_only_when_config_asks(platform_config: PlatformConfig) -> None:
    dev = platform_config.stage("dev")
    with_nat = dataclasses.replace(dev, network=dataclasses.replace(dev.network, nat_gateways=1))
    app = new_app()
    template = Template.from_stack(NetworkStack(app, "NatNetwork", config=with_nat))
    template.resource_count_is("AWS::EC2::NatGateway", 1)
    template.resource_count_is("AWS::EC2::InternetGateway", 1)
    interfaces = template.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}})
    private_subnets = template.find_resources("AWS::EC2::Subnet", {"Properties": {"MapPublicIpOnLaunch": False}})
    for endpoint in interfaces.values():
        subnet_refs = {ref["Ref"] for ref in endpoint["Properties"]["SubnetIds"]}
        assert subnet_refs <= set(private_subnets), "endpoints live in the private subnets, not the public ones"
