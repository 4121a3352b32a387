"""CI's train stage: the pushed step code runs once on the deployed model-build pipeline.

    python -m pipelines_src.cicd run [--no-wait] [--poll-seconds S] [--timeout-minutes M] [--summary PATH]
    python -m pipelines_src.cicd upload [--summary PATH]

The CodeBuild project sets one variable, ``STAGE``: the stage of the pushed cdk.json. Everything the
platform's stacks created (the artifacts bucket, its code prefix, the lake key, the pipeline's name)
comes from the JSON SSM parameter the MLPlatform stack publishes (resolver/published.py), read when
the build runs, never from values frozen into the project.

``run`` packages the step scripts (`packaging.build_source_tarball`), uploads the tarball, the runner
and the dataset's data contract to the artifacts bucket under content-addressed keys, and starts one
execution of the deployed pipeline with their URIs as its code parameters (`CODE_PARAMETERS` of
pipelines_src/definition.py), then follows it to its end. It never writes the definition:
CloudFormation is its one writer (the MLPlatform stack, from the same `build_definition`), so a push
changes the code an execution runs, and a change to the pipeline's structure or to the model config
reaches the definition through the platform deploy. Where the pushed config differs from the one
the deployed definition was built with, the run says so and trains with the deployed one.

Exit codes: 0 the execution succeeded (or, with ``--no-wait``, was started); 1 it failed, was
stopped or was still running at the timeout (it is left running); 2 bad settings or an AWS error.
"""

from __future__ import annotations

import argparse
import dataclasses
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

from lambdas.shared import arns, champion
from pipelines_src.definition import CODE_PARAMETERS, CONTRACT_NAME, GIT_COMMIT, SettingsError
from pipelines_src.packaging import (
    PIPELINES_SRC,
    RUNNER_NAME,
    RUNNER_PATH,
    SOURCE_TARBALL_NAME,
    STEPS_DIR,
    build_source_tarball,
)
from resolver import naming, published
from resolver.config import ConfigError as StageConfigError
from resolver.config import StageConfig, load_config

CONTRACTS_DIR: Final = PIPELINES_SRC / "contracts"
CDK_JSON: Final = PIPELINES_SRC.parent / "cdk.json"

# The one variable the CodeBuild project sets: the stage of cdk.json whose pipeline CI runs.
STAGE_VARIABLE: Final = "STAGE"
ENVIRONMENT: Final = {"stage": STAGE_VARIABLE}
# Set by CodeBuild itself: the commit it checked out and the build's id.
COMMIT_VARIABLE: Final = "CODEBUILD_RESOLVED_SOURCE_VERSION"
BUILD_VARIABLE: Final = "CODEBUILD_BUILD_ID"

# The `upload_code` keys, named like the PipelineSettings fields they fill.
CODE_FIELDS: Final = tuple(CODE_PARAMETERS)
_CONTENT_TYPES: Final = {".gz": "application/gzip", ".sh": "text/x-shellscript", ".json": "application/json"}

SUCCEEDED: Final = "Succeeded"
TERMINAL_STATUSES: Final = frozenset({SUCCEEDED, "Failed", "Stopped", "CompletedWithFailures"})
TIMED_OUT: Final = "TimedOut"
STARTED: Final = "Started"
UPLOADED: Final = "Uploaded"

EXIT_SUCCEEDED: Final = 0
EXIT_PIPELINE_FAILED: Final = 1
EXIT_ERROR: Final = 2

# SageMaker's limits (StartPipelineExecution).
_DISPLAY_NAME_MAX: Final = 82
_DESCRIPTION_MAX: Final = 3072
_TOKEN_LENGTH: Final = 64  # ClientRequestToken: 32 to 128 characters


class ConfigError(ValueError):
    """The stage, its published values or the deployed definition cannot be run by CI."""


@dataclass(frozen=True)
class CiSettings:
    """The train stage's settings: the pushed config's stage and what its stacks published."""

    config: StageConfig
    values: published.PlatformValues

    @classmethod
    def load(
        cls, environ: Mapping[str, str], client: Callable[[str, str], Any], *, cdk_json: Path = CDK_JSON
    ) -> CiSettings:
        """The stage named by ``STAGE`` in the pushed cdk.json, and its published values (SSM)."""
        config = stage_config(environ, cdk_json)
        try:
            values = published.read(client("ssm", config.region), config)
        except published.PublishedValuesError as error:
            raise ConfigError(str(error)) from None
        if not contract_path(values.model.dataset).is_file():
            where = contract_path(values.model.dataset).relative_to(PIPELINES_SRC.parent)
            raise ConfigError(f"dataset {values.model.dataset!r} has no data contract in this checkout ({where})")
        return cls(config=config, values=values)

    def differences(self) -> list[str]:
        """Where the pushed config differs from the one the deployed definition was built with."""
        monitor = "operations.drift.engine is model_monitor"
        pushed = {**dataclasses.asdict(self.config.model), monitor: self.config.operations.drift.model_monitor}
        deployed = {**dataclasses.asdict(self.values.model), monitor: self.values.data_quality_monitor}
        return [
            f"{key if key == monitor else 'model.' + key}: pushed {pushed[key]!r}, deployed {deployed[key]!r}"
            for key in pushed
            if pushed[key] != deployed[key]
        ]


