"""CI's train command: settings from the environment, content-addressed code, the pipeline updated
with the stack's definition function, one execution started and followed to its outcome.

AWS is moto (which marks an execution Succeeded as soon as it starts) or a stub SageMaker client
for executions that run, fail or never end. The definition is built once, here (a module fixture);
the command's own build of the same settings is checked to be that call and then comes from its cache.
"""

from __future__ import annotations

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
from pipelines_src.definition import build_definition
from pipelines_src.packaging import RUNNER_PATH, STEPS_DIR

REGION = "eu-west-1"
BUCKET = "artifacts-123456789012"
PIPELINE = "mlops-dev-delivery-time-build"
KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
EXECUTION = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/{PIPELINE}/execution/abc123"
ENV = {
    "PIPELINE_NAME": PIPELINE,
    "AWS_REGION": REGION,
    "PIPELINE_ROLE_ARN": "arn:aws:iam::123456789012:role/mlops-dev-pipeline",
    "ARTIFACTS_BUCKET": BUCKET,
    "INPUT_DATA_URI": "s3://lake-123456789012/raw/delivery_time/",
    "KMS_KEY_ARN": KMS_KEY,
    "SUBNET_IDS": "subnet-0aaaaaaaaaaaaaaaa, subnet-0bbbbbbbbbbbbbbbb",
    "SECURITY_GROUP_IDS": "sg-0cccccccccccccccc",
    "MODEL_PACKAGE_GROUP": "mlops-dev-delivery-time",
    "METRIC": "rmse",
    "GOAL": "minimize",
    "THRESHOLD": "8",
    "PROCESSING_INSTANCE_TYPE": "ml.m5.large",
    "TRAINING_INSTANCE_TYPE": "ml.m5.xlarge",
    "DATASET": "delivery_time",
}


def quiet(line: str) -> None:
    pass


def existing_objects() -> Any:
    """An S3 client on which every object already exists: upload_code only computes the URIs."""
    return mock.MagicMock(name="s3")


@pytest.fixture(scope="module")
def code_uris() -> dict[str, str]:
    return cicd.upload_code(existing_objects(), BUCKET, "code", dataset="delivery_time", kms_key_id=KMS_KEY, echo=quiet)


@pytest.fixture(scope="module")
def expected_definition(code_uris: dict[str, str]) -> str:
    return build_definition(cicd.CiSettings.from_environ(ENV).pipeline_settings(code_uris))


@dataclass
class Aws:
    s3: Any
    sagemaker: Any


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield Aws(s3=s3, sagemaker=boto3.client("sagemaker", region_name=REGION))


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def stub_sagemaker(*statuses: dict[str, Any], steps: list[dict[str, Any]] | None = None) -> Any:
    """A SageMaker client whose execution goes through these describe answers (the last one repeats)."""
    sagemaker = mock.MagicMock(name="sagemaker")
    sagemaker.start_pipeline_execution.return_value = {"PipelineExecutionArn": EXECUTION}
    answers = list(statuses)
    sagemaker.describe_pipeline_execution.side_effect = lambda **_: answers.pop(0) if len(answers) > 1 else answers[0]
    sagemaker.list_pipeline_execution_steps.return_value = {"PipelineExecutionSteps": steps or []}
    return sagemaker


def run_main(argv: list[str], sagemaker: Any, clock: FakeClock, **environ: str) -> int:
    return cicd.main(
        argv,
        environ={**ENV, **environ},
        client=lambda service, region: existing_objects() if service == "s3" else sagemaker,
        clock=clock,
        sleep=clock.sleep,
    )


# --- Settings ----------------------------------------------------------------------------------


