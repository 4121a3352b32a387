"""What a stage costs while idle, priced from the templates of the one session synth."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from resolver.config import PlatformConfig
from stacks.costs import (
    HOURS_PER_MONTH,
    INTERFACE_ENDPOINT,
    KMS_KEY,
    MODEL_CONDITION,
    NAT_GATEWAY,
    OPTION_ENDPOINT,
    OPTION_EVERY_ZONE,
    OPTION_NAT,
    OPTION_NAT_PER_ZONE,
    OPTION_ZONE,
    PRICES,
    WITH_MODEL,
    StageCost,
    idle_costs,
    load_prices,
    main,
    markdown_report,
    stage_cost,
    text_report,
)
from stacks.network_needs import interface_endpoints
from stacks.summary import stacks_by_stage
from tests.conftest import Synthesized

STAGES = ["dev", "staging", "prod"]


@pytest.fixture(scope="module")
def costs(synthesized: Synthesized) -> dict[str, StageCost]:
    return {cost.stage: cost for cost in idle_costs(synthesized.outdir)}


def _types(outdir: Path, prefix: str) -> Counter[str]:
    """Resource types of one stage (its stacks are named <prefix>-...), counted straight from its templates."""
    types: Counter[str] = Counter()
    for _, stack, template_file in stacks_by_stage(outdir):
        if stack.startswith(f"{prefix}-"):
            types.update(r["Type"] for r in json.loads(template_file.read_text())["Resources"].values())
    return types


def _endpoint_template(variant: dict[str, Any]) -> dict[str, Any]:
    """The shape of an Endpoint stack: config and endpoint under the model condition."""
    return {
        "Resources": {
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Condition": MODEL_CONDITION,
                "Properties": {"ProductionVariants": [{"VariantName": "AllTraffic", **variant}]},
            },
            "Endpoint": {
                "Type": "AWS::SageMaker::Endpoint",
                "Condition": MODEL_CONDITION,
                "Properties": {"EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]}},
            },
        }
    }


def test_every_stage_is_reported_in_cdk_json_order(costs: dict[str, StageCost]) -> None:
    assert list(costs) == STAGES


@pytest.mark.parametrize("stage", STAGES)
def test_interface_endpoints_are_priced_per_endpoint_and_zone(
    costs: dict[str, StageCost], platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    endpoints = costs[stage].item(INTERFACE_ENDPOINT)
    if not interface_endpoints(config):  # dev: network.interface_endpoints [], no line at all
        assert endpoints is None and stage == "dev"
        return
    assert endpoints is not None
    assert endpoints.count == len(interface_endpoints(config)) * config.network.endpoint_zones
    assert endpoints.unit_price == pytest.approx(7.30)
    assert endpoints.condition is None


def test_no_nat_gateway_is_priced_in_a_stage_without_one(
    costs: dict[str, StageCost], platform_config: PlatformConfig
) -> None:
    without_nat = [stage for stage in STAGES if platform_config.stage(stage).network.nat_gateways == 0]
    assert without_nat, "cdk.json has no stage without NAT gateways any more: test the other case"
    for stage in without_nat:
        assert costs[stage].item(NAT_GATEWAY) is None, stage
        assert not any(item.item.startswith("Public IPv4") for item in costs[stage].items), stage


@pytest.mark.parametrize("stage", STAGES)
def test_every_kms_key_is_counted_at_a_dollar_a_month(
    costs: dict[str, StageCost], synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    keys = costs[stage].item(KMS_KEY)
    assert keys is not None
    assert keys.count == _types(synthesized.outdir, platform_config.stage(stage).prefix)["AWS::KMS::Key"] >= 1
    assert keys.monthly == keys.count * 1.00


@pytest.mark.parametrize("stage", STAGES)
def test_endpoint_instances_follow_the_config_and_count_only_with_a_deployed_model(
    costs: dict[str, StageCost], platform_config: PlatformConfig, stage: str
) -> None:
    endpoint = platform_config.stage(stage).endpoint
    cost = costs[stage]
    instances = {item.label: item for item in cost.items if item.item.startswith("SageMaker endpoint instance")}
    production = instances[f"SageMaker endpoint instance {endpoint.instance_type}, Endpoint-production ({WITH_MODEL})"]
    staging = instances[f"SageMaker endpoint instance {endpoint.instance_type}, Endpoint-staging ({WITH_MODEL})"]
    assert len(instances) == 2
    assert (production.count, staging.count) == (endpoint.instance_count, 1)
    assert production.unit_price == pytest.approx(PRICES[endpoint.instance_type] * HOURS_PER_MONTH)
    # Out of the idle total, in the total with a deployed model.
    conditional = sum(item.monthly or 0 for item in cost.items if item.condition == MODEL_CONDITION)
    assert conditional >= (production.monthly or 0) + (staging.monthly or 0) > 0
    assert cost.with_model == pytest.approx(cost.idle + conditional)
    assert cost.idle == pytest.approx(sum(item.monthly or 0 for item in cost.items if item.condition is None))


def test_prod_runs_two_production_instances_as_cdk_json_says(costs: dict[str, StageCost]) -> None:
    (production,) = [item for item in costs["prod"].items if item.item.endswith("Endpoint-production")]
    assert production.count == 2


def test_free_while_idle_types_are_listed_as_pay_per_use(
    costs: dict[str, StageCost], synthesized: Synthesized, platform_config: PlatformConfig
) -> None:
    pay_per_use = dict(costs["dev"].pay_per_use)
    types = _types(synthesized.outdir, platform_config.stage("dev").prefix)
    for kind in ("AWS::Lambda::Function", "AWS::S3::Bucket", "AWS::Events::Rule", "AWS::Glue::Job"):
        assert pay_per_use[kind] == types[kind] >= 1, kind
    assert pay_per_use["AWS::CodePipeline::Pipeline (V2)"] == types["AWS::CodePipeline::Pipeline"]
    assert costs["dev"].unpriced == ()


def test_an_unknown_instance_type_is_reported_unpriced_not_zero() -> None:
    cost = stage_cost("dev", [("Endpoint-staging", _endpoint_template({"InstanceType": "ml.x9.huge"}))])
    (item,) = cost.items
    assert (item.item, item.count, item.unit_price, item.monthly) == (
        "SageMaker endpoint instance ml.x9.huge, Endpoint-staging",
        1,
        None,
        None,
    )
    assert cost.unpriced == (item,)
    assert "unpriced (not in the totals): SageMaker endpoint instance ml.x9.huge" in text_report([cost])


def test_a_serverless_endpoint_costs_nothing_idle() -> None:
    template = _endpoint_template({"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}})
    cost = stage_cost("dev", [("Endpoint-staging", template)])
    assert cost.items == ()
    assert cost.pay_per_use == (("AWS::SageMaker::Endpoint (serverless)", 1),)


def test_a_resource_type_nobody_classified_is_unpriced() -> None:
    cost = stage_cost("dev", [("Search", {"Resources": {"Domain": {"Type": "AWS::OpenSearchService::Domain"}}})])
    assert [(item.item, item.unit_price) for item in cost.unpriced] == [("AWS::OpenSearchService::Domain", None)]


def test_prices_file_overrides_the_table(synthesized: Synthesized, tmp_path: Path) -> None:
    prices_file = tmp_path / "prices.json"
    prices_file.write_text(json.dumps({"vpc_interface_endpoint_az_hour": 0.02, "ml.m5.large": 0.2}))
    default = {cost.stage: cost for cost in idle_costs(synthesized.outdir)}["staging"]
    changed = {cost.stage: cost for cost in idle_costs(synthesized.outdir, load_prices(prices_file))}["staging"]
    endpoints = default.item(INTERFACE_ENDPOINT)
    assert endpoints is not None
    assert changed.idle == pytest.approx(default.idle + endpoints.count * 0.01 * HOURS_PER_MONTH)
    assert changed.with_model - changed.idle > default.with_model - default.idle


def test_a_prices_file_with_an_unknown_name_is_refused(tmp_path: Path) -> None:
    prices_file = tmp_path / "prices.json"
    prices_file.write_text(json.dumps({"kms_key_monthly": 1}))
    with pytest.raises(ValueError, match="unknown price 'kms_key_monthly'"):
        load_prices(prices_file)
    prices_file.write_text(json.dumps({"kms_key_month": "one"}))
    with pytest.raises(ValueError, match="must be a number"):
        load_prices(prices_file)


def test_markdown_has_one_row_per_item_a_column_per_stage_and_totals(costs: dict[str, StageCost]) -> None:
    text = markdown_report(list(costs.values()))
    first_table = text.split("\n\n", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in first_table.splitlines()]
    assert rows[0] == ["item", "unit USD/month", "dev", "staging", "prod"]
    labels = [row[0] for row in rows[2:]]
    items = {item.label for cost in costs.values() for item in cost.items}
    assert sorted(labels[:-2]) == sorted(items)
    assert len(labels[:-2]) == len(items)
    assert labels[-2:] == ["**idle total**", f"**total {WITH_MODEL}**"]
    assert rows[-2][2:] == [f"**{cost.idle:,.2f}**" for cost in costs.values()]
    assert rows[-1][2:] == [f"**{cost.with_model:,.2f}**" for cost in costs.values()]


def _fake_assembly(root: Path, stage: str, template: dict[str, Any]) -> Path:
    """A cloud assembly as `cdk synth -c stage=...` writes it: the stage is a nested assembly demo-<stage>."""
    stage_dir = root / f"assembly-demo-{stage}"
    stage_dir.mkdir(parents=True)
    nested = {"directoryName": stage_dir.name, "displayName": f"demo-{stage}"}
    (root / "manifest.json").write_text(
        json.dumps({"artifacts": {stage_dir.name: {"type": "cdk:cloud-assembly", "properties": nested}}})
    )
    stack = {"templateFile": "Keys.template.json", "stackName": f"demo-{stage}-Keys"}
    (stage_dir / "manifest.json").write_text(
        json.dumps({"artifacts": {"Keys": {"type": "aws:cloudformation:stack", "properties": stack}}})
    )
    (stage_dir / "Keys.template.json").write_text(json.dumps(template))
    return root


def test_the_cli_reads_stage_assemblies_and_applies_prices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = _fake_assembly(
        tmp_path / "dev",
        "dev",
        {"Resources": {"Key": {"Type": "AWS::KMS::Key"}, "Nat": {"Type": "AWS::EC2::NatGateway"}}},
    )
    prod = _fake_assembly(tmp_path / "prod", "prod", {"Resources": {"Key": {"Type": "AWS::KMS::Key"}}})
    prices_file = tmp_path / "prices.json"
    prices_file.write_text(json.dumps({"kms_key_month": 2.0}))

    main([str(dev), "--prices", str(prices_file)])
    out = capsys.readouterr().out
    assert out.startswith("dev: 34.85 USD a month idle, 34.85 with a deployed model\n")
    assert "  NAT gateway" in out
    main([str(dev), str(prod), "--markdown"])
    out = capsys.readouterr().out
    assert "| item | unit USD/month | dev | prod |" in out
    assert "| NAT gateway | 32.85 | 32.85 (1) | - |" in out
    assert "| **idle total** | | **33.85** | **1.00** |" in out


def test_the_cli_says_when_there_is_no_assembly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "cdk.out")])
    assert exit_info.value.code == 2
    assert "not a cloud assembly (no manifest.json); run make synth first" in capsys.readouterr().err


def test_the_readme_cost_table_is_the_scripts_output(synthesized: Synthesized) -> None:
    """The README's table is produced by `make costs ARGS=--markdown`, not written by hand."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- costs:start -->\n", 1)[1].split("\n<!-- costs:end -->", 1)[0]
    assert block.strip() == markdown_report(idle_costs(synthesized.outdir)).strip(), (
        "README.md's cost table is stale: run `make costs ARGS=--markdown` and paste its output"
    )


