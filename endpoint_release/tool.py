"""Release a model version to one endpoint target: check it, update the target's stack, wait, record.

    python -m endpoint_release --model-package-arn ARN [--check-only]

Where it deploys comes from the build's environment, which the deployed platform sets
(stacks/cicd_stack.py); nothing comes from the repository or the pipeline variable except the ARN:

    RELEASE_TARGET       staging | production
    RELEASE_STACK        the target's Endpoint stack
    RELEASE_ROLE_ARN     the CloudFormation role that may manage only that endpoint
    RELEASE_PARTITION, RELEASE_REGION, RELEASE_ACCOUNT, RELEASE_GROUP
                         the one model package group whose versions may deploy
    RELEASE_RECORD       the SSM parameter that records what serves (written after a deployment succeeds)
    RELEASE_BASELINE_BUCKET, RELEASE_BASELINE_PREFIX
                         production only: where the drift check reads the served version's data baseline.
                         The release publishes the new version's baseline there before the update and puts the
                         previous version's back when the update fails, so the reference never lags the model.
    RELEASE_REQUIRE_MONITOR_BASELINE
                         "true" when the drift engine is model_monitor (the baseline must include its files)

Exit codes: 0 deployed, already serving, or checked; 1 the deployment failed and CloudFormation rolled the
stack back (the previous version serves); 2 bad arguments, settings or a version that may not be deployed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.shared.arns import InvalidArnError, VersionScope, require_version_arn

APPROVED = "Approved"
TARGETS = ("staging", "production")
# The Endpoint stack's parameter that names the version it serves (stacks/endpoint_stack.py).
VERSION_PARAMETER = "ModelPackageArn"
# The value of that parameter while the target serves nothing.
NO_VERSION = "none"
POLL_SECONDS = 20.0
# The Endpoint stack includes its roles (unchanged by a release, which may not change IAM), so CloudFormation
# asks for the acknowledgment on every update of it.
CAPABILITIES = ["CAPABILITY_IAM"]
_SETTINGS = {
    "target": "RELEASE_TARGET",
    "stack": "RELEASE_STACK",
    "role_arn": "RELEASE_ROLE_ARN",
    "partition": "RELEASE_PARTITION",
    "region": "RELEASE_REGION",
    "account": "RELEASE_ACCOUNT",
    "group": "RELEASE_GROUP",
    "record": "RELEASE_RECORD",
}
_OPTIONAL = {
    "baseline_bucket": "RELEASE_BASELINE_BUCKET",
    "baseline_prefix": "RELEASE_BASELINE_PREFIX",
}


class ReleaseError(ValueError):
    """The release cannot start; the message says why, on one line."""


@dataclass(frozen=True)
class Settings:
    """Where and what one release may change."""

    target: str
    stack: str
    role_arn: str
    partition: str
    region: str
    account: str
    group: str
    record: str
    baseline_bucket: str | None = None
    baseline_prefix: str | None = None
    require_monitor_baseline: bool = False

    @property
    def scope(self) -> VersionScope:
        return VersionScope(partition=self.partition, region=self.region, account=self.account, group=self.group)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        missing = [name for name in _SETTINGS.values() if not environ.get(name)]
        if missing:
            raise ReleaseError(f"the release settings are incomplete: {', '.join(missing)} not set")
        if bool(environ.get(_OPTIONAL["baseline_bucket"])) != bool(environ.get(_OPTIONAL["baseline_prefix"])):
            raise ReleaseError("RELEASE_BASELINE_BUCKET and RELEASE_BASELINE_PREFIX are set together or not at all")
        settings = cls(
            **{field: environ[name] for field, name in _SETTINGS.items()},
            baseline_bucket=environ.get(_OPTIONAL["baseline_bucket"]) or None,
            baseline_prefix=environ.get(_OPTIONAL["baseline_prefix"]) or None,
            require_monitor_baseline=environ.get("RELEASE_REQUIRE_MONITOR_BASELINE", "").lower() == "true",
        )
        if settings.target not in TARGETS:
            raise ReleaseError(f"RELEASE_TARGET is {settings.target!r}, not one of {', '.join(TARGETS)}")
        return settings


def check_version(sagemaker: Any, model_package_arn: str, *, scope: VersionScope) -> None:
    """Raise ReleaseError unless the ARN is exactly a version of the group and the registry has it Approved."""
    try:
        require_version_arn(model_package_arn, scope=scope)
    except InvalidArnError as error:
        raise ReleaseError(str(error)) from None
    try:
        package = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    except Exception as error:  # botocore's ClientError and connection errors alike: one line, no traceback
        raise ReleaseError(f"cannot read {model_package_arn} from the model registry: {_message(error)}") from None
    if package.get("ModelPackageGroupName") != scope.group or package.get("ModelPackageArn") != model_package_arn:
        raise ReleaseError(f"{model_package_arn} is not a version of this stage's model package group {scope.group}")
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        raise ReleaseError(
            f"{model_package_arn} is {status or 'not reviewed'}, not Approved: only approved versions deploy"
        )


def _stack(cloudformation: Any, name: str) -> dict[str, Any]:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except Exception as error:
        raise ReleaseError(f"cannot read the endpoint stack {name}: {_message(error)}") from None
    return dict(stacks[0])


def served_version(stack: Mapping[str, Any]) -> str:
    """The version the stack's parameter names (NO_VERSION before the first release)."""
    for parameter in stack.get("Parameters", []):
        if parameter["ParameterKey"] == VERSION_PARAMETER:
            return str(parameter["ParameterValue"])
    raise ReleaseError(
        f"the stack {stack.get('StackName')} has no {VERSION_PARAMETER} parameter: not an endpoint stack"
    )


