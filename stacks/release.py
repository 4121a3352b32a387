"""Deploy a model version to an endpoint target: record it in SSM, deploy the target's stack, undo on failure.

    python -m stacks.release --stage prod --target production --model-package-arn ARN

The target's Endpoint stack reads its version from an SSM parameter at deploy time
(stacks/endpoint_stack.py). This sets the parameter, runs ``cdk deploy`` of that one stack
(SageMaker's blue/green canary does the rollout and rolls back on its alarms), and when the
deployment fails puts the previous version back, so the parameter always names what serves.

Exit codes: 0 deployed; 1 the deployment failed (previous version restored); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stacks import naming
from stacks.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
MODEL_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[\w-]{1,63}/\d+$")
TARGETS = ("staging", "production")

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


def release(
    ssm: Any, *, parameter: str, model_package_arn: str, group: str, command: Sequence[str], deploy: Deploy
) -> dict[str, Any]:
    """Set the version parameter, deploy, restore the previous value if the deployment fails."""
    if not MODEL_PACKAGE_ARN.match(model_package_arn):
        raise ReleaseError(f"not a model package version ARN: {model_package_arn!r}")
    if f":model-package/{group}/" not in model_package_arn:
        raise ReleaseError(f"{model_package_arn} is not a version of this stage's model package group {group}")
    previous: str = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    ssm.put_parameter(Name=parameter, Value=model_package_arn, Type="String", Overwrite=True)
    code = deploy(command)
    if code != 0:
        ssm.put_parameter(Name=parameter, Value=previous, Type="String", Overwrite=True)
        return {"status": "failed", "exit_code": code, "restored": previous, "parameter": parameter}
    return {"status": "deployed", "previous": previous, "current": model_package_arn, "parameter": parameter}


def _run(command: Sequence[str]) -> int:
    return subprocess.run(list(command), check=False).returncode


def main(argv: list[str] | None = None, *, deploy: Deploy = _run, ssm: Any = None) -> int:
    parser = argparse.ArgumentParser(description="Deploy a model version to an endpoint target of a stage.")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--target", required=True, choices=TARGETS)
    parser.add_argument("--model-package-arn", required=True)
    args = parser.parse_args(argv)
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    try:
        config = load_config(context).stage(args.stage)
    except ConfigError as error:
        print(f"release: {error}", file=sys.stderr)
        return 2
    if ssm is None:
        import boto3

        ssm = boto3.client("ssm", region_name=config.region)
    parameter = naming.deployed_version_parameter(config, args.target)
    try:
        result = release(
            ssm,
            parameter=parameter,
            model_package_arn=args.model_package_arn,
            group=naming.model_package_group(config),
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