def test_the_issue_targets_hold_idle(costs: dict[str, StageCost]) -> None:
    """Idle USD a month: dev at most 10, staging at most 50, prod below the 207 of isolated subnets in 3 zones
    with 9 endpoints."""
    assert costs["dev"].idle <= 10
    assert costs["staging"].idle <= 50
    assert costs["prod"].idle < 207
    assert costs["dev"].idle <= costs["staging"].idle < costs["prod"].idle


def test_hosting_is_priced_at_the_real_time_inference_rate_not_the_training_rate() -> None:
    # https://aws.amazon.com/sagemaker/ai/pricing/: ml.m5.large real-time inference 0.134/h (training: 0.115).
    assert PRICES["ml.m5.large"] == 0.134
    assert PRICES["ml.m5.xlarge"] == pytest.approx(2 * PRICES["ml.m5.large"], rel=0.01)


@pytest.mark.parametrize("stage", STAGES)
def test_network_options_are_priced_from_the_stage_templates(
    costs: dict[str, StageCost], platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    endpoint = PRICES["vpc_interface_endpoint_az_hour"] * HOURS_PER_MONTH
    nat = (PRICES["nat_gateway_hour"] + PRICES["public_ipv4_hour"]) * HOURS_PER_MONTH
    options = dict(costs[stage].options)
    services = len(interface_endpoints(config))
    network = config.network
    assert options[OPTION_ENDPOINT] == pytest.approx(network.endpoint_zones * endpoint)
    every_zone = (network.az_count - network.endpoint_zones) * services * endpoint
    assert options[OPTION_EVERY_ZONE] == pytest.approx(every_zone, abs=0.01)
    zone = services * endpoint if network.endpoint_zones == network.az_count else 0
    assert options[OPTION_ZONE] == pytest.approx(zone, abs=0.01)
    assert options[OPTION_NAT] == pytest.approx(nat, abs=0.01)
    assert options[OPTION_NAT_PER_ZONE] == pytest.approx(network.az_count * nat, abs=0.01)
    assert f"| {OPTION_NAT} |" in markdown_report(list(costs.values()))
