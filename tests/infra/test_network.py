"""What the Network stack promises: private subnets, endpoints instead of internet, logged traffic."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from resolver.config import INTERFACE_ENDPOINT_SERVICES, PlatformConfig
from stacks.network_needs import endpoint_service, gateway_services, stage_workloads
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
def test_one_gateway_endpoint_for_s3_as_no_workload_in_the_vpc_calls_dynamodb(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    template = synthesized.template(stage, "network")
    gateways = template.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Gateway"}})
    services = [json.dumps(endpoint["Properties"]["ServiceName"]) for endpoint in gateways.values()]
    assert len(services) == 1 and ".s3" in services[0]
    assert gateway_services(stage_workloads(platform_config.stage(stage))) == ("s3",)


@pytest.mark.parametrize("stage", STAGES)
def test_interface_endpoints_are_what_the_workloads_need_behind_the_endpoint_security_group(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    stack = synthesized.stages[stage].network
    network = stack.network
    template = synthesized.template(stage, "network")
    interfaces = template.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}})
    by_service_name = {
        ".".join((endpoint_service(short)[1], config.region, endpoint_service(short)[0])): short
        for short in INTERFACE_ENDPOINT_SERVICES
    }
    services = {by_service_name[endpoint["Properties"]["ServiceName"]] for endpoint in interfaces.values()}
    needed = {service for workload in stage_workloads(config) for service in workload.interface_services}
    if config.network.interface_endpoints is None:
        assert services == needed, "exactly the union of the workloads' needs (no extras configured)"
    else:  # an exact list: what it names, holding every need a workload cannot run without
        assert services == set(config.network.interface_endpoints)
        assert {service for workload in stage_workloads(config) for service in workload.required_services} <= services
    # The endpoints main created and no workload calls: events, kms, sts, sagemaker.runtime, ecr.*, sagemaker.api.
    assert not services & {"events", "kms", "sts", "sagemaker.runtime", "sagemaker.api", "ecr.api", "ecr.dkr"}
    sg_id = stack.resolve(network.endpoint_security_group.security_group_id)
    for endpoint in interfaces.values():
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True
        assert endpoint["Properties"]["SecurityGroupIds"] == [sg_id]
        assert len(endpoint["Properties"]["SubnetIds"]) == config.network.endpoint_zones


@pytest.mark.parametrize("stage", STAGES)
def test_every_vpc_endpoint_admits_only_this_accounts_principals_and_resources(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    account = synthesized.stages[stage].network.resolve(synthesized.stages[stage].network.account)
    endpoints = synthesized.template(stage, "network").find_resources("AWS::EC2::VPCEndpoint")
    assert endpoints
    for name, endpoint in endpoints.items():
        policy = endpoint["Properties"].get("PolicyDocument")
        assert policy is not None, f"{name}: no policy means AWS's default, full access for anyone"
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            assert statement["Condition"]["StringEquals"] == {"aws:PrincipalAccount": account}, name
            assert statement["Condition"]["StringEqualsIfExists"] == {"aws:ResourceAccount": account}, name


def _egress_rules(template: Template) -> list[dict[str, Any]]:
    rules = [
        rule
        for group in template.find_resources("AWS::EC2::SecurityGroup").values()
        for rule in group["Properties"].get("SecurityGroupEgress", [])
    ]
    rules += [egress["Properties"] for egress in template.find_resources("AWS::EC2::SecurityGroupEgress").values()]
    return rules


@pytest.mark.parametrize("stage", STAGES)
def test_no_security_group_of_the_stage_reaches_the_internet(synthesized: Synthesized, stage: str) -> None:
    platform = synthesized.stages[stage]
    stacks = [platform.network, platform.data_lake, platform.ml_platform, *platform.endpoints.values()]
    workload_groups = 0
    for stack in stacks:
        template = Template.from_stack(stack)
        for rule in _egress_rules(template):
            assert rule.get("CidrIp") in (None, "255.255.255.255/32"), f"{stack.stack_name}: {rule}"
            assert "CidrIpv6" not in rule, f"{stack.stack_name}: {rule}"
        egress = [rule["Properties"] for rule in template.find_resources("AWS::EC2::SecurityGroupEgress").values()]
        to_s3 = [rule for rule in egress if "DestinationPrefixListId" in rule]
        to_endpoints = [
            rule for rule in egress if "EndpointSecurityGroup" in json.dumps(rule.get("DestinationSecurityGroupId"))
        ]
        to_itself = [
            rule
            for rule in egress
            if rule.get("DestinationSecurityGroupId") == {"Fn::GetAtt": [rule["GroupId"]["Fn::GetAtt"][0], "GroupId"]}
        ]
        assert len(to_s3) + len(to_endpoints) + len(to_itself) == len(egress), f"{stack.stack_name}: {egress}"
        for rule in to_s3 + to_endpoints:
            assert (rule["FromPort"], rule["ToPort"], rule["IpProtocol"]) == (443, 443, "tcp")
        # Each workload group reaches S3, and the interface endpoints where the stage has any.
        endpoint_groups = len(to_s3) if platform.network.network.interface_endpoints else 0
        assert len(to_endpoints) == endpoint_groups, (
            f"{stack.stack_name}: each workload group reaches S3 and the endpoints"
        )
        workload_groups += len(to_s3)
    # Model-build/drift jobs, the two endpoints, the Glue job where it runs in the VPC (and the data-quality jobs).
    assert workload_groups >= 3


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
