"""The demo's wiring comes from the synthesized stage: function environments and entry points, the rules in
front of the functions, the published values; renaming in the stage config moves all of them."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest

from demo import emulation, run
from demo.assembly import Assembly, AssemblyError, Resolver, Rule, Stack
from demo.emulation import ACCOUNT
from demo.progress import Timeline
from resolver import naming
from resolver.config import load_config
from tests.conftest import cdk_json_context

RENAMED_PROJECT = "acme"
RENAMED_MODEL = "eta"


def loaded(tmp_path: Path, context: dict[str, Any]) -> run.Demo:
    """A demo whose stage is synthesized from ``context`` (written as the cdk.json it reads)."""
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": context}), encoding="utf-8")
    demo = run.Demo(
        options=run.Options(cdk_json=cdk_json), timeline=Timeline(io.StringIO(), tty=False), workdir=tmp_path
    )
    demo.load_stage()
    return demo


def renamed_context() -> dict[str, Any]:
    context = copy.deepcopy(cdk_json_context())
    context["mlops"]["project"] = RENAMED_PROJECT
    context["mlops"]["defaults"]["model"]["name"] = RENAMED_MODEL
    context["mlops"]["defaults"]["operations"]["retraining"]["cooldown_minutes"] = 45
    context["mlops"]["defaults"]["operations"]["drift"]["psi_threshold"] = 0.3
    return context


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> run.Demo:
    return loaded(tmp_path_factory.mktemp("dev"), copy.deepcopy(cdk_json_context()))


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> run.Demo:
    return loaded(tmp_path_factory.mktemp("renamed"), renamed_context())


def template_variables(demo: run.Demo, package: str) -> dict[str, Any]:
    function = demo.functions[package]
    stack = Assembly.read(demo.workdir / run.ASSEMBLY_FOLDER).stacks[function.stack]
    variables: dict[str, Any] = stack.resources[function.logical_id]["Properties"]["Environment"]["Variables"]
    return variables


def test_each_function_gets_its_templates_environment_with_references_resolved(dev: run.Demo) -> None:
    # The model-quality loop's functions are synthesized too; the demo does not run that loop yet.
    assert set(dev.functions) == set(run.FUNCTIONS) | {"quality_metrics", "quality_start"}
    n = dev.n
    for package, function in dev.functions.items():
        variables = template_variables(dev, package)
        assert set(function.environment) == set(variables)
        literals = {name: value for name, value in variables.items() if isinstance(value, str)}
        assert {name: function.environment[name] for name in literals} == literals
        assert function.module == f"{package}.handler" and function.entry == "lambda_handler"
    alert = dev.functions["drift_alert"].environment
    assert alert["NOTIFICATION_TOPIC_ARN"] == n.topic_arn
    assert alert["NOTIFICATION_TOPIC_ARN"].startswith(f"arn:aws:sns:{n.region}:{ACCOUNT}:")
    assert alert["MODEL_PACKAGE_ACCOUNT"] == ACCOUNT
    metrics = dev.functions["drift_metrics"].environment
    assert metrics["METRICS_BUCKET"] == n.artifacts_bucket  # an Fn::ImportValue of the DataLake stack
    assert metrics["PIPELINE_ARN"] == f"arn:aws:sagemaker:{n.region}:{ACCOUNT}:pipeline/{n.drift_pipeline}"
    # what the hand-written copy missed: the approval function's deployed-version parameters
    approval = dev.functions["registry_approval"].environment
    assert json.loads(approval["DEPLOYED_VERSION_PARAMETERS"]) == {
        target: naming.deployed_version_parameter(dev.config, target) for target in ("production", "staging")
    }


def test_the_published_values_are_the_templates_parameter_resolved(dev: run.Demo) -> None:
    document = json.loads(dev.published)
    n = dev.n
    assert (document["raw_bucket"], document["curated_bucket"], document["artifacts_bucket"]) == (
        n.raw_bucket,
        n.curated_bucket,
        n.artifacts_bucket,
    )
    assert document["input_data_uri"] == f"s3://{n.curated_bucket}/{n.dataset}/"
    assert document["pipeline_role_arn"] == n.role_arn and n.role_arn.startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    assert document["subnet_ids"][0].startswith("subnet-") and document["security_group_ids"][0].startswith("sg-")
    assert document["kms_key_arn"] == n.kms_key_arn


def test_the_pipelines_are_the_templates_definitions_reading_code_the_demo_publishes(dev: run.Demo) -> None:
    n = dev.n
    assert set(dev.pipelines) == {n.build_pipeline, n.drift_pipeline, n.quality_pipeline}
    drift = dev.pipelines[n.drift_pipeline]
    definition = json.loads(drift.definition)
    defaults = {item["Name"]: item.get("DefaultValue") for item in definition["Parameters"]}
    assert defaults["BaselineUri"] == f"s3://{n.artifacts_bucket}/{naming.deployed_baseline_prefix(dev.config)}"
    assert drift.role_arn.startswith(f"arn:aws:iam::{ACCOUNT}:role/") and drift.role_arn != n.role_arn
    published = {f"s3://{asset.bucket}/{asset.key}" for asset in dev.assets}
    inputs = [item["S3Input"]["S3Uri"] for item in definition["Steps"][0]["Arguments"]["ProcessingInputs"]]
    code = [uri for uri in inputs if isinstance(uri, str) and uri.startswith("s3://cdk-")]
    assert len(code) == 3 and set(code) <= published  # runner, steps, contract: the stack's assets
    build = json.loads(dev.pipelines[n.build_pipeline].definition)
    build_defaults = {item["Name"]: item.get("DefaultValue") for item in build["Parameters"]}
    assert build_defaults["InputDataUri"] == json.loads(dev.published)["input_data_uri"]
    assert {build_defaults[name] for name in ("RunnerUri", "SourceTarUri", "ContractUri")} <= published


def test_an_event_reaches_a_function_only_through_a_matching_rule(dev: run.Demo) -> None:
    n, now = dev.n, dt.datetime.now(dt.UTC)
    package = {
        "ModelPackageArn": f"arn:aws:sagemaker:{n.region}:{ACCOUNT}:model-package/{n.model_package_group}/1",
        "ModelPackageGroupName": n.model_package_group,
        "ModelPackageVersion": 1,
        "ModelApprovalStatus": "Approved",
    }
    approval = dev.functions["registry_approval"]
    assert approval.rule_for(emulation.model_package_event(package, n.region, now=now)) is not None
    other = {**package, "ModelPackageGroupName": f"{n.model_package_group}-other"}
    assert approval.rule_for(emulation.model_package_event(other, n.region, now=now)) is None
    metrics = dev.functions["drift_metrics"]
    assert metrics.rule_for(emulation.step_succeeded_event(n.drift_pipeline, "x", "DetectDrift", n.region, now=now))
    assert (
        metrics.rule_for(emulation.step_succeeded_event(n.build_pipeline, "x", "DetectDrift", n.region, now=now))
        is None
    )
    # the rule wants the composite alarm: a feature alarm's state change does not reach the drift-alert function
    feature = {"AlarmName": f"{n.alarm_prefix}-psi-weather", "StateValue": "ALARM"}
    with pytest.raises(
        run.DemoError, match=f"no rule of {dev.functions['drift_alert'].stack} targeting DriftAlertFunction"
    ):
        dev.invoke("drift_alert", emulation.alarm_event(feature, "OK", n.region))
    assert "drift_alert" not in dev.handlers  # not even imported


def test_renaming_the_project_and_model_moves_the_wiring(dev: run.Demo, renamed: run.Demo) -> None:
    config = load_config(renamed_context()).stage("dev")
    assert config.prefix == f"{RENAMED_PROJECT}-dev"
    n = renamed.n
    approval = renamed.functions["registry_approval"]
    assert (
        approval.environment["MODEL_PACKAGE_GROUP"] == naming.model_package_group(config) == f"acme-dev-{RENAMED_MODEL}"
    )
    assert approval.environment["DEPLOY_PIPELINE_NAME"] == naming.deploy_pipeline(config)
    alert = renamed.functions["drift_alert"]
    assert alert.environment["COOLDOWN_MINUTES"] == "45"
    assert alert.environment["ALARM_PREFIX"] == naming.drift_alarm_prefix(config)
    assert alert.environment["CHAMPION_PARAMETER"] == naming.champion_parameter(config)
    assert alert.environment["NOTIFICATION_TOPIC_ARN"].split(":")[-1].startswith(f"{config.prefix}-Operations-")
    # the rules' patterns follow
    (rule,) = approval.rules
    assert rule.pattern["detail"]["ModelPackageGroupName"] == [naming.model_package_group(config)]
    assert [rule.pattern["detail"]["alarmName"] for rule in alert.rules] == [
        [naming.drift_alarm_prefix(config), naming.quality_decay_alarm(config)]
    ]
    now = dt.datetime.now(dt.UTC)
    metrics = renamed.functions["drift_metrics"]
    assert metrics.rule_for(emulation.step_succeeded_event(n.drift_pipeline, "x", "DetectDrift", n.region, now=now))
    assert not metrics.rule_for(
        emulation.step_succeeded_event(dev.n.drift_pipeline, "x", "DetectDrift", n.region, now=now)
    )
    # the drift alarms the composite combines follow
    assert renamed.composite is not None and renamed.composite.properties["AlarmName"] == n.alarm_prefix
    psi = [alarm for alarm in renamed.composite.alarms if alarm["MetricName"] == "FeaturePSI"]
    assert psi and {alarm["Threshold"] for alarm in psi} == {0.3}
    assert all(alarm["AlarmName"].startswith(f"{naming.drift_alarm_prefix(config)}-psi-") for alarm in psi)
    # the deployed definitions follow
    drift = json.loads(renamed.pipelines[n.drift_pipeline].definition)
    arguments = drift["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--model") + 1] == RENAMED_MODEL
    assert arguments[arguments.index("--psi-threshold") + 1] == "0.3"
    # the published values follow
    document = json.loads(renamed.published)
    assert document["build_pipeline"] == naming.build_pipeline(config)
    assert document["model"]["name"] == RENAMED_MODEL
    assert document["raw_bucket"].startswith(f"{config.prefix}-datalake-")
    assert n.raw_bucket == document["raw_bucket"] != dev.n.raw_bucket


@pytest.mark.parametrize("which", ["dev", "renamed"])
def test_the_curation_job_runs_with_the_glue_jobs_arguments_buckets_as_local_folders(
    which: str, request: pytest.FixtureRequest
) -> None:
    """The curation job's arguments are the synthesized Glue job's DefaultArguments: a renamed project moves its
    buckets, database and job name, and the arguments follow (each bucket's local folder, the contract asset)."""
    from etl import curate

    demo: run.Demo = request.getfixturevalue(which)
    n, job = demo.n, demo.curation_job
    assert job is not None and job.name == naming.curation_job(demo.config)
    folders = demo.lake_folders()
    args = curate.parse_args(demo.curation_argv(folders))
    assert args.dataset == job.arguments["--dataset"] == n.dataset
    assert args.stage == job.arguments["--stage"] == n.stage
    assert args.catalog_database == job.arguments["--catalog_database"]
    assert args.publish_metrics is (job.arguments["--publish_metrics"] == "true")
    for option in ("raw_uri", "curated_uri", "quarantine_uri", "state_uri", "report_uri"):
        bucket, key = run._split_uri(job.arguments[f"--{option}"])
        assert getattr(args, option) == str(folders[bucket] / key)
    assert Path(args.contract_uri).read_bytes() == (run.PIPELINES_SRC / "contracts" / f"{n.dataset}.json").read_bytes()
    assert job.name in args.state_uri
    if which == "renamed":
        assert job.name.startswith(f"{RENAMED_PROJECT}-") and RENAMED_PROJECT in args.catalog_database
    database, tables = demo.catalog or ({}, [])
    assert database["Name"] == args.catalog_database
    assert {table["Name"] for table in tables} >= {f"curated_{n.dataset}"}


def test_an_argument_naming_a_bucket_without_a_local_folder_fails_naming_it(dev: run.Demo) -> None:
    folders = {bucket: folder for bucket, folder in dev.lake_folders().items() if bucket != dev.n.artifacts_bucket}
    with pytest.raises(run.DemoError, match=f"--state_uri s3://{dev.n.artifacts_bucket}/.*no local folder"):
        dev.curation_argv(folders)


def test_the_renamed_stage_runs_its_approval_function_in_the_emulated_account(renamed: run.Demo) -> None:
    n = renamed.n
    with emulation.moto_server() as url, emulation.environment(emulation.aws_environment(url, n.region)):
        renamed.setup(url)
        sagemaker = renamed.aws.client("sagemaker")
        arn = sagemaker.create_model_package(
            ModelPackageGroupName=n.model_package_group, ModelApprovalStatus="Approved"
        )["ModelPackageArn"]
        package = sagemaker.describe_model_package(ModelPackageName=arn)
        result = renamed.invoke(
            "registry_approval", emulation.model_package_event(package, n.region, now=dt.datetime.now(dt.UTC))
        )
        assert result["status"] == "deploy_started"
        runs = renamed.aws.client("codepipeline").list_pipeline_executions(pipelineName=n.deploy_pipeline)
        assert len(runs["pipelineExecutionSummaries"]) == 1
        values = renamed.aws.client("ssm").get_parameter(Name=naming.platform_values_parameter(renamed.config))
        assert values["Parameter"]["Value"] == renamed.published
        assert renamed.composite is not None
        described = renamed.aws.client("cloudwatch").describe_alarms(AlarmNamePrefix=n.alarm_prefix)["MetricAlarms"]
        assert {alarm["AlarmName"] for alarm in described} == {
            n.alarm_prefix,
            *(alarm["AlarmName"] for alarm in renamed.composite.alarms),
        }


# --------------------------------------------------------------------- the resolver on small templates
def resolver(*stacks: Stack) -> Resolver:
    return Resolver(Assembly(Path("cdk.out"), {stack.name: stack for stack in stacks}), ACCOUNT, "eu-west-1")


TOPIC = {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "named-topic"}}}
BUCKET = {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}}}


