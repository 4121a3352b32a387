"""Runtime pieces run under their synthesized roles against moto with IAM enforcement on (demo/iam.py).

The fast tests check how policies are put into the form moto evaluates; the slow ones synthesize the dev stage,
create its roles in a moto server that enforces IAM, and run a Lambda handler, CI's Train code path and a
pipeline step's S3 traffic under the role each runs as in AWS: what the role grants succeeds, what it does not
is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from demo import iam
from demo.assembly import LAMBDAS, Function, Resolver, synthesize
from demo.emulation import (
    ACCOUNT,
    Account,
    LambdaContext,
    Names,
    alarm_event,
    aws_environment,
    environment,
    model_package_event,
    moto_server,
    step_succeeded_event,
)
from resolver import naming, published
from resolver.config import load_config
from tests.conftest import cdk_json_context

STAGE = "dev"
FUNCTIONS = {"registry_approval", "drift_alert", "drift_metrics", "quality_metrics", "quality_start"}


def refused(error: pytest.ExceptionInfo[Exception]) -> bool:
    """Whether the request was refused for want of a grant (an S3 transfer wraps the error in its own)."""
    if isinstance(error.value, ClientError):
        # moto answers JSON-protocol services with an XML error, whose code botocore leaves as the HTTP status.
        code = error.value.response["Error"]["Code"]
        return code in ("AccessDenied", "AccessDeniedException") or (
            code == "403" and "<Code>AccessDenied</Code>" in str(error.value)
        )
    return isinstance(error.value, S3UploadFailedError) and "(AccessDenied)" in str(error.value)


# ------------------------------------------------------------------ policies in moto's form (fast)
def test_resources_are_widened_only_for_services_moto_evaluates_against_star() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Mixed",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "ssm:GetParameter"],
                "Resource": ["arn:aws:s3:::bucket/key", "arn:aws:ssm:us-east-1:123456789012:parameter/p"],
            }
        ],
    }
    evaluable, notes = iam.for_moto(document)
    assert evaluable["Statement"] == [
        {**document["Statement"][0], "Action": ["s3:GetObject"]},
        {**document["Statement"][0], "Action": ["ssm:GetParameter"], "Resource": "*"},
    ]
    assert notes == ["Mixed: resources not evaluated by moto for ssm:GetParameter"]


def test_a_conditional_deny_is_dropped_and_an_unconditional_one_kept() -> None:
    conditional = {
        "Sid": "NeverApproved",
        "Effect": "Deny",
        "Action": "sagemaker:CreateModelPackage",
        "Resource": "*",
        "Condition": {"StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}},
    }
    unconditional = {"Sid": "Never", "Effect": "Deny", "Action": "sagemaker:UpdateModelPackage", "Resource": "*"}
    named = {
        "Sid": "NotThatOne",
        "Effect": "Deny",
        "Action": ["s3:DeleteObject", "ssm:DeleteParameter"],
        "Resource": ["arn:aws:s3:::bucket/*", "arn:aws:ssm:us-east-1:123456789012:parameter/p"],
    }
    allowed = {
        "Sid": "Put",
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": "MLOps/Drift"}},
    }
    evaluable, notes = iam.for_moto({"Statement": [conditional, unconditional, named, allowed]})
    assert evaluable["Statement"] == [
        {**unconditional, "Action": ["sagemaker:UpdateModelPackage"]},
        {**named, "Action": ["s3:DeleteObject"]},  # S3's resources are evaluated: the Deny stays, for S3 only
        # moto names CloudWatch's actions by its signing name, monitoring.
        {**allowed, "Action": ["cloudwatch:PutMetricData", "monitoring:PutMetricData"]},
    ]
    assert notes == [
        "NeverApproved: dropped, a Deny whose condition moto cannot evaluate (sagemaker:ModelApprovalStatus)",
        "NotThatOne: dropped for ssm:DeleteParameter, a Deny on resources moto does not evaluate",
        "Put: its condition is not evaluated by moto (cloudwatch:namespace)",
    ]


# ------------------------------------------------------------------ the dev stage under enforced IAM (slow)
@dataclass
class Enforced:
    url: str
    region: str
    resolver: Resolver
    config: Any
    values: published.PlatformValues
    functions: dict[str, Function]
    roles: iam.RuntimeRoles
    account: Account
    enforcement: iam.Enforcement

    def admin(self, service: str) -> Any:
        assert self.enforcement.admin is not None
        return self.enforcement.admin.client(service, self.url, self.region)

    def as_role(self, role: iam.Role) -> iam.Credentials:
        return self.enforcement.credentials(role)


@pytest.fixture(scope="module")
def enforced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enforced]:
    """The dev stage synthesized; a moto server with its storage, topic, table and published values, created as
    CloudFormation would (enforcement off); then IAM enforcement on."""
    context = cdk_json_context()
    config = load_config(context).stage(STAGE)
    assembly = synthesize(context, STAGE, tmp_path_factory.mktemp("cdk.out"))
    resolver = Resolver(assembly, account=ACCOUNT, region=config.region)
    functions = resolver.functions()
    parameter = naming.platform_values_parameter(config)
    document = resolver.parameter(parameter)
    values = published.PlatformValues.from_json(document, where=parameter)
    names = Names.from_assembly(config, values, {name: item.environment for name, item in functions.items()})
    with moto_server() as url:
        account = Account(url=url, names=names)
        account.create_storage()
        account.create_notifications()
        account.create_idempotency_table()
        account.create_deploy_pipeline(resolver.codepipeline(naming.deploy_pipeline(config)))
        account.create_drift_alarms(resolver.composite_alarm(naming.drift_alarm_prefix(config)))
        account.client("ssm").put_parameter(Name=parameter, Type="String", Value=document)
        build = resolver.pipeline(values.build_pipeline)
        account.client("sagemaker").create_pipeline(
            PipelineName=build.name, PipelineDefinition=build.definition, RoleArn=build.role_arn
        )
        with iam.enforced(url, config.region) as enforcement:
            yield Enforced(
                url=url,
                region=config.region,
                resolver=resolver,
                config=config,
                values=values,
                functions=functions,
                roles=iam.runtime_roles(resolver),
                account=account,
                enforcement=enforcement,
            )


@contextlib.contextmanager
def _isolated_import(module: str) -> Iterator[None]:
    """The handler imported afresh (a cold start: its module parses the environment at import) and taken out of
    sys.modules again, so that other tests import their own copy with their own environment."""
    before = dict(sys.modules)
    if str(LAMBDAS) not in sys.path:
        sys.path.insert(0, str(LAMBDAS))
    # Every function package's modules (quality_metrics runs drift_metrics' module with its own environment).
    packages = {folder.name for folder in LAMBDAS.iterdir() if (folder / "handler.py").is_file()}
    for name in [name for name in sys.modules if name.split(".")[0] in packages]:
        sys.modules.pop(name)
    try:
        yield
    finally:
        for name in [name for name in sys.modules if name not in before]:
            sys.modules.pop(name)
        sys.modules.update(before)


def invoke(stage: Enforced, package: str, event: Mapping[str, Any], credentials: iam.Credentials) -> dict[str, Any]:
    """Deliver ``event`` as EventBridge would (only if a synthesized rule matches it) to a cold start of the
    function, with its template's environment and the credentials of a session of its role."""
    function = stage.functions[package]
    assert function.rule_for(event) is not None, f"no rule in front of {package} matches the event"
    variables = {
        **aws_environment(stage.url, stage.region),
        **credentials.environment(),
        **function.environment,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    with (
        environment(variables),
        iam.own_default_session(),
        _isolated_import(function.module),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message="Couldn't determine the remaining time")
        module = importlib.import_module(function.module)
        context = LambdaContext(function.name, function.arn, function.memory_mb)
        result: dict[str, Any] = getattr(module, function.entry)(dict(event), context)
    return result


@pytest.mark.slow
def test_every_runtime_piece_has_its_role_from_the_templates(enforced: Enforced) -> None:
    roles = enforced.roles
    assert set(roles.functions) == FUNCTIONS
    assert {enforced.values.build_pipeline, enforced.values.drift_pipeline} <= set(roles.pipelines)
    assert roles.pipelines[enforced.values.build_pipeline].arn == enforced.values.pipeline_role_arn
    train = enforced.resolver.build_action(naming.build_ci_pipeline(enforced.config), "Train")
    assert train.project in roles.projects
    iam_client = enforced.admin("iam")
    for role in [*roles.functions.values(), *roles.projects.values(), *roles.pipelines.values()]:
        enforced.enforcement.create(role)  # moto checks each policy document as IAM does on PutRolePolicy
        assert sorted(iam_client.list_role_policies(RoleName=role.name)["PolicyNames"]) == sorted(role.policies)


@pytest.mark.slow
@pytest.mark.parametrize("package", ["drift_metrics", "quality_metrics"])
def test_a_checks_metrics_are_published_under_its_role_which_reads_no_other_file(
    enforced: Enforced, package: str
) -> None:
    function = enforced.functions[package]
    env = function.environment
    execution = f"{package.replace('_', '-')}-1"
    dimensions = [{"Name": name, "Value": value} for name, value in json.loads(env["METRIC_DIMENSIONS"]).items()]
    request = {
        "Namespace": env["METRIC_NAMESPACE"],
        "MetricData": [{"MetricName": "CheckCompleted", "Dimensions": dimensions, "Value": 1.0}],
    }
    key = f"{env['METRICS_PREFIX']}{execution}/{env['METRICS_KEY_SUFFIX']}"
    enforced.admin("s3").put_object(Bucket=env["METRICS_BUCKET"], Key=key, Body=json.dumps(request).encode())
    pipeline = env["PIPELINE_ARN"].rsplit("/", 1)[-1]
    event = step_succeeded_event(pipeline, execution, env["STEP_NAME"], enforced.region, now=dt.datetime.now(dt.UTC))
    credentials = enforced.as_role(enforced.roles.functions[package])

    result = invoke(enforced, package, event, credentials)

    assert result["status"] == "published", result
    listed = enforced.admin("cloudwatch").list_metrics(Namespace=env["METRIC_NAMESPACE"])["Metrics"]
    assert "CheckCompleted" in {metric["MetricName"] for metric in listed}
    s3 = credentials.client("s3", enforced.url, enforced.region)
    other = "quality_metrics" if package == "drift_metrics" else "drift_metrics"
    other_env = enforced.functions[other].environment
    for bucket, elsewhere in [
        (enforced.values.raw_bucket, "delivery/rows.csv"),  # the lake
        (other_env["METRICS_BUCKET"], f"{other_env['METRICS_PREFIX']}x/{other_env['METRICS_KEY_SUFFIX']}"),
    ]:
        enforced.admin("s3").put_object(Bucket=bucket, Key=elsewhere, Body=b"{}")
        with pytest.raises(ClientError) as error:
            s3.get_object(Bucket=bucket, Key=elsewhere)
        assert refused(error), (bucket, elsewhere)
    with pytest.raises(ClientError) as error:  # it reads its metrics files, never writes one
        s3.put_object(Bucket=env["METRICS_BUCKET"], Key=key, Body=b"{}")
    assert refused(error)


@pytest.mark.slow
def test_moto_does_not_evaluate_the_cloudwatch_namespace_condition(enforced: Enforced) -> None:
    """The role may put metrics only in its namespace (a cloudwatch:namespace condition), which moto 5.2.5 does
    not evaluate (moto/iam/access_control.py:273 passes no request context): another namespace is accepted. When
    moto starts evaluating it, this fails, and the drift_metrics test should assert the refusal instead."""
    credentials = enforced.as_role(enforced.roles.functions["drift_metrics"])
    cloudwatch = credentials.client("cloudwatch", enforced.url, enforced.region)
    cloudwatch.put_metric_data(Namespace="Someone/Else", MetricData=[{"MetricName": "Probe", "Value": 1.0}])
    with pytest.raises(ClientError) as error:  # an action the role has no grant for at all is refused
        cloudwatch.delete_alarms(AlarmNames=[enforced.account.names.alarm_prefix])
    assert refused(error)


@pytest.mark.slow
def test_ci_train_runs_under_the_train_projects_role(enforced: Enforced, tmp_path: Path) -> None:
    """pipelines_src.cicd as `make ci-train` runs it: published values (SSM), the deployed definition, the code
    upload (S3, KMS-encrypted), the champion lookup and StartPipelineExecution, every call as the Train role."""
    from pipelines_src import cicd

    train = enforced.resolver.build_action(naming.build_ci_pipeline(enforced.config), "Train")
    credentials = enforced.as_role(enforced.roles.projects[train.project])
    summary = tmp_path / "summary.json"

    code = cicd.main(
        ["run", "--no-wait", "--summary", str(summary)],
        environ=train.environment,
        client=lambda service, region: credentials.client(service, enforced.url, region),
    )

    outcome = json.loads(summary.read_text(encoding="utf-8"))
    assert code == cicd.EXIT_SUCCEEDED, outcome
    assert outcome["status"] == cicd.STARTED
    executions = enforced.admin("sagemaker").list_pipeline_executions(PipelineName=enforced.values.build_pipeline)
    assert outcome["pipeline_execution_arn"] in [
        item["PipelineExecutionArn"] for item in executions["PipelineExecutionSummaries"]
    ]
    s3 = credentials.client("s3", enforced.url, enforced.region)
    with pytest.raises(ClientError) as error:  # CI uploads code, never data
        s3.put_object(Bucket=enforced.values.raw_bucket, Key="delivery/rows.csv", Body=b"a,b\n")
    assert refused(error)
    sagemaker = credentials.client("sagemaker", enforced.url, enforced.region)
    deployed = enforced.resolver.pipeline(enforced.values.build_pipeline)
    with pytest.raises(ClientError) as error:  # nor does it overwrite the definition CloudFormation deployed
        sagemaker.update_pipeline(PipelineName=deployed.name, PipelineDefinition=deployed.definition)
    assert refused(error)


@pytest.mark.slow
def test_a_pipeline_steps_s3_traffic_runs_under_the_execution_role(enforced: Enforced, tmp_path: Path) -> None:
    """What SageMaker moves for a processing step as the pipeline's role: LocalPipelineRunner's S3 client does it
    (pipelines_src/local/storage.py), here with a session of the build pipeline's execution role."""
    from pipelines_src.local import storage

    values = enforced.values
    role = enforced.roles.pipelines[values.build_pipeline]
    s3 = enforced.as_role(role).client("s3", enforced.url, enforced.region)
    prefix = values.input_data_uri.rstrip("/")
    bucket, key = storage.split_s3_uri(f"{prefix}/part-0.csv")
    enforced.admin("s3").put_object(Bucket=bucket, Key=key, Body=b"distance_km,minutes\n1.5,12\n")
    inputs, outputs = tmp_path / "input", tmp_path / "output"
    outputs.mkdir()
    (outputs / "train.csv").write_text("distance_km,minutes\n1.5,12\n", encoding="utf-8")
    output_uri = f"s3://{values.artifacts_bucket}/model-build/{values.build_pipeline}/local/Preprocess/train"

    assert storage.download(s3, prefix + "/", inputs) == 1
    written = storage.upload(s3, outputs, output_uri)
    assert written == [f"model-build/{values.build_pipeline}/local/Preprocess/train/train.csv"]

    with pytest.raises(S3UploadFailedError) as failed:  # the input zones are read-only for the jobs
        storage.upload(s3, outputs, prefix)
    assert refused(failed)
    with pytest.raises(S3UploadFailedError) as failed:  # and the pipeline writes under its own prefix only
        storage.upload(s3, outputs, f"s3://{values.artifacts_bucket}/code/elsewhere")
    assert refused(failed)


@pytest.mark.slow
def test_registry_approval_starts_the_deploy_under_its_role(enforced: Enforced) -> None:
    names = enforced.account.names
    sagemaker = enforced.admin("sagemaker")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=names.model_package_group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "xgboost:3.0-5", "ModelDataUrl": f"s3://{names.artifacts_bucket}/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    event = model_package_event(package, enforced.region, now=dt.datetime.now(dt.UTC))
    credentials = enforced.as_role(enforced.roles.functions["registry_approval"])

    result = invoke(enforced, "registry_approval", event, credentials)

    assert result["status"] == "deploy_started", result
    runs = enforced.admin("codepipeline").list_pipeline_executions(pipelineName=names.deploy_pipeline)
    assert result["pipelineExecutionId"] in [run["pipelineExecutionId"] for run in runs["pipelineExecutionSummaries"]]
    with pytest.raises(ClientError) as error:  # it starts the deploy; approving is the operator's
        credentials.client("sagemaker", enforced.url, enforced.region).update_model_package(
            ModelPackageArn=arn, ModelApprovalStatus="Rejected"
        )
    assert refused(error)


@pytest.mark.slow
def test_drift_alert_starts_the_retraining_under_its_role(enforced: Enforced) -> None:
    names = enforced.account.names
    enforced.admin("cloudwatch").set_alarm_state(
        AlarmName=names.alarm_prefix, StateValue="ALARM", StateReason="1 of 3 feature alarms in ALARM"
    )
    (alarm,) = enforced.admin("cloudwatch").describe_alarms(AlarmNames=[names.alarm_prefix])["MetricAlarms"]
    credentials = enforced.as_role(enforced.roles.functions["drift_alert"])

    result = invoke(enforced, "drift_alert", alarm_event(alarm, "OK", enforced.region), credentials)

    assert result["status"] == "retraining_started", result
    executions = enforced.admin("sagemaker").list_pipeline_executions(PipelineName=names.build_pipeline)
    assert result["pipelineExecutionArn"] in [
        item["PipelineExecutionArn"] for item in executions["PipelineExecutionSummaries"]
    ]
    with pytest.raises(ClientError) as error:  # it retrains; it never approves a version
        credentials.client("sagemaker", enforced.url, enforced.region).update_model_package(
            ModelPackageArn=f"arn:aws:sagemaker:{enforced.region}:{ACCOUNT}:model-package/{names.model_package_group}/1",
            ModelApprovalStatus="Approved",
        )
    assert refused(error)


@pytest.mark.slow
def test_quality_start_starts_the_check_under_its_role(enforced: Enforced) -> None:
    env = enforced.functions["quality_start"].environment
    check = enforced.resolver.pipeline(env["QUALITY_PIPELINE_NAME"])
    enforced.admin("sagemaker").create_pipeline(
        PipelineName=check.name, PipelineDefinition=check.definition, RoleArn=check.role_arn
    )
    scheduled = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "version": "0",
        "id": "5f1c2d3e-aaaa-bbbb-cccc-0123456789ab",
        "detail-type": "Model Quality Check Due",
        "source": env["EVENT_SOURCE"],
        "account": ACCOUNT,
        "time": scheduled,
        "region": enforced.region,
        "resources": [],
        "detail": {"pipelineName": check.name, "scheduledTime": scheduled},
    }
    credentials = enforced.as_role(enforced.roles.functions["quality_start"])

    result = invoke(enforced, "quality_start", event, credentials)

    assert result["status"] == "check_started", result
    executions = enforced.admin("sagemaker").list_pipeline_executions(PipelineName=check.name)
    assert result["pipelineExecutionArn"] in [
        item["PipelineExecutionArn"] for item in executions["PipelineExecutionSummaries"]
    ]
    with pytest.raises(ClientError) as error:  # it starts the check; the retraining is drift_alert's
        credentials.client("sagemaker", enforced.url, enforced.region).list_pipeline_executions(
            PipelineName=enforced.values.build_pipeline
        )
    assert refused(error)