def test_settings_are_read_from_the_environment() -> None:
    settings = cicd.CiSettings.from_environ(ENV)
    assert settings.subnet_ids == ("subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb")
    assert settings.security_group_ids == ("sg-0cccccccccccccccc",)
    assert settings.threshold == 8.0
    assert (settings.artifacts_prefix, settings.code_prefix) == ("model-build", "code"), "the defaults"
    assert settings.model_package_group_name == "mlops-dev-delivery-time"
    overridden = cicd.CiSettings.from_environ({**ENV, "ARTIFACTS_PREFIX": "builds", "CODE_PREFIX": "ci/code"})
    assert (overridden.artifacts_prefix, overridden.code_prefix) == ("builds", "ci/code")
    assert set(cicd.ENVIRONMENT.values()) == set(ENV) | {"ARTIFACTS_PREFIX", "CODE_PREFIX"}


def test_ci_builds_the_model_monitor_baseline_step_only_when_asked(code_uris: dict[str, str]) -> None:
    """The drift engine model_monitor sets DATA_QUALITY_MONITOR on the train project; CI must not drop the step."""
    assert cicd.CiSettings.from_environ(ENV).pipeline_settings(code_uris).data_quality_monitor is False
    monitored = cicd.CiSettings.from_environ({**ENV, "DATA_QUALITY_MONITOR": "true"})
    assert monitored.pipeline_settings(code_uris).data_quality_monitor is True


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("PIPELINE_NAME", None, "PIPELINE_NAME is not set"),
        ("KMS_KEY_ARN", "  ", "KMS_KEY_ARN is not set"),
        ("AWS_REGION", None, "AWS_REGION is not set"),
        ("AWS_REGION", "", "AWS_REGION is not set"),
        ("THRESHOLD", "high", "THRESHOLD: 'high' is not a number"),
        ("THRESHOLD", "nan", "THRESHOLD: nan must be a finite number"),
        ("SUBNET_IDS", "subnet-a,,subnet-b", "SUBNET_IDS: 'subnet-a,,subnet-b' is not a comma-separated list"),
        ("GOAL", "up", "GOAL: 'up' is not one of maximize, minimize"),
        ("METRIC", "Bad-Metric", "METRIC: 'Bad-Metric' is not a metric name"),
        ("PIPELINE_ROLE_ARN", "pipeline", "PIPELINE_ROLE_ARN: 'pipeline' is not an IAM role ARN"),
        ("ARTIFACTS_BUCKET", "Bad_Bucket", "ARTIFACTS_BUCKET: 'Bad_Bucket' is not an S3 bucket name"),
        ("ARTIFACTS_PREFIX", "/builds", "ARTIFACTS_PREFIX: '/builds' is not an S3 key prefix"),
        ("CODE_PREFIX", "code/", "CODE_PREFIX: 'code/' is not an S3 key prefix"),
        ("INPUT_DATA_URI", "/data/raw", "INPUT_DATA_URI: '/data/raw' is neither an s3://bucket/key URI"),
        ("PROCESSING_INSTANCE_TYPE", "m5.large", "PROCESSING_INSTANCE_TYPE: 'm5.large' is not a SageMaker instance"),
        ("MODEL_PACKAGE_GROUP", "${Group}", "MODEL_PACKAGE_GROUP: '${Group}' holds a '${'"),
        ("DATASET", "nope", "DATASET: 'nope' has no data contract (pipelines_src/contracts/nope.json does not exist)"),
        ("DATASET", "../secrets", "DATASET: '../secrets' is not a dataset name"),
        ("DATA_QUALITY_MONITOR", "yes", "DATA_QUALITY_MONITOR: 'yes' is not true or false"),
        ("CHAMPION_MARGIN", "a bit", "CHAMPION_MARGIN: 'a bit' is not a number"),
    ],
)
def test_bad_settings_name_the_variable(variable: str, value: str | None, reason: str) -> None:
    environ = {name: text for name, text in ENV.items() if name != variable}
    if value is not None:
        environ[variable] = value
    with pytest.raises(cicd.ConfigError) as raised:
        cicd.CiSettings.from_environ(environ)
    assert str(raised.value).startswith(reason)


