"""Deploy a model version to an endpoint target: record it in SSM, deploy the target's stack, undo on failure.

    python -m stacks.release --stage prod --target production --model-package-arn ARN

The target's Endpoint stack reads its version from an SSM parameter at deploy time
(stacks/endpoint_stack.py). This sets the parameter, runs ``cdk deploy`` of that one stack
(SageMaker's blue/green canary does the rollout and rolls back on its alarms), and when the
deployment fails puts the previous version back, so the parameter always names what serves.

Before anything changes, the ARN must be exactly a version of the stage's model package group in the
stage's account and region (lambdas/shared/arns.py), and the registry must say that version is Approved.
``--check-only`` makes those checks and nothing else (the deploy buildspecs run it first).

Exit codes: 0 deployed (or checked); 1 the deployment failed (previous version restored); 2 bad arguments
or a version that may not be deployed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lambdas.shared.arns import InvalidArnError, VersionScope, require_version_arn
from stacks import naming
from stacks.config import ConfigError, StageConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("staging", "production")
APPROVED = "Approved"

Deploy = Callable[[Sequence[str]], int]


class ReleaseError(ValueError):
    """The release cannot start; the message says why."""


def cdk_command(stage: str, target: str, prefix: str) -> list[str]:
    """``cdk deploy`` of exactly the target's Endpoint stack, non-interactive."""
    return [
        str(ROOT / "node_modules" / ".bin" / "cdk"),
        "deploy",
        f"{prefix}/Endpoint-{target}",
        "-c",
        f"stage={stage}",
        "--exclusively",
        "--require-approval",
        "never",
    ]


def version_scope(config: StageConfig, *, sts: Any) -> VersionScope:
    """Where the stage's versions live: its account (the caller's where the config leaves it open), region, group."""
    import boto3

    account = config.account or str(sts.get_caller_identity()["Account"])
    partition = boto3.session.Session().get_partition_for_region(config.region)
    return VersionScope(
        partition=partition, region=config.region, account=account, group=naming.model_package_group(config)
    )


def check_version(sagemaker: Any, model_package_arn: str, *, scope: VersionScope) -> None:
    """Raise ReleaseError unless the ARN is exactly a version of the group and the registry has it Approved."""
    try:
        require_version_arn(model_package_arn, scope=scope)
    except InvalidArnError as error:
        raise ReleaseError(str(error)) from None
    try:
        package = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    except ClientError as error:
        message = " ".join(str(error.response.get("Error", {}).get("Message", error)).split())
        raise ReleaseError(f"cannot read {model_package_arn} from the model registry: {message}") from None
    if package.get("ModelPackageGroupName") != scope.group or package.get("ModelPackageArn") != model_package_arn:
        raise ReleaseError(f"{model_package_arn} is not a version of this stage's model package group {scope.group}")
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        raise ReleaseError(
            f"{model_package_arn} is {status or 'not reviewed'}, not Approved: only approved versions deploy"
        )


def release(
    ssm: Any,
    sagemaker: Any,
    *,
    parameter: str,
    model_package_arn: str,
    scope: VersionScope,
    command: Sequence[str],
    deploy: Deploy,
) -> dict[str, Any]:
    """Check the version, set the version parameter, deploy, restore the previous value if the deployment fails."""
    check_version(sagemaker, model_package_arn, scope=scope)
    previous: str = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    ssm.put_parameter(Name=parameter, Value=model_package_arn, Type="String", Overwrite=True)
    code = deploy(command)
    if code != 0:
        ssm.put_parameter(Name=parameter, Value=previous, Type="String", Overwrite=True)
        return {"status": "failed", "exit_code": code, "restored": previous, "parameter": parameter}
    return {"status": "deployed", "previous": previous, "current": model_package_arn, "parameter": parameter}


def _run(command: Sequence[str]) -> int:
    return subprocess.run(list(command), check=False).returncode


def main(
    argv: list[str] | None = None, *, deploy: Deploy = _run, ssm: Any = None, sagemaker: Any = None, sts: Any = None
) -> int:
    parser = argparse.ArgumentParser(description="Deploy a model version to an endpoint target of a stage.")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--target", required=True, choices=TARGETS)
    parser.add_argument("--model-package-arn", required=True)
    parser.add_argument(
        "--check-only", action="store_true", help="only check that the version may be deployed; change nothing"
    )
    args = parser.parse_args(argv)
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    try:
        config = load_config(context).stage(args.stage)
    except ConfigError as error:
        print(f"release: {error}", file=sys.stderr)
        return 2
    import boto3

    ssm = ssm or boto3.client("ssm", region_name=config.region)
    sagemaker = sagemaker or boto3.client("sagemaker", region_name=config.region)
    sts = sts or boto3.client("sts", region_name=config.region)
    parameter = naming.deployed_version_parameter(config, args.target)
    try:
        scope = version_scope(config, sts=sts)
        if args.check_only:
            check_version(sagemaker, args.model_package_arn, scope=scope)
            print(f"release: {args.model_package_arn} is an approved version of {scope.group}")
            return 0
        result = release(
            ssm,
            sagemaker,
            parameter=parameter,
            model_package_arn=args.model_package_arn,
            scope=scope,
            command=cdk_command(args.stage, args.target, config.prefix),
            deploy=deploy,
        )
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 2
    if result["status"] == "failed":
        print(
            f"release: deploying {args.model_package_arn} to {args.target} failed (exit {result['exit_code']}); "
            f"{parameter} is back to {result['restored']}",
            file=sys.stderr,
        )
        return 1
    print(f"release: {args.target} serves {args.model_package_arn} (was {result['previous']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
