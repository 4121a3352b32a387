"""``mlops``: one command for approvers and operators of a stage.

    mlops [--stage dev] [--region R] [--profile P] [--local [--endpoint-url URL]] COMMAND ...

    versions [--json] [--limit N]          the model versions, newest first, with their metric
    approve VERSION [--reason TEXT]        approve a version (the deploy pipeline starts on approval)
    reject VERSION --reason TEXT           reject a version
    run [--wait] [--param Name=Value ...]  start the model-build pipeline (and follow it to the end)
    runs [--json] [--limit N]              the latest model-build executions
    drift [--artifacts-bucket B] [--json]  drift alarms and the latest drift report
    deployment [--json]                    the staging and production endpoints and the deploy pipeline
    values [--json]                        the deploy-time values the stage's stacks published (SSM)
    lineage VERSION [--json]               data -> execution -> MLflow run -> version -> approval -> deployments
                                           -> drift and quality checks since

Names come from the stage's config in cdk.json (``resolver.naming``). ``--local`` talks to a local
emulation of AWS (a moto server, ``--endpoint-url`` default http://127.0.0.1:5000) with fake
credentials; there ``drift`` reads reports from the local runs' bucket (local-lake-artifacts). Elsewhere
the artifacts bucket is ``--artifacts-bucket``, ``$MLOPS_ARTIFACTS_BUCKET``, or the one the stage's stacks
published (the SSM parameter ``/<project>/<stage>/<model>/platform-values``). With the drift engine
``model_monitor``, ``drift`` shows the production endpoint's data-quality schedule's last run and its
constraint violations instead of a drift report.

Exit codes: 0 done; 1 not found, failed or unreachable; 2 usage, config or credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from mlops_cli import deployment, drift, lineage, pipelines, registry, text
from mlops_cli.aws import FAILED, LOCAL_ENDPOINT, USAGE, Aws, CliError, error_code, error_message
from resolver import published
from resolver.config import DEFAULT_STAGE, ConfigError, load_config

PROG = "mlops"
CDK_JSON_ENV = "MLOPS_CDK_JSON"
STAGE_ENV = "MLOPS_STAGE"


def default_cdk_json() -> Path:
    """``$MLOPS_CDK_JSON``, else the project's cdk.json beside this package, else ./cdk.json."""
    if os.environ.get(CDK_JSON_ENV):
        return Path(os.environ[CDK_JSON_ENV])
    beside = Path(__file__).resolve().parents[1] / "cdk.json"
    return beside if beside.is_file() else Path.cwd() / "cdk.json"


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every command takes, before or after its name (after it, they override)."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("stage and connection")
    group.add_argument(
        "--stage",
        default=default(os.environ.get(STAGE_ENV, DEFAULT_STAGE)),
        help=f"stage of cdk.json (default ${STAGE_ENV} or {DEFAULT_STAGE})",
    )
    group.add_argument("--region", default=default(None), help="AWS region (default: the stage's region)")
    group.add_argument("--profile", default=default(None), help="AWS profile of the shared config files")
    group.add_argument(
        "--local",
        action="store_true",
        default=default(False),
        help=f"talk to a local emulation (a moto server) with fake credentials, at --endpoint-url ({LOCAL_ENDPOINT})",
    )
    group.add_argument("--endpoint-url", default=default(None), help=f"AWS endpoint (with --local: {LOCAL_ENDPOINT})")
    group.add_argument("--cdk-json", type=Path, default=default(None), help="the cdk.json holding the stage config")