def test_every_missing_variable_is_named_at_once() -> None:
    with pytest.raises(cicd.ConfigError, match=r"^PIPELINE_NAME, AWS_REGION, .*, DATASET are not set$"):
        cicd.CiSettings.from_environ({})
    fallback = cicd.CiSettings.from_environ({**ENV, "AWS_REGION": "", "AWS_DEFAULT_REGION": "us-east-1"})
    assert fallback.region == "us-east-1"


def test_bad_settings_exit_2_with_one_line_and_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "reports" / "summary.json"
    sagemaker = stub_sagemaker({"PipelineExecutionStatus": "Succeeded"})
    code = run_main(["run", "--summary", str(summary)], sagemaker, FakeClock(), GOAL="up")
    assert code == 2
    assert capsys.readouterr().err == "error: bad settings: GOAL: 'up' is not one of maximize, minimize\n"
    assert json.loads(summary.read_text())["status"] == "Error"
    sagemaker.update_pipeline.assert_not_called()


# --- Code ----------------------------------------------------------------------------------------


def test_code_is_uploaded_once_under_content_addressed_keys(
    aws: Aws, tmp_path: Path, code_uris: dict[str, str]
) -> None:
    uris = cicd.upload_code(aws.s3, BUCKET, "code", dataset="delivery_time", kms_key_id=KMS_KEY, echo=quiet)
    assert uris == code_uris
    runner = RUNNER_PATH.read_bytes()
    assert uris["runner_uri"] == f"s3://{BUCKET}/code/{hashlib.sha256(runner).hexdigest()}/run_step.sh"
    contract = (cicd.CONTRACTS_DIR / "delivery_time.json").read_bytes()
    assert uris["contract_uri"] == f"s3://{BUCKET}/code/{hashlib.sha256(contract).hexdigest()}/contract.json"
    assert uris["source_tar_uri"].endswith("/sourcedir.tar.gz")
    for uri in uris.values():
        key = uri.removeprefix(f"s3://{BUCKET}/")
        body = aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert key.split("/")[1] == hashlib.sha256(body).hexdigest()
        head = aws.s3.head_object(Bucket=BUCKET, Key=key)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", KMS_KEY)

    lines: list[str] = []
    with mock.patch.object(aws.s3, "put_object", wraps=aws.s3.put_object) as put:
        assert cicd.upload_code(aws.s3, BUCKET, "code", dataset="delivery_time", kms_key_id=KMS_KEY, echo=lines.append)
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


def test_upsert_creates_then_updates_the_pipeline_with_the_definition(
    aws: Aws, code_uris: dict[str, str], expected_definition: str
) -> None:
    settings = cicd.CiSettings.from_environ(ENV)
    concrete = settings.pipeline_settings(code_uris)
    cicd._definition.cache_clear()
    # The definition built here already: the command's call to build_definition answers with it.
    with mock.patch.object(cicd, "build_definition", return_value=expected_definition) as build:
        digest = cicd.upsert(aws.sagemaker, settings, code_uris, description="first")
    build.assert_called_once_with(concrete)
    assert digest == hashlib.sha256(expected_definition.encode()).hexdigest()
    pipeline = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    assert pipeline["PipelineDefinition"] == expected_definition
    assert pipeline["RoleArn"] == ENV["PIPELINE_ROLE_ARN"]
    assert "${" not in expected_definition
    assert code_uris["source_tar_uri"] in expected_definition

    with (
        mock.patch.object(aws.sagemaker, "create_pipeline", wraps=aws.sagemaker.create_pipeline) as create,
        mock.patch.object(aws.sagemaker, "update_pipeline", wraps=aws.sagemaker.update_pipeline) as update,
    ):
        assert cicd.upsert(aws.sagemaker, settings, code_uris, description="second") == digest
    create.assert_not_called()
    update.assert_called_once()
    pipeline = aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)
    assert (pipeline["PipelineDefinition"], pipeline["PipelineDescription"]) == (expected_definition, "second")