def stage_config(environ: Mapping[str, str], cdk_json: Path = CDK_JSON) -> StageConfig:
    """The stage ``STAGE`` names, from the pushed cdk.json (a `ConfigError` names what is wrong)."""
    stage = environ.get(STAGE_VARIABLE, "").strip()
    if not stage:
        raise ConfigError(f"{STAGE_VARIABLE} is not set")
    try:
        return load_config(json.loads(Path(cdk_json).read_text())["context"]).stage(stage)
    except StageConfigError as error:
        raise ConfigError(f"{STAGE_VARIABLE}={stage}: {error}") from None


def version_scope(values: published.PlatformValues) -> arns.VersionScope:
    """Where the stage's versions live: the group, in the partition and account of the pipeline's role."""
    _, partition, _, _, account, _ = values.pipeline_role_arn.split(":", 5)
    return arns.VersionScope(
        partition=partition, region=values.region, account=account, group=values.model_package_group
    )


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
    names: Mapping[str, str] | None = None,
    steps_dir: Path = STEPS_DIR,
    runner_path: Path = RUNNER_PATH,
    echo: Callable[[str], None] = print,
) -> dict[str, str]:
    """Upload the runner, the steps tarball and the data contract; their URIs by `CODE_FIELDS` field.

    Keys are ``<prefix>/<sha256 of the content>/<name>``, ``names`` the object names the deployed
    definition finds the code by (`deployed_code`; default the conventional names): the same content
    always has the same URI, an object already there is not uploaded again, and a changed file gets a
    new key. Objects are encrypted with the KMS key.
    """
    names = {**dict(zip(CODE_FIELDS, (RUNNER_NAME, SOURCE_TARBALL_NAME, CONTRACT_NAME), strict=True)), **(names or {})}
    with tempfile.TemporaryDirectory() as scratch:
        tarball = build_source_tarball(steps_dir, Path(scratch) / SOURCE_TARBALL_NAME)
        contents = {
            "runner_uri": Path(runner_path).read_bytes(),
            "source_tar_uri": tarball.read_bytes(),
            "contract_uri": contract_path(dataset).read_bytes(),
        }
    uris: dict[str, str] = {}
    for field_name, body in contents.items():
        name = names[field_name]
        key = f"{prefix}/{hashlib.sha256(body).hexdigest()}/{name}"
        uris[field_name] = f"s3://{bucket}/{key}"
        if _exists(s3, bucket, key):
            echo(f"unchanged {uris[field_name]}")
            continue
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=_CONTENT_TYPES[Path(name).suffix],
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


