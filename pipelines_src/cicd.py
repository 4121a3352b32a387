"""CI's train stage: the pushed code becomes the model-build pipeline's definition, which then runs once.

    python -m pipelines_src.cicd run [--no-wait] [--poll-seconds S] [--timeout-minutes M] [--summary PATH]
    python -m pipelines_src.cicd upload-and-upsert [--summary PATH]

``run`` packages the step scripts (`packaging.build_source_tarball`), uploads the tarball, the runner
and the dataset's data contract to the artifacts bucket under content-addressed keys, rebuilds the
definition with `definition.build_definition` (the function the stack deploys) from concrete values,
updates the SageMaker pipeline with it (creates it if it does not exist), starts one execution and
follows it to its end. Its settings come from environment variables (`ENVIRONMENT`), set on the
CodeBuild project by the CI/CD stack.

Exit codes: 0 the execution succeeded (or, with ``--no-wait``, was started); 1 it failed, was
stopped or was still running at the timeout (it is left running); 2 bad settings or an AWS error.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.shared import champion
from pipelines_src.definition import CONTRACT_NAME, PipelineSettings, SettingsError, build_definition
from pipelines_src.packaging import (
    PIPELINES_SRC,
    RUNNER_NAME,
    RUNNER_PATH,
    SOURCE_TARBALL_NAME,
    STEPS_DIR,
    build_source_tarball,
)

CONTRACTS_DIR: Final = PIPELINES_SRC / "contracts"

# The environment variables, by the `CiSettings` field each one sets.
ENVIRONMENT: Final = {
    "pipeline_name": "PIPELINE_NAME",
    "region": "AWS_REGION",
    "role_arn": "PIPELINE_ROLE_ARN",
    "artifacts_bucket": "ARTIFACTS_BUCKET",
    "artifacts_prefix": "ARTIFACTS_PREFIX",
    "code_prefix": "CODE_PREFIX",
    "input_data_uri": "INPUT_DATA_URI",
    "kms_key_arn": "KMS_KEY_ARN",
    "subnet_ids": "SUBNET_IDS",
    "security_group_ids": "SECURITY_GROUP_IDS",
    "model_package_group_name": "MODEL_PACKAGE_GROUP",
    "metric": "METRIC",
    "goal": "GOAL",
    "threshold": "THRESHOLD",
    "processing_instance_type": "PROCESSING_INSTANCE_TYPE",
    "training_instance_type": "TRAINING_INSTANCE_TYPE",
    "dataset": "DATASET",
}
DEFAULTS: Final = {"ARTIFACTS_PREFIX": "model-build", "CODE_PREFIX": "code"}
# Optional: "true" adds the Model Monitor baseline step (drift engine model_monitor); default "false".
MONITOR_VARIABLE: Final = "DATA_QUALITY_MONITOR"
# Optional: model.champion_margin (default 0); CHAMPION_PARAMETER (the production served-version record, with
# the MODEL_PACKAGE_* scope) makes the version production serves each run's champion (lambdas/shared/champion.py).
MARGIN_VARIABLE: Final = "CHAMPION_MARGIN"
# The commit CodeBuild checked out.
COMMIT_VARIABLE: Final = "CODEBUILD_RESOLVED_SOURCE_VERSION"
BUILD_VARIABLE: Final = "CODEBUILD_BUILD_ID"

# The `upload_code` keys, named like the PipelineSettings fields they fill.
CODE_FIELDS: Final = ("source_tar_uri", "runner_uri", "contract_uri")
_CONTENT_TYPES: Final = {
    SOURCE_TARBALL_NAME: "application/gzip",
    RUNNER_NAME: "text/x-shellscript",
    CONTRACT_NAME: "application/json",
}

SUCCEEDED: Final = "Succeeded"
TERMINAL_STATUSES: Final = frozenset({SUCCEEDED, "Failed", "Stopped", "CompletedWithFailures"})
TIMED_OUT: Final = "TimedOut"
STARTED: Final = "Started"

EXIT_SUCCEEDED: Final = 0
EXIT_PIPELINE_FAILED: Final = 1
EXIT_ERROR: Final = 2

# SageMaker's limits (StartPipelineExecution).
_DISPLAY_NAME_MAX: Final = 82
_DESCRIPTION_MAX: Final = 3072
_TOKEN_LENGTH: Final = 64  # ClientRequestToken: 32 to 128 characters

_KEY_PREFIX: Final = re.compile(r"[\w!.*'()-]+(/[\w!.*'()-]+)*")
_DATASET: Final = re.compile(r"[a-z0-9][a-z0-9_-]*")
_FIELD_ERROR: Final = re.compile(r"PipelineSettings\.(\w+): (.*)", re.DOTALL)
_PLACEHOLDER_CODE: Final = {
    "source_tar_uri": f"s3://placeholder/code/{SOURCE_TARBALL_NAME}",
    "runner_uri": f"s3://placeholder/code/{RUNNER_NAME}",
    "contract_uri": f"s3://placeholder/code/{CONTRACT_NAME}",
}


class ConfigError(ValueError):
    """An environment variable is missing or has a value the pipeline cannot be built with."""


@dataclass(frozen=True)
class CiSettings:
    """The train stage's settings, parsed once from the environment (`from_environ`)."""

    pipeline_name: str
    region: str
    role_arn: str
    artifacts_bucket: str
    input_data_uri: str
    kms_key_arn: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    model_package_group_name: str
    metric: str
    goal: str
    threshold: float
    processing_instance_type: str
    training_instance_type: str
    dataset: str
    artifacts_prefix: str = DEFAULTS["ARTIFACTS_PREFIX"]
    # Where upload_code puts the code in the artifacts bucket.
    code_prefix: str = DEFAULTS["CODE_PREFIX"]
    data_quality_monitor: bool = False
    champion_margin: float = 0.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> CiSettings:
        """Settings from environment variables; a `ConfigError` names the variable that is wrong."""

        def text(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value and name == "AWS_REGION":
                value = environ.get("AWS_DEFAULT_REGION", "").strip()
            return value or DEFAULTS.get(name, "")

        missing = [variable for variable in ENVIRONMENT.values() if not text(variable)]
        if missing:
            raise ConfigError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set")

        def ids(name: str) -> tuple[str, ...]:
            values = tuple(item.strip() for item in text(name).split(","))
            if not all(values):
                raise ConfigError(f"{name}: {environ[name]!r} is not a comma-separated list of ids (an empty item)")
            return values

        raw_threshold = text("THRESHOLD")
        try:
            threshold = float(raw_threshold)
        except ValueError:
            raise ConfigError(f"THRESHOLD: {raw_threshold!r} is not a number") from None
        raw_margin = environ.get(MARGIN_VARIABLE, "0")
        try:
            margin = float(raw_margin)
        except ValueError:
            raise ConfigError(f"{MARGIN_VARIABLE}: {raw_margin!r} is not a number") from None
        monitor = environ.get(MONITOR_VARIABLE, "false").strip().lower()
        if monitor not in ("true", "false"):
            raise ConfigError(f"{MONITOR_VARIABLE}: {environ[MONITOR_VARIABLE]!r} is not true or false")
        values: dict[str, Any] = {
            name: text(variable)
            for name, variable in ENVIRONMENT.items()
            if name not in ("subnet_ids", "security_group_ids", "threshold")
        }
        settings = cls(
            **values,
            subnet_ids=ids("SUBNET_IDS"),
            security_group_ids=ids("SECURITY_GROUP_IDS"),
            threshold=threshold,
            data_quality_monitor=monitor == "true",
            champion_margin=margin,
        )
        settings.check()
        return settings

    def check(self) -> None:
        """What PipelineSettings checks, and the code prefix and dataset, in terms of the variables."""
        for name, variable in ENVIRONMENT.items():
            value = getattr(self, name)
            if any("${" in text for text in (value if isinstance(value, tuple) else (value,)) if isinstance(text, str)):
                raise ConfigError(f"{variable}: {value!r} holds a '${{': CI gives SageMaker concrete values")
        if not _KEY_PREFIX.fullmatch(self.code_prefix):
            raise ConfigError(f"CODE_PREFIX: {self.code_prefix!r} is not an S3 key prefix (no leading or trailing '/')")
        if not _DATASET.fullmatch(self.dataset):
            raise ConfigError(f"DATASET: {self.dataset!r} is not a dataset name (lowercase, digits, '_', '-')")
        if not contract_path(self.dataset).is_file():
            where = contract_path(self.dataset).relative_to(PIPELINES_SRC.parent)
            raise ConfigError(f"DATASET: {self.dataset!r} has no data contract ({where} does not exist)")
        self.pipeline_settings(_PLACEHOLDER_CODE)

    def pipeline_settings(self, code: Mapping[str, str]) -> PipelineSettings:
        """The definition's settings: these values and the uploaded code's URIs, no placeholders."""
        try:
            return PipelineSettings(
                pipeline_name=self.pipeline_name,
                region=self.region,
                role_arn=self.role_arn,
                artifacts_bucket=self.artifacts_bucket,
                artifacts_prefix=self.artifacts_prefix,
                input_data_uri=self.input_data_uri,
                contract_uri=code["contract_uri"],
                source_tar_uri=code["source_tar_uri"],
                runner_uri=code["runner_uri"],
                model_package_group_name=self.model_package_group_name,
                kms_key_arn=self.kms_key_arn,
                subnet_ids=self.subnet_ids,
                security_group_ids=self.security_group_ids,
                metric=self.metric,
                goal=self.goal,
                threshold=self.threshold,
                champion_margin=self.champion_margin,
                processing_instance_type=self.processing_instance_type,
                training_instance_type=self.training_instance_type,
                data_quality_monitor=self.data_quality_monitor,
            )
        except SettingsError as error:
            found = _FIELD_ERROR.fullmatch(str(error))
            if found and found.group(1) in ENVIRONMENT:
                raise ConfigError(f"{ENVIRONMENT[found.group(1)]}: {found.group(2)}") from error
            raise


def contract_path(dataset: str) -> Path:
    return CONTRACTS_DIR / f"{dataset}.json"


# --- Code --------------------------------------------------------------------------------------


def upload_code(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    dataset: str,
    kms_key_id: str,
    steps_dir: Path = STEPS_DIR,
    runner_path: Path = RUNNER_PATH,
    echo: Callable[[str], None] = print,
) -> dict[str, str]:
    """Upload the steps tarball, the runner and the data contract; their URIs by PipelineSettings field.

    Keys are ``<prefix>/<sha256 of the content>/<name>``: the same content always has the same URI,
    an object already there is not uploaded again, and a changed file gets a new key. Objects are
    encrypted with the KMS key.
    """
    with tempfile.TemporaryDirectory() as scratch:
        tarball = build_source_tarball(steps_dir, Path(scratch) / SOURCE_TARBALL_NAME)
        contents = {
            "source_tar_uri": (SOURCE_TARBALL_NAME, tarball.read_bytes()),
            "runner_uri": (RUNNER_NAME, Path(runner_path).read_bytes()),
            "contract_uri": (CONTRACT_NAME, contract_path(dataset).read_bytes()),
        }
    uris: dict[str, str] = {}
    for field_name, (name, body) in contents.items():
        key = f"{prefix}/{hashlib.sha256(body).hexdigest()}/{name}"
        uris[field_name] = f"s3://{bucket}/{key}"
        if _exists(s3, bucket, key):
            echo(f"unchanged {uris[field_name]}")
            continue
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=_CONTENT_TYPES[name],
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=kms_key_id,
        )
        echo(f"uploaded {uris[field_name]}")
    return uris


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        # 403 without s3:ListBucket: upload (the same bytes to the same key) rather than guess.
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (403, 404):
            return False
        raise
    return True