def test_intrinsics_resolve_to_the_emulated_names() -> None:
    lake = Stack(
        "p-dev-Lake",
        {
            "Resources": BUCKET,
            "Outputs": {"Out": {"Value": {"Ref": "Bucket"}, "Export": {"Name": "p-dev-Lake:Bucket"}}},
        },
    )
    ops = Stack("p-dev-Ops", {"Resources": TOPIC})
    r = resolver(lake, ops)
    bucket = r.name(lake, "Bucket")
    assert bucket == bucket.lower() and bucket.startswith("p-dev-lake-bucket-") and len(bucket) <= 63
    where = {"stack": "p-dev-Ops", "logical_id": "Fn", "prop": "Environment.Variables"}
    assert r.resolve({"Ref": "Topic"}, **where) == f"arn:aws:sns:eu-west-1:{ACCOUNT}:named-topic"
    assert r.resolve({"Fn::GetAtt": ["Topic", "TopicName"]}, **where) == "named-topic"
    assert r.resolve({"Fn::ImportValue": "p-dev-Lake:Bucket"}, **where) == bucket
    joined = {"Fn::Join": ["/", ["s3:", "", {"Fn::ImportValue": "p-dev-Lake:Bucket"}, "key"]]}
    assert r.resolve(joined, **where) == f"s3://{bucket}/key"
    sub = {"Fn::Sub": ["${AWS::Region}:${AWS::AccountId}:${Topic.TopicName}:${x}:${!Literal}", {"x": {"Ref": "Topic"}}]}
    assert (
        r.resolve(sub, **where)
        == f"eu-west-1:{ACCOUNT}:named-topic:arn:aws:sns:eu-west-1:{ACCOUNT}:named-topic:${{Literal}}"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Ref": "Missing"}, "p-dev-Ops: Fn.Environment.Variables.X: no resource 'Missing' in p-dev-Ops"),
        ({"Fn::GetAtt": ["Topic", "Nope"]}, "p-dev-Ops: Fn.Environment.Variables.X: Fn::GetAtt Topic.Nope"),
        ({"Fn::ImportValue": "nobody"}, "p-dev-Ops: Fn.Environment.Variables.X: Fn::ImportValue 'nobody': no stack"),
        ({"Fn::Select": [0, ["a"]]}, "p-dev-Ops: Fn.Environment.Variables.X: Fn::Select is not resolved"),
    ],
)
def test_an_unknown_reference_fails_with_one_line_naming_stack_logical_id_and_property(
    value: dict[str, Any], message: str
) -> None:
    r = resolver(Stack("p-dev-Ops", {"Resources": TOPIC}))
    with pytest.raises(AssemblyError) as error:
        r.resolve({"X": value}, stack="p-dev-Ops", logical_id="Fn", prop="Environment.Variables")
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


