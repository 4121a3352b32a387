"""CI's train command: the stage from STAGE, the deploy-time values from the published SSM parameter,
content-addressed code, one execution of the deployed pipeline on that code, followed to its outcome.

AWS is moto (which marks an execution Succeeded as soon as it starts) or stub clients for executions
that run, fail or never end. The deployed pipeline is created here as CloudFormation would: the
definition built once (a module fixture) from concrete values, the published values beside it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from pipelines_src import cicd
from pipelines_src.definition import CODE_PARAMETERS, PipelineSettings, build_definition, code_object_names
from pipelines_src.packaging import RUNNER_PATH, STEPS_DIR
from resolver import naming
from resolver.config import StageConfig, load_config
from resolver.published import PlatformValues
from tests.conftest import cdk_json_context

STAGE = "dev"
CONFIG: StageConfig = load_config(cdk_json_context()).stage(STAGE)
REGION = CONFIG.region
ACCOUNT = "123456789012"
BUCKET = f"artifacts-{ACCOUNT}"
ASSETS = f"cdk-assets-{ACCOUNT}-{REGION}"
PIPELINE = naming.build_pipeline(CONFIG)
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
EXECUTION = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/abc123"
ENV = {"STAGE": STAGE}
# The code the platform deploy shipped with the definition: CDK file assets, named <hash>.<extension>.
DEPLOYED_CODE = {
    "runner_uri": f"s3://{ASSETS}/{'a' * 64}.sh",
    "source_tar_uri": f"s3://{ASSETS}/{'b' * 64}.gz",
    "contract_uri": f"s3://{ASSETS}/{'c' * 64}.json",
}
VALUES = PlatformValues(
    stage=STAGE,
    region=REGION,
    build_pipeline=PIPELINE,
    drift_pipeline=naming.drift_pipeline(CONFIG),
    pipeline_role_arn=f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-pipeline",
    raw_bucket=f"raw-{ACCOUNT}",
    curated_bucket=f"curated-{ACCOUNT}",
    artifacts_bucket=BUCKET,
    artifacts_prefix=naming.BUILD_ARTIFACTS_PREFIX,
    code_prefix=naming.CODE_PREFIX,
    drift_artifacts_prefix=naming.DRIFT_ARTIFACTS_PREFIX,
    input_data_uri=f"s3://curated-{ACCOUNT}/{CONFIG.model.dataset}/",
    kms_key_arn=KMS_KEY,
    subnet_ids=("subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"),
    security_group_ids=("sg-0cccccccccccccccc",),
    model_package_group=naming.model_package_group(CONFIG),
    model=CONFIG.model,
    data_quality_monitor=False,
)


def quiet(line: str) -> None:
    pass


def deployed_settings() -> PipelineSettings:
    """What the MLPlatform stack builds the definition from, with its references resolved."""
    return VALUES.pipeline_settings(DEPLOYED_CODE)


@pytest.fixture(scope="module")
def deployed_definition() -> str:
    return build_definition(deployed_settings())


def existing_objects() -> Any:
    """An S3 client on which every object already exists: upload_code only computes the URIs."""
    return mock.MagicMock(name="s3")


@pytest.fixture(scope="module")
def code_uris() -> dict[str, str]:
    names = code_object_names(deployed_settings())
    return cicd.upload_code(
        existing_objects(), BUCKET, "code", dataset="delivery_time", kms_key_id=KMS_KEY, names=names, echo=quiet
    )


@dataclass
class Aws:
    s3: Any
    sagemaker: Any
    ssm: Any


def publish(ssm: Any, values: PlatformValues = VALUES) -> None:
    """The stage's values in the parameter, as CloudFormation writes it."""
    ssm.put_parameter(
        Name=naming.platform_values_parameter(CONFIG),
        Type="String",
        Value=json.dumps(values.as_document()),
        Overwrite=True,
    )