def definition_hash(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()


@dataclass(frozen=True)
class DeployedCode:
    """The deployed definition's code parameters: the object names they expect; and the definition's hash."""

    names: dict[str, str]
    definition_sha256: str
    # The definition declares the GitCommit parameter (definition.GIT_COMMIT): the execution records the commit.
    takes_commit: bool = False


def commit_parameters(deployed: DeployedCode, commit: str | None) -> list[dict[str, str]]:
    """GitCommit for the execution (its registered version's lineage), when there is a commit and the deployed
    definition declares the parameter: a definition deployed before it has none, and an unknown parameter
    fails StartPipelineExecution."""
    if not commit or not deployed.takes_commit:
        return []
    return [{"Name": GIT_COMMIT, "Value": commit}]


def deployed_code(sagemaker: Any, pipeline_name: str) -> DeployedCode:
    """Read (never write) the deployed definition: the object names of its code parameters' defaults.

    A URI passed for a code parameter must end with its default's object name, which the jobs' command
    lines hold (pipelines_src/definition.py, `code_object_names`): a job's S3Prefix input puts an object
    under its local path by the key's part after the prefix's last '/', so the name is what the job sees.
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingS3Input.html
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StartPipelineExecution.html (PipelineParameters:
    values for the definition's parameters; the others keep their defaults)
    """
    definition = str(sagemaker.describe_pipeline(PipelineName=pipeline_name)["PipelineDefinition"])
    defaults = {item.get("Name"): item.get("DefaultValue") for item in json.loads(definition).get("Parameters", [])}
    names: dict[str, str] = {}
    for field_name, parameter in CODE_PARAMETERS.items():
        default = defaults.get(parameter)
        if not isinstance(default, str) or not default.startswith("s3://"):
            raise ConfigError(
                f"the deployed pipeline {pipeline_name} has no code parameter {parameter}: "
                "deploy the platform (cdk deploy) to update its definition"
            )
        names[field_name] = default.rsplit("/", 1)[-1]
    return DeployedCode(names=names, definition_sha256=definition_hash(definition), takes_commit=GIT_COMMIT in defaults)


def code_parameters(uris: Mapping[str, str]) -> list[dict[str, str]]:
    """StartPipelineExecution's PipelineParameters for these code URIs (by `CODE_FIELDS` field)."""
    return [{"Name": CODE_PARAMETERS[name], "Value": uris[name]} for name in CODE_FIELDS]


def code_hash(uris: Mapping[str, str]) -> str:
    """One hash of the code an execution runs (its URIs are content-addressed)."""
    return hashlib.sha256("\n".join(uris[name] for name in CODE_FIELDS).encode()).hexdigest()


@dataclass(frozen=True)
class ExecutionLabels:
    display_name: str
    description: str
    client_request_token: str


def execution_labels(
    commit: str | None, definition_sha256: str, code_sha256: str, *, build_id: str | None = None
) -> ExecutionLabels:
    """Display name, description and idempotency token of the execution a build starts.

    With a commit, the token is derived from it, the deployed definition and the code: a retried build
    finds the execution it started before instead of starting another. Without one, every call starts one.
    """
    if commit:
        words = re.sub(r"[^A-Za-z0-9]+", "-", commit).strip("-")
        display_name = f"ci-{words}"[:_DISPLAY_NAME_MAX].rstrip("-")
        seed = f"{commit}\n{definition_sha256}\n{code_sha256}"
    else:
        display_name = f"ci-no-commit-{code_sha256[:12]}"
        seed = f"{uuid.uuid4()}\n{definition_sha256}\n{code_sha256}"
    description = (
        f"CI train: commit {commit or 'unknown'}, code sha256 {code_sha256}, definition sha256 {definition_sha256}"
    )
    if build_id:
        description += f", CodeBuild {build_id}"
    return ExecutionLabels(
        display_name=display_name,
        description=description[:_DESCRIPTION_MAX],
        client_request_token=hashlib.sha256(seed.encode()).hexdigest()[:_TOKEN_LENGTH],
    )


def start(sagemaker: Any, name: str, parameters: list[dict[str, str]], labels: ExecutionLabels) -> str:
    """Start one execution with these parameters (the others keep the definition's defaults); its ARN."""
    response = sagemaker.start_pipeline_execution(
        PipelineName=name,
        PipelineParameters=parameters,
        PipelineExecutionDisplayName=labels.display_name,
        PipelineExecutionDescription=labels.description,
        ClientRequestToken=labels.client_request_token,
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
        description="Run the deployed model-build pipeline on this checkout's step code and wait for the outcome. "
        f"{STAGE_VARIABLE} names the stage of cdk.json; the rest comes from the values its stacks published.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    upload_command = commands.add_parser("upload", help="upload the code the deployed definition would run")
    run_command = commands.add_parser("run", help="upload, start an execution on the uploaded code and follow it")
    for command in (upload_command, run_command):
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
    cdk_json: Path = CDK_JSON,
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
        code = _run(arguments, environ, commit, summary, client=client, cdk_json=cdk_json, clock=clock, sleep=sleep)
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
    cdk_json: Path,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> int:
    settings = CiSettings.load(environ, client, cdk_json=cdk_json)
    values = settings.values
    summary["pipeline"] = values.build_pipeline
    summary["config_differences"] = settings.differences()
    for difference in summary["config_differences"]:
        print(
            f"warning: {difference}: this run trains with the deployed definition; "
            "the pushed config reaches it with the platform deploy",
            file=sys.stderr,
        )
    sagemaker = client("sagemaker", values.region)
    deployed = deployed_code(sagemaker, values.build_pipeline)
    summary["definition_sha256"] = deployed.definition_sha256
    code = upload_code(
        client("s3", values.region),
        values.artifacts_bucket,
        values.code_prefix,
        dataset=values.model.dataset,
        kms_key_id=values.kms_key_arn,
        names=deployed.names,
    )
    summary["code"] = code
    if arguments.command == "upload":
        summary["status"] = UPLOADED
        return EXIT_SUCCEEDED
    labels = execution_labels(commit, deployed.definition_sha256, code_hash(code), build_id=environ.get(BUILD_VARIABLE))
    # The version production serves is this run's champion (lambdas/shared/champion.py); none before the first.
    parameters = (
        code_parameters(code)
        + commit_parameters(deployed, commit)
        + champion.start_parameters(
            client("ssm", values.region),
            sagemaker,
            parameter=naming.champion_parameter(settings.config),
            scope=version_scope(values),
        )
    )
    summary["champion"] = next((p["Value"] for p in parameters if p["Name"] == champion.PARAMETER), None)
    arn = start(sagemaker, values.build_pipeline, parameters, labels)
    summary.update(pipeline_execution_arn=arn, display_name=labels.display_name, status=STARTED)
    print(f"started {arn} ({labels.display_name}) on the deployed definition {deployed.definition_sha256}", flush=True)
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