EVENT = {
    "source": "aws.sagemaker",
    "detail-type": "SageMaker Model Package State Change",
    "resources": ["arn:one", "arn:two"],
    "detail": {"ModelPackageGroupName": "g", "ModelApprovalStatus": "Approved", "state": {"value": "ALARM"}},
}


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ({"source": ["aws.sagemaker"], "detail": {"ModelPackageGroupName": ["g"]}}, True),
        ({"source": ["aws.sagemaker"], "detail": {"ModelPackageGroupName": ["other"]}}, False),  # every field: AND
        ({"detail": {"ModelApprovalStatus": ["Rejected", "Approved"]}}, True),  # the array's values: OR
        ({"detail": {"ApprovalDescription": ["x"]}}, False),  # a field the event lacks
        ({"resources": ["arn:two"]}, True),  # an array in the event: any of its values
        ({"detail": {"state": {"value": ["ALARM"]}}}, True),  # nested as in the pattern
        ({"detail": {"state": ["ALARM"]}}, False),  # an object is not its value
        ({"detail": {"ModelPackageGroupName": [{"prefix": "g"}]}}, True),
        ({"detail": {"ApprovalDescription": [{"exists": False}]}}, True),
    ],
)
def test_rules_match_events_as_eventbridge_documents(pattern: dict[str, Any], matches: bool) -> None:
    assert Rule("s", "R", pattern).matches(EVENT) is matches