# --- Pipeline ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _definition(settings: PipelineSettings) -> str:
    """build_definition is pure: one build per settings in a process."""
    return build_definition(settings)


def definition_hash(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()


def upsert(sagemaker: Any, settings: CiSettings, uris: Mapping[str, str], *, description: str) -> str:
    """Update the pipeline with the definition of these settings and code URIs (create it if missing).

    Returns the definition's sha256. The definition holds concrete values only: SageMaker runs it as it is.
    """
    pipeline = settings.pipeline_settings(uris)
    definition = _definition(pipeline)
    arguments = {
        "PipelineName": pipeline.pipeline_name,
        "PipelineDefinition": definition,
        "PipelineDescription": description[:_DESCRIPTION_MAX],
        "RoleArn": pipeline.role_arn,
    }
    try:
        sagemaker.update_pipeline(**arguments)
    except ClientError as error:
        if not _not_found(error):
            raise
        sagemaker.create_pipeline(PipelineDisplayName=pipeline.pipeline_name, **arguments)
    return definition_hash(definition)


def _not_found(error: Any) -> bool:
    details = error.response.get("Error", {})
    message = str(details.get("Message", "")).lower()
    # moto answers ValidationException "Could not find pipeline ..." where SageMaker says ResourceNotFound.
    return details.get("Code") == "ResourceNotFound" or (
        details.get("Code") == "ValidationException" and ("could not find" in message or "does not exist" in message)
    )


@dataclass(frozen=True)
class ExecutionLabels:
    display_name: str
    description: str
    client_request_token: str


def execution_labels(commit: str | None, definition_sha256: str, *, build_id: str | None = None) -> ExecutionLabels:
    """Display name, description and idempotency token of the execution a build starts.

    With a commit, the token is derived from it and from the definition: a retried build finds the
    execution it started before instead of starting another. Without one, every call starts one.
    """
    if commit:
        words = re.sub(r"[^A-Za-z0-9]+", "-", commit).strip("-")
        display_name = f"ci-{words}"[:_DISPLAY_NAME_MAX].rstrip("-")
        seed = f"{commit}\n{definition_sha256}"
    else:
        display_name = f"ci-no-commit-{definition_sha256[:12]}"
        seed = f"{uuid.uuid4()}\n{definition_sha256}"
    description = f"CI train: commit {commit or 'unknown'}, definition sha256 {definition_sha256}"
    if build_id:
        description += f", CodeBuild {build_id}"
    return ExecutionLabels(
        display_name=display_name,
        description=description[:_DESCRIPTION_MAX],
        client_request_token=hashlib.sha256(seed.encode()).hexdigest()[:_TOKEN_LENGTH],
    )


def start(
    sagemaker: Any,
    name: str,
    *,
    display_name: str,
    description: str,
    client_request_token: str,
    parameters: Sequence[Mapping[str, str]] = (),
) -> str:
    """Start one execution with these parameters (the definition's defaults for the others); its ARN."""
    response = sagemaker.start_pipeline_execution(
        PipelineName=name,
        PipelineExecutionDisplayName=display_name,
        PipelineExecutionDescription=description,
        ClientRequestToken=client_request_token,
        **({"PipelineParameters": list(parameters)} if parameters else {}),
    )
    return str(response["PipelineExecutionArn"])


@dataclass
class Outcome:
    """How an execution ended (or `TIMED_OUT`), why, and its steps as last seen."""

    status: str
    reason: str = ""
    steps: list[dict[str, str]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED


def follow(
    sagemaker: Any,
    execution_arn: str,
    *,
    poll_seconds: float,
    timeout_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    echo: Callable[[str], None] = print,
) -> Outcome:
    """Poll the execution until it ends or the timeout passes, printing status and step changes.

    A timed-out execution is left running. Step listing is best effort: when it is not available
    (an emulator, a missing permission) the execution's status alone is followed.
    """
    started = clock()
    seen_status = ""
    seen_steps: dict[str, str] = {}
    steps: list[dict[str, str]] | None = []
    while True:
        execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        status = str(execution["PipelineExecutionStatus"])
        elapsed = clock() - started
        if status != seen_status:
            echo(f"[{elapsed:7.0f}s] execution {status}")
            seen_status = status
        if steps is not None:
            steps = _list_steps(sagemaker, execution_arn, echo)
            for step in steps or []:
                line = f"{step['status']}{': ' + step['reason'] if step['reason'] else ''}"
                if seen_steps.get(step["name"]) != line:
                    echo(f"[{elapsed:7.0f}s]   {step['name']}: {line}")
                    seen_steps[step["name"]] = line
        if status in TERMINAL_STATUSES:
            reasons = []
            if status != SUCCEEDED:
                reasons.append(str(execution.get("FailureReason") or ""))
                reasons += [
                    f"{step['name']}: {step['reason']}"
                    for step in steps or []
                    if step["reason"] and step["status"] in ("Failed", "Stopped")
                ]
            return Outcome(status=status, reason="; ".join(reason for reason in reasons if reason), steps=steps or [])
        remaining = timeout_seconds - elapsed
        if remaining <= 0:
            minutes = timeout_seconds / 60
            return Outcome(
                status=TIMED_OUT,
                reason=f"still {status} after {minutes:g} minutes; the execution was left running",
                steps=steps or [],
            )
        sleep(min(poll_seconds, remaining))


def _list_steps(sagemaker: Any, execution_arn: str, echo: Callable[[str], None]) -> list[dict[str, str]] | None:
    """The execution's steps (name, status, failure reason or Fail step message), None if unavailable."""
    steps: list[dict[str, str]] = []
    arguments: dict[str, Any] = {"PipelineExecutionArn": execution_arn, "SortOrder": "Ascending"}
    try:
        while True:
            page = sagemaker.list_pipeline_execution_steps(**arguments)
            for step in page.get("PipelineExecutionSteps", []):
                fail = step.get("Metadata", {}).get("Fail", {}).get("ErrorMessage")
                reason = str(fail or step.get("FailureReason") or "")  # a Fail step's message first
                steps.append({"name": str(step["StepName"]), "status": str(step["StepStatus"]), "reason": reason})
            if not page.get("NextToken"):
                return steps
            arguments["NextToken"] = page["NextToken"]
    except Exception as error:  # best effort: emulators (moto) do not implement the call
        echo(f"step statuses unavailable ({type(error).__name__}: {_one_line(error)}); following the execution only")
        return None


# --- Command line ------------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines_src.cicd",
        description="Update the model-build pipeline from this checkout; run it and wait for the outcome. "
        f"Settings come from the environment: {', '.join(ENVIRONMENT.values())}.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    upsert_command = commands.add_parser("upload-and-upsert", help="upload the code and update the pipeline")
    run_command = commands.add_parser("run", help="upload, update, start an execution and follow it")
    for command in (upsert_command, run_command):
        command.add_argument("--summary", type=Path, help="write a JSON summary of the outcome to this file")
    run_command.add_argument("--no-wait", action="store_true", help="start the execution and return")
    run_command.add_argument("--poll-seconds", type=float, default=30.0, help="seconds between polls (30)")
    run_command.add_argument("--timeout-minutes", type=float, default=420.0, help="give up following after (420)")
    return parser


def _client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, config=Config(retries={"mode": "standard", "max_attempts": 10}))


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    client: Callable[[str, str], Any] = _client,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    arguments = _parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    if arguments.command == "run" and (arguments.poll_seconds <= 0 or arguments.timeout_minutes <= 0):
        print("error: --poll-seconds and --timeout-minutes must be positive", file=sys.stderr)
        return EXIT_ERROR
    commit = environ.get(COMMIT_VARIABLE) or None
    summary: dict[str, Any] = {"command": arguments.command, "commit": commit}
    try:
        code = _run(arguments, environ, commit, summary, client=client, clock=clock, sleep=sleep)
    except (ConfigError, SettingsError) as error:
        summary.update(status="Error", reason=_one_line(error))
        print(f"error: bad settings: {_one_line(error)}", file=sys.stderr)
        code = EXIT_ERROR
    except (ClientError, BotoCoreError) as error:
        summary.update(status="Error", reason=_one_line(error))
        print(f"error: AWS: {_one_line(error)}", file=sys.stderr)
        code = EXIT_ERROR
    except Exception as error:  # a crash is not a pipeline verdict: exit 2, not Python's 1
        traceback.print_exc()
        summary.update(status="Error", reason=_one_line(error))
        print(f"error: {type(error).__name__}: {_one_line(error)}", file=sys.stderr)
        code = EXIT_ERROR
    if arguments.summary:
        arguments.summary.parent.mkdir(parents=True, exist_ok=True)
        arguments.summary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return code


def _run(
    arguments: argparse.Namespace,
    environ: Mapping[str, str],
    commit: str | None,
    summary: dict[str, Any],
    *,
    client: Callable[[str, str], Any],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> int:
    settings = CiSettings.from_environ(environ)
    summary["pipeline"] = settings.pipeline_name
    code = upload_code(
        client("s3", settings.region),
        settings.artifacts_bucket,
        settings.code_prefix,
        dataset=settings.dataset,
        kms_key_id=settings.kms_key_arn,
    )
    summary["code"] = code
    sagemaker = client("sagemaker", settings.region)
    description = f"Model-build pipeline, updated by CI from commit {commit or 'unknown'}"
    digest = upsert(sagemaker, settings, code, description=description)
    summary["definition_sha256"] = digest
    print(f"pipeline {settings.pipeline_name} updated: definition sha256 {digest}", flush=True)
    if arguments.command == "upload-and-upsert":
        summary["status"] = "Updated"
        return EXIT_SUCCEEDED
    labels = execution_labels(commit, digest, build_id=environ.get(BUILD_VARIABLE))
    resolve = "CHAMPION_PARAMETER" in environ
    ssm = client("ssm", settings.region) if resolve else None
    parameters = champion.start_parameters_from_environ(environ, ssm, sagemaker) if resolve else []
    arn = start(
        sagemaker,
        settings.pipeline_name,
        display_name=labels.display_name,
        description=labels.description,
        client_request_token=labels.client_request_token,
        parameters=parameters,
    )
    summary.update(pipeline_execution_arn=arn, display_name=labels.display_name, status=STARTED)
    print(f"started {arn} ({labels.display_name})", flush=True)
    if arguments.no_wait:
        return EXIT_SUCCEEDED
    outcome = follow(
        sagemaker,
        arn,
        poll_seconds=arguments.poll_seconds,
        timeout_seconds=arguments.timeout_minutes * 60,
        clock=clock,
        sleep=sleep,
        echo=lambda line: print(line, flush=True),
    )
    summary.update(status=outcome.status, reason=outcome.reason, steps=outcome.steps)
    if outcome.succeeded:
        print(f"pipeline execution {arn} succeeded", flush=True)
        return EXIT_SUCCEEDED
    if outcome.status == TIMED_OUT:
        print(f"error: timed out following {arn}: {outcome.reason}", file=sys.stderr)
    else:
        print(f"error: pipeline execution {outcome.status}: {outcome.reason or 'no reason given'}", file=sys.stderr)
    return EXIT_PIPELINE_FAILED


if __name__ == "__main__":
    sys.exit(main())
