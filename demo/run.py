"""``python -m demo`` (``make demo``): the platform's whole lifecycle on this machine, without an AWS account.

    python -m demo                     # 20k rows over 90 days, 500 requests a traffic window
    python -m demo --fast              # small sizes (3k rows, 200 requests a window)
    python -m demo --no-etl            # train on the raw files, skip the Spark curation job
    python -m demo --seed 3 --keep     # another seed; keep the working folder
    python -m demo --scenario concept-drift   # inputs look the same, outcomes move: model quality retrains

The demo first synthesizes the stage it runs (``--stage``, dev by default) as ``cdk synth`` does, into
``cdk.out`` in its working folder, and wires itself from those templates (demo/assembly.py): the names
of the resources, each function's environment and handler entry point, the EventBridge rules in front of
the functions (an event reaches a function only if its rule matches), the published-values parameter,
the SageMaker pipeline definitions and roles, the drift alarms the composite alarm combines, and the file
assets (published to the emulated bootstrap bucket, as ``cdk deploy`` does).

One embedded AWS emulation (a moto server on 127.0.0.1, fake credentials) stands in for the
account. The steps run the platform's own code against it: the data generator, the curation
job on local Spark with the synthesized Glue job's DefaultArguments (a local folder standing in for
each bucket), CI's Train action (the buildspec of its CodeBuild project in the synthesized CICD
template, run in a copy of this checkout with the project's environment: demo/builds.py), the
operator CLI, the registry-approval and drift-alert functions' handlers, the baseline promotion, the
endpoint's inference code (on the XGBoost image's own serving stack over HTTP when its environment
is built: make image-envs). Every SageMaker pipeline execution started in the emulator (by the CI
build, the drift-alert function, the demo standing in for the drift check's schedule) is run by the
demo's executor (demo/executions.py) on the definition and parameters it was started with, and ends
Succeeded or Failed as SageMaker reports it: the retraining the drift alarm starts registers version 2.
Then the model-quality loop (demo/quality.py): the drifted window's requests receive labels, the curation
job curates them and the window's orders, the quality-start function starts the check from the synthesized
schedule's event, the quality-metrics function publishes its metrics, the demo sets the decay alarm's state
from them and the drift-alert function retrains for "model quality" (or its cooldown suppresses it); every
version is scored on old and recent data. moto's UpdateModelPackage drops a version's metadata, which
SageMaker keeps: the demo makes it keep it (emulation.keep_metadata_on_update).
What the emulation cannot do (run containers, evaluate alarms, emit EventBridge events) the demo does
in their place and says so when it does.

Exit codes: 0 done; 1 a step failed (``demo: step N (<name>) failed: <error>``; ``--debug`` adds
the traceback); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import importlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final, TextIO

from demo import builds, quality
from demo.assembly import BuildAction, CompositeAlarm, FileAsset, Function, GlueJob, Pipeline, ScheduledEvent
from demo.emulation import (
    ACCOUNT,
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    Account,
    LambdaContext,
    Names,
    alarm_event,
    aws_environment,
    environment,
    keep_metadata_on_update,
    model_package_event,
    moto_server,
    step_succeeded_event,
)
from demo.executions import SUCCEEDED, Execution, Executor, sagemaker_backend
from demo.progress import Timeline
from pipelines_src.local import images

ROOT = Path(__file__).resolve().parents[1]
PIPELINES_SRC = ROOT / "pipelines_src"
LAMBDAS = ROOT / "lambdas"
CDK_JSON = ROOT / "cdk.json"

DEFAULTS = {"rows": 20_000, "days": 90, "traffic": 500}
FAST = {"rows": 3_000, "days": 90, "traffic": 200}
MIN_ROWS = 1_000
# Rows the curation job must quarantine: a few of every kind its rules catch.
BAD_ROWS = 16
# Each request carries 1 to MAX_BATCH rows (CSV rows or JSON instances).
MAX_BATCH = 15
DRIFT_FEATURE: Final = "traffic_level"
DRIFT_STRENGTH = 0.5
# The scenarios: what changes in the second traffic window. "drift": its inputs drift (DRIFT_FEATURE); the
# relation to the target stays. "concept-drift": its inputs look the same; every km costs more minutes.
SCENARIOS: Final = ("drift", "concept-drift")
CONCEPT_EFFECT: Final = "distance"
CONCEPT_STRENGTH = 0.6
# The traffic windows end this many hours before the quality check's window ends (now - lateness): the
# drifted window's requests are in the window of the check the demo runs.
WINDOW_HOURS_AGO: Final = {"normal": 2, "drifted": 1}
VARIANT = "AllTraffic"
JSON_TYPE = "application/json"
# The stand-in endpoint on the image's serving stack: gunicorn workers, and requests in flight at once.
STAND_IN_WORKERS = 2
STAND_IN_THREADS = 4
# What the demo writes in its working folder.
WORK_FOLDERS = ("cdk.out", "lake", "executions", "capture", "endpoint", "checkout")
ASSEMBLY_FOLDER = WORK_FOLDERS[0]
# The CodeBuild action of the model-build CodePipeline that trains (its project's buildspec runs make ci-train).
TRAIN_ACTION: Final = "Train"
# How long the demo waits, at the end, for a build it started to finish.
BUILD_WAIT_SECONDS = 600.0
# The platform's functions the demo invokes, by handler package (lambdas/<package>/).
FUNCTIONS = ("registry_approval", "drift_alert", "drift_metrics", "quality_start", "quality_metrics")
STEPS = (
    "set up the emulated account",
    "generate data and curate it",
    "run the model-build pipeline",
    "approve the version",
    "deploy and send traffic",
    "check drift, react to the alarm",
    "labels arrive, check model quality",
    "summary",
)


class StepFailedError(Exception):
    """A step of the demo failed; the message is the one line the demo prints."""

    def __init__(self, number: int, name: str, error: BaseException) -> None:
        self.number = number
        self.name = name
        self.error = error
        super().__init__(f"step {number} ({name}) failed: {one_line(error)}")


class DemoError(RuntimeError):
    """Something the demo checks did not hold; the message says what."""


def one_line(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return first or type(error).__name__


@dataclass(frozen=True)
class _StandIn:
    """The stand-in endpoint: ``answer(body, content_type, inference_id) -> (status, response body)``, asking
    for JSON; the client's InferenceId reaches the inference code as SageMaker passes it."""

    answer: Callable[[str, str, str], tuple[int, str]]
    kind: str  # serving-stack | in-process
    how: str


@dataclass(frozen=True)
class Options:
    seed: int = 7
    rows: int = DEFAULTS["rows"]
    days: int = DEFAULTS["days"]
    traffic: int = DEFAULTS["traffic"]
    workdir: Path | None = None
    keep: bool = False
    etl: bool = True
    debug: bool = False
    stage: str = "dev"
    interpreters: str = "auto"
    scenario: str = SCENARIOS[0]
    # The config the stage is synthesized from (cdk.json's context).
    cdk_json: Path = CDK_JSON


# ---------------------------------------------------------------------------- helpers


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{number} is below the minimum {minimum}")
        return number

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="The whole lifecycle on embedded AWS emulation: data, ETL, training, approval, deploy, "
        "traffic, drift, retraining.",
    )
    parser.add_argument("--seed", type=_integer(0), default=7, help="random seed of the data (default 7)")
    parser.add_argument(
        "--rows", type=_integer(MIN_ROWS), help=f"training rows to generate (default {DEFAULTS['rows']})"
    )
    parser.add_argument("--days", type=_integer(1), help=f"days the rows span (default {DEFAULTS['days']})")
    parser.add_argument(
        "--traffic", type=_integer(20), help=f"requests per traffic window (default {DEFAULTS['traffic']})"
    )
    parser.add_argument("--workdir", type=Path, help="working folder (default: a temporary folder, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary working folder")
    parser.add_argument(
        "--fast",
        action="store_true",
        help=f"small sizes ({FAST['rows']} rows, {FAST['traffic']} requests a window); explicit sizes win",
    )
    parser.add_argument(
        "--no-etl",
        dest="etl",
        action="store_false",
        help="skip the Spark curation job (which needs Java 17) and train on the raw files",
    )
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default=SCENARIOS[0],
        help="drift: the second window's inputs drift (the drift alarm retrains); concept-drift: its inputs look "
        "the same but the relation to the target moved (model quality retrains). Default drift",
    )
    parser.add_argument("--stage", default="dev", help="stage of cdk.json whose names are used (default dev)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failed step")
    images.add_interpreter_option(parser)
    return parser