def test_a_composite_alarm_combining_an_alarm_the_stack_lacks_fails_naming_it() -> None:
    alarm = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmName": "p-a"}}
    composite = {
        "Type": "AWS::CloudWatch::CompositeAlarm",
        "Properties": {
            "AlarmName": "p",
            "AlarmRule": {"Fn::Join": ["", ['ALARM("', {"Fn::GetAtt": ["A", "Arn"]}, '") OR ALARM("elsewhere")']]},
        },
    }
    r = resolver(Stack("p-dev-Ops", {"Resources": {"A": alarm, "Any": composite}}))
    with pytest.raises(AssemblyError, match=r"^p-dev-Ops: Any.AlarmRule: 1 of its alarms are not metric alarms"):
        r.composite_alarm("p")


def test_the_deploy_pipeline_is_created_as_the_cicd_template_defines_it(renamed: run.Demo) -> None:
    config = load_config(renamed_context()).stage("dev")
    definition = renamed.deploy_definition
    assert definition["name"] == naming.deploy_pipeline(config) == renamed.n.deploy_pipeline
    assert [item["name"] for item in definition["variables"]] == ["ModelPackageArn"]
    sources = [action for stage in definition["stages"] for action in stage["actions"] if stage["name"] == "Source"]
    # the source object and the projects are the template's, not names the demo spells
    keys = {action["configuration"]["S3ObjectKey"] for action in sources}
    assert "source/deploy.zip" not in keys and all(key for key in keys)
    projects = [
        action["configuration"]["ProjectName"]
        for stage in definition["stages"]
        for action in stage["actions"]
        if action["actionTypeId"]["provider"] == "CodeBuild"
    ]
    assert projects and all(project.startswith(f"{config.prefix}-CICD-") for project in projects)
    with emulation.moto_server() as url, emulation.environment(emulation.aws_environment(url, renamed.n.region)):
        account = emulation.Account(url=url, names=renamed.n)
        account.create_deploy_pipeline(definition)
        created = account.client("codepipeline").get_pipeline(name=renamed.n.deploy_pipeline)["pipeline"]
        assert [stage["name"] for stage in created["stages"]] == [stage["name"] for stage in definition["stages"]]


def test_the_quality_loop_is_wired_from_the_templates(renamed: run.Demo) -> None:
    config = load_config(renamed_context()).stage("dev")
    n = renamed.n
    assert n.quality_pipeline == naming.quality_pipeline(config) in renamed.pipelines
    assert n.quality_alarm == naming.quality_decay_alarm(config) == renamed.decay_alarm["AlarmName"]
    assert renamed.decay_alarm["MetricName"] == "MetricDegradation"
    schedule = renamed.quality_schedule
    assert schedule is not None and schedule.detail_type == "Model Quality Check Due"
    detail = schedule.detail("2026-01-02T03:04:05Z")
    assert detail == {"pipelineName": naming.quality_pipeline(config), "scheduledTime": "2026-01-02T03:04:05Z"}
    event = {"source": schedule.source, "detail-type": schedule.detail_type, "detail": detail}
    assert renamed.functions["quality_start"].rule_for(event) is not None
    # the labels contract the curation job checks the labels with is the quality check's asset
    from demo import quality

    contract = json.loads(quality._labels_contract(renamed).read_text(encoding="utf-8"))
    assert contract["dataset"] == f"{n.dataset}_labels"