@pytest.fixture
def aws(deployed_definition: str) -> Iterator[Aws]:
    """The emulated account after a platform deploy: bucket, published values, the pipeline's definition."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        ssm = boto3.client("ssm", region_name=REGION)
        publish(ssm)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_pipeline(
            PipelineName=PIPELINE, PipelineDefinition=deployed_definition, RoleArn=VALUES.pipeline_role_arn
        )
        yield Aws(s3=s3, sagemaker=sagemaker, ssm=ssm)


def moto_client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def stub_ssm(values: PlatformValues = VALUES, document: dict[str, Any] | None = None) -> Any:
    """An SSM client holding the published values and no served-version record (no champion yet)."""
    ssm = mock.MagicMock(name="ssm")
    ssm.exceptions.ParameterNotFound = type("ParameterNotFound", (Exception,), {})

    def get_parameter(Name: str) -> dict[str, Any]:  # noqa: N803 (boto3's keyword)
        if Name != naming.platform_values_parameter(CONFIG):
            raise ssm.exceptions.ParameterNotFound(Name)
        return {"Parameter": {"Value": json.dumps(values.as_document() if document is None else document)}}

    ssm.get_parameter.side_effect = get_parameter
    return ssm


def stub_sagemaker(definition: str, *statuses: dict[str, Any], steps: list[dict[str, Any]] | None = None) -> Any:
    """A SageMaker client with this deployed definition, whose execution goes through these describe answers
    (the last one repeats)."""
    sagemaker = mock.MagicMock(name="sagemaker")
    sagemaker.describe_pipeline.return_value = {"PipelineDefinition": definition}
    sagemaker.start_pipeline_execution.return_value = {"PipelineExecutionArn": EXECUTION}
    answers = list(statuses)
    sagemaker.describe_pipeline_execution.side_effect = lambda **_: answers.pop(0) if len(answers) > 1 else answers[0]
    sagemaker.list_pipeline_execution_steps.return_value = {"PipelineExecutionSteps": steps or []}
    return sagemaker


def run_main(argv: list[str], sagemaker: Any, clock: FakeClock, ssm: Any = None, **environ: str) -> int:
    clients = {"s3": existing_objects(), "sagemaker": sagemaker, "ssm": ssm or stub_ssm()}
    return cicd.main(
        argv,
        environ={**ENV, **environ},
        client=lambda service, region: clients[service],
        clock=clock,
        sleep=clock.sleep,
    )


# --- Settings ----------------------------------------------------------------------------------


def test_the_stage_is_the_only_variable_and_the_rest_is_what_the_stacks_published(aws: Aws) -> None:
    assert cicd.ENVIRONMENT == {"stage": "STAGE"}
    settings = cicd.CiSettings.load(ENV, moto_client)
    assert settings.config == CONFIG
    assert settings.values == VALUES
    assert settings.differences() == []


def test_a_pushed_config_that_differs_from_the_deployed_one_is_named(aws: Aws) -> None:
    deployed = dataclasses.replace(VALUES, model=dataclasses.replace(CONFIG.model, threshold=9.5, metric="mae"))
    publish(aws.ssm, deployed)
    settings = cicd.CiSettings.load(ENV, moto_client)
    assert settings.values.model.threshold == 9.5
    assert settings.differences() == [
        f"model.metric: pushed {CONFIG.model.metric!r}, deployed 'mae'",
        f"model.threshold: pushed {CONFIG.model.threshold!r}, deployed 9.5",
    ]


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        ({}, "STAGE is not set"),
        ({"STAGE": "  "}, "STAGE is not set"),
        ({"STAGE": "qa"}, "STAGE=qa: "),
    ],
)
def test_a_bad_stage_is_named(aws: Aws, environ: dict[str, str], reason: str) -> None:
    with pytest.raises(cicd.ConfigError) as raised:
        cicd.CiSettings.load(environ, moto_client)
    assert str(raised.value).startswith(reason)


def test_a_stage_whose_values_are_not_published_cannot_train(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.ssm.delete_parameter(Name=naming.platform_values_parameter(CONFIG))
    assert cicd.main(["run"], environ=ENV, client=moto_client) == 2
    assert capsys.readouterr().err == (
        f"error: bad settings: SSM parameter {naming.platform_values_parameter(CONFIG)} is not published: "
        "deploy the stage's MLPlatform stack first (cdk deploy)\n"
    )
    assert aws.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"] == []


def test_bad_published_values_exit_2_with_one_line_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], deployed_definition: str
) -> None:
    summary = tmp_path / "reports" / "summary.json"
    sagemaker = stub_sagemaker(deployed_definition, {"PipelineExecutionStatus": "Succeeded"})
    document = VALUES.as_document()
    document["subnet_ids"] = []
    ssm = stub_ssm(document=document)
    assert run_main(["run", "--summary", str(summary)], sagemaker, FakeClock(), ssm=ssm) == 2
    assert capsys.readouterr().err == (
        f"error: bad settings: SSM parameter {naming.platform_values_parameter(CONFIG)}: subnet_ids is [], "
        "not a list of ids\n"
    )
    assert json.loads(summary.read_text())["status"] == "Error"
    sagemaker.start_pipeline_execution.assert_not_called()


# --- Code ----------------------------------------------------------------------------------------


def test_code_is_uploaded_once_under_content_addressed_keys_with_the_deployed_object_names(
    aws: Aws, tmp_path: Path, code_uris: dict[str, str]
) -> None:
    names = code_object_names(deployed_settings())
    assert names == {name: uri.rsplit("/", 1)[1] for name, uri in DEPLOYED_CODE.items()}
    uris = cicd.upload_code(aws.s3, BUCKET, "code", dataset="delivery_time", kms_key_id=KMS_KEY, names=names)
    assert uris == code_uris
    runner = RUNNER_PATH.read_bytes()
    assert uris["runner_uri"] == f"s3://{BUCKET}/code/{hashlib.sha256(runner).hexdigest()}/{'a' * 64}.sh"
    contract = (cicd.CONTRACTS_DIR / "delivery_time.json").read_bytes()
    assert uris["contract_uri"] == f"s3://{BUCKET}/code/{hashlib.sha256(contract).hexdigest()}/{'c' * 64}.json"
    assert uris["source_tar_uri"].endswith(f"/{'b' * 64}.gz")
    for uri in uris.values():
        key = uri.removeprefix(f"s3://{BUCKET}/")
        body = aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert key.split("/")[1] == hashlib.sha256(body).hexdigest()
        head = aws.s3.head_object(Bucket=BUCKET, Key=key)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", KMS_KEY)

    lines: list[str] = []
    with mock.patch.object(aws.s3, "put_object", wraps=aws.s3.put_object) as put:
        cicd.upload_code(
            aws.s3, BUCKET, "code", dataset="delivery_time", kms_key_id=KMS_KEY, names=names, echo=lines.append
        )
        assert put.call_count == 0, "nothing changed: nothing uploaded"
        assert lines == [f"unchanged {uri}" for uri in uris.values()]

        changed_runner = tmp_path / "run_step.sh"
        changed_runner.write_bytes(runner + b"# changed\n")
        steps = tmp_path / "steps"
        shutil.copytree(STEPS_DIR, steps, ignore=shutil.ignore_patterns("__pycache__"))
        (steps / "train.py").write_text((steps / "train.py").read_text() + "\n# changed\n")
        changed = cicd.upload_code(
            aws.s3,
            BUCKET,
            "code",
            dataset="delivery_time",
            kms_key_id=KMS_KEY,
            names=names,
            steps_dir=steps,
            runner_path=changed_runner,
            echo=quiet,
        )
    assert put.call_count == 2
    assert changed["contract_uri"] == uris["contract_uri"]
    for name in ("runner_uri", "source_tar_uri"):
        assert changed[name] != uris[name]
        assert changed[name].rsplit("/", 1)[1] == uris[name].rsplit("/", 1)[1], "same object name, new key"


# --- Pipeline ------------------------------------------------------------------------------------


def test_the_deployed_definitions_code_parameters_are_read_not_written(aws: Aws, deployed_definition: str) -> None:
    deployed = cicd.deployed_code(aws.sagemaker, PIPELINE)
    assert deployed.names == {name: uri.rsplit("/", 1)[1] for name, uri in DEPLOYED_CODE.items()}
    assert deployed.definition_sha256 == hashlib.sha256(deployed_definition.encode()).hexdigest()


def test_a_definition_without_code_parameters_asks_for_a_platform_deploy(deployed_definition: str) -> None:
    document = json.loads(deployed_definition)
    document["Parameters"] = [p for p in document["Parameters"] if p["Name"] != CODE_PARAMETERS["source_tar_uri"]]
    sagemaker = stub_sagemaker(json.dumps(document), {"PipelineExecutionStatus": "Succeeded"})
    with pytest.raises(cicd.ConfigError, match=r"has no code parameter SourceTarUri: deploy the platform"):
        cicd.deployed_code(sagemaker, PIPELINE)


def test_the_commit_is_passed_only_to_a_definition_that_declares_it(deployed_definition: str) -> None:
    document = json.loads(deployed_definition)
    current = cicd.deployed_code(stub_sagemaker(deployed_definition, {}), PIPELINE)
    document["Parameters"] = [p for p in document["Parameters"] if p["Name"] != "GitCommit"]
    older = cicd.deployed_code(stub_sagemaker(json.dumps(document), {}), PIPELINE)
    assert cicd.commit_parameters(current, COMMIT) == [{"Name": "GitCommit", "Value": COMMIT}]
    assert cicd.commit_parameters(older, COMMIT) == [], "an unknown parameter would fail the start"
    assert cicd.commit_parameters(current, None) == []


def test_execution_labels_carry_the_commit_within_sagemaker_limits() -> None:
    labels = cicd.execution_labels(COMMIT, "f" * 64, "c" * 64, build_id="train:1234")
    assert labels.display_name == f"ci-{COMMIT}"
    assert COMMIT in labels.description and "train:1234" in labels.description
    assert len(labels.client_request_token) == 64
    retry = cicd.execution_labels(COMMIT, "f" * 64, "c" * 64)
    assert retry.client_request_token == labels.client_request_token, "a retry"
    assert cicd.execution_labels(COMMIT, "e" * 64, "c" * 64).client_request_token != labels.client_request_token
    assert cicd.execution_labels(COMMIT, "f" * 64, "d" * 64).client_request_token != labels.client_request_token
    odd = cicd.execution_labels("refs/heads/main@" + "x" * 200, "f" * 64, "c" * 64)
    assert len(odd.display_name) <= 82 and odd.display_name.startswith("ci-refs-heads-main-x")
    first, second = cicd.execution_labels(None, "f" * 64, "c" * 64), cicd.execution_labels(None, "f" * 64, "c" * 64)
    assert first.display_name == "ci-no-commit-cccccccccccc"
    assert first.client_request_token != second.client_request_token, "no commit: every run starts one"


# --- The command ---------------------------------------------------------------------------------


def test_run_starts_the_deployed_definition_on_the_pushed_code_and_follows_it(
    aws: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str], deployed_definition: str, code_uris: dict[str, str]
) -> None:
    summary_path = tmp_path / "train-summary.json"
    environ = {**ENV, "CODEBUILD_RESOLVED_SOURCE_VERSION": COMMIT}
    before = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    with (
        mock.patch.object(aws.sagemaker, "update_pipeline") as update,
        mock.patch.object(aws.sagemaker, "create_pipeline") as create,
    ):
        code = cicd.main(
            ["run", "--summary", str(summary_path), "--poll-seconds", "1"],
            environ=environ,
            client=lambda service, region: aws.sagemaker if service == "sagemaker" else moto_client(service, region),
        )
    out = capsys.readouterr().out
    assert code == 0, out
    update.assert_not_called()
    create.assert_not_called()
    after = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    assert after["PipelineDefinition"] == deployed_definition, "CloudFormation's definition, untouched"
    assert after["LastModifiedTime"] == before["LastModifiedTime"]
    (execution,) = aws.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    arn = execution["PipelineExecutionArn"]
    described = aws.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionDisplayName"] == f"ci-{COMMIT}"
    assert COMMIT in described["PipelineExecutionDescription"]
    assert described["PipelineExecutionStatus"] == "Succeeded"
    passed = aws.sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in passed} == {
        **{CODE_PARAMETERS[name]: code_uris[name] for name in code_uris},
        "GitCommit": COMMIT,  # the registered version's lineage
    }
    for uri in code_uris.values():
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        assert aws.s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    assert "step statuses unavailable" in out, "moto has no list_pipeline_execution_steps: followed anyway"
    assert f"pipeline execution {arn} succeeded" in out
    summary = json.loads(summary_path.read_text())
    assert summary == {
        "command": "run",
        "commit": COMMIT,
        "pipeline": PIPELINE,
        "config_differences": [],
        "code": code_uris,
        "definition_sha256": hashlib.sha256(deployed_definition.encode()).hexdigest(),
        "champion": None,
        "pipeline_execution_arn": arn,
        "display_name": f"ci-{COMMIT}",
        "status": "Succeeded",
        "reason": "",
        "steps": [],
    }


def test_a_differing_pushed_config_is_reported_and_the_deployed_one_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], deployed_definition: str
) -> None:
    deployed = dataclasses.replace(VALUES, model=dataclasses.replace(CONFIG.model, threshold=9.5))
    sagemaker = stub_sagemaker(deployed_definition, {"PipelineExecutionStatus": "Succeeded"})
    summary = tmp_path / "summary.json"
    assert run_main(["run", "--summary", str(summary)], sagemaker, FakeClock(), ssm=stub_ssm(deployed)) == 0
    assert capsys.readouterr().err == (
        f"warning: model.threshold: pushed {CONFIG.model.threshold!r}, deployed 9.5: this run trains with the "
        "deployed definition; the pushed config reaches it with the platform deploy\n"
    )
    assert json.loads(summary.read_text())["config_differences"] == [
        f"model.threshold: pushed {CONFIG.model.threshold!r}, deployed 9.5"
    ]
    ((_, arguments),) = [(call.args, call.kwargs) for call in sagemaker.start_pipeline_execution.call_args_list]
    assert {p["Name"] for p in arguments["PipelineParameters"]} == set(CODE_PARAMETERS.values())


def test_no_wait_only_starts_and_upload_starts_nothing(aws: Aws, tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    assert cicd.main(["upload", "--summary", str(summary)], environ=ENV, client=moto_client) == 0
    assert json.loads(summary.read_text())["status"] == "Uploaded"
    assert aws.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"] == []
    assert cicd.main(["run", "--no-wait", "--summary", str(summary)], environ=ENV, client=moto_client) == 0
    assert json.loads(summary.read_text())["status"] == "Started"
    assert len(aws.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]) == 1


def test_a_failed_execution_exits_1_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], deployed_definition: str
) -> None:
    message = "The model's rmse on the test split is 9.1, which does not meet the threshold (rmse <= 8.0)"
    steps: list[dict[str, Any]] = [
        {"StepName": "ValidateData", "StepStatus": "Succeeded"},
        {"StepName": "CheckMetric", "StepStatus": "Succeeded"},
        {"StepName": "MetricNotMet", "StepStatus": "Failed", "Metadata": {"Fail": {"ErrorMessage": message}}},
    ]
    sagemaker = stub_sagemaker(
        deployed_definition,
        {"PipelineExecutionStatus": "Executing"},
        {"PipelineExecutionStatus": "Executing"},
        {"PipelineExecutionStatus": "Failed", "FailureReason": "Step failure: One or multiple steps failed."},
        steps=steps,
    )
    clock = FakeClock()
    summary = tmp_path / "summary.json"
    code = run_main(["run", "--poll-seconds", "15", "--summary", str(summary)], sagemaker, clock)
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err == (
        f"error: pipeline execution Failed: Step failure: One or multiple steps failed.; MetricNotMet: {message}\n"
    )
    assert clock.sleeps == [15, 15]
    assert captured.out.count("MetricNotMet: Failed") == 1, "each step change printed once"
    assert "execution Executing" in captured.out and "execution Failed" in captured.out
    written = json.loads(summary.read_text())
    assert (written["status"], written["pipeline_execution_arn"]) == ("Failed", EXECUTION)
    assert message in written["reason"]
    assert written["steps"][-1] == {"name": "MetricNotMet", "status": "Failed", "reason": message}


def test_a_timeout_exits_1_and_leaves_the_execution_running(
    capsys: pytest.CaptureFixture[str], deployed_definition: str
) -> None:
    sagemaker = stub_sagemaker(deployed_definition, {"PipelineExecutionStatus": "Executing"})
    sagemaker.list_pipeline_execution_steps.side_effect = ClientError(
        {"Error": {"Code": "InternalFailure", "Message": "boom"}}, "ListPipelineExecutionSteps"
    )
    clock = FakeClock()
    code = run_main(["run", "--poll-seconds", "25", "--timeout-minutes", "1"], sagemaker, clock)
    captured = capsys.readouterr()
    assert code == 1
    assert clock.sleeps == [25, 25, 10]
    assert sagemaker.describe_pipeline_execution.call_count == 4
    assert sagemaker.list_pipeline_execution_steps.call_count == 1, "not asked again once unavailable"
    assert captured.err == (
        f"error: timed out following {EXECUTION}: still Executing after 1 minutes; the execution was left running\n"
    )
    sagemaker.stop_pipeline_execution.assert_not_called()


def test_an_aws_error_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], deployed_definition: str) -> None:
    sagemaker = stub_sagemaker(deployed_definition, {"PipelineExecutionStatus": "Succeeded"})
    sagemaker.start_pipeline_execution.side_effect = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized\nto start"}}, "StartPipelineExecution"
    )
    assert run_main(["run"], sagemaker, FakeClock()) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: AWS: An error occurred (AccessDeniedException)") and line.endswith("to start")


def test_a_crash_exits_2_not_1(tmp_path: Path, capsys: pytest.CaptureFixture[str], deployed_definition: str) -> None:
    sagemaker = stub_sagemaker(deployed_definition, {"PipelineExecutionStatus": "Succeeded"})
    sagemaker.describe_pipeline_execution.side_effect = KeyError("PipelineExecutionStatus")
    summary = tmp_path / "summary.json"
    assert run_main(["run", "--summary", str(summary)], sagemaker, FakeClock()) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "error: KeyError: 'PipelineExecutionStatus'"
    assert json.loads(summary.read_text())["status"] == "Error"


# --- The champion: the version production serves ----------------------------------------------------


def _started_with_champion_settings(aws: Aws, tmp_path: Path, ssm: Any) -> dict[str, Any]:
    """What ``run --no-wait`` passes to StartPipelineExecution."""
    starts: list[dict[str, Any]] = []
    real_start = aws.sagemaker.start_pipeline_execution

    def recording_start(**kwargs: Any) -> Any:
        starts.append(kwargs)
        return real_start(**kwargs)

    sagemaker = mock.Mock(wraps=aws.sagemaker, start_pipeline_execution=recording_start)
    clients = {"s3": aws.s3, "sagemaker": sagemaker, "ssm": ssm}
    code = cicd.main(
        ["run", "--no-wait", "--summary", str(tmp_path / "s.json")],
        environ=ENV,
        client=lambda service, region: clients[service],
    )
    assert code == 0
    (start,) = starts
    return start


def test_the_run_starts_with_the_version_production_serves_as_champion(aws: Aws, tmp_path: Path) -> None:
    group = VALUES.model_package_group
    aws.sagemaker.create_model_package_group(ModelPackageGroupName=group)
    served = aws.sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/model-build/v1/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    aws.ssm.put_parameter(Name=naming.champion_parameter(CONFIG), Value=served, Type="String")
    start = _started_with_champion_settings(aws, tmp_path, aws.ssm)
    passed = {p["Name"]: p["Value"] for p in start["PipelineParameters"]}
    assert passed["ChampionModelData"] == f"s3://{BUCKET}/model-build/v1/model.tar.gz"
    assert set(passed) == {"ChampionModelData", *CODE_PARAMETERS.values()}


def test_without_a_served_version_the_run_starts_with_no_champion(aws: Aws, tmp_path: Path) -> None:
    start = _started_with_champion_settings(aws, tmp_path, aws.ssm)
    assert {p["Name"] for p in start["PipelineParameters"]} == set(CODE_PARAMETERS.values()), "no ChampionModelData"