def parse_options(argv: list[str] | None = None) -> Options:
    args = build_parser().parse_args(argv)
    sizes = FAST if args.fast else DEFAULTS
    return Options(
        seed=args.seed,
        rows=args.rows if args.rows is not None else sizes["rows"],
        days=args.days if args.days is not None else sizes["days"],
        traffic=args.traffic if args.traffic is not None else sizes["traffic"],
        workdir=args.workdir,
        keep=args.keep,
        etl=args.etl,
        debug=args.debug,
        stage=args.stage,
        interpreters=args.interpreters,
        scenario=args.scenario,
    )


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` for the block: child processes started in it (the JVM) keep it."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as handle:
        os.dup2(handle.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _upload_tree(s3: Any, source: Path, bucket: str, prefix: str) -> int:
    """Upload the data files of a folder (not Spark's ``.crc`` and ``_SUCCESS`` markers) under a prefix."""
    count = 0
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or any(part.startswith((".", "_")) for part in relative.parts):
            continue
        key = f"{prefix.rstrip('/')}/{relative.as_posix()}" if prefix.strip("/") else relative.as_posix()
        s3.upload_file(str(path), bucket, key)
        count += 1
    return count


def _split_uri(uri: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.*)$", uri)
    if match is None:
        raise DemoError(f"not an S3 URI: {uri!r}")
    return match[1], match[2]


def _string_parameters(value: Any) -> Any:
    """A TableInput with every ``Parameters`` map's values as strings, as CloudFormation passes them to Glue."""
    if isinstance(value, list):
        return [_string_parameters(item) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: (
            {name: json.dumps(item) if isinstance(item, bool) else str(item) for name, item in inner.items()}
            if key == "Parameters" and isinstance(inner, dict)
            else _string_parameters(inner)
        )
        for key, inner in value.items()
    }


def _feature_value(value: Any) -> Any:
    """A frame value as the endpoint's clients send it: None for missing, plain numbers, category names."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _function_packages() -> set[str]:
    """The handler packages under lambdas/ (not their shared code)."""
    return {path.name for path in LAMBDAS.iterdir() if (path / "handler.py").is_file()}


def inference_id(window: str, index: int) -> str:
    """The InferenceId the demo's client passes with request ``index`` of a traffic window."""
    return f"{window}-{index:05d}"


def _fraction_text(report: Mapping[str, Any], feature: str) -> str:
    statistics = report["features"].get(feature, {})
    psi, ks = statistics.get("psi"), statistics.get("ks")
    parts = [f"PSI {psi:.3f}" if psi is not None else "PSI -"]
    parts.append(f"KS {ks:.3f}" if ks is not None else "KS -")
    return ", ".join(parts)


# ------------------------------------------------------------------------------- the demo


@dataclass
class Demo:
    options: Options
    timeline: Timeline
    workdir: Path
    account: Account | None = None
    config: Any = None
    names: Names | None = None
    # From the synthesized stage: the platform's functions by handler package, the published-values document.
    functions: dict[str, Function] = field(default_factory=dict)
    published: str = ""
    composite: CompositeAlarm | None = None
    assets: list[FileAsset] = field(default_factory=list)
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    train: BuildAction | None = None
    curation_job: GlueJob | None = None
    # The deploy CodePipeline (CreatePipeline's shape), the quality schedule and decay alarm, from the templates.
    deploy_definition: dict[str, Any] = field(default_factory=dict)
    quality_schedule: ScheduledEvent | None = None
    decay_alarm: dict[str, Any] = field(default_factory=dict)
    catalog: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
    handlers: dict[str, ModuleType] = field(default_factory=dict)
    # Runs the SageMaker pipeline executions started in the emulated account (demo/executions.py).
    executor: Executor | None = None
    # What the steps open and the end of the demo closes (the executor's worker).
    closing: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    state: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, str]] = field(default_factory=list)
    notifications: list[dict[str, str]] = field(default_factory=list)

    # -- plumbing
    @property
    def aws(self) -> Account:
        if self.account is None:
            raise DemoError("the emulated account is not set up")
        return self.account

    @property
    def runs(self) -> Executor:
        if self.executor is None:
            raise DemoError("the emulated account is not set up")
        return self.executor

    @property
    def n(self) -> Names:
        if self.names is None:
            raise DemoError("the emulated account is not set up")
        return self.names

    def say(self, text: str) -> None:
        self.timeline.say(text)

    def act(self, what: str, why: str) -> None:
        self.actions.append({"action": what, "why": why})

    def collect_notifications(self) -> list[dict[str, str]]:
        new = self.aws.notifications()
        self.notifications.extend(new)
        return new

    def load_stage(self) -> None:
        """Synthesize the stage as ``cdk synth`` does and take the emulated account's wiring from its templates:
        the functions (environment, entry point, the rules in front of them) and the published values."""
        from demo.assembly import Resolver, synthesize
        from resolver import naming, published
        from resolver.config import load_config

        context = json.loads(self.options.cdk_json.read_text(encoding="utf-8"))["context"]
        self.config = load_config(context).stage(self.options.stage)
        began = time.perf_counter()
        assembly = synthesize(context, self.options.stage, self.workdir / ASSEMBLY_FOLDER)
        resolver = Resolver(assembly, account=ACCOUNT, region=self.config.region)
        self.functions = resolver.functions()
        missing = sorted(set(FUNCTIONS) - set(self.functions))
        if missing:
            raise DemoError(
                f"the synthesized stage has no function with a handler in lambdas/{', lambdas/'.join(missing)}"
            )
        parameter = naming.platform_values_parameter(self.config)
        self.published = resolver.parameter(parameter)
        self.composite = resolver.composite_alarm(naming.drift_alarm_prefix(self.config))
        self.assets = resolver.file_assets()
        values = published.PlatformValues.from_json(self.published, where=f"SSM parameter {parameter} (synthesized)")
        self.pipelines = {name: resolver.pipeline(name) for name in (values.build_pipeline, values.drift_pipeline)}
        quality_check = naming.quality_pipeline(self.config)
        self.pipelines[quality_check] = resolver.pipeline(quality_check)
        self.deploy_definition = resolver.codepipeline(naming.deploy_pipeline(self.config))
        self.quality_schedule = resolver.scheduled_event(quality.CHECK_DUE)
        self.train = resolver.build_action(naming.build_ci_pipeline(self.config), TRAIN_ACTION)
        self.curation_job = resolver.glue_job(naming.curation_job(self.config))
        database = self.curation_job.arguments.get("--catalog_database")
        self.catalog = resolver.catalog(database) if database else None
        self.names = Names.from_assembly(
            self.config, values, {name: function.environment for name, function in self.functions.items()}
        )
        if self.names.quality_alarm:
            self.decay_alarm = resolver.metric_alarm(self.names.quality_alarm)
        self.state["synth_seconds"] = round(time.perf_counter() - began, 1)

    # -- step 1
    def setup(self, url: str) -> None:
        self.account = Account(url=url, names=self.n)
        aws, n = self.aws, self.n
        self.say(
            f"{self.options.stage} stage synthesized in {self.state['synth_seconds']:.1f}s into "
            f"{self.workdir / ASSEMBLY_FOLDER}: names, function environments and entry points, rule patterns and the "
            "published values come from its templates"
        )
        self.say(f"moto server at {url} (account {aws.names.role_arn.split(':')[4]}, {n.region}, fake credentials)")
        aws.create_storage()
        backend = sagemaker_backend(ACCOUNT, n.region)
        keep_metadata_on_update(backend)
        self.executor = Executor(
            backend,
            s3=aws.client("s3"),
            sagemaker=aws.client("sagemaker"),
            workdir=self.workdir / "executions",
            job_environment=self.job_environment(),
            interpreters=self.options.interpreters,
        )
        self.closing.enter_context(self.executor.running())
        self.say(
            "moto records a started SageMaker pipeline execution and runs no step: the demo's executor picks up "
            "every execution started in the emulator (by CI, the drift-alert function or the schedule), runs its "
            "definition with its parameters step by step as local processes (LocalPipelineRunner) and records "
            "Succeeded or Failed on it, as SageMaker reports it"
        )
        self.publish_assets()
        self.say(f"buckets: {n.raw_bucket}, {n.curated_bucket}, {n.artifacts_bucket}")
        self.say(f"model package group: {n.model_package_group}")
        aws.create_notifications()
        self.say(f"SNS topic {n.topic}, with SQS queue {n.queue} subscribed (to read the notifications)")
        aws.create_idempotency_table()
        self.say(f"DynamoDB idempotency table {n.idempotency_table} (partition key id)")
        aws.create_deploy_pipeline(self.deploy_definition)
        stages = ", ".join(stage["name"] for stage in self.deploy_definition["stages"])
        variables = ", ".join(item["name"] for item in self.deploy_definition["variables"])
        self.say(
            f"deploy CodePipeline {n.deploy_pipeline} as the CICD template defines it "
            f"({self.deploy_definition['pipelineType']}, variables {variables}; stages {stages})"
        )
        if self.composite is None:
            raise DemoError("the stage is not loaded")
        aws.create_drift_alarms(self.composite)
        thresholds = sorted({f"{alarm.metric} > {alarm.threshold:g}" for alarm in aws.feature_alarms})
        self.say(
            f"{len(aws.feature_alarms)} feature drift alarms of the composite alarm's rule ({', '.join(thresholds)}) "
            f"and {n.alarm_prefix}, a metric alarm standing in for the composite alarm (moto has none)"
        )
        if self.decay_alarm:
            aws.create_metric_alarm(self.decay_alarm)
            self.say(
                f"model-quality decay alarm {n.quality_alarm} as the Operations template defines it "
                f"({self.decay_alarm['MetricName']} > {float(self.decay_alarm['Threshold']):g})"
            )
        self.summary["names"] = {
            "raw_bucket": n.raw_bucket,
            "curated_bucket": n.curated_bucket,
            "artifacts_bucket": n.artifacts_bucket,
            "model_package_group": n.model_package_group,
            "build_pipeline": n.build_pipeline,
            "deploy_pipeline": n.deploy_pipeline,
            "drift_pipeline": n.drift_pipeline,
            "endpoint": n.endpoint,
            "composite_alarm": n.alarm_prefix,
            "quality_pipeline": n.quality_pipeline,
            "quality_alarm": n.quality_alarm,
            "region": n.region,
        }
        self.publish_values()

    # -- step 2
    def data(self) -> None:
        options, n, s3 = self.options, self.n, self.aws.client("s3")
        local_raw = self.workdir / "lake" / "raw"
        if options.etl:
            folders = self.lake_folders()
            self._curate(folders)
            synced = {bucket: _upload_tree(s3, folder, bucket, "") for bucket, folder in folders.items()}
            self.say(
                "synced to the emulated lake: "
                + ", ".join(f"{count} files to s3://{bucket}/" for bucket, count in synced.items())
            )
            self.state["input_uri"] = f"s3://{n.curated_bucket}/{n.dataset}/"
        else:
            from pipelines_src.datasets.delivery_time import generate, write_raw

            frame = generate(options.rows, seed=options.seed, days=options.days)
            files = write_raw(frame, local_raw, dataset=n.dataset, file_format="csv", overwrite=True)
            _upload_tree(s3, local_raw / n.dataset, n.raw_bucket, n.dataset)
            self.say(
                f"generated {len(frame)} orders over {options.days} days ({len(files)} files); "
                f"uploaded to s3://{n.raw_bucket}/{n.dataset}/"
            )
            self.say("--no-etl: no curation job; the model trains on the raw files")
            self.summary["curation"] = None
            self.state["input_uri"] = f"s3://{n.raw_bucket}/{n.dataset}/"

    def lake_folders(self) -> dict[str, Path]:
        """The local folder standing in for each bucket of the lake: the local Spark has no S3 connector."""
        n, lake = self.n, self.workdir / "lake"
        return {n.raw_bucket: lake / "raw", n.curated_bucket: lake / "curated", n.artifacts_bucket: lake / "artifacts"}

    def curation_argv(self, folders: Mapping[str, Path]) -> list[str]:
        """The synthesized Glue job's arguments as Glue passes them to its script (``--JOB_NAME`` and the job's
        DefaultArguments), an S3 URI replaced by the local folder of its bucket (``folders``) or, for a file asset
        (the contract), the asset's file in the cloud assembly; any other S3 URI is an error."""
        if self.curation_job is None:
            raise DemoError("the stage is not loaded")
        assets = {f"s3://{asset.bucket}/{asset.key}": asset.source for asset in self.assets}
        argv = ["--JOB_NAME", self.curation_job.name]
        for name, value in self.curation_job.arguments.items():
            if value.startswith("s3://"):
                bucket, key = _split_uri(value)
                if value in assets:
                    value = str(assets[value])
                elif bucket in folders:
                    value = str(folders[bucket] / key)
                else:
                    raise DemoError(
                        f"{self.curation_job.name} {name} {value}: no local folder stands in for s3://{bucket}"
                    )
            argv += [name, value]
        return argv

    def create_catalog(self) -> str:
        """The Glue database and tables of the DataLake template (the curation job registers partitions in them)."""
        if self.catalog is None:
            return ""
        database, tables = self.catalog
        glue = self.aws.client("glue")
        glue.create_database(DatabaseInput=database)
        for table in tables:
            glue.create_table(DatabaseName=database["Name"], TableInput=_string_parameters(table))
        return f"Glue database {database['Name']} with {', '.join(table['Name'] for table in tables)}"

    def _curate(self, folders: Mapping[str, Path]) -> None:
        from etl.local import generate_raw, java_problem

        problem = java_problem()
        if problem:
            raise DemoError(f"{problem} (or run the demo with --no-etl to train on the raw files)")
        options, n = self.options, self.n
        local_raw = folders[n.raw_bucket]
        generated = generate_raw(
            local_raw, rows=options.rows, seed=options.seed, days=options.days, bad_rows=BAD_ROWS, dataset=n.dataset
        )
        self.say(
            f"generated {len(generated.frame)} orders over {options.days} days and {len(generated.bad.rows)} bad rows "
            f"({len(generated.files)} files) in {local_raw}"
        )
        argv = self.curation_argv(folders)
        self.say(
            f"the curation job {argv[1]} (etl/curate.py) runs on local Spark with the DefaultArguments of the "
            "synthesized DataLake template; the local Spark has no S3 connector, so a local folder stands in for each "
            "bucket ("
            + ", ".join(f"s3://{bucket}/ -> {folder}" for bucket, folder in folders.items())
            + ") and the contract is the template's asset file; its output is then synced to the emulated buckets"
        )
        self.say(f"  arguments: {' '.join(argv)}")
        catalog = self.create_catalog()
        if catalog:
            self.say(f"  {catalog} created as the DataLake template defines them (partitions get local locations)")
        bar = self.timeline.bar("curation", 5)
        from etl import curate

        spark = self.spark()
        bar.advance(note=f"Spark {spark.version} started")
        args = curate.parse_args(argv)
        report = curate.run(spark, args, progress=lambda message: bar.advance(note=message.split(" (")[0][:60]))
        bar.finish(note=f"done in {report['seconds']:.1f}s")
        counts = report["counts"]
        rules = ", ".join(f"{rule} {count}" for rule, count in sorted(counts["quarantined_by_rule"].items()))
        self.say(
            f"curated: {counts['rows_read']} rows read, {counts['rows_written']} written, "
            f"{counts['rows_quarantined']} quarantined ({rules}), {counts['duplicates_dropped']} duplicates dropped"
        )
        self.summary["curation"] = {
            key: counts[key] for key in ("rows_read", "rows_written", "rows_quarantined", "duplicates_dropped")
        }
        self.summary["curation"]["quarantined_by_rule"] = dict(counts["quarantined_by_rule"])

    def spark(self) -> Any:
        """The local Spark session the curation job runs on: started once (the JVM's start is most of a short
        run), stopped when the demo ends."""
        from etl.local import local_spark

        if "spark" not in self.state:
            with _stderr_to(self.workdir / "spark.log"):
                self.state["spark"] = local_spark(cores=2, java_options="-XX:TieredStopAtLevel=1")
            self.closing.callback(self.state["spark"].stop)
        return self.state["spark"]

    def publish_assets(self) -> None:
        """As ``cdk deploy`` publishes the file assets before the stacks: the step code, the runner, the contract,
        the curation script and the templates, into the bootstrap's assets bucket the definitions read from."""
        s3 = self.aws.client("s3")
        for bucket in sorted({asset.bucket for asset in self.assets}):
            s3.create_bucket(Bucket=bucket)
        for asset in self.assets:
            s3.upload_file(str(asset.source), asset.bucket, asset.key)
        buckets = ", ".join(sorted({asset.bucket for asset in self.assets}))
        self.say(f"{len(self.assets)} file assets of the cloud assembly published to {buckets}, as cdk deploy does")

    def publish_values(self) -> None:
        """What CloudFormation writes into the published-values parameter at the MLPlatform deploy: the template's
        value, its references resolved to the emulated resources (resolver/published.py)."""
        from resolver import naming

        name = naming.platform_values_parameter(self.config)
        self.aws.client("ssm").put_parameter(Name=name, Type="String", Value=self.published)
        self.say(f"published values in SSM {name}, as the synthesized MLPlatform template writes them")

    def build(self) -> None:
        from resolver import published

        sagemaker = self.aws.client("sagemaker")
        # Read back as CI and the CLI read them.
        values = self.state["values"] = published.read(self.aws.client("ssm"), self.config)
        pipeline = self.pipelines[values.build_pipeline]
        sagemaker.create_pipeline(
            PipelineName=pipeline.name,
            PipelineDefinition=pipeline.definition,
            RoleArn=pipeline.role_arn,
            PipelineDescription=pipeline.description,
        )
        self.say(
            f"SageMaker pipeline {values.build_pipeline} created with the definition of the synthesized MLPlatform "
            "template, its references resolved (as CloudFormation deploys it)"
        )
        self.say(f"input: {self.state['input_uri']}")
        if self.state["input_uri"] == values.input_data_uri:
            arn = self._ci_train(values.build_pipeline)
        else:
            arn = self._start_as_ci(values)
        execution = self.follow(arn, "pipeline")
        self.summary["build_parameters"] = dict(execution.parameters)
        version = self.registered(execution)
        self.state["package_arn"] = version["arn"]
        self.summary["versions"] = [version]

    def _ci_train(self, pipeline: str) -> str:
        """The Train action's CodeBuild project as the CICD template defines it: its buildspec's commands run in a copy
        of this checkout with the project's environment, against the emulator. Returns the execution it starts."""
        if self.train is None:
            raise DemoError("the stage is not loaded")
        action, n = self.train, self.n
        folder = builds.checkout(ROOT, self.workdir / "checkout")
        environment = {
            **builds.codebuild_environment(action, folder, region=n.region, commit=builds.source_version(ROOT)),
            **self.job_environment(),
            **action.environment,
        }
        before = len(self.runs.executions(pipeline))
        build = builds.start(action, folder, environment)
        self.closing.callback(_stop, build)
        self.state["ci_build"] = build
        variables = ", ".join(f"{name}={value}" for name, value in sorted(action.environment.items()))
        self.say(
            f"CI: CodeBuild project {action.project} ({action.pipeline}, action {action.action}; its buildspec "
            f"from the synthesized CICD template) runs in {folder}, a copy of this checkout, with the project's "
            f"environment ({variables}), AWS_ENDPOINT_URL={self.aws.url} and fake credentials:"
        )
        for command in build.commands:
            if command.skipped_because:
                self.say(f"  {command.phase}: {command.text}  -- skipped: {command.skipped_because}")
            else:
                self.say(f"  {command.phase}: {command.text}")
        runtimes = ", ".join(f"{name} {version}" for name, version in action.runtime_versions().items())
        if runtimes:
            self.say(f"  runtime-versions ({runtimes}) select nothing here: it runs on this machine's interpreters")
        began = time.monotonic()
        while len(self.runs.executions(pipeline)) == before:
            code = build.process.poll()
            if code is not None:
                tail = "; ".join(build.output().strip().splitlines()[-3:])
                raise DemoError(f"the {action.action} build ended (exit {code}) without starting {pipeline}: {tail}")
            if time.monotonic() - began > BUILD_WAIT_SECONDS:
                raise DemoError(f"the {action.action} build started no {pipeline} execution in {BUILD_WAIT_SECONDS}s")
            time.sleep(0.2)
        execution = self.runs.executions(pipeline)[before]
        self.say(f"  the build started {execution.execution_id} ({execution.display_name}); the executor runs it")
        return execution.arn

    def _start_as_ci(self, values: Any) -> str:
        """--no-etl: the deployed definition reads the curated zone, which CI passes no other input for; the demo
        starts the execution as CI's train command does (pipelines_src/cicd.py), with InputDataUri the raw zone."""
        from pipelines_src import cicd
        from pipelines_src.definition import INPUT_DATA_URI

        sagemaker = self.aws.client("sagemaker")
        deployed = cicd.deployed_code(sagemaker, values.build_pipeline)
        pushed = cicd.upload_code(
            self.aws.client("s3"),
            values.artifacts_bucket,
            values.code_prefix,
            dataset=values.model.dataset,
            kms_key_id=values.kms_key_arn,
            names=deployed.names,
            echo=lambda line: None,
        )
        parameters = [*cicd.code_parameters(pushed), {"Name": INPUT_DATA_URI, "Value": self.state["input_uri"]}]
        self.say(
            f"--no-etl: the CI build is not run (the deployed definition reads the curated zone and CI passes no "
            f"other input); the demo starts the execution as CI's train command does, with {INPUT_DATA_URI} the raw "
            "zone and this checkout's code"
        )
        labels = cicd.execution_labels(None, deployed.definition_sha256, cicd.code_hash(pushed))
        return cicd.start(sagemaker, values.build_pipeline, parameters, labels)

    def finish_build(self) -> None:
        """Wait for the CI build to end (it polls the execution as CI does), show its log and its train summary."""
        build: builds.Build | None = self.state.get("ci_build")
        if build is None:
            return
        code = build.wait(BUILD_WAIT_SECONDS)
        lines = [line for line in build.output().splitlines() if line.strip()]
        report = build.folder / "reports" / "train-summary.json"
        train = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else None
        self.summary["ci"] = {
            "project": build.action.project,
            "commands": [
                {"phase": item.phase, "command": item.text, "skipped_because": item.skipped_because}
                for item in build.commands
            ],
            "exit_code": code,
            "train_summary": train,
            "log": lines,
        }
        self.say(f"CI build {build.action.project}: exit {code} (log {build.log}):")
        for line in lines[-12:]:
            self.say(f"  | {line}")
        if code != 0:
            raise DemoError(f"the {build.action.action} build failed with exit status {code}")

    def follow(self, arn: str, label: str, *, must_succeed: bool = True) -> Execution:
        """Wait for the executor to run ``arn`` (a progress bar of its steps), then show its steps; a failed execution
        is an error unless ``must_succeed`` is false."""
        definition = json.loads(self.runs.get(arn).definition)
        bar = self.timeline.bar(label, max(len(definition.get("Steps", [])), 1))

        def on_event(execution: Execution, line: str) -> None:
            match = re.match(r"^\[(\d+)/(\d+)\] (\S+)", line)
            if execution.arn == arn and match:
                bar.update(int(match[1]) - 1, note=match[3])

        self.runs.listener = on_event
        try:
            execution = self.runs.wait(arn)
        finally:
            self.runs.listener = None
        bar.finish(note=f"{execution.status} in {execution.seconds:.1f}s")
        self.show_steps(execution)
        if execution.status != SUCCEEDED and must_succeed:
            raise DemoError(f"{execution.pipeline} execution {execution.execution_id} failed: {execution.failure}")
        return execution

    def show_steps(self, execution: Execution) -> None:
        """The steps of an execution the executor ran: status, seconds, metrics; the interpreters they ran on."""
        self.say(
            f"{execution.pipeline} execution {execution.execution_id}: {execution.status} "
            f"(run by the demo's executor from its definition and parameters)"
        )
        steps = execution.result.steps if execution.result else []
        for step in steps:
            if step.status != "Skipped":
                detail = f": {step.detail}" if step.detail else ""
                self.say(f"  {step.name:<22} {step.status:<9} {step.seconds:5.1f}s{detail}")
        for python in sorted({step.python for step in steps if step.python}):
            ran = [step.name for step in steps if step.python == python]
            self.say(f"  on {python}: {', '.join(ran)}")

    def registered(self, execution: Execution) -> dict[str, Any]:
        """The version an execution registered: its number, ARN, approval status and evaluation metrics."""
        arn = execution.registered
        if arn is None or execution.result is None:
            raise DemoError(f"{execution.pipeline} execution {execution.execution_id} registered no model version")
        package = self.aws.client("sagemaker").describe_model_package(ModelPackageName=arn)
        steps = execution.result.steps
        metrics = {name: value for step in steps for name, value in step.metrics.items()}
        evaluation = next((step.metrics for step in steps if "rmse" in step.metrics), metrics)
        shown = ", ".join(f"{name} {value:.3f}" for name, value in evaluation.items())
        self.say(f"registered {arn} ({package['ModelApprovalStatus']}; {shown})")
        return {
            "version": int(package["ModelPackageVersion"]),
            "arn": arn,
            "status": package["ModelApprovalStatus"],
            "metrics": {name: float(value) for name, value in evaluation.items()},
            "execution": execution.arn,
            "started_because": execution.description,
        }

    # -- step 4
    def invoke(self, package: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """Deliver ``event`` as EventBridge would: only if a synthesized rule in front of the function matches it,
        to the entry point its Handler names, in the environment its template gives it."""
        function = self.functions[package]
        rule = function.rule_for(event)
        if rule is None:
            raise DemoError(
                f"no rule of {function.stack} targeting {function.logical_id} matches the "
                f"{event.get('detail-type')!r} event: EventBridge would not invoke the function"
            )
        module = self.handlers.get(package) or self._cold_start(function)
        context = LambdaContext(function.name, function.arn, function.memory_mb)
        with environment(self._runtime_environment(function)), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Couldn't determine the remaining time")
            result: dict[str, Any] = getattr(module, function.entry)(dict(event), context)
        return result

    def job_environment(self) -> dict[str, str]:
        """What a job without network isolation sees: the emulator's endpoint, fake credentials, the region."""
        return {name: value for name, value in aws_environment(self.aws.url, self.n.region).items() if value}

    def _runtime_environment(self, function: Function) -> dict[str, str | None]:
        """The template's variables and what the Lambda runtime adds; the demo only quiets the functions' logs."""
        return {
            **function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }

    def _cold_start(self, function: Function) -> ModuleType:
        """The handler module imported as Lambda imports it (``lambdas/`` as the package root, the function's own
        environment at import); kept for later events, as a warm execution environment."""
        if str(LAMBDAS) not in sys.path:
            sys.path.insert(0, str(LAMBDAS))
        # Each function has its own interpreter in Lambda: a handler module another function imported (the
        # quality-metrics function runs drift_metrics' module, which reads its environment at import) is imported
        # again, in this function's environment.
        for name in [name for name in sys.modules if name.split(".")[0] in _function_packages()]:
            sys.modules.pop(name, None)
        with environment(self._runtime_environment(function)):
            module = importlib.import_module(function.module)
        logger = getattr(module, "logger", None)
        if logger is not None:
            logger.setLevel("WARNING")
        self.handlers[function.package] = module
        return module

    def approve(self) -> None:
        from mlops_cli import cli

        n, aws = self.n, self.aws
        version = self.summary["versions"][0]["version"]
        argv = ["--local", "--endpoint-url", aws.url, "--stage", n.stage, "approve", str(version), "--reason", "demo"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
        if code != 0:
            raise DemoError(f"mlops approve exited {code}: {err.getvalue().strip() or out.getvalue().strip()}")
        self.say(f"$ mlops {' '.join(argv)}")
        self.say(out.getvalue().strip())

        sagemaker, codepipeline = aws.client("sagemaker"), aws.client("codepipeline")
        package = sagemaker.describe_model_package(ModelPackageName=self.state["package_arn"])
        event = model_package_event(package, n.region, now=dt.datetime.now(dt.UTC))
        self.say(
            'moto emits no EventBridge event on UpdateModelPackage: the demo builds the "SageMaker Model Package '
            'State Change" event SageMaker sends and delivers it to the registry-approval handler'
        )
        first = self.invoke("registry_approval", event)
        if first.get("status") != "deploy_started":
            raise DemoError(f"the registry-approval function did not start the deploy: {first}")
        execution = codepipeline.get_pipeline_execution(
            pipelineName=n.deploy_pipeline, pipelineExecutionId=first["pipelineExecutionId"]
        )["pipelineExecution"]
        variables = {item["name"]: item["resolvedValue"] for item in execution.get("variables", [])}
        self.say(
            f"-> deploy_started: {n.deploy_pipeline} execution {first['pipelineExecutionId']} "
            f"({execution['status']} at once in moto, which runs no action), "
            f"variable ModelPackageArn={variables.get('ModelPackageArn')}"
        )
        self.act(
            f"deploy pipeline {n.deploy_pipeline} started (execution {first['pipelineExecutionId']})",
            f"version {package['ModelPackageVersion']} was approved",
        )
        again = self.invoke("registry_approval", event)
        runs = codepipeline.list_pipeline_executions(pipelineName=n.deploy_pipeline)["pipelineExecutionSummaries"]
        duplicate_ignored = again == first and len(runs) == 1
        self.say(
            f"the same event delivered again -> {again.get('status')} (answered from the idempotency record); "
            f"deploy executions: {len(runs)}"
        )
        if not duplicate_ignored:
            raise DemoError(f"the duplicate approval had another effect: {again}, {len(runs)} executions")
        self.act("duplicate approval event ignored", "the same status change of the same version, delivered twice")
        self.summary["versions"][0]["status"] = package["ModelApprovalStatus"]
        self.summary["deploy"] = {
            "pipeline": n.deploy_pipeline,
            "executions": [{"id": run["pipelineExecutionId"], "status": run["status"]} for run in runs],
            "variables": variables,
            "first": first,
            "duplicate": again,
            "duplicate_ignored": duplicate_ignored,
        }

    # -- step 5
    def deploy(self) -> None:
        from pipelines_src import promote
        from resolver import naming

        n, aws = self.n, self.aws
        s3, sagemaker = aws.client("s3"), aws.client("sagemaker")
        arn = self.state["package_arn"]
        record = promote.publish_baseline(
            sagemaker, s3, arn, n.artifacts_bucket, naming.deployed_baseline_prefix(self.config)
        )
        self.say(f"baseline published (pipelines_src/promote.py): {record['baseline_source']} -> {record['baseline']}")
        self.state["baseline_uri"] = record["baseline"].rsplit("/", 1)[0] + "/"
        self.summary["baseline"] = record
        # What the release tool records after a production deployment: the served version, later the champion.
        served = naming.champion_parameter(self.config)
        aws.client("ssm").put_parameter(Name=served, Value=arn, Type="String", Overwrite=True)
        self.say(f"served version recorded in {served} (as endpoint_release records it): {arn}")

        package = sagemaker.describe_model_package(ModelPackageName=arn)
        container = package["InferenceSpecification"]["Containers"][0]
        model_url = container["ModelDataUrl"]
        bucket, key = _split_uri(model_url)
        model_dir = self.workdir / "endpoint" / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        archive = self.workdir / "endpoint" / "model.tar.gz"
        s3.download_file(bucket, key, str(archive))
        with tarfile.open(archive) as tar:
            tar.extractall(model_dir, filter="data")
        # The windows end before the model-quality check's window does (now - its lateness): its labels come later.
        lateness = dt.timedelta(hours=self.config.operations.quality.lateness_hours)
        now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - lateness
        windows = {window: now - dt.timedelta(hours=hours) for window, hours in WINDOW_HOURS_AGO.items()}
        self.state["windows"] = windows
        captured: dict[str, Any] = {}
        with self._stand_in(archive, model_dir, container.get("Environment", {})) as endpoint:
            self.say(
                f"endpoint {n.endpoint} stands in locally: {model_url} {endpoint.how}; each request is captured in "
                f"SageMaker's data-capture format under s3://{n.raw_bucket}/{naming.capture_prefix(self.config)}"
                f"{n.endpoint}/{VARIANT}/"
            )
            bar = self.timeline.bar("traffic", 2 * self.options.traffic)
            seconds = 0.0
            for offset, (window, start) in enumerate(windows.items(), start=1):
                captured[window], took = self._traffic(endpoint, window, start, self.options.seed + offset, bar)
                seconds += took
        requests = sum(item["requests"] for item in captured.values())
        bar.finish(note=f"{requests} requests")
        rate = requests / seconds if seconds > 0 else float("inf")
        self.say(f"{requests} requests answered in {seconds:.1f}s: {rate:.0f} requests/s ({endpoint.kind})")
        for window, item in captured.items():
            self.say(
                f"{window} window ({item['hour']}): {item['requests']} requests, {item['rows']} rows, "
                f"{item['files']} capture files -> {item['prefix']}"
            )
        self.summary["capture"] = captured
        self.summary["endpoint"] = {"served_by": endpoint.kind, "requests_per_second": round(rate, 1)}
        if self.options.scenario == "concept-drift":
            self.say(
                f"concept-drift scenario: the drifted window's inputs come from the same distributions; its outcomes "
                f"from the generator with concept drift ({CONCEPT_EFFECT}: every km costs {1 + CONCEPT_STRENGTH:g} "
                "times the minutes), which no input statistic shows"
            )
        else:
            self.say(f"the drifted window's rows come from the generator with covariate drift on {DRIFT_FEATURE}")

    @contextlib.contextmanager
    def _stand_in(self, archive: Path, model_dir: Path, environment: Mapping[str, str]) -> Iterator[_StandIn]:
        """The endpoint: the XGBoost image's serving stack over HTTP when its environment is built, else the
        inference code in this process."""
        from pipelines_src.local.images import ImageEnvironmentError
        from pipelines_src.local.serving import ServingStack, image_runtime
        from pipelines_src.serving import inference

        try:
            image_runtime()
        except ImageEnvironmentError as error:
            self.say(f"{one_line(error)}: the stand-in endpoint answers in this process instead")
            model = inference.model_fn(str(model_dir))

            def in_process(body: str, content_type: str, inference_id: str) -> tuple[int, str]:
                reply = inference.respond(model, body, content_type, JSON_TYPE, inference_id=inference_id)
                return reply.status, reply.body.decode("utf-8")

            yield _StandIn(in_process, "in-process", "loaded with serving/inference.py's model_fn in this process")
            return
        with ServingStack(archive, environment, workers=STAND_IN_WORKERS) as stack:

            def over_http(body: str, content_type: str, inference_id: str) -> tuple[int, str]:
                status, _, answer = stack.invoke(
                    body.encode("utf-8"), content_type, JSON_TYPE, inference_id=inference_id
                )
                return status, answer.decode("utf-8")

            yield _StandIn(
                over_http,
                "serving-stack",
                f"served by the XGBoost image's serving stack (sagemaker-containers, gunicorn, {STAND_IN_WORKERS} "
                f"workers) at 127.0.0.1:{stack.port} with the package's container environment; "
                f"{STAND_IN_THREADS} requests in flight",
            )

    def _traffic(
        self, endpoint: _StandIn, window: str, start: dt.datetime, seed: int, bar: Any
    ) -> tuple[dict[str, Any], float]:
        """One window's requests sent and captured: what was captured, and the seconds the answers took."""
        import numpy as np

        from pipelines_src.datasets.delivery_time import ConceptDrift, CovariateDrift, generate
        from pipelines_src.steps import contract as contracts
        from pipelines_src.steps import features

        n, options = self.n, self.options
        contract = contracts.load_contract(PIPELINES_SRC / "contracts" / f"{n.dataset}.json")
        names = features.from_contract(contract).names
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xCA9,)))
        sizes = rng.integers(1, MAX_BATCH + 1, size=options.traffic)
        drifted, concept = window == "drifted", options.scenario == "concept-drift"
        drift = CovariateDrift(DRIFT_FEATURE, strength=DRIFT_STRENGTH) if drifted and not concept else None
        moved = ConceptDrift(CONCEPT_EFFECT, strength=CONCEPT_STRENGTH) if drifted and concept else None
        frame = generate(int(sizes.sum()), seed=seed, days=options.days, covariate_drift=drift, concept_drift=moved)
        # What the window's orders turn out to be: the labels later, and new training rows (demo/quality.py).
        self.state.setdefault("traffic", {})[window] = {"frame": frame, "sizes": sizes.tolist(), "start": start}
        records = [
            [_feature_value(row[name]) for name in names] for row in frame[names].astype(object).to_dict("records")
        ]
        hour = start.strftime("%Y/%m/%d/%H")
        local = self.workdir / "capture" / n.endpoint / VARIANT / hour
        local.mkdir(parents=True, exist_ok=True)
        step = 3600.0 / options.traffic
        requests: list[tuple[str, str, str]] = []
        position = 0
        for index, size in enumerate(sizes.tolist()):
            rows = records[position : position + size]
            position += size
            if index % 2 == 0:
                body = "\n".join(",".join(_csv_field(value) for value in row) for row in rows)
                requests.append((body, "text/csv", "CSV"))
            else:
                body = json.dumps({"instances": [dict(zip(names, row, strict=True)) for row in rows]})
                requests.append((body, "application/json", "JSON"))
        files: dict[str, list[str]] = {}
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=STAND_IN_THREADS) as pool:
            # Each request passes InvokeEndpoint's InferenceId, which the capture records (eventMetadata).
            answers = pool.map(
                lambda numbered: endpoint.answer(numbered[1][0], numbered[1][1], inference_id(window, numbered[0])),
                enumerate(requests),
            )
            for index, (request, (status, response)) in enumerate(zip(requests, answers, strict=True)):
                body, content_type, encoding = request
                if status != 200:
                    raise DemoError(f"the stand-in endpoint answered request {index} with {status}: {response.strip()}")
                moment = start + dt.timedelta(seconds=index * step)
                record = {
                    "captureData": {
                        "endpointInput": {
                            "observedContentType": content_type,
                            "mode": "INPUT",
                            "data": body,
                            "encoding": encoding,
                        },
                        "endpointOutput": {
                            "observedContentType": "application/json",
                            "mode": "OUTPUT",
                            "data": response,
                            "encoding": "JSON",
                        },
                    },
                    "eventMetadata": {
                        "eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{n.endpoint}/{window}/{index}")),
                        "inferenceId": inference_id(window, index),
                        "inferenceTime": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
                    },
                    "eventVersion": "0",
                }
                # SageMaker writes a capture file every few minutes: one per quarter hour here.
                quarter = moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0)
                name = f"{quarter:%M-%S}-000-{uuid.uuid5(uuid.NAMESPACE_URL, f'{window}/{quarter}').hex[:8]}.jsonl"
                files.setdefault(name, []).append(json.dumps(record, separators=(",", ":")))
                bar.advance(note=f"{window} window")
        seconds = time.perf_counter() - started
        for name, lines in files.items():
            (local / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        from resolver import naming

        prefix = f"{naming.capture_prefix(self.config)}{n.endpoint}/{VARIANT}/{hour}/"
        _upload_tree(self.aws.client("s3"), local, n.raw_bucket, prefix)
        item = {
            "hour": hour,
            "requests": len(sizes),
            "rows": int(sizes.sum()),
            "files": len(files),
            "prefix": f"s3://{n.raw_bucket}/{prefix}",
        }
        return item, seconds

    # -- step 6
    def drift(self) -> None:
        n, aws = self.n, self.aws
        settings = self.config.operations.drift
        pipeline = self.pipelines[self.state["values"].drift_pipeline]
        definition = pipeline.definition
        aws.client("sagemaker").create_pipeline(
            PipelineName=pipeline.name, PipelineDefinition=definition, RoleArn=pipeline.role_arn
        )
        self.say(
            f"drift-check pipeline {n.drift_pipeline} created with the MLPlatform template's definition; the demo "
            "starts it as its schedule would, the executor runs it; its job writes the MLOps/Drift metrics next to "
            "its report, and the drift-metrics function puts them to CloudWatch on the step's success event. "
            f"Scheduled runs read the last {settings.window_hours} h of capture; here each run reads one window's "
            "hour folder"
        )
        reports: dict[str, Any] = {}
        alarms: dict[str, Any] = {}
        composite = INSUFFICIENT_DATA
        for window in ("normal", "drifted"):
            since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            began = time.perf_counter()
            arn = aws.client("sagemaker").start_pipeline_execution(
                PipelineName=pipeline.name,
                PipelineExecutionDisplayName=f"{window}-window",
                PipelineExecutionDescription=f"Drift check of the {window} window's capture (started by the demo)",
                PipelineParameters=[
                    {"Name": "DataUri", "Value": self.summary["capture"][window]["prefix"]},
                    {"Name": "WindowHours", "Value": "0"},
                ],
            )["PipelineExecutionArn"]
            execution = self.runs.wait(arn)
            if execution.status != SUCCEEDED or execution.result is None:
                raise DemoError(f"the drift check of the {window} window failed: {execution.failure}")
            result = execution.result
            self._publish_drift_metrics(execution.execution_id)
            output = result.properties["DetectDrift"]["ProcessingOutputConfig"]["Outputs"]["report"]["S3Output"]
            bucket, key = _split_uri(f"{output['S3Uri'].rstrip('/')}/drift_report.json")
            report = json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
            reports[window] = report
            drifted = report["drifted_features"]
            self.say(
                f"{window} window: {report['row_count']} rows, max PSI {report['max_psi']:.3f}, drifted: "
                f"{', '.join(drifted) if drifted else 'none'} ({time.perf_counter() - began:.1f}s; "
                f"report s3://{bucket}/{key})"
            )
            states = aws.evaluate_alarms(since)
            alarms[window] = {name: state["state"] for name, state in states.items()}
            firing = sorted(name for name, state in states.items() if state["state"] == ALARM)
            self.say(
                "alarm evaluation (the demo reads the metrics back with GetMetricStatistics and sets each alarm's "
                f"state, standing in for CloudWatch): {', '.join(firing) if firing else 'all OK'}"
            )
            new_state = states[n.alarm_prefix]["state"]
            if new_state == ALARM and composite != ALARM:
                self._alarm_changed(composite)
            composite = new_state
        self.summary["drift"] = {
            window: {
                "rows": report["row_count"],
                "max_psi": report["max_psi"],
                "drifted_features": list(report["drifted_features"]),
                "features": {
                    name: {"psi": stats.get("psi"), "ks": stats.get("ks"), "drifted": bool(stats.get("drifted"))}
                    for name, stats in report["features"].items()
                },
            }
            for window, report in reports.items()
        }
        self.summary["alarms"] = alarms
        started = [
            item["result"]["pipelineExecutionArn"]
            for item in self.state.get("alarm_results", [])
            if item["result"].get("status") == "retraining_started"
        ]
        if started:
            self._retrained(started[0])
        if composite == ALARM:
            self._flap()
        self._retraining_summary()

    def _retrained(self, arn: str) -> None:
        """The retraining the drift-alert function started, as the executor runs it: the version it registers."""
        execution = self.runs.get(arn)
        parameters = ", ".join(f"{name}={value}" for name, value in sorted(execution.parameters.items()))
        self.say(
            f"the executor runs the retraining execution {execution.execution_id} on the deployed definition with "
            f"the parameters the drift-alert function passed ({parameters or 'none: the defaults'})"
        )
        # Without the curation job (--no-etl) the curated zone the deployed definition reads is empty.
        execution = self.follow(arn, "retraining", must_succeed=self.options.etl)
        if execution.status != SUCCEEDED:
            self.say(
                f"the retraining failed ({execution.failure}): with --no-etl the curated zone the deployed definition "
                "reads is empty, so no version 2 is registered"
            )
            self.act(f"retraining execution {execution.execution_id} failed", execution.failure)
            return
        version = self.registered(execution)
        self.summary["versions"].append(version)
        self.state["retrained"] = version
        self.act(
            f"version {version['version']} registered ({version['status']}) by the retraining execution "
            f"{execution.execution_id}",
            execution.description,
        )

    def _publish_drift_metrics(self, execution_id: str) -> None:
        """Deliver the DetectDrift step's success event to the drift-metrics function, as EventBridge would."""
        from pipelines_src.drift_definition import DETECT_DRIFT

        n = self.n
        event = step_succeeded_event(
            n.drift_pipeline, execution_id, DETECT_DRIFT, n.region, now=dt.datetime.now(dt.UTC)
        )
        result = self.invoke("drift_metrics", event)
        if result.get("status") != "published":
            raise DemoError(f"the drift-metrics function did not publish: {result}")
        self.say(f"event: {DETECT_DRIFT} succeeded -> drift-metrics function: {result['metrics']} metrics published")

    def _alarm_changed(self, previous: str, name: str | None = None) -> dict[str, Any]:
        """Deliver an alarm's current state (the composite drift alarm's by default) as CloudWatch's state-change
        event to the drift-alert function; record the outcome."""
        n, aws = self.n, self.aws
        name = name or n.alarm_prefix
        what = f"composite drift alarm {name}" if name == n.alarm_prefix else f"model-quality decay alarm {name}"
        alarm = aws.alarm(name)
        event = alarm_event(alarm, previous, n.region)
        result = self.invoke("drift_alert", event)
        state = event["detail"]["state"]
        self.say(
            f"event: {name} {previous} -> {state['value']} at {state['timestamp']} "
            f"-> drift-alert function: {result.get('status')}"
            + (f" ({result['reason']})" if result.get("reason") else "")
        )
        self.state.setdefault("alarm_results", []).append({"alarm": name, "state": state["value"], "result": result})
        status = result.get("status")
        if status == "retraining_started":
            self.say(f"   retraining execution {result['pipelineExecutionArn']}")
            champion = result.get("championModelData")
            self.say(
                f"   champion (the version production serves, to be beaten): {champion}"
                if champion
                else "   no champion recorded for production: the threshold alone will decide"
            )
            self.act(
                f"retraining of {n.build_pipeline} started",
                f"{what} went to ALARM ({state['reason']}); reason given: {result.get('reason')}",
            )
        elif status == "suppressed":
            self.act(
                "retraining suppressed, recorded and notified",
                f"{what} went to ALARM (reason given: {result.get('trigger')}), but {result.get('reason')}",
            )
        elif status == "champion_refused":
            self.act("retraining not started, notified: no usable champion", str(result.get("reason")))
        elif status == "recovery_notified":
            self.act("recovery notified", f"{what} returned to OK")
        return result

    def _flap(self) -> None:
        """The alarm leaves ALARM and enters it again (a later evaluation): a second trigger within the cooldown."""
        n, aws = self.n, self.aws
        self.say(
            "later: the next evaluation period has no breaching datapoint, then the next drift check breaches again "
            "(the demo sets these two states; traffic is not re-sent)"
        )
        aws.set_alarm(n.alarm_prefix, OK, "no feature alarm in ALARM in this period (emulated)")
        self._alarm_changed(ALARM)
        aws.set_alarm(n.alarm_prefix, ALARM, f"{DRIFT_FEATURE} drifted again in the next drift check (emulated)")
        self._alarm_changed(OK)

    def _retraining_summary(self) -> None:
        n, aws = self.n, self.aws
        executions = aws.client("sagemaker").list_pipeline_executions(PipelineName=n.build_pipeline)[
            "PipelineExecutionSummaries"
        ]
        results = [
            item["result"]
            for item in self.state.get("alarm_results", [])
            if item["state"] == ALARM and item["alarm"] == n.alarm_prefix
        ]
        records = aws.client("dynamodb").scan(TableName=n.idempotency_table)["Items"]
        suppressed = [item for item in records if item["id"]["S"].startswith("drift-alert#suppressed#")]
        self.collect_notifications()
        self.summary["retraining"] = {
            "alarm_results": results,
            "executions": [
                {
                    "arn": item["PipelineExecutionArn"],
                    "display_name": item.get("PipelineExecutionDisplayName"),
                    "description": item.get("PipelineExecutionDescription"),
                    "status": item.get("PipelineExecutionStatus"),
                }
                for item in executions
            ],
            "version": self.state.get("retrained"),
            "suppressed_records": [
                {"id": item["id"]["S"], "because": item.get("suppressed_because", {}).get("S")} for item in suppressed
            ],
        }
        statuses = ", ".join(
            f"{item['PipelineExecutionArn'].rsplit('/', 1)[-1]} {item['PipelineExecutionStatus']}"
            for item in executions
        )
        self.say(
            f"{n.build_pipeline} executions (ListPipelineExecutions): {statuses}; "
            f"suppressed triggers recorded: {len(suppressed)}"
        )

    # -- step 7
    def report(self) -> None:
        say = self.say
        self.finish_build()
        say("model versions:")
        comparison = self.summary.get("comparison")
        for version in self.summary.get("versions", []):
            metrics = ", ".join(f"{name} {value:.3f}" for name, value in version["metrics"].items())
            say(f"  v{version['version']}  {version['status']:<22} {metrics}")
            say(f"      started: {version['started_because']}")
            gate = version.get("gate")
            if gate:
                shown = ", ".join(f"{key} {value}" for key, value in sorted(gate.items()))
                say(f"      registry metadata (champion gate): {shown}")
            scores = version.get("scores")
            if scores and comparison:
                say(
                    f"      {comparison['metric']} on old data (normal window) {scores['old']:.3f}, "
                    f"on recent data (drifted window) {scores['recent']:.3f}"
                )
        checked = self.summary.get("quality")
        if checked:
            say(
                f"model quality ({checked['status']}): {checked['metric']} {checked['value']} against the served "
                f"version's {checked['reference']}, degradation {checked['degradation']}; labels {checked['labels']}"
            )
        drift = self.summary.get("drift", {})
        if drift:
            say("drift per feature (PSI / KS; * drifted):")
            say(f"  {'feature':<20} {'normal window':<24} drifted window")
            for feature in drift["normal"]["features"]:
                cells = []
                for window in ("normal", "drifted"):
                    stats = drift[window]["features"][feature]
                    ks = f"{stats['ks']:.3f}" if stats["ks"] is not None else "  -  "
                    psi = f"{stats['psi']:.3f}" if stats["psi"] is not None else "  -  "
                    cells.append(f"{psi} / {ks}{' *' if stats['drifted'] else ''}")
                say(f"  {feature:<20} {cells[0]:<24} {cells[1]}")
        say("automatic actions:")
        for item in self.actions:
            say(f"  - {item['action']}: {item['why']}")
        self.collect_notifications()
        say(f"notifications on {self.n.topic} (read from the subscribed queue): {len(self.notifications)}")
        for message in self.notifications:
            say(f"  - {message['subject']}")
        self.summary["actions"] = list(self.actions)
        self.summary["notifications"] = list(self.notifications)


def _stop(build: builds.Build) -> None:
    """End a build still running when the demo ends (a failed step)."""
    if build.process.poll() is None:
        build.process.terminate()
        build.process.wait(timeout=30)


def run_demo(options: Options, *, out: TextIO | None = None, tty: bool | None = None) -> dict[str, Any]:
    """Run every step; returns the summary. StepFailedError names the step that failed."""
    timeline = Timeline(out, tty=tty, total_steps=len(STEPS))
    temporary = options.workdir is None
    # Absolute: the jobs run in folders of their own, and their command lines name the job folder's files.
    workdir = (options.workdir or Path(tempfile.mkdtemp(prefix="mlops-demo-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for folder in WORK_FOLDERS:  # what an earlier run left in a reused --workdir
        shutil.rmtree(workdir / folder, ignore_errors=True)
    demo = Demo(options=options, timeline=timeline, workdir=workdir)
    failed = False
    print(
        f"mlops demo: seed {options.seed}, {options.rows} rows over {options.days} days, {options.traffic} requests "
        f"a window, {'with' if options.etl else 'without'} the curation job; working folder {workdir}",
        file=timeline.out,
    )
    try:
        _steps(demo)
    except StepFailedError:
        failed = True
        raise
    finally:
        if temporary and not options.keep and not (failed and options.debug):
            shutil.rmtree(workdir, ignore_errors=True)
        elif temporary:
            print(f"working folder kept: {workdir}", file=timeline.out)
    demo.summary.update(
        seed=options.seed,
        rows=options.rows,
        days=options.days,
        traffic=options.traffic,
        etl=options.etl,
        seconds=round(timeline.elapsed(), 1),
        workdir=str(workdir),
    )
    print(f"\ndemo finished in {timeline.elapsed():.1f}s", file=timeline.out)
    return demo.summary


def _steps(demo: Demo) -> None:
    number = 1
    try:
        demo.load_stage()
    except Exception as error:
        raise StepFailedError(number, STEPS[0], error) from error
    with moto_server() as url, environment(aws_environment(url, demo.n.region)), demo.closing:
        actions: list[Callable[[], None]] = [
            lambda: demo.setup(url),
            demo.data,
            demo.build,
            demo.approve,
            demo.deploy,
            demo.drift,
            lambda: quality.run(demo),
            demo.report,
        ]
        for number, action in enumerate(actions, start=1):
            demo.timeline.step(number, STEPS[number - 1])
            began = time.perf_counter()
            try:
                action()
            except Exception as error:
                raise StepFailedError(number, STEPS[number - 1], error) from error
            demo.summary.setdefault("step_seconds", {})[STEPS[number - 1]] = round(time.perf_counter() - began, 1)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        run_demo(options)
    except StepFailedError as failure:
        print(file=sys.stdout, flush=True)
        if options.debug:
            traceback.print_exception(failure.error, file=sys.stderr)
        print(f"demo: {failure}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130
    return 0