def _failure_reason(cloudformation: Any, stack: str) -> str:
    events = cloudformation.describe_stack_events(StackName=stack).get("StackEvents", [])
    for event in reversed(events):  # oldest first: the first failure is the cause
        if str(event.get("ResourceStatus", "")).endswith("_FAILED") and event.get("ResourceStatusReason"):
            return f"{event['LogicalResourceId']}: {event['ResourceStatusReason']}"
    return "no failure reason recorded"


def release(
    *,
    cloudformation: Any,
    sagemaker: Any,
    ssm: Any,
    settings: Settings,
    model_package_arn: str,
    s3: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Check the version, update the stack's version parameter on its deployed template, wait for the outcome."""
    check_version(sagemaker, model_package_arn, scope=settings.scope)
    stack = _stack(cloudformation, settings.stack)
    previous = served_version(stack)
    result: dict[str, Any] = {"target": settings.target, "previous": previous, "current": model_package_arn}
    if previous == model_package_arn:
        _record(ssm, settings, model_package_arn)
        return {**result, "status": "unchanged"}
    _publish_baseline(sagemaker, s3, settings, model_package_arn)
    parameters = [
        {"ParameterKey": VERSION_PARAMETER, "ParameterValue": model_package_arn},
        *(
            {"ParameterKey": parameter["ParameterKey"], "UsePreviousValue": True}
            for parameter in stack.get("Parameters", [])
            if parameter["ParameterKey"] != VERSION_PARAMETER
        ),
    ]
    try:
        cloudformation.update_stack(
            StackName=settings.stack,
            UsePreviousTemplate=True,
            Parameters=parameters,
            RoleARN=settings.role_arn,
            Capabilities=CAPABILITIES,
        )
    except Exception as error:
        _restore_baseline(sagemaker, s3, settings, previous)
        raise ReleaseError(f"CloudFormation refused the update of {settings.stack}: {_message(error)}") from None
    while True:
        status = str(_stack(cloudformation, settings.stack)["StackStatus"])
        if not status.endswith("_IN_PROGRESS"):
            break
        sleep(POLL_SECONDS)
    if status != "UPDATE_COMPLETE":
        reason = _failure_reason(cloudformation, settings.stack)
        _restore_baseline(sagemaker, s3, settings, previous)
        return {**result, "status": "failed", "stack_status": status, "reason": reason, "current": previous}
    _record(ssm, settings, model_package_arn)
    return {**result, "status": "deployed"}


def _publish_baseline(sagemaker: Any, s3: Any, settings: Settings, model_package_arn: str) -> None:
    if settings.baseline_bucket is None or settings.baseline_prefix is None:
        return
    from pipelines_src.promote import PromoteError, publish_baseline

    try:
        publish_baseline(
            sagemaker,
            s3,
            model_package_arn,
            settings.baseline_bucket,
            settings.baseline_prefix,
            require_monitor=settings.require_monitor_baseline,
        )
    except PromoteError as error:
        raise ReleaseError(f"{model_package_arn} cannot become the drift reference: {error}") from None


def _restore_baseline(sagemaker: Any, s3: Any, settings: Settings, previous: str) -> None:
    """After a failed update the previous version serves again: so does its baseline (none: left as it is)."""
    if previous != NO_VERSION:
        _publish_baseline(sagemaker, s3, settings, previous)


def _record(ssm: Any, settings: Settings, model_package_arn: str) -> None:
    ssm.put_parameter(
        Name=settings.record,
        Value=model_package_arn,
        Type="String",
        Overwrite=True,
        Description=f"The model version the {settings.target} endpoint serves (written by each release)",
    )


def _message(error: BaseException) -> str:
    response = getattr(error, "response", None)
    text = response.get("Error", {}).get("Message", error) if isinstance(response, dict) else error
    return " ".join(str(text).split())


def boto3_clients(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


def main(
    argv: list[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    clients: Callable[[str, str], Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    parser = argparse.ArgumentParser(prog="endpoint_release", description="Release a model version to an endpoint.")
    parser.add_argument("--model-package-arn", required=True)
    parser.add_argument("--check-only", action="store_true", help="only check the version may deploy; change nothing")
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        settings = Settings.from_environment(environ)
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 2
    clients = clients or boto3_clients
    sagemaker = clients("sagemaker", settings.region)
    try:
        if args.check_only:
            check_version(sagemaker, args.model_package_arn, scope=settings.scope)
            print(f"release: {args.model_package_arn} is an approved version of {settings.group}")
            return 0
        result = release(
            cloudformation=clients("cloudformation", settings.region),
            sagemaker=sagemaker,
            ssm=clients("ssm", settings.region),
            s3=clients("s3", settings.region),
            settings=settings,
            model_package_arn=args.model_package_arn,
            sleep=sleep,
        )
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 2
    if result["status"] == "failed":
        print(
            f"release: deploying {args.model_package_arn} to {settings.target} failed ({result['stack_status']}: "
            f"{result['reason']}); {settings.stack} rolled back and serves {result['previous']}",
            file=sys.stderr,
        )
        return 1
    verb = "already serves" if result["status"] == "unchanged" else "serves"
    print(f"release: {settings.target} {verb} {args.model_package_arn} (was {result['previous']})")
    return 0
