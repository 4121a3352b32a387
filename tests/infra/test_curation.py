"""What the curation job's infrastructure promises: Glue 5 Spark, scoped role, encrypted writes, the right starts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from resolver import naming
from resolver.config import PlatformConfig
from stacks.nag import flatten_reference
from tests.conftest import Synthesized

STAGES = ["dev", "staging", "prod"]


def _resources(synthesized: Synthesized, stage: str, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = synthesized.template(stage, "data_lake").find_resources(kind)
    return found


def _ref(synthesized: Synthesized, stage: str, zone: str) -> dict[str, str]:
    stack = synthesized.stages[stage].data_lake
    return {"Ref": stack.get_logical_id(getattr(stack.storage, zone).node.default_child)}


def _job(synthesized: Synthesized, stage: str) -> dict[str, Any]:
    (job,) = _resources(synthesized, stage, "AWS::Glue::Job").values()
    properties: dict[str, Any] = job["Properties"]
    return properties


def _s3_url(value: Any) -> str:
    return flatten_reference(value)


@pytest.mark.parametrize("stage", STAGES)
def test_job_is_glue_5_spark_sized_by_the_stage_and_never_overlaps(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    etl = platform_config.stage(stage).data_lake.etl
    job = _job(synthesized, stage)
    assert job["Name"] == naming.curation_job(platform_config.stage(stage))
    assert job["GlueVersion"] == "5.0"
    assert job["Command"]["Name"] == "glueetl" and job["Command"]["PythonVersion"] == "3"
    assert job["WorkerType"] == etl.worker_type and job["NumberOfWorkers"] == etl.workers
    assert job["Timeout"] == etl.timeout_minutes
    assert job["ExecutionProperty"]["MaxConcurrentRuns"] == 1
    assert job["JobRunQueuingEnabled"] is True  # a start during a run waits instead of failing
    stack = synthesized.stages[stage].data_lake
    assert job["SecurityConfiguration"] == stack.resolve(
        stack.catalog.security_configuration.security_configuration_name
    )


@pytest.mark.parametrize("stage", STAGES)
def test_job_arguments_point_at_the_zones_the_catalog_and_its_own_work_prefix(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    arguments = _job(synthesized, stage)["DefaultArguments"]
    stack = synthesized.stages[stage].data_lake
    raw, curated, artifacts = (
        flatten_reference(_ref(synthesized, stage, zone)) for zone in ("raw", "curated", "artifacts")
    )
    work = f"etl/{naming.curation_job(config)}"
    assert arguments["--job-bookmark-option"] == "job-bookmark-disable"  # the job keeps its own manifest
    assert arguments["--dataset"] == config.model.dataset
    assert _s3_url(arguments["--raw_uri"]) == f"s3://{raw}/"
    assert _s3_url(arguments["--curated_uri"]) == f"s3://{curated}/"
    assert _s3_url(arguments["--quarantine_uri"]) == f"s3://{curated}/quarantine"
    assert _s3_url(arguments["--state_uri"]) == f"s3://{artifacts}/{work}/state"
    assert _s3_url(arguments["--report_uri"]) == f"s3://{artifacts}/{work}/reports"
    assert arguments["--catalog_database"] == stack.resolve(stack.catalog.database.database_name)
    assert arguments["--publish_metrics"] == "true" and arguments["--stage"] == stage
    # The contract and the script are content-addressed assets, as the pipeline's code is.
    curation = stack.curation
    assert _s3_url(arguments["--contract_uri"]).endswith(f"/{curation.contract.asset_hash}.json")
    assert _s3_url(_job(synthesized, stage)["Command"]["ScriptLocation"]).endswith(f"/{curation.script.asset_hash}.py")


def _role_statements(synthesized: Synthesized, stage: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    stack = synthesized.stages[stage].data_lake
    role_id = stack.get_logical_id(stack.curation.role.node.default_child)
    role = _resources(synthesized, stage, "AWS::IAM::Role")[role_id]
    statements = [
        statement
        for policy in _resources(synthesized, stage, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    return role, statements


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("stage", STAGES)
def test_job_role_reads_raw_and_replaces_only_its_own_curated_and_quarantine_prefixes(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    dataset = config.model.dataset
    role, statements = _role_statements(synthesized, stage)
    assert "ManagedPolicyArns" not in role["Properties"]
    raw, curated, artifacts = (
        flatten_reference(_ref(synthesized, stage, zone)) for zone in ("raw", "curated", "artifacts")
    )
    work = f"etl/{naming.curation_job(config)}/*"
    access: dict[str, set[str]] = {}
    for statement in statements:
        for resource in _list(statement["Resource"]):
            text = flatten_reference(resource)  # a bucket's objects: <BucketId.Arn>/key-pattern
            if text.startswith("<Lake") and ".Arn>/" in text:
                access.setdefault(text.replace(".Arn>", ">", 1), set()).update(_list(statement["Action"]))
    assert set(access) == {
        f"{raw}/{dataset}/*",
        f"{curated}/{dataset}/*",
        f"{curated}/quarantine/{dataset}/*",
        f"{artifacts}/{work}",
    }
    assert not any(action.startswith(("s3:Put", "s3:Delete")) for action in access[f"{raw}/{dataset}/*"])
    for prefix in (f"{curated}/{dataset}/*", f"{curated}/quarantine/{dataset}/*", f"{artifacts}/{work}"):
        assert "s3:PutObject" in access[prefix] and "s3:DeleteObject*" in access[prefix]
    for statement in statements:
        if "*" in _list(statement["Resource"]):
            assert _list(statement["Action"]) in (
                ["glue:GetSecurityConfiguration"],
                ["cloudwatch:PutMetricData"],
                # The job's NETWORK connection: Glue describes the network, and creates the job's interfaces
                # only in the platform VPC.
                [
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeRouteTables",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcAttribute",
                    "ec2:DescribeVpcEndpoints",
                ],
                ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
            )
            if "ec2:CreateNetworkInterface" in _list(statement["Action"]):
                assert list(statement["Condition"]) == ["ArnEquals"]
                assert list(statement["Condition"]["ArnEquals"]) == ["ec2:Vpc"]
    (metrics,) = [s for s in statements if s.get("Sid") == "RunMetrics"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": ["MLOps/ETL", "Glue"]}}
    (catalog,) = [s for s in statements if s.get("Sid") == "RegisterPartitions"]
    tables = {flatten_reference(r).rsplit("/", 1)[-1] for r in catalog["Resource"] if ":table/" in flatten_reference(r)}
    assert tables == {f"curated_{dataset}", f"quarantine_{dataset}"}
    deletes = {action for action in _list(catalog["Action"]) if "Delete" in action}
    assert deletes == {"glue:BatchDeletePartition"}, "partitions only: never a table or the database"


def _raw_event(bucket: str, key: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "111111111111",
        "time": "2026-11-22T05:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184"},
            "reason": "PutObject",
        },
    }


@pytest.mark.parametrize("stage", STAGES)
def test_new_raw_files_of_the_dataset_start_the_workflow_in_batches(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    etl = platform_config.stage(stage).data_lake.etl
    dataset = platform_config.stage(stage).model.dataset
    (bucket,) = [
        b["Properties"]
        for name, b in _resources(synthesized, stage, "AWS::S3::Bucket").items()
        if {"Ref": name} == _ref(synthesized, stage, "raw")
    ]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    triggers = [t["Properties"] for t in _resources(synthesized, stage, "AWS::Glue::Trigger").values()]
    (event_trigger,) = [t for t in triggers if t["Type"] == "EVENT"]
    assert event_trigger["EventBatchingCondition"] == {
        "BatchSize": etl.batch_size,
        "BatchWindow": etl.batch_window_seconds,
    }
    job_name = naming.curation_job(platform_config.stage(stage))
    assert [action["JobName"] for action in event_trigger["Actions"]] == [
        {"Ref": _only_job_id(synthesized, stage)}
    ] or [action["JobName"] for action in event_trigger["Actions"]] == [job_name]

    (rule,) = [r["Properties"] for r in _resources(synthesized, stage, "AWS::Events::Rule").values()]
    # The bucket's name is a deploy-time value: stand a name in for its reference, then match real events.
    pattern = json.dumps(rule["EventPattern"]).replace(json.dumps(_ref(synthesized, stage, "raw")), '"the-raw-bucket"')
    matcher = EventPattern.load(pattern)
    assert matcher.matches_event(_raw_event("the-raw-bucket", f"{dataset}/dt=2026-11-21/part-0.csv"))
    assert not matcher.matches_event(_raw_event("the-raw-bucket", "datacapture/endpoint/x.jsonl"))
    assert not matcher.matches_event(_raw_event("another-bucket", f"{dataset}/dt=2026-11-21/part-0.csv"))
    (target,) = rule["Targets"]
    (workflow_id, workflow) = next(iter(_resources(synthesized, stage, "AWS::Glue::Workflow").items()))
    assert workflow["Properties"]["Name"] == f"{job_name}-workflow"
    assert flatten_reference(target["Arn"]).endswith(f":workflow/<{workflow_id}>")
    assert event_trigger["WorkflowName"] == {"Ref": workflow_id}
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in _resources(synthesized, stage, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert [(s["Action"], s["Resource"]) for s in statements] == [("glue:notifyEvent", target["Arn"])]


def _only_job_id(synthesized: Synthesized, stage: str) -> str:
    (job_id,) = _resources(synthesized, stage, "AWS::Glue::Job")
    return job_id


@pytest.mark.parametrize("stage", STAGES)
def test_a_schedule_from_config_also_starts_the_job(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    schedule = platform_config.stage(stage).data_lake.etl.schedule
    triggers = [t["Properties"] for t in _resources(synthesized, stage, "AWS::Glue::Trigger").values()]
    scheduled = [t for t in triggers if t["Type"] == "SCHEDULED"]
    if schedule is None:
        assert scheduled == []
        return
    (trigger,) = scheduled
    assert trigger["Schedule"] == schedule
    assert trigger["StartOnCreation"] is True


def test_a_failed_curation_run_is_notified(synthesized: Synthesized, platform_config: PlatformConfig) -> None:
    config = platform_config.stage("prod")
    template = synthesized.template("prod", "operations").to_json()["Resources"]
    (rule,) = [
        r["Properties"]
        for name, r in template.items()
        if r["Type"] == "AWS::Events::Rule" and name.startswith("CurationFailedRule")
    ]
    matcher = EventPattern.load(json.dumps(rule["EventPattern"]))
    job = naming.curation_job(config)

    def event(name: str, state: str) -> dict[str, Any]:
        detail = {"jobName": name, "state": state, "jobRunId": "jr_1", "message": "boom", "severity": "ERROR"}
        return {"source": "aws.glue", "detail-type": "Glue Job State Change", "detail": detail}

    assert matcher.matches_event(event(job, "FAILED")) and matcher.matches_event(event(job, "TIMEOUT"))
    assert not matcher.matches_event(event(job, "SUCCEEDED"))
    assert not matcher.matches_event(event("another-job", "FAILED"))
    (target,) = rule["Targets"]
    assert "InputTransformer" in target
