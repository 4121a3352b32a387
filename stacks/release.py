"""Release a model version to an endpoint target of a stage, from a checkout: the release tool, set up from cdk.json.

    python -m stacks.release --stage prod --target production --model-package-arn ARN [--check-only]

The model-deploy pipeline runs the platform's own copy of the release tool (endpoint_release) with its
settings in the build's environment (stacks/cicd_stack.py). This runs the same tool with the same
settings, derived from the stage's config, for a platform engineer's terminal and for `make
deploy-endpoint`. The account is the config's, or the caller's where the config leaves it open.

Exit codes: as endpoint_release: 0 deployed (or checked); 1 the deployment failed and the stack rolled
back; 2 bad arguments or a version that may not be deployed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from endpoint_release import tool
from resolver import naming
from resolver.config import ConfigError, StageConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
TARGETS = tool.TARGETS


def release_environment(config: StageConfig, target: str, *, account: str, partition: str) -> dict[str, str]:
    """The release tool's settings for a target, as the deploy builds get them."""
    environment = {
        "RELEASE_TARGET": target,
        "RELEASE_STACK": naming.endpoint_stack(config, target),
        "RELEASE_ROLE_ARN": f"arn:{partition}:iam::{account}:role/{naming.release_role(config, target)}",
        "RELEASE_PARTITION": partition,
        "RELEASE_REGION": config.region,
        "RELEASE_ACCOUNT": account,
        "RELEASE_GROUP": naming.model_package_group(config),
        "RELEASE_RECORD": naming.deployed_version_parameter(config, target),
    }
    if target == "production":
        environment["RELEASE_BASELINE_PREFIX"] = naming.deployed_baseline_prefix(config)
        if config.operations.drift.model_monitor:
            environment["RELEASE_REQUIRE_MONITOR_BASELINE"] = "true"
    return environment


def main(argv: list[str] | None = None, *, clients: Callable[[str, str], Any] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Release a model version to an endpoint target of a stage.")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--target", required=True, choices=TARGETS)
    parser.add_argument("--model-package-arn", required=True)
    parser.add_argument(
        "--baseline-bucket", help="production: the artifacts bucket the drift check reads its reference from"
    )
    parser.add_argument("--check-only", action="store_true", help="only check the version may deploy; change nothing")
    args = parser.parse_args(argv)
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    try:
        config = load_config(context).stage(args.stage)
    except ConfigError as error:
        print(f"release: {error}", file=sys.stderr)
        return 2
    clients = clients or tool.boto3_clients
    import boto3

    account = config.account or str(clients("sts", config.region).get_caller_identity()["Account"])
    partition = boto3.session.Session().get_partition_for_region(config.region)
    environment = release_environment(config, args.target, account=account, partition=partition)
    if args.target == "production" and not args.check_only:
        if not args.baseline_bucket:
            print("release: production: --baseline-bucket (the stage's artifacts bucket) is required", file=sys.stderr)
            return 2
        environment["RELEASE_BASELINE_BUCKET"] = args.baseline_bucket
    tool_argv = ["--model-package-arn", args.model_package_arn, *(["--check-only"] if args.check_only else [])]
    return tool.main(tool_argv, environ=environment, clients=clients)


if __name__ == "__main__":
    sys.exit(main())
