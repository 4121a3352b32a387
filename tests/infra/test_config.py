"""The stage config: what cdk.json promises, and one readable error per kind of mistake."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from resolver.config import ConfigError, PlatformConfig, load_config
from tests.conftest import ROOT


def test_cdk_json_defines_dev_staging_and_prod(platform_config: PlatformConfig) -> None:
    assert {"dev", "staging", "prod"} <= set(platform_config.stages)
    dev, prod = platform_config.stage("dev"), platform_config.stage("prod")
    assert dev.account is None, "dev synthesizes without an account"
    assert prod.account is not None and prod.retain_data
    assert all(stage.network.nat_gateways == 0 for stage in platform_config.stages.values()), "NAT is opt-in"
    assert prod.network.az_count == 3


def test_defaults_are_merged_under_each_stage(platform_config: PlatformConfig) -> None:
    staging = platform_config.stage("staging")
    # staging overrides only the CIDR of its network block; the rest comes from defaults
    assert staging.network.vpc_cidr == "10.20.0.0/16"
    assert staging.network.az_count == platform_config.stage("prod").network.az_count - 1 == 2
    # Staging and prod derive their interface endpoints from their workloads (stacks.network_needs); dev lists
    # none (its jobs' and endpoints' logs and instance metrics stay out of CloudWatch, README "What it costs idle").
    assert staging.network.interface_endpoints is None is platform_config.stage("prod").network.interface_endpoints
    assert platform_config.stage("dev").network.interface_endpoints == ()


def test_config_is_frozen(platform_config: PlatformConfig) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        platform_config.stage("dev").network.az_count = 5  # type: ignore[misc]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(context: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = context["mlops"]
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(context: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = context["mlops"]
        for key in parents:
            node = node[key]
        del node[leaf]

    return mutate


def _both(*mutations: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(context: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(context)

    return mutate


BAD_CONFIGS = {
    "malformed CIDR": (
        _set("stages.dev.network.vpc_cidr", "10.0.0.0/33"),
        'mlops.stages.dev.network.vpc_cidr: "10.0.0.0/33" is not a valid IPv4 CIDR block',
    ),
    "CIDR with host bits": (
        _set("stages.dev.network.vpc_cidr", "10.10.0.1/16"),
        'mlops.stages.dev.network.vpc_cidr: "10.10.0.1/16" is not a valid IPv4 CIDR block',
    ),
    "CIDR overlapping another stage": (
        _set("stages.staging.network.vpc_cidr", "10.10.128.0/17"),
        'mlops.stages.staging.network.vpc_cidr: "10.10.128.0/17" overlaps mlops.stages.dev.network.vpc_cidr '
        '"10.10.0.0/16"',
    ),
    "CIDR overlapping a reserved range": (
        _set("reserved_cidrs", ["10.30.0.0/20"]),
        'mlops.stages.prod.network.vpc_cidr: "10.30.0.0/16" overlaps mlops.reserved_cidrs[0] "10.30.0.0/20"',
    ),
    "CIDR too small for the subnets": (
        lambda context: context["mlops"]["stages"]["prod"]["network"].update(
            vpc_cidr="10.30.0.0/23", subnet_prefix_length=24
        ),
        'mlops.stages.prod.network.vpc_cidr: "10.30.0.0/23" cannot hold 3 subnets of /24 (3 AZs)',
    ),
    "subnet prefix not inside the VPC": (
        _set("stages.prod.network.vpc_cidr", "10.30.0.0/22"),
        "mlops.stages.prod.network.subnet_prefix_length: 20 is out of range, expected 23 to 28",
    ),
    "AZ count zero": (
        _set("stages.dev.network.az_count", 0),
        "mlops.stages.dev.network.az_count: 0 is out of range, expected 1 to 3",
    ),
    "AZ count above the maximum": (
        _set("defaults.network.az_count", 4),
        # dev sets its own az_count (1): the first stage that takes the default is staging
        "mlops.stages.staging.network.az_count: 4 is out of range, expected 1 to 3",
    ),
    "malformed account id": (
        _set("stages.staging.account", "12345"),
        'mlops.stages.staging.account: "12345" is not a 12-digit AWS account id',
    ),
    "account missing outside dev": (
        _delete("stages.staging.account"),
        "mlops.stages.staging.account: required for stage staging (only dev may leave it null)",
    ),
    "unknown endpoint service": (
        _set("stages.dev.network.interface_endpoints", ["sagemaker.api", "sagemaker.apii"]),
        'mlops.stages.dev.network.interface_endpoints[1]: unknown endpoint service "sagemaker.apii"',
    ),
    "missing required key": (
        _delete("defaults.region"),
        "mlops.stages.dev.region: required key is missing",
    ),
    "missing block": (
        # dev has a network block of its own (az_count): remove both
        lambda context: (_delete("defaults.network")(context), _delete("stages.dev.network")(context)),
        "mlops.stages.dev.network: required key is missing",
    ),
    "wrong type: string for integer": (
        _set("stages.dev.network.az_count", "2"),
        "mlops.stages.dev.network.az_count: expected an integer, got str '2'",
    ),
    "wrong type: boolean for integer": (
        _set("stages.dev.network.az_count", True),
        "mlops.stages.dev.network.az_count: expected an integer, got bool True",
    ),
    "wrong type: string for boolean": (
        _set("stages.dev.retain_data", "yes"),
        "mlops.stages.dev.retain_data: expected true or false, got str 'yes'",
    ),
    "wrong type: string for list": (
        _set("stages.dev.network.interface_endpoints", "sts"),
        "mlops.stages.dev.network.interface_endpoints: expected a list of strings, got str 'sts'",
    ),
    "misspelt key": (
        _set("stages.dev.network.vpc_cdir", "10.10.0.0/16"),
        'mlops.stages.dev.network.vpc_cdir: unknown key "vpc_cdir"',
    ),
    "prod not retaining data": (
        _set("stages.prod.retain_data", False),
        "mlops.stages.prod.retain_data: must be true in the prod stage, got false",
    ),
    "log retention CloudWatch does not offer": (
        _set("stages.dev.log_retention_days", 10),
        "mlops.stages.dev.log_retention_days: 10 is not a CloudWatch retention",
    ),
    "malformed region": (
        _set("stages.dev.region", "Europe"),
        'mlops.stages.dev.region: "Europe" is not an AWS region name like eu-west-1',
    ),
    "malformed e-mail": (
        _set("stages.prod.notification_emails", ["ops.example.com"]),
        'mlops.stages.prod.notification_emails[0]: "ops.example.com" is not an e-mail address',
    ),
    "crawler schedule that is no cron": (
        _set("stages.dev.data_lake.crawler_schedule", "rate(1 day)"),
        'mlops.stages.dev.data_lake.crawler_schedule: "rate(1 day)" is not a Glue cron schedule',
    ),
    "unknown metric goal": (
        _set("defaults.model.goal", "lower"),
        'mlops.stages.dev.model.goal: "lower" is not one of maximize, minimize',
    ),
    "dataset without a data contract": (
        _set("defaults.model.dataset", "taxi_fares"),
        'mlops.stages.dev.model.dataset: "taxi_fares" has no data contract (pipelines_src/contracts/taxi_fares.json)',
    ),
    "metric the evaluation does not produce": (
        _set("defaults.model.metric", "auc"),
        'mlops.stages.dev.model.metric: "auc" is not one of mae, r2, rmse',
    ),
    "negative champion margin": (
        _set("stages.staging.model.champion_margin", -0.5),
        "mlops.stages.staging.model.champion_margin: -0.5 is out of range, expected a number >= 0",
    ),
    "champion margin that is no number": (
        _set("defaults.model.champion_margin", "10%"),
        "mlops.stages.dev.model.champion_margin: expected a number, got str '10%'",
    ),
    "champion margin that is a flag": (
        _set("defaults.model.champion_margin", True),
        "mlops.stages.dev.model.champion_margin: expected a number, got bool True",
    ),
    "no mlops block at all": (
        lambda context: context.pop("mlops"),
        "mlops: required key is missing from the cdk.json context",
    ),
    "drift schedule that is neither rate nor cron": (
        _set("defaults.operations.drift.schedule", "every day"),
        'mlops.stages.dev.operations.drift.schedule: "every day" is not an EventBridge Scheduler expression',
    ),
    "drift schedule rate without a number": (
        _set("defaults.operations.drift.schedule", "rate(day)"),
        'mlops.stages.dev.operations.drift.schedule: "rate(day)" is not an EventBridge Scheduler expression',
    ),
    "PSI threshold of zero": (
        _set("defaults.operations.drift.psi_threshold", 0),
        "mlops.stages.dev.operations.drift.psi_threshold: 0.0 is out of range, expected more than 0 and at most 10",
    ),
    "KS threshold above one": (
        _set("defaults.operations.drift.ks_threshold", 1.5),
        "mlops.stages.dev.operations.drift.ks_threshold: 1.5 is out of range, expected more than 0 and at most 1",
    ),
    "drift input that is neither capture nor dataset": (
        _set("defaults.operations.drift.input", "stream"),
        'mlops.stages.dev.operations.drift.input: "stream" is not one of capture, dataset',
    ),
    "Model Monitor engine on curated data": (
        _both(
            _set("defaults.operations.drift.engine", "model_monitor"),
            _set("defaults.operations.drift.input", "dataset"),
        ),
        'mlops.stages.dev.operations.drift.input: "dataset" does not work with engine "model_monitor", which reads '
        "the production endpoint's data capture",
    ),
    "Model Monitor engine more often than hourly": (
        _both(
            _set("defaults.operations.drift.engine", "model_monitor"),
            _set("defaults.operations.drift.schedule", "rate(30 minutes)"),
        ),
        'mlops.stages.dev.operations.drift.schedule: "rate(30 minutes)" is not a Model Monitor schedule '
        "(SageMaker runs them at most hourly, on the hour)",
    ),
    "Model Monitor engine every five hours": (
        _both(
            _set("defaults.operations.drift.engine", "model_monitor"),
            _set("defaults.operations.drift.schedule", "rate(5 hours)"),
        ),
        'mlops.stages.dev.operations.drift.schedule: "rate(5 hours)" is not a Model Monitor schedule',
    ),
    "Model Monitor engine at minute 30": (
        _both(
            _set("defaults.operations.drift.engine", "model_monitor"),
            _set("defaults.operations.drift.schedule", "cron(30 2 ? * * *)"),
        ),
        'mlops.stages.dev.operations.drift.schedule: "cron(30 2 ? * * *)" is not a Model Monitor schedule',
    ),
    "Model Monitor engine without a schedule": (
        _both(
            _set("defaults.operations.drift.engine", "model_monitor"),
            _set("defaults.operations.drift.schedule", None),
        ),
        'mlops.stages.dev.operations.drift.schedule: required with engine "model_monitor"',
    ),
    "Model Monitor engine on a serverless endpoint": (
        _both(
            _set("defaults.operations.drift.engine", "model_monitor"),
            _set("stages.dev.endpoint.serverless", {"memory_mb": 2048, "max_concurrency": 5}),
        ),
        "mlops.stages.dev.endpoint.serverless: serverless endpoints have no data capture, which "
        'mlops.stages.dev.operations.drift.engine "model_monitor" reads',
    ),
    "no periods before the drift check counts as missing": (
        _set("defaults.operations.drift.missing_runs_alarm_periods", 0),
        "mlops.stages.dev.operations.drift.missing_runs_alarm_periods: 0 is out of range, expected 1 to 7 "
        "(one period per drift run of schedule rate(1 day), 86400 s; CloudWatch evaluates an alarm over at most "
        "604800 s)",
    ),
    "missing drift runs counted over more than CloudWatch evaluates": (
        _set("defaults.operations.drift.missing_runs_alarm_periods", 8),
        "mlops.stages.dev.operations.drift.missing_runs_alarm_periods: 8 is out of range, expected 1 to 7",
    ),
    "missing drift runs of a short schedule over more than a day": (
        _both(
            _set("defaults.operations.drift.schedule", "rate(30 minutes)"),
            _set("defaults.operations.drift.missing_runs_alarm_periods", 49),
        ),
        "mlops.stages.dev.operations.drift.missing_runs_alarm_periods: 49 is out of range, expected 1 to 48 "
        "(one period per drift run of schedule rate(30 minutes), 1800 s",
    ),
    "missing drift runs given as a string": (
        _set("defaults.operations.drift.missing_runs_alarm_periods", "2"),
        "mlops.stages.dev.operations.drift.missing_runs_alarm_periods: expected an integer, got str '2'",
    ),
    "missing drift runs key left out": (
        _delete("defaults.operations.drift.missing_runs_alarm_periods"),
        "mlops.stages.dev.operations.drift.missing_runs_alarm_periods: required key is missing",
    ),
    "retraining cooldown over a week": (
        _set("defaults.operations.retraining.cooldown_minutes", 20000),
        "mlops.stages.dev.operations.retraining.cooldown_minutes: 20000 is out of range, expected 0 to 10080",
    ),
    "misspelt retraining key": (
        _set("defaults.operations.retraining.cooldown", 5),
        'mlops.stages.dev.operations.retraining.cooldown: unknown key "cooldown"',
    ),
    "dead-letter retention longer than SQS allows": (
        _set("defaults.operations.dlq_retention_days", 30),
        "mlops.stages.dev.operations.dlq_retention_days: 30 is out of range, expected 1 to 14",
    ),
    "Glue worker type that does not exist": (
        _set("defaults.data_lake.etl.worker_type", "G.3X"),
        'mlops.stages.dev.data_lake.etl.worker_type: "G.3X" is not one of G.025X, G.1X',
    ),
    "one Glue worker": (
        _set("defaults.data_lake.etl.workers", 1),
        "mlops.stages.dev.data_lake.etl.workers: 1 is out of range, expected 2 to 299",
    ),
    "ETL schedule in Scheduler syntax instead of Glue cron": (
        _set("defaults.data_lake.etl.schedule", "rate(1 day)"),
        'mlops.stages.dev.data_lake.etl.schedule: "rate(1 day)" is not a Glue cron schedule',
    ),
    "S3 event batch larger than Glue allows": (
        _set("defaults.data_lake.etl.batch_size", 500),
        "mlops.stages.dev.data_lake.etl.batch_size: 500 is out of range, expected 1 to 100",
    ),
    "a labels dataset as the model's dataset": (
        _set("defaults.model.dataset", "delivery_time_labels"),
        'mlops.stages.dev.model.dataset: "delivery_time_labels" is the ground truth of delivery_time, not a dataset',
    ),
    "negative allowed quality degradation": (
        _set("defaults.operations.quality.max_degradation", -1),
        "mlops.stages.dev.operations.quality.max_degradation: -1.0 is out of range, expected a number >= 0",
    ),
    "allowed quality degradation that is no number": (
        _set("stages.prod.operations.quality.max_degradation", "5%"),
        "mlops.stages.prod.operations.quality.max_degradation: expected a number, got str '5%'",
    ),
    "quality window of zero hours": (
        _set("defaults.operations.quality.window_hours", 0),
        "mlops.stages.dev.operations.quality.window_hours: 0 is out of range, expected 1 to 2160",
    ),
    "negative label lateness": (
        _set("defaults.operations.quality.lateness_hours", -2),
        "mlops.stages.dev.operations.quality.lateness_hours: -2 is out of range, expected 0 to 720",
    ),
    "fractional label lateness": (
        _set("defaults.operations.quality.lateness_hours", 1.5),
        "mlops.stages.dev.operations.quality.lateness_hours: expected an integer, got float 1.5",
    ),
    "no labels needed for a quality verdict": (
        _set("defaults.operations.quality.min_labels", 0),
        "mlops.stages.dev.operations.quality.min_labels: 0 is out of range, expected 1 to 10000000",
    ),
    "quality alarm without evaluation periods": (
        _set("defaults.operations.quality.evaluation_periods", 0),
        "mlops.stages.dev.operations.quality.evaluation_periods: 0 is out of range, expected 1 to 24",
    ),
    "misspelt quality key": (
        _set("defaults.operations.quality.min_label", 10),
        'mlops.stages.dev.operations.quality.min_label: unknown key "min_label"',
    ),
    "missing quality key": (
        _delete("defaults.operations.quality.min_labels"),
        "mlops.stages.dev.operations.quality.min_labels: required key is missing",
    ),
    "on_upload given as a string": (
        _set("defaults.data_lake.etl.on_upload", "yes"),
        "mlops.stages.dev.data_lake.etl.on_upload: expected true or false, got str 'yes'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS), ids=list(BAD_CONFIGS))
def test_bad_config_fails_with_one_message_naming_key_and_value(case: str, context: dict[str, Any]) -> None:
    mutate, expected = BAD_CONFIGS[case]
    mutate(context)
    with pytest.raises(ConfigError) as caught:
        load_config(context)
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_the_champion_margin_defaults_to_zero_and_is_read_per_stage(context: dict[str, Any]) -> None:
    assert {stage.model.champion_margin for stage in load_config(context).stages.values()} == {0.0}
    context["mlops"]["stages"]["prod"].setdefault("model", {})["champion_margin"] = 0.25
    assert load_config(context).stage("prod").model.champion_margin == 0.25
    assert load_config(context).stage("dev").model.champion_margin == 0.0


def test_the_quality_check_settings_are_read_per_stage(context: dict[str, Any]) -> None:
    dev = load_config(context).stage("dev").operations.quality
    assert (dev.window_hours, dev.lateness_hours, dev.min_labels, dev.max_degradation) == (24, 24, 100, 1.0)
    context["mlops"]["stages"]["prod"]["operations"]["quality"] = {"min_labels": 500, "max_degradation": 0.5}
    prod = load_config(context).stage("prod").operations.quality
    assert (prod.min_labels, prod.max_degradation, prod.window_hours) == (500, 0.5, 24)
    assert load_config(context).stage("dev").operations.quality.min_labels == 100


def test_missing_drift_runs_alarm_periods_are_read_per_stage(context: dict[str, Any]) -> None:
    assert {stage.operations.drift.missing_runs_alarm_periods for stage in load_config(context).stages.values()} == {2}
    context["mlops"]["stages"]["prod"].setdefault("operations", {})["drift"] = {"missing_runs_alarm_periods": 7}
    assert load_config(context).stage("prod").operations.drift.missing_runs_alarm_periods == 7


def test_unknown_stage_names_the_stage_and_the_known_ones(platform_config: PlatformConfig) -> None:
    with pytest.raises(ConfigError, match=r'^-c stage=qa: unknown stage "qa"; cdk.json defines: dev, prod, staging$'):
        platform_config.stage("qa")


def test_null_account_is_the_same_as_absent(context: dict[str, Any]) -> None:
    # The CDK CLI drops null context values; the app must read both the same way.
    context["mlops"]["defaults"].pop("account", None)
    assert load_config(context).stage("dev").account is None


def _run_app(context: dict[str, Any], outdir: str) -> subprocess.CompletedProcess[str]:
    """Run app.py the way the CDK CLI does: context in CDK_CONTEXT_JSON, output dir in CDK_OUTDIR."""
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": outdir}
    return subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow  # a subprocess or a whole run: end to end
def test_synth_of_bad_config_exits_with_the_message(context: dict[str, Any], tmp_path: Any) -> None:
    context["mlops"]["stages"]["dev"]["network"] = {"az_count": 9}
    result = _run_app(context, str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Invalid stage configuration in cdk.json: mlops.stages.dev.network.az_count: 9 is out of range, expected 1 to 3"
    )
    assert not list(tmp_path.iterdir()), "nothing is synthesized from a bad config"


@pytest.mark.slow  # a subprocess or a whole run: end to end
def test_synth_of_unknown_stage_exits_with_the_message(context: dict[str, Any], tmp_path: Any) -> None:
    context["stage"] = "qa"
    result = _run_app(context, str(tmp_path))
    assert result.returncode == 2
    assert 'unknown stage "qa"' in result.stderr


@pytest.mark.parametrize(
    ("schedule", "cron"),
    [
        ("rate(1 hour)", "cron(0 * ? * * *)"),
        ("rate(60 minutes)", None),
        ("rate(3 hours)", "cron(0 0/3 ? * * *)"),
        ("rate(12 hours)", "cron(0 0/12 ? * * *)"),
        ("rate(24 hours)", "cron(0 0 ? * * *)"),
        ("rate(1 day)", "cron(0 0 ? * * *)"),
        ("rate(2 days)", None),
        ("cron(0 * ? * * *)", "cron(0 * ? * * *)"),
        ("cron(0 4 ? * * *)", "cron(0 4 ? * * *)"),
        ("cron(0 1/6 ? * * *)", "cron(0 1/6 ? * * *)"),
        ("cron(0 24 ? * * *)", None),
        ("cron(0 0/5 ? * * *)", None),
        ("cron(0 3 ? * MON *)", None),
    ],
)
def test_model_monitor_runs_on_the_drift_schedule_when_sagemaker_can(
    context: dict[str, Any], schedule: str, cron: str | None
) -> None:
    """Model Monitor takes hourly, every-N-hours (N dividing 24) and daily crons on the hour, nothing else."""
    drift = context["mlops"]["defaults"]["operations"]["drift"]
    drift.update(engine="model_monitor", schedule=schedule)
    if cron is None:
        with pytest.raises(ConfigError, match="is not a Model Monitor schedule"):
            load_config(context)
        return
    config = load_config(context)
    assert {stage.operations.drift.monitor_cron for stage in config.stages.values()} == {cron}
    drift["engine"] = "processing"
    assert {stage.operations.drift.monitor_cron for stage in load_config(context).stages.values()} == {None}


def test_lake_protection_and_approval_options_are_on_where_the_defaults_say(platform_config: PlatformConfig) -> None:
    prod = platform_config.stage("prod")
    assert prod.data_lake.trail is True
    assert prod.data_lake.backup.enabled is True
    assert prod.data_lake.crawl_datasets_only is True
    assert prod.endpoint.alarm_notifications is True
    assert prod.data_lake.capture_expiration_days == 90
    assert platform_config.stage("dev").data_lake.backup.enabled is False


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("data_lake", "capture_expiration_days"),
            0,
            "mlops.stages.dev.data_lake.capture_expiration_days: 0 is out of range, expected 1 to 3650",
        ),
        (("data_lake", "trail"), "yes", "mlops.stages.dev.data_lake.trail: expected true or false, got str 'yes'"),
        (
            ("data_lake", "backup", "retention_days"),
            36,
            "mlops.stages.dev.data_lake.backup.retention_days: 36 is out of range, expected 1 to 35",
        ),
        (
            ("data_lake", "backup", "enabled"),
            True,
            "mlops.stages.dev.data_lake.backup.enabled: needs mlops.stages.dev.retain_data true (a backup vault that "
            "holds recovery points cannot be deleted with the stack)",
        ),
        (
            ("endpoint", "alarm_notifications"),
            1,
            "mlops.stages.dev.endpoint.alarm_notifications: expected true or false, got int 1",
        ),
        (
            ("operations", "rollback_on_rejection"),
            None,
            "mlops.stages.dev.operations.rollback_on_rejection: expected true or false, got NoneType None",
        ),
    ],
)
def test_bad_lake_protection_and_approval_options_fail_with_one_line(
    context: dict[str, Any], path: tuple[str, ...], value: Any, message: str
) -> None:
    block = context["mlops"]["stages"]["dev"]
    for key in path[:-1]:
        block = block.setdefault(key, {})
    block[path[-1]] = value
    with pytest.raises(ConfigError) as error:
        load_config(context)
    assert str(error.value) == message


def test_captures_must_outlive_the_drift_window_that_reads_them(context: dict[str, Any]) -> None:
    context["mlops"]["stages"]["dev"]["data_lake"] = {"capture_expiration_days": 1}
    # (without a scheduled quality check, which reads 72 h of captures: tests/infra/test_quality_check.py)
    context["mlops"]["stages"]["dev"]["operations"] = {"drift": {"window_hours": 48}, "quality": {"schedule": None}}
    with pytest.raises(ConfigError, match=r"^mlops.stages.dev.data_lake.capture_expiration_days: 1 days is shorter"):
        load_config(context)
    context["mlops"]["stages"]["dev"]["operations"]["drift"]["input"] = "dataset"
    assert load_config(context).stage("dev").data_lake.capture_expiration_days == 1


def test_prod_self_update_needs_an_infrastructure_repository_of_its_own(context: dict[str, Any]) -> None:
    del context["mlops"]["stages"]["prod"]["source"]["infrastructure"]
    with pytest.raises(ConfigError, match=r"^mlops\.stages\.prod\.source\.infrastructure: required with self_update"):
        load_config(context)


def test_prod_infrastructure_may_not_be_the_model_repository(context: dict[str, Any]) -> None:
    model = context["mlops"]["defaults"]["source"]["repository"]
    context["mlops"]["stages"]["prod"]["source"]["infrastructure"] = {"repository": model.upper()}
    with pytest.raises(
        ConfigError, match=r"^mlops\.stages\.prod\.source\.infrastructure\.repository: .* is the model repository"
    ):
        load_config(context)


def test_other_stages_may_self_update_from_the_model_repository(context: dict[str, Any]) -> None:
    context["mlops"]["stages"]["staging"]["source"]["self_update"] = True
    infra = load_config(context).stage("staging").source.infrastructure
    assert infra is not None and not infra.separate
    assert infra.repository == context["mlops"]["defaults"]["source"]["repository"]


def test_infrastructure_source_inherits_provider_branch_and_connection(platform_config: PlatformConfig) -> None:
    source = platform_config.stage("prod").source
    assert source.infrastructure is not None
    assert (source.infrastructure.provider, source.infrastructure.branch, source.infrastructure.connection_arn) == (
        source.provider,
        source.branch,
        source.connection_arn,
    )
    assert source.infrastructure.repository == "example-org/delivery-time-platform"


@pytest.mark.parametrize(
    ("infrastructure", "message"),
    [
        ({"repository": "a/b", "provider": "s3"}, r'infrastructure\.provider: "s3" is not one of codeconnections'),
        ({"repository": "not a repo"}, r"infrastructure\.repository: .* is not a repository name"),
        ({"repository": "a/b", "colour": "x"}, r'infrastructure\.colour: unknown key "colour"'),
    ],
)
def test_bad_infrastructure_source_fails_with_the_key(
    context: dict[str, Any], infrastructure: dict[str, Any], message: str
) -> None:
    context["mlops"]["stages"]["prod"]["source"]["infrastructure"] = infrastructure
    with pytest.raises(ConfigError, match=message):
        load_config(context)


def test_an_infrastructure_source_without_self_update_is_refused(context: dict[str, Any]) -> None:
    context["mlops"]["stages"]["staging"]["source"]["infrastructure"] = {"repository": "a/b"}
    with pytest.raises(ConfigError, match=r"staging\.source\.infrastructure: only used with .*self_update true"):
        load_config(context)


def test_dev_runs_in_one_zone_and_staging_keeps_its_endpoints_in_one(platform_config: PlatformConfig) -> None:
    dev, staging, prod = (platform_config.stage(name).network for name in ("dev", "staging", "prod"))
    assert (dev.az_count, dev.endpoint_zones) == (1, 1)
    assert (staging.az_count, staging.endpoint_zones) == (2, 1)
    assert (prod.az_count, prod.endpoint_zones) == (3, 3), "prod keeps an endpoint interface in every zone"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            _set("stages.dev.network.endpoint_az_count", 2),
            "mlops.stages.dev.network.endpoint_az_count: 2 is out of range, expected 1 to 1",
        ),
        (
            _set("stages.dev.network.extra_interface_endpoints", ["sts", "sts"]),
            "mlops.stages.dev.network.extra_interface_endpoints: lists a service twice: ['sts', 'sts']",
        ),
        (
            _set("stages.dev.network.extra_interface_endpoints", ["stss"]),
            'mlops.stages.dev.network.extra_interface_endpoints[0]: unknown endpoint service "stss"',
        ),
    ],
)
def test_bad_endpoint_options_name_the_key(context: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(context)
    with pytest.raises(ConfigError) as error:
        load_config(context)
    assert str(error.value).startswith(message)


def test_dev_drops_its_dashboard_and_runs_its_curation_job_outside_the_vpc(platform_config: PlatformConfig) -> None:
    dev, staging, prod = (platform_config.stage(name) for name in ("dev", "staging", "prod"))
    assert (dev.operations.dashboards, dev.operations.alarms, dev.data_lake.etl.in_vpc) == (False, True, False)
    for stage in (staging, prod):
        assert (stage.operations.dashboards, stage.operations.alarms, stage.data_lake.etl.in_vpc) == (True, True, True)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            _set("stages.prod.operations.alarms", False),
            "mlops.stages.prod.operations.alarms: must be true in the prod stage (its drift alarms start "
            "retraining and its dead-letter alarms report lost events), got false",
        ),
        (
            _set("stages.staging.operations.alarms", False),
            "mlops.stages.staging.operations.dashboards: needs mlops.stages.staging.operations.alarms true (the "
            "dashboard shows the alarms); set both false, or alarms true",
        ),
        (
            _set("defaults.operations.dashboards", "no"),
            "mlops.stages.staging.operations.dashboards: expected true or false, got str 'no'",
        ),
        (
            _set("stages.dev.data_lake.etl.in_vpc", 0),
            "mlops.stages.dev.data_lake.etl.in_vpc: expected true or false, got int 0",
        ),
    ],
)
def test_bad_cost_options_fail_with_one_line(context: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(context)
    with pytest.raises(ConfigError) as error:
        load_config(context)
    assert str(error.value) == message


def test_dev_may_drop_its_alarms_too(context: dict[str, Any]) -> None:
    context["mlops"]["stages"]["dev"]["operations"]["alarms"] = False
    assert load_config(context).stage("dev").operations.alarms is False