def test_other_errors_of_update_are_not_taken_for_a_missing_pipeline(code_uris: dict[str, str]) -> None:
    sagemaker = mock.MagicMock()
    denied = {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}
    sagemaker.update_pipeline.side_effect = ClientError(denied, "UpdatePipeline")
    with pytest.raises(ClientError):
        cicd.upsert(sagemaker, cicd.CiSettings.from_environ(ENV), code_uris, description="d")
    sagemaker.create_pipeline.assert_not_called()


def test_execution_labels_carry_the_commit_within_sagemaker_limits() -> None:
    labels = cicd.execution_labels(COMMIT, "f" * 64, build_id="train:1234")
    assert labels.display_name == f"ci-{COMMIT}"
    assert COMMIT in labels.description and "train:1234" in labels.description
    assert len(labels.client_request_token) == 64
    assert cicd.execution_labels(COMMIT, "f" * 64).client_request_token == labels.client_request_token, "a retry"
    assert cicd.execution_labels(COMMIT, "e" * 64).client_request_token != labels.client_request_token
    odd = cicd.execution_labels("refs/heads/main@" + "x" * 200, "f" * 64)
    assert len(odd.display_name) <= 82 and odd.display_name.startswith("ci-refs-heads-main-x")
    first, second = cicd.execution_labels(None, "f" * 64), cicd.execution_labels(None, "f" * 64)
    assert first.display_name == "ci-no-commit-ffffffffffff"
    assert first.client_request_token != second.client_request_token, "no commit: every run starts one"


# --- The command ---------------------------------------------------------------------------------


def test_run_updates_starts_and_follows_to_success(
    aws: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str], expected_definition: str, code_uris: dict[str, str]
) -> None:
    summary_path = tmp_path / "train-summary.json"
    environ = {**ENV, "CODEBUILD_RESOLVED_SOURCE_VERSION": COMMIT}
    code = cicd.main(["run", "--summary", str(summary_path), "--poll-seconds", "1"], environ=environ)
    out = capsys.readouterr().out
    assert code == 0, out
    assert aws.sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineDefinition"] == expected_definition
    (execution,) = aws.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    arn = execution["PipelineExecutionArn"]
    described = aws.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionDisplayName"] == f"ci-{COMMIT}"
    assert COMMIT in described["PipelineExecutionDescription"]
    assert described["PipelineExecutionStatus"] == "Succeeded"
    assert "step statuses unavailable" in out, "moto has no list_pipeline_execution_steps: followed anyway"
    assert f"pipeline execution {arn} succeeded" in out
    summary = json.loads(summary_path.read_text())
    assert summary == {
        "command": "run",
        "commit": COMMIT,
        "pipeline": PIPELINE,
        "code": code_uris,
        "definition_sha256": hashlib.sha256(expected_definition.encode()).hexdigest(),
        "pipeline_execution_arn": arn,
        "display_name": f"ci-{COMMIT}",
        "status": "Succeeded",
        "reason": "",
        "steps": [],
    }


def test_no_wait_only_starts_and_upload_and_upsert_starts_nothing(aws: Aws, tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    assert cicd.main(["upload-and-upsert", "--summary", str(summary)], environ=ENV) == 0
    assert json.loads(summary.read_text())["status"] == "Updated"
    assert aws.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"] == []
    assert cicd.main(["run", "--no-wait", "--summary", str(summary)], environ=ENV) == 0
    assert json.loads(summary.read_text())["status"] == "Started"
    assert len(aws.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]) == 1


def test_a_failed_execution_exits_1_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = "The model's rmse on the test split is 9.1, which does not meet the threshold (rmse <= 8.0)"
    steps: list[dict[str, Any]] = [
        {"StepName": "ValidateData", "StepStatus": "Succeeded"},
        {"StepName": "CheckMetric", "StepStatus": "Succeeded"},
        {"StepName": "MetricNotMet", "StepStatus": "Failed", "Metadata": {"Fail": {"ErrorMessage": message}}},
    ]
    sagemaker = stub_sagemaker(
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


def test_a_timeout_exits_1_and_leaves_the_execution_running(capsys: pytest.CaptureFixture[str]) -> None:
    sagemaker = stub_sagemaker({"PipelineExecutionStatus": "Executing"})
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


def test_an_aws_error_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    sagemaker = stub_sagemaker({"PipelineExecutionStatus": "Succeeded"})
    sagemaker.start_pipeline_execution.side_effect = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized\nto start"}}, "StartPipelineExecution"
    )
    assert run_main(["run"], sagemaker, FakeClock()) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: AWS: An error occurred (AccessDeniedException)") and line.endswith("to start")


