"""Each in-VPC workload's declared needs, checked against its code and its synthesized network settings."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from pipelines_src.definition import TRACKED_STEPS
from resolver.config import ConfigError, PlatformConfig
from stacks.network_needs import (
    CURATION_JOB,
    DATA_QUALITY_JOBS,
    DRIFT_JOB,
    ENDPOINT_HOSTING,
    MODEL_BUILD_JOBS,
    QUALITY_JOB,
    ROOT,
    SAGEMAKER_TELEMETRY,
    TRACKED_BUILD_STEPS,
    Workload,
    boto3_clients,
    check_met,
    interface_endpoints,
    lost_telemetry,
    services_called,
    stage_workloads,
)
from tests.conftest import Synthesized

STAGES = ["dev", "staging", "prod"]
WORKLOADS = [MODEL_BUILD_JOBS, DRIFT_JOB, QUALITY_JOB, ENDPOINT_HOSTING, DATA_QUALITY_JOBS, CURATION_JOB]


def test_the_scanner_finds_clients_however_they_are_created() -> None:
    source = (
        "import boto3\n"
        "a = boto3.client('cloudwatch')\n"
        "b = boto3.session.Session().client(service_name='glue')\n"
        "c = session.resource('s3')\n"
        "d = boto3.client(name)\n"
    )
    assert boto3_clients(source) == {"cloudwatch", "glue", "s3", "<dynamic: name>"}


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda workload: workload.name)
def test_a_workloads_code_calls_exactly_the_services_it_declares(workload: Workload) -> None:
    for relative in workload.code:
        assert (ROOT / relative).is_file(), relative
    interface, gateways = services_called(workload)
    assert interface == set(workload.container), f"{workload.name}: declared {sorted(workload.container)}"
    assert gateways <= workload.gateways
    if workload.network_isolated:
        assert interface == set() and gateways == set()


def test_every_step_script_belongs_to_a_declared_workload() -> None:
    """A new step script or ETL module is scanned only if a workload runs it: none is left out."""
    # The tracking client's code belongs to TRACKED_BUILD_STEPS, whose service the scanner cannot see (the client
    # signs its own HTTPS requests; tests/pipelines/test_tracking.py checks what it calls).
    declared = {relative for workload in [*WORKLOADS, TRACKED_BUILD_STEPS] for relative in workload.code}
    scripts = {str(path.relative_to(ROOT)) for path in (ROOT / "pipelines_src" / "steps").glob("*.py")}
    scripts.discard("pipelines_src/steps/__init__.py")
    assert scripts <= declared
    assert "etl/curate.py" in declared


def test_sagemaker_workloads_declare_what_sagemaker_reaches_through_the_vpc() -> None:
    for workload in (MODEL_BUILD_JOBS, DRIFT_JOB, ENDPOINT_HOSTING, DATA_QUALITY_JOBS):
        assert workload.interface_services >= SAGEMAKER_TELEMETRY == {"logs", "monitoring"}, workload.name
        assert "s3" in workload.gateways
    # Jobs and models run with the S3 gateway alone; their logs and instance metrics are telemetry...
    for workload in (MODEL_BUILD_JOBS, DRIFT_JOB, ENDPOINT_HOSTING):
        assert workload.required_services == frozenset() and workload.telemetry == SAGEMAKER_TELEMETRY
    # ...but Model Monitor's drift metrics are what the drift alarms read: for it they are a need.
    assert DATA_QUALITY_JOBS.required_services == {"monitoring"}
    assert {"logs", "glue"} <= CURATION_JOB.platform


def test_the_drift_job_calls_nothing_and_runs_network_isolated() -> None:
    """Its metrics leave as a file in S3 (drift.py --metrics); a function outside the VPC publishes them."""
    assert DRIFT_JOB.network_isolated and DRIFT_JOB.container == frozenset()
    assert services_called(DRIFT_JOB) == (set(), set())


def _jobs(definition: str) -> list[dict[str, Any]]:
    return [
        step["Arguments"]
        for step in _steps(json.loads(definition)["Steps"])
        if step["Type"] in ("Processing", "Training")
    ]


def _job_names(definition: str) -> list[str]:
    return [
        step["Name"] for step in _steps(json.loads(definition)["Steps"]) if step["Type"] in ("Processing", "Training")
    ]


def _steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for step in steps:
        found.append(step)
        for branch in ("IfSteps", "ElseSteps"):
            found += _steps(step.get("Arguments", {}).get(branch, []))
    return found


def _isolated(job: dict[str, Any]) -> bool:
    config = job.get("NetworkConfig") or {}
    return bool(job.get("EnableNetworkIsolation", config.get("EnableNetworkIsolation")))


@pytest.mark.parametrize("stage", STAGES)
def test_the_synthesized_jobs_run_as_declared(synthesized: Synthesized, stage: str) -> None:
    platform = synthesized.stages[stage].ml_platform
    build_jobs = _jobs(platform.model_build.definition)
    assert len(build_jobs) >= 4
    # with tracking, the steps that log to MLflow run as TRACKED_BUILD_STEPS declares; the others as declared
    tracked = synthesized.stages[stage].config.tracking.managed
    names = _job_names(platform.model_build.definition)
    for name, job in zip(names, build_jobs, strict=True):
        declared = TRACKED_BUILD_STEPS if tracked and name in TRACKED_STEPS else MODEL_BUILD_JOBS
        assert _isolated(job) == declared.network_isolated, name
    (drift_job,) = _jobs(platform.drift_check.definition)
    assert _isolated(drift_job) == DRIFT_JOB.network_isolated
    for job in [*build_jobs, drift_job]:
        vpc = (job.get("NetworkConfig") or job).get("VpcConfig")
        assert vpc and vpc["Subnets"] and vpc["SecurityGroupIds"], "every job runs in the VPC"


@pytest.mark.parametrize("stage", STAGES)
def test_endpoint_models_run_network_isolated_in_the_vpc(synthesized: Synthesized, stage: str) -> None:
    for target in ("staging", "production"):
        template = _endpoint_template(synthesized, stage, target)
        (model,) = template.find_resources("AWS::SageMaker::Model").values()
        assert model["Properties"]["EnableNetworkIsolation"] is ENDPOINT_HOSTING.network_isolated is True
        assert model["Properties"]["VpcConfig"]["Subnets"]


def _endpoint_template(synthesized: Synthesized, stage: str, target: str) -> Any:
    from aws_cdk.assertions import Template

    return Template.from_stack(synthesized.stages[stage].endpoints[target])


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_the_glue_job_runs_in_the_vpc_through_its_connection(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    assert platform_config.stage(stage).data_lake.etl.in_vpc
    assert CURATION_JOB in stage_workloads(platform_config.stage(stage))
    template = synthesized.template(stage, "data_lake")
    (job,) = template.find_resources("AWS::Glue::Job").values()
    (connection_id,) = template.find_resources("AWS::Glue::Connection")
    assert job["Properties"]["Connections"] == {"Connections": [{"Ref": connection_id}]}
    template.has_resource_properties("AWS::Glue::Connection", {"ConnectionInput": {"ConnectionType": "NETWORK"}})
    assert "ec2:CreateNetworkInterface" in _glue_role_actions(template)


def test_the_dev_glue_job_runs_outside_the_vpc_without_network_permissions(
    synthesized: Synthesized, platform_config: PlatformConfig
) -> None:
    dev = platform_config.stage("dev")
    assert not dev.data_lake.etl.in_vpc and CURATION_JOB not in stage_workloads(dev)
    template = synthesized.template("dev", "data_lake")
    (job,) = template.find_resources("AWS::Glue::Job").values()
    assert "Connections" not in job["Properties"]
    assert template.find_resources("AWS::Glue::Connection") == {}
    actions = _glue_role_actions(template)
    assert not any(action.startswith("ec2:") for action in actions) and "glue:GetConnection" not in actions
    # What curate.py itself calls stays granted: its metrics and its partitions.
    assert {"cloudwatch:PutMetricData", "glue:BatchCreatePartition"} <= actions


def _glue_role_actions(template: Any) -> set[str]:
    (job,) = template.find_resources("AWS::Glue::Job").values()
    role = job["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                listed = statement["Action"]
                actions |= {listed} if isinstance(listed, str) else set(listed)
    return actions


@pytest.mark.parametrize("stage", STAGES)
def test_no_workload_of_the_stage_lacks_an_endpoint_it_needs(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    network = synthesized.stages[stage].network.network
    for workload in stage_workloads(platform_config.stage(stage)):
        check_met(workload, network.interface_endpoints, network.gateway_services)
        network.require(workload)


def test_an_exact_endpoint_list_without_a_need_fails_the_synth_in_one_line(platform_config: PlatformConfig) -> None:
    staging = platform_config.stage("staging")
    lacking = dataclasses.replace(
        staging, network=dataclasses.replace(staging.network, interface_endpoints=("glue", "logs"))
    )
    with pytest.raises(ConfigError) as error:
        interface_endpoints(lacking)
    message = str(error.value)
    assert "\n" not in message
    assert message == (
        'mlops.stages.staging.network.interface_endpoints: lacks "monitoring", which the Glue curation job '
        "need(s) from inside the VPC; add it, or remove the key to derive the endpoints from the workloads"
    )
    exact = dataclasses.replace(
        staging.network,
        interface_endpoints=("glue", "logs", "monitoring", "sagemaker.experiments", "sts"),
        extra_interface_endpoints=("kms",),
    )
    assert interface_endpoints(dataclasses.replace(staging, network=exact)) == (
        "glue",
        "kms",
        "logs",
        "monitoring",
        "sagemaker.experiments",
        "sts",
    )


def test_an_exact_list_may_leave_out_telemetry_only_and_names_what_is_lost(
    synthesized: Synthesized, platform_config: PlatformConfig
) -> None:
    from aws_cdk.assertions import Annotations, Match

    dev = platform_config.stage("dev")
    assert dev.network.interface_endpoints == () and interface_endpoints(dev) == ()
    workloads = [MODEL_BUILD_JOBS.name, DRIFT_JOB.name, QUALITY_JOB.name, ENDPOINT_HOSTING.name]
    assert lost_telemetry(dev) == {"logs": workloads, "monitoring": workloads}
    assert synthesized.stages["dev"].network.network.interface_endpoints == {}
    (info,) = Annotations.from_stack(synthesized.stages["dev"].network).find_info(
        "*", Match.string_like_regexp("no CloudWatch logs or instance metrics")
    )
    assert f"logs: {', '.join(workloads)}" in info.entry.data
    for stage in ("staging", "prod"):  # derived endpoints carry every workload's telemetry
        assert lost_telemetry(platform_config.stage(stage)) == {}
    # Model Monitor's metrics feed the drift alarms: a list without monitoring refuses that stage.
    monitored = dataclasses.replace(
        dev,
        operations=dataclasses.replace(
            dev.operations, drift=dataclasses.replace(dev.operations.drift, engine="model_monitor")
        ),
    )
    with pytest.raises(ConfigError, match='lacks "monitoring", which the Model Monitor data-quality jobs need'):
        interface_endpoints(monitored)


def test_extra_endpoints_are_added_to_the_derived_ones(platform_config: PlatformConfig) -> None:
    dev = platform_config.stage("dev")
    extra = dataclasses.replace(dev, network=dataclasses.replace(dev.network, extra_interface_endpoints=("sts",)))
    assert set(interface_endpoints(extra)) == set(interface_endpoints(dev)) | {"sts"}


def test_a_network_without_a_workloads_endpoint_refuses_it(synthesized: Synthesized) -> None:
    network = synthesized.stages["dev"].network.network
    with pytest.raises(ConfigError, match=r"need\(s\) the interface endpoint\(s\) sts, which the stage's network"):
        network.require(dataclasses.replace(DRIFT_JOB, container=frozenset({"sts"}), network_isolated=False))
    with pytest.raises(ConfigError, match=r"gateway endpoint\(s\) dynamodb"):
        network.require(dataclasses.replace(DRIFT_JOB, gateways=frozenset({"s3", "dynamodb"})))


def test_serverless_endpoints_and_model_monitor_change_the_workloads(platform_config: PlatformConfig) -> None:
    dev = platform_config.stage("dev")
    assert ENDPOINT_HOSTING in stage_workloads(dev) and DATA_QUALITY_JOBS not in stage_workloads(dev)


@pytest.mark.slow  # a subprocess: the app as the CDK CLI runs it
def test_the_synth_of_a_stage_whose_endpoints_lack_a_need_exits_with_one_line(
    context: dict[str, Any], tmp_path: Any
) -> None:
    env = {**os.environ, "CDK_CONTEXT_JSON": "", "CDK_OUTDIR": str(tmp_path)}
    context["mlops"]["stages"]["staging"]["network"]["interface_endpoints"] = ["glue", "monitoring"]
    context["stage"] = "staging"  # as -c stage=staging
    env["CDK_CONTEXT_JSON"] = json.dumps(context)
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'Invalid stage configuration in cdk.json: mlops.stages.staging.network.interface_endpoints: lacks "logs", '
        f"which the {CURATION_JOB.name} need(s) from inside the VPC; add it, or remove the key to derive the "
        "endpoints from the workloads"
    ]