def _version(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a version number (1, 2, ...)")
    return int(value)


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a count (0, 1, ...)")
    return int(value)


def _parameter(value: str) -> tuple[str, str]:
    name, equals, setting = value.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not Name=Value")
    return name.strip(), setting


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate one stage of the MLOps platform: model versions, approvals, runs, drift, deployment.",
    )
    _global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shared = argparse.ArgumentParser(add_help=False)
    _global_options(shared, defaults=False)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, parents=[shared])

    versions = command("versions", "list the stage's model versions, newest first")
    versions.add_argument("--json", action="store_true", help="machine-readable output")
    versions.add_argument("--limit", type=_count, default=20, help="at most this many (default 20; 0: all)")

    approve = command("approve", "approve a model version")
    approve.add_argument("version", type=_version)
    approve.add_argument("--reason", help="recorded as the approval description")

    reject = command("reject", "reject a model version")
    reject.add_argument("version", type=_version)
    reject.add_argument("--reason", required=True, help="recorded as the approval description")

    run = command("run", "start the model-build pipeline")
    run.add_argument("--wait", action="store_true", help="follow the execution to its end; exit 1 unless it succeeds")
    run.add_argument(
        "--param",
        type=_parameter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a pipeline parameter (repeatable), e.g. InputDataUri=s3://...",
    )
    run.add_argument("--poll-seconds", type=_positive, default=15.0, help="with --wait: seconds between checks")
    run.add_argument("--timeout-minutes", type=_positive, help="with --wait: stop following (exit 1) after this")

    values = command("values", "the deploy-time values the stage's stacks published (SSM)")
    values.add_argument("--json", action="store_true", help="machine-readable output")

    runs = command("runs", "list the latest model-build executions")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.add_argument("--limit", type=_count, default=10, help="at most this many (default 10)")

    drift_status = command("drift", "drift alarms and the latest drift report")
    drift_status.add_argument(
        "--artifacts-bucket",
        help=f"the lake's artifacts bucket (default ${drift.BUCKET_ENV}; with --local {drift.LOCAL_ARTIFACTS_BUCKET}; "
        "else the one the stage's stacks published in SSM)",
    )
    drift_status.add_argument("--json", action="store_true", help="machine-readable output")

    status = command("deployment", "the staging and production endpoints and the deploy pipeline")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    chain = command(
        "lineage",
        "what made a version and what became of it: data, execution, MLflow run, approval, deployments, checks",
    )
    chain.add_argument("version", type=_version)
    chain.add_argument("--artifacts-bucket", help="where the drift and quality reports are (default: as for drift)")
    chain.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def connect(args: argparse.Namespace) -> Aws:
    """The stage's config from cdk.json and where its AWS calls go; CliError (usage) when the config is unusable."""
    path: Path = args.cdk_json or default_cdk_json()
    try:
        context = json.loads(path.read_text(encoding="utf-8"))["context"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CliError(f"cannot read the stage config from {path}: {error}", USAGE) from None
    try:
        platform = load_config(context)
    except ConfigError as error:
        raise CliError(f"{path}: {error}", USAGE) from None
    if args.stage not in platform.stages:
        raise CliError(
            f'--stage {args.stage}: unknown stage "{args.stage}"; '
            f"{path.name} defines: {', '.join(sorted(platform.stages))}",
            USAGE,
        )
    config = platform.stages[args.stage]
    endpoint_url = args.endpoint_url or (LOCAL_ENDPOINT if args.local else None)
    return Aws(
        config=config,
        region=args.region or config.region,
        endpoint_url=endpoint_url,
        local=args.local,
        profile=args.profile,
    )


def _print_json(data: Any) -> None:
    print(text.dumps(data))


def dispatch(args: argparse.Namespace, aws: Aws) -> int:
    if args.command == "versions":
        versions = registry.list_versions(aws, args.limit)
        if args.json:
            _print_json([version.as_json(aws.config.model.metric) for version in versions])
        else:
            print(registry.render_versions(aws, versions))
    elif args.command in ("approve", "reject"):
        status = registry.APPROVED if args.command == "approve" else registry.REJECTED
        print(registry.set_status(aws, args.version, status, args.reason))
    elif args.command == "run":
        return _run(args, aws)
    elif args.command == "runs":
        runs = pipelines.list_runs(aws, args.limit)
        print(text.dumps(pipelines.runs_json(runs)) if args.json else pipelines.render_runs(aws, runs))
    elif args.command == "values":
        print(_values(aws, as_json=args.json))
    elif args.command == "lineage":
        data = lineage.lineage(aws, args.version, args.artifacts_bucket)
        print(text.dumps(lineage.as_json(data)) if args.json else lineage.render(aws, data))
    elif args.command == "drift":
        data = drift.status(aws, args.artifacts_bucket)
        print(text.dumps(drift.as_json(data)) if args.json else drift.render(aws, data))
    else:
        data = deployment.status(aws)
        print(text.dumps(deployment.as_json(data)) if args.json else deployment.render(aws, data))
    return 0


def _values(aws: Aws, *, as_json: bool) -> str:
    """The stage's published values (resolver/published.py): JSON, or one ``name  value`` line each."""
    try:
        document = published.read(aws.client("ssm"), aws.config).as_document()
    except published.PublishedValuesError as error:
        raise CliError(f"{error} ({aws.where})") from None
    if as_json:
        return text.dumps(document)
    rows = {f"model.{key}": value for key, value in document.pop("model").items()}
    rows = {**document, **rows}
    width = max(len(name) for name in rows)
    return "\n".join(
        f"{name:<{width}}  {', '.join(value) if isinstance(value, list) else value}" for name, value in rows.items()
    )


def _run(args: argparse.Namespace, aws: Aws) -> int:
    arn = pipelines.start(aws, args.param)
    print(f"started {pipelines.pipeline_name(aws)} execution {pipelines.execution_id(arn)} ({arn})")
    if not args.wait:
        return 0
    timeout = None if args.timeout_minutes is None else args.timeout_minutes * 60
    described = pipelines.follow(
        aws.client("sagemaker"),
        arn,
        poll_seconds=args.poll_seconds,
        timeout_seconds=timeout,
        emit=lambda line: print(line, flush=True),
    )
    status = str(described.get("PipelineExecutionStatus"))
    took = text.duration(pipelines.run_seconds(described))
    if status == pipelines.SUCCEEDED:
        print(f"execution {pipelines.execution_id(arn)} Succeeded in {took}")
        return 0
    if status not in pipelines.TERMINAL:
        raise CliError(
            f"execution {pipelines.execution_id(arn)} still {status} after {args.timeout_minutes:g} minutes "
            "(left running)"
        )
    reason = described.get("FailureReason")
    because = f": {reason}" if reason and reason != "None" else ""
    raise CliError(f"execution {pipelines.execution_id(arn)} {status} after {took}{because}")


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already printed
        return exit_.code if isinstance(exit_.code, int) else USAGE
    try:
        aws = connect(args)
        return dispatch(args, aws)
    except CliError as error:
        return _fail(str(error), error.code)
    except NoCredentialsError:
        return _fail(
            "no AWS credentials: set AWS_PROFILE (or pass --profile), export AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or use --local for the local emulation",
            USAGE,
        )
    except NoRegionError:
        return _fail("no AWS region: pass --region", USAGE)
    except ProfileNotFound as error:
        return _fail(f"{error} (--profile or AWS_PROFILE)", USAGE)
    except EndpointConnectionError as error:
        hint = " (is the local emulation running? e.g. moto_server -p 5000)" if args.local else ""
        return _fail(f"cannot reach {error.kwargs.get('endpoint_url', 'AWS')}{hint}", FAILED)
    except ClientError as error:
        return _fail(f"{error.operation_name}: {error_code(error)}: {error_message(error)}", FAILED)
    except BotoCoreError as error:
        return _fail(str(error), FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