def test_a_crash_exits_2_not_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sagemaker = stub_sagemaker({"PipelineExecutionStatus": "Succeeded"})
    sagemaker.describe_pipeline_execution.side_effect = KeyError("PipelineExecutionStatus")
    summary = tmp_path / "summary.json"
    assert run_main(["run", "--summary", str(summary)], sagemaker, FakeClock()) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "error: KeyError: 'PipelineExecutionStatus'"
    assert json.loads(summary.read_text())["status"] == "Error"


# --- The champion: the version production serves ----------------------------------------------------

CHAMPION_ENV = {
    "CHAMPION_PARAMETER": "/mlops/dev/delivery-time/production/model-package-arn",
    "MODEL_PACKAGE_PARTITION": "aws",
    "MODEL_PACKAGE_REGION": REGION,
    "MODEL_PACKAGE_ACCOUNT": "123456789012",
}


def test_the_champion_margin_reaches_the_definition(code_uris: dict[str, str]) -> None:
    settings = cicd.CiSettings.from_environ({**ENV, "CHAMPION_MARGIN": "0.25"})
    assert settings.champion_margin == 0.25
    definition = json.loads(build_definition(settings.pipeline_settings(code_uris)))
    (evaluate,) = [step for step in definition["Steps"][1]["Arguments"]["IfSteps"] if step["Name"] == "Evaluate"]
    arguments = evaluate["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--champion-margin") + 1] == "0.25"


def test_a_negative_champion_margin_is_bad_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cicd.main(["run", "--summary", str(tmp_path / "s.json")], environ={**ENV, "CHAMPION_MARGIN": "-1"})
    assert code == 2
    assert "champion_margin" in capsys.readouterr().err


def _started_with_champion_settings(aws: Aws, tmp_path: Path, ssm: Any) -> dict[str, Any]:
    """What ``run --no-wait`` passes to StartPipelineExecution with CHAMPION_PARAMETER and its scope set."""
    starts: list[dict[str, Any]] = []
    real_start = aws.sagemaker.start_pipeline_execution

    def recording_start(**kwargs: Any) -> Any:
        starts.append(kwargs)
        return real_start(**kwargs)

    sagemaker = mock.Mock(wraps=aws.sagemaker, start_pipeline_execution=recording_start)
    clients = {"s3": aws.s3, "sagemaker": sagemaker, "ssm": ssm}
    code = cicd.main(
        ["run", "--no-wait", "--summary", str(tmp_path / "s.json")],
        environ={**ENV, **CHAMPION_ENV},
        client=lambda service, region: clients[service],
    )
    assert code == 0
    (start,) = starts
    return start


def test_the_run_starts_with_the_version_production_serves_as_champion(aws: Aws, tmp_path: Path) -> None:
    group = ENV["MODEL_PACKAGE_GROUP"]
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
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=CHAMPION_ENV["CHAMPION_PARAMETER"], Value=served, Type="String")
    start = _started_with_champion_settings(aws, tmp_path, ssm)
    assert start["PipelineParameters"] == [
        {"Name": "ChampionModelData", "Value": f"s3://{BUCKET}/model-build/v1/model.tar.gz"}
    ]


def test_without_a_served_version_the_run_starts_with_no_champion(aws: Aws, tmp_path: Path) -> None:
    start = _started_with_champion_settings(aws, tmp_path, boto3.client("ssm", region_name=REGION))
    assert "PipelineParameters" not in start
