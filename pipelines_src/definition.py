"""The model-build pipeline definition, built with the SageMaker Python SDK from `PipelineSettings`.

`build_definition(settings)` returns the pipeline definition JSON (the step graph, parameters and
property files of pipelines_src/README.md). It is a pure function of its settings:

* offline: no credentials, no network. The SDK only ever sees an explicit boto3 session with the
  settings' region and dummy credentials, a PipelineSession whose default bucket needs no S3 call,
  S3 URIs for all code, and (only while it builds) environment variables that keep it from
  looking elsewhere: no role validation against IAM, no config files, no instance metadata. The
  environment, the boto3 default session and the logging configuration are restored afterwards.
* deterministic: the same settings give the same bytes, in one process or across processes
  (sorted keys, compact separators, no job names, timestamps or generated ids).

Deploy-time values (role, buckets, KMS key, subnets, security groups, model package group, code
URIs) may be CloudFormation `Fn::Sub` placeholders such as ``${RoleArn}``: they pass through into
the JSON verbatim, and the definition holds no other ``${`` sequence. While the SDK builds, each
placeholder is swapped for a stand-in the SDK accepts (an IAM role ARN, an S3 URI or a plain
token) and swapped back in the JSON.

The processing steps run ``bash run_step.sh <script>.py <args...>``: the runner comes in as the
job's code input and unpacks the source tarball, another input (its folder is given to the runner
as RUN_STEP_SOURCE_DIR), before running the script. The training step runs train.py in the XGBoost
framework container's script mode, the tarball coming in as the ``code`` channel: the containers
run with network isolation, so they fetch nothing from S3 themselves. The jobs find the runner,
the tarball and the data contract by their object names, the last segment of their URIs: a URI
given as one whole placeholder must resolve to an object with the conventional name
(`RUNNER_NAME`, `SOURCE_TARBALL_NAME`, `CONTRACT_NAME`).

With ``data_quality_monitor`` (the stage's drift engine is SageMaker Model Monitor), Preprocess
also writes the training rows as the endpoint sees them, the target where Model Monitor puts the
prediction, then the request (its ``serving`` output, ``--serving-sample``),
and MonitorBaseline runs the Model Monitor analyzer image on them, with the analyzer's own
entrypoint and its settings in the environment (`ANALYZER_ENVIRONMENT`). RegisterModel then
records the analyzer's ``statistics.json`` and ``constraints.json`` as the version's
``ModelMetrics.ModelDataQuality`` and its ``constraints.json`` as
``DriftCheckBaselines.ModelDataQuality.Constraints``; the drift check's statistics stay
Preprocess's ``baseline.json``. Without it the definition holds neither.

Champion/challenger: Evaluate also scores the version serving production (the champion) on the same
test split. Its model artifact comes in as the processing input ``champion`` from the
``ChampionModelData`` parameter, which whoever starts an execution resolves
(lambdas/shared/champion.py). A processing input must name S3 data that exists, so "no champion" is
not a literal such as "none" but the parameter's default, the runner script's URI (an object every
execution reads anyway), which Evaluate is also given as ``--no-champion``: equal values mean no
champion. CheckMetric registers only when the metric meets MetricThreshold and the evaluation's
``gate.not_worse`` holds (not worse than the champion by more than ``champion_margin``), and the
version's customer metadata carries both results (evaluate.py's ``metadata``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import hashlib
import importlib
import importlib.metadata
import json
import logging
import math
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, Protocol, TypeVar

from pipelines_src.packaging import (
    MODEL_CODE_DIR,
    RUNNER_NAME,
    SERVING_PROGRAM,
    SOURCE_TARBALL_NAME,
    code_sha256,
    serving_code,
)
from resolver.naming import BUILD_ARTIFACTS_PREFIX

# Step names, as in pipelines_src/README.md.
VALIDATE_DATA: Final = "ValidateData"
CHECK_DATA_CONTRACT: Final = "CheckDataContract"
DATA_CONTRACT_VIOLATED: Final = "DataContractViolated"
PREPROCESS: Final = "Preprocess"
TRAIN: Final = "Train"
EVALUATE: Final = "Evaluate"
CHECK_METRIC: Final = "CheckMetric"
REGISTER_MODEL: Final = "RegisterModel"
METRIC_NOT_MET: Final = "MetricNotMet"
STEP_NAMES: Final = (
    VALIDATE_DATA,
    CHECK_DATA_CONTRACT,
    DATA_CONTRACT_VIOLATED,
    PREPROCESS,
    TRAIN,
    EVALUATE,
    CHECK_METRIC,
    REGISTER_MODEL,
    METRIC_NOT_MET,
)
# The steps that log to MLflow with PipelineSettings.tracking_uri: they then run without network isolation.
TRACKED_STEPS: Final = (PREPROCESS, TRAIN, EVALUATE)
# Only with PipelineSettings.data_quality_monitor: in CheckDataContract's IfSteps, after Preprocess.
MONITOR_BASELINE: Final = "MonitorBaseline"

# Pipeline parameters.
INPUT_DATA_URI: Final = "InputDataUri"
PROCESSING_INSTANCE_TYPE: Final = "ProcessingInstanceType"
TRAINING_INSTANCE_TYPE: Final = "TrainingInstanceType"
METRIC_THRESHOLD: Final = "MetricThreshold"
# The step code an execution runs (defaults: the settings' code URIs, the code deployed with the definition).
# CI passes the pushed code's URIs here; objects must keep the defaults' object names (`code_object_names`).
RUNNER_URI: Final = "RunnerUri"
SOURCE_TAR_URI: Final = "SourceTarUri"
CONTRACT_URI: Final = "ContractUri"
CODE_PARAMETERS: Final = {"runner_uri": RUNNER_URI, "source_tar_uri": SOURCE_TAR_URI, "contract_uri": CONTRACT_URI}
# The champion's model.tar.gz (its ModelDataUrl); the default (the runner's URI) means no champion.
CHAMPION_MODEL_DATA: Final = "ChampionModelData"
# The git commit of the code an execution runs: CI passes it (cicd.py), NO_COMMIT when nobody did.
GIT_COMMIT: Final = "GitCommit"
NO_COMMIT: Final = "unknown"
# Every version is registered waiting for a person: no parameter, definition or start variable can
# register one as Approved (the execution role may not either; stacks/constructs/sagemaker_access.py).
REGISTERED_APPROVAL_STATUS: Final = "PendingManualApproval"

# Property files.
VALIDATION_REPORT: Final = "ValidationReport"
VALIDATION_REPORT_FILE: Final = "validation_report.json"
EVALUATION_REPORT: Final = "EvaluationReport"
EVALUATION_REPORT_FILE: Final = "evaluation.json"
BASELINE_FILE: Final = "baseline.json"
# Preprocess's data version (preprocess.data_version), beside the baseline: the registered version's lineage.
DATA_VERSION: Final = "DataVersion"
DATA_VERSION_FILE: Final = "data_version.json"

# What the tracked jobs (Preprocess, Train, Evaluate) find in their environment (steps/tracking.py).
TRACKING_URI_VARIABLE: Final = "MLFLOW_TRACKING_URI"
EXPERIMENT_VARIABLE: Final = "MLFLOW_EXPERIMENT_NAME"
RUN_NAME_VARIABLE: Final = "MLFLOW_RUN_NAME"
EXECUTION_ARN_VARIABLE: Final = "MLOPS_PIPELINE_EXECUTION_ARN"
COMMIT_VARIABLE: Final = "MLOPS_GIT_COMMIT"
IMAGE_VARIABLE: Final = "MLOPS_IMAGE_URI"
SERVING_IMAGE_VARIABLE: Final = "MLOPS_SERVING_IMAGE_URI"

# Model Monitor data-quality baseline (data_quality_monitor): Preprocess's output of the training
# rows as endpoint requests, MonitorBaseline's output and the files the analyzer writes there.
SERVING_OUTPUT: Final = "serving"
MONITOR_OUTPUT: Final = "monitor"
MONITOR_STATISTICS_FILE: Final = "statistics.json"
MONITOR_CONSTRAINTS_FILE: Final = "constraints.json"
ANALYZER_INPUT: Final = "baseline_dataset_input"

# Framework containers.
SKLEARN_VERSION: Final = "1.2-1"
XGBOOST_VERSION: Final = "3.0-5"

# Conventional object names, assumed when a URI is one whole placeholder (RUNNER_NAME and
# SOURCE_TARBALL_NAME come from packaging). CONTRACT_NAME is what the step scripts read by default.
CONTRACT_NAME: Final = "contract.json"
# Any gzip name will do for the tarball: CDK file assets are keyed <content hash>.gz.
TARBALL_SUFFIXES: Final = (".tar.gz", ".tgz", ".gz")

GOALS: Final = ("maximize", "minimize")
# train.py prints `validation-rmse=<value>` (README); the training job records it as this metric.
TRAINING_METRIC_NAME: Final = "validation:rmse"
TRAINING_METRIC_REGEX: Final = r"validation-rmse=([-+0-9.eE]+)"

# Paths inside the containers.
_PROCESSING_INPUT = "/opt/ml/processing/input"
_PROCESSING_OUTPUT = "/opt/ml/processing/output"
_CODE_DIR = f"{_PROCESSING_INPUT}/code"
_SOURCE_DIR = f"{_PROCESSING_INPUT}/source"
_CONTRACT_DIR = f"{_PROCESSING_INPUT}/contract"
_DATA_DIR = f"{_PROCESSING_INPUT}/data"
_MODEL_DIR = f"{_PROCESSING_INPUT}/model"
_TEST_DIR = f"{_PROCESSING_INPUT}/test"
_CHAMPION_DIR = f"{_PROCESSING_INPUT}/champion"
_TRAINING_CODE_CHANNEL = "code"
_TRAINING_CODE_DIR = f"/opt/ml/input/data/{_TRAINING_CODE_CHANNEL}"
_ANALYZER_DATASET_DIR = f"{_PROCESSING_INPUT}/{ANALYZER_INPUT}"

# What the Model Monitor analyzer reads from its environment: a CSV dataset with a header row,
# where to find it and where to write statistics.json and constraints.json; no CloudWatch metrics.
ANALYZER_ENVIRONMENT: Final[Mapping[str, str]] = {
    "dataset_format": json.dumps({"csv": {"header": True, "output_columns_position": "START"}}),
    "dataset_source": _ANALYZER_DATASET_DIR,
    "output_path": _PROCESSING_OUTPUT,
    "publish_cloudwatch_metrics": "Disabled",
}

HyperparameterValue = int | float | str

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# Fn::Sub variables: parameters and resources (logical ids), Resource.Attribute, AWS::Pseudo.
_PLACEHOLDER_NAME = re.compile(r"(AWS::[A-Za-z]+|[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9.]*)?)")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9]+")
_METRIC = re.compile(r"[a-z][a-z0-9_]*")
_HYPERPARAMETER = re.compile(r"[a-z][a-z0-9_-]*")
_PIPELINE_NAME = re.compile(r"[A-Za-z0-9](-*[A-Za-z0-9]){0,255}")
_TRACKING_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:\d*:(mlflow-tracking-server|mlflow-app)/[\w-]+")
_TRACKING_URL = re.compile(r"https?://[^\s/?#]+(/[^\s]*)?")
_KEY_PREFIX = re.compile(r"[\w!.*'()-]+(/[\w!.*'()-]+)*")

# Stand-ins: tokens the SDK accepts anywhere (bucket names, ids, ARNs), never found in real values.
_TOKEN_MARK = "zzcfnsub"
_STAND_IN_ROLE = "arn:aws:iam::000000000000:role/{token}"
_STAND_IN_S3 = "s3://{token}"


class SettingsError(ValueError):
    """A settings field (`PipelineSettings`, `DriftSettings`) has a value the pipeline cannot be built with."""


_OWNER: Final = "PipelineSettings"


def _fail(name: str, value: object, reason: str, owner: str = _OWNER) -> SettingsError:
    return SettingsError(f"{owner}.{name}: {value!r} {reason}")


def _placeholder_names(value: str, name: str, owner: str = _OWNER) -> list[str]:
    """The Fn::Sub placeholders in one setting; a malformed or escaped `${` is an error."""
    names = []
    for match in _PLACEHOLDER.finditer(value):
        if not _PLACEHOLDER_NAME.fullmatch(match.group(1)):
            raise _fail(name, value, f"has {match.group(0)!r}, which is not a CloudFormation Fn::Sub variable", owner)
        names.append(match.group(1))
    if value.count("${") != len(names):
        raise _fail(name, value, "has a '${' that does not start a ${Name} placeholder", owner)
    return names


def _is_whole_placeholder(value: str) -> bool:
    return _PLACEHOLDER.fullmatch(value) is not None


@dataclass(frozen=True)
class PipelineSettings:
    """Everything the definition depends on. String fields may hold `${Name}` placeholders.

    Fields that name AWS resources (role_arn, artifacts_bucket, kms_key_arn, subnet_ids,
    security_group_ids, model_package_group_name, pipeline_name) and the S3 URIs may be or
    contain placeholders; region, metric, goal, instance types and hyperparameters may not.
    S3 URIs are either ``s3://bucket/key`` (any part a placeholder) or one whole placeholder.
    """

    pipeline_name: str
    region: str
    role_arn: str
    # Step outputs go to s3://<artifacts_bucket>/<artifacts_prefix>/<pipeline>/<execution id>/<step>/<output>.
    artifacts_bucket: str
    # Default of the InputDataUri parameter: the raw zone prefix of the dataset.
    input_data_uri: str
    # The dataset's data contract (JSON), given to ValidateData and Preprocess.
    contract_uri: str
    # tar.gz of pipelines_src/steps (packaging.build_source_tarball) and the runner run_step.sh.
    source_tar_uri: str
    runner_uri: str
    model_package_group_name: str
    # Encrypts the job volumes, the job outputs and the model artifacts.
    kms_key_arn: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    # Model quality gate: regression_metrics.<metric>.value of evaluation.json against the threshold.
    metric: str
    goal: str
    threshold: float
    artifacts_prefix: str = BUILD_ARTIFACTS_PREFIX
    # How much worse (in the metric's unit) than the champion a new version may be and still register.
    champion_margin: float = 0.0
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    # Passed to train.py as --<name> <value> (README: --max-depth, --eta, --num-round, ...); train.py's
    # own defaults apply to the ones not given.
    hyperparameters: Mapping[str, HyperparameterValue] = field(default_factory=dict, hash=False)
    volume_size_gb: int = 30
    max_runtime_seconds: int = 3600
    # The stage's drift engine is SageMaker Model Monitor: Preprocess also writes the training rows as
    # endpoint requests, MonitorBaseline runs the Model Monitor analyzer on them and RegisterModel
    # records its statistics and constraints (module doc). Such a pipeline runs only in SageMaker.
    data_quality_monitor: bool = False
    # Where Preprocess, Train and Evaluate log the execution's MLflow run: a SageMaker MLflow tracking
    # server or MLflow App ARN (or one placeholder for it), an http(s) URL (local runs), or None (no tracking).
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        _check_tracking_uri(self.tracking_uri)
        if not isinstance(self.data_quality_monitor, bool):
            raise _fail("data_quality_monitor", self.data_quality_monitor, "must be True or False")
        _check_sequences(self, ("subnet_ids", "security_group_ids"))
        _check_strings(
            self,
            fixed=("region", "metric", "goal", "processing_instance_type", "training_instance_type"),
            required=("model_package_group_name", "kms_key_arn"),
            uris=("input_data_uri", "contract_uri", "source_tar_uri", "runner_uri"),
        )
        self._check_quality_gate()
        _check_jobs(self, ("processing_instance_type", "training_instance_type"))
        hyperparameters = dict(sorted(self.hyperparameters.items()))
        for key, value in hyperparameters.items():
            if not isinstance(key, str) or not _HYPERPARAMETER.fullmatch(key) or key.startswith("sagemaker"):
                raise _fail(
                    "hyperparameters", key, "is not a hyperparameter name (lowercase, digits, '-', '_'; not sagemaker*)"
                )
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise _fail("hyperparameters", {key: value}, "must map to an int, a float or a string")
            if isinstance(value, float) and not math.isfinite(value):
                raise _fail("hyperparameters", {key: value}, "must be finite")
            if isinstance(value, str) and "${" in value:
                raise _fail("hyperparameters", {key: value}, "may not hold a placeholder")
        object.__setattr__(self, "hyperparameters", hyperparameters)  # a sorted copy, read-only by its type

    def _check_quality_gate(self) -> None:
        if not _METRIC.fullmatch(self.metric):
            raise _fail("metric", self.metric, "is not a metric name of evaluation.json (e.g. 'rmse')")
        if self.goal not in GOALS:
            raise _fail("goal", self.goal, f"is not one of {', '.join(GOALS)}")
        threshold: object = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
            raise _fail("threshold", threshold, "must be a finite number")
        object.__setattr__(self, "threshold", float(threshold))
        margin: object = self.champion_margin
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not math.isfinite(margin) or margin < 0:
            raise _fail("champion_margin", margin, "must be a finite number >= 0")
        object.__setattr__(self, "champion_margin", float(margin))

    def placeholders(self) -> list[str]:
        """The names of the `${Name}` placeholders these settings hold, sorted."""
        return _settings_placeholders(self)


# --- Validation shared by the settings classes ------------------------------------------------


def _check_tracking_uri(uri: object) -> None:
    if uri is None:
        return
    if not isinstance(uri, str) or not uri:
        raise _fail("tracking_uri", uri, "must be None or a non-empty string")
    if "${" in uri:
        if not _is_whole_placeholder(uri):
            raise _fail("tracking_uri", uri, "may be one ${Name} placeholder, not a string containing one")
        return
    # Deploy-time values reach here resolved by other tools (published values, test stand-ins): only what is
    # certainly wrong fails: spaces, another URL scheme, an ARN of anything but a SageMaker MLflow resource.
    if (
        re.search(r"\s", uri)
        or ("://" in uri and not _TRACKING_URL.fullmatch(uri))
        or (uri.startswith("arn:") and not _TRACKING_ARN.fullmatch(uri))
    ):
        raise _fail(
            "tracking_uri",
            uri,
            "is neither a SageMaker MLflow tracking server or App ARN "
            "(arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>) nor an http(s):// URL",
        )


def _owner(settings: object) -> str:
    return type(settings).__name__


def _check_sequences(settings: object, names: tuple[str, ...]) -> None:
    """Each named field: a non-empty sequence of non-empty strings, stored as a tuple."""
    for name in names:
        values = getattr(settings, name)
        if isinstance(values, str) or not all(isinstance(item, str) and item for item in values) or not values:
            raise _fail(name, values, "must be a non-empty sequence of non-empty strings", _owner(settings))
        object.__setattr__(settings, name, tuple(values))


def _check_strings(settings: Any, *, fixed: tuple[str, ...], required: tuple[str, ...], uris: tuple[str, ...]) -> None:
    """Placeholders, names and URIs of a settings dataclass with the fields every pipeline has.

    ``fixed``: fields that may not hold a placeholder; ``required``: fields that may not be empty;
    ``uris``: S3 URIs (``s3://bucket/key``, any part a placeholder, or one whole placeholder).
    """
    owner = _owner(settings)
    for item in dataclasses.fields(settings):
        value = getattr(settings, item.name)
        for text in value if isinstance(value, tuple) else (value,):
            if isinstance(text, str):
                if _TOKEN_MARK in text:
                    raise _fail(item.name, text, f"may not contain {_TOKEN_MARK!r}", owner)
                _placeholder_names(text, item.name, owner)
    for name in fixed:
        if "${" in getattr(settings, name):
            raise _fail(
                name, getattr(settings, name), "may not hold a placeholder: the definition depends on it", owner
            )
    if not _REGION.fullmatch(settings.region):
        raise _fail("region", settings.region, "is not an AWS region name", owner)
    literal = {  # fields checked only when they hold no placeholder
        "role_arn": (_ROLE_ARN, "an IAM role ARN"),
        "artifacts_bucket": (_BUCKET, "an S3 bucket name"),
        "pipeline_name": (_PIPELINE_NAME, "a SageMaker pipeline name"),
    }
    for name, (pattern, what) in literal.items():
        value = getattr(settings, name)
        if "${" not in value and not pattern.fullmatch(value):
            raise _fail(name, value, f"is not {what}", owner)
    prefix = settings.artifacts_prefix
    if prefix and not _KEY_PREFIX.fullmatch(_PLACEHOLDER.sub("x", prefix)):
        raise _fail("artifacts_prefix", prefix, "is not an S3 key prefix (no leading, trailing or double '/')", owner)
    for name in required:
        if not getattr(settings, name):
            raise _fail(name, getattr(settings, name), "must not be empty", owner)
    for name in uris:
        value = getattr(settings, name)
        if not _is_whole_placeholder(value) and not re.fullmatch(r"s3://[^/]+/.+", value):
            raise _fail(name, value, "is neither an s3://bucket/key URI nor one ${Name} placeholder", owner)
    _object_names(settings)


def _check_jobs(settings: object, instance_types: tuple[str, ...]) -> None:
    owner = _owner(settings)
    for name in instance_types:
        if not _INSTANCE_TYPE.fullmatch(getattr(settings, name)):
            raise _fail(name, getattr(settings, name), "is not a SageMaker instance type (e.g. 'ml.m5.xlarge')", owner)
    for name, low, high in (("volume_size_gb", 1, 16384), ("max_runtime_seconds", 60, 5 * 24 * 3600)):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _fail(name, value, f"must be an integer from {low} to {high}", owner)


def _settings_placeholders(settings: Any) -> list[str]:
    """The names of the `${Name}` placeholders a settings dataclass holds, sorted."""
    names: set[str] = set()
    for item in dataclasses.fields(settings):
        value = getattr(settings, item.name)
        for text in value if isinstance(value, tuple) else (value,):
            if isinstance(text, str):
                names.update(_placeholder_names(text, item.name, _owner(settings)))
    return sorted(names)


def _object_name(uri: str, name: str, conventional: str, suffix: str | tuple[str, ...], owner: str = _OWNER) -> str:
    """The object name a job finds a file by: the URI's last segment, or the conventional name."""
    if _is_whole_placeholder(uri):
        return conventional
    last = uri.rsplit("/", 1)[-1]
    suffixes = (suffix,) if isinstance(suffix, str) else suffix
    if not last or "${" in last or not last.endswith(suffixes) or last in suffixes:
        raise _fail(
            name,
            uri,
            f"must end with a literal object name ending in "
            f"{' or '.join(repr(item) for item in suffixes)} (e.g. {conventional!r})",
            owner,
        )
    if not re.fullmatch(r"[\w.+=@-]+", last):
        raise _fail(name, uri, "has an object name with characters other than letters, digits and . + = @ - _", owner)
    return last


def code_object_names(settings: PipelineSettings) -> dict[str, str]:
    """The object names the jobs find the code by, by `CODE_PARAMETERS` field: a URI passed for a code
    parameter must end with the same name as its default (a content-addressed folder may change)."""
    names = _object_names(settings)
    return {"runner_uri": names.runner, "source_tar_uri": names.source, "contract_uri": names.contract}


def list_placeholders(definition: str) -> list[str]:
    """The names of the `${Name}` placeholders a definition uses (what Fn::Sub must be given), sorted."""
    return sorted({match.group(1) for match in _PLACEHOLDER.finditer(definition)})


def build_definition(settings: PipelineSettings) -> str:
    """The pipeline definition JSON for these settings: offline, deterministic, placeholders verbatim.

    Raises SettingsError for settings the SDK rejects (e.g. a region without the framework images).
    """
    return _build(settings, _compile)


class _Settings(Protocol):
    """What the shared build machinery reads from a settings dataclass."""

    @property
    def region(self) -> str: ...
    @property
    def artifacts_bucket(self) -> str: ...
    @property
    def runner_uri(self) -> str: ...
    @property
    def source_tar_uri(self) -> str: ...
    @property
    def contract_uri(self) -> str: ...
    def placeholders(self) -> list[str]: ...


_S = TypeVar("_S", bound=_Settings)
_T = TypeVar("_T")


# Synth keeps built definitions by a hash of everything they are built from (cached_build,
# definition_key): a synth whose inputs did not change reads the definition back and does not
# import the SageMaker SDK. build_definition itself always builds.
# MLOPS_DEFINITION_CACHE names the folder; "off" builds every time.
CACHE_VARIABLE: Final = "MLOPS_DEFINITION_CACHE"
_CACHE_FORMAT: Final = 1
_SOURCE_ROOT = Path(__file__).resolve().parent  # pipelines_src: this module, the steps, packaging, contracts
_DEFAULT_CACHE = _SOURCE_ROOT.parent / ".build" / "definitions"
_SOURCE_SUFFIXES: Final = (".py", ".sh", ".json", ".txt", ".toml", ".cfg")


def _installed() -> list[str]:
    """name==version of every installed distribution (the SDK, boto3, botocore and all they use)."""
    found = {f"{(dist.metadata['Name'] or '').lower()}=={dist.version}" for dist in importlib.metadata.distributions()}
    return sorted(found)


def _sources(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.suffix in _SOURCE_SUFFIXES and "__pycache__" not in path.parts
    )


def definition_key(settings: object, build: Callable[..., str]) -> str:
    """SHA-256 of every input of a build: the settings (their repr names the class and every field), the
    build function, every source file under pipelines_src (path and bytes), the installed distributions
    and the Python version. Any change to one of them gives another key."""
    digest = hashlib.sha256()

    def add(text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)

    add(f"format {_CACHE_FORMAT}")
    add(f"{build.__module__}.{build.__qualname__}")
    add(repr(settings))
    for path in _sources(_SOURCE_ROOT):
        add(path.relative_to(_SOURCE_ROOT).as_posix())
        add(path.read_bytes())
    for line in _installed():
        add(line)
    add(sys.version)
    return digest.hexdigest()


def _cache_dir() -> Path | None:
    value = os.environ.get(CACHE_VARIABLE, "")
    if value.strip().lower() == "off":
        return None
    return Path(value) if value else _DEFAULT_CACHE


def cached_build(settings: _T, build: Callable[[_T], str]) -> str:
    """``build(settings)``, from the cache when built before from the same inputs (``definition_key``)."""
    folder = _cache_dir()
    if folder is None:
        return build(settings)
    path = folder / f"{definition_key(settings, build)}.json"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    text = build(settings)
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)  # whole or not at all, also with concurrent synths
    return text


def _build(settings: _S, compile_: Callable[[_S, _ObjectNames], str]) -> str:
    """``compile_`` run on the settings' stand-ins, offline; its JSON normalised, placeholders restored."""
    stand_ins = _StandIns(settings)
    names = _object_names(settings)
    with _sdk_environment(settings.region):
        compiled = compile_(stand_ins.settings, names)
    document = json.loads(compiled)
    _drop_job_tags(document["Steps"])
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return stand_ins.restore(text, expected=settings.placeholders())


@dataclass(frozen=True)
class _ObjectNames:
    runner: str
    source: str
    contract: str


def _object_names(settings: _Settings) -> _ObjectNames:
    """The names the jobs find the runner, the source tarball and the contract by."""
    owner = _owner(settings)
    return _ObjectNames(
        runner=_object_name(settings.runner_uri, "runner_uri", RUNNER_NAME, ".sh", owner),
        source=_object_name(settings.source_tar_uri, "source_tar_uri", SOURCE_TARBALL_NAME, TARBALL_SUFFIXES, owner),
        contract=_object_name(settings.contract_uri, "contract_uri", CONTRACT_NAME, ".json", owner),
    )


class _StandIns(Generic[_S]):
    """Swaps the settings' placeholders for values the SDK accepts, and back in the built JSON."""

    def __init__(self, settings: _S) -> None:
        self._tokens = {name: f"{_TOKEN_MARK}{index:03d}x" for index, name in enumerate(settings.placeholders())}
        self._whole: dict[str, str] = {}  # stand-in -> original, for values that are one placeholder
        changes: dict[str, object] = {}
        for item in dataclasses.fields(settings):  # type: ignore[arg-type]
            value = getattr(settings, item.name)
            if isinstance(value, str):
                changes[item.name] = self._stand_in(item.name, value)
            elif isinstance(value, tuple):
                changes[item.name] = tuple(self._stand_in(item.name, text) for text in value)
        # A copy without validation: the stand-ins are deliberately not valid settings values.
        self.settings = copy.copy(settings)
        for name, value in changes.items():
            object.__setattr__(self.settings, name, value)

    def _stand_in(self, name: str, value: str) -> str:
        if "${" not in value:
            return value
        if _is_whole_placeholder(value) and (name == "role_arn" or name.endswith("_uri")):
            token = self._tokens[value[2:-1]]
            stand_in = (_STAND_IN_ROLE if name == "role_arn" else _STAND_IN_S3).format(token=token)
            self._whole[stand_in] = value
            return stand_in
        return _PLACEHOLDER.sub(lambda match: self._tokens[match.group(1)], value)

    def restore(self, text: str, expected: list[str]) -> str:
        for stand_in, original in sorted(self._whole.items(), key=lambda item: (-len(item[0]), item[0])):
            text = text.replace(json.dumps(stand_in), json.dumps(original))
            if stand_in in text:
                raise RuntimeError(f"the SDK embedded {original} in a longer string: it cannot be substituted")
        for name, token in sorted(self._tokens.items(), key=lambda item: (-len(item[1]), item[1])):
            text = text.replace(token, "${" + name + "}")
        if _TOKEN_MARK in text:
            raise RuntimeError("the SDK altered a placeholder's stand-in: it cannot be restored")
        used = list_placeholders(text)
        if text.count("${") != len(_PLACEHOLDER.findall(text)) or not set(used) <= set(expected):
            raise RuntimeError(f"the definition holds '${{' sequences other than the settings' placeholders: {used}")
        return text


def _drop_job_tags(steps: list[dict[str, Any]]) -> None:
    """Remove job tags: the SDK adds SageMaker Studio project tags found from the working directory."""
    for step in steps:
        arguments = step.get("Arguments")
        if isinstance(arguments, dict):
            arguments.pop("Tags", None)
            for branch in ("IfSteps", "ElseSteps"):
                _drop_job_tags(arguments.get(branch, []))


# --- The SDK, offline -------------------------------------------------------------------------

_BUILD_LOCK = threading.Lock()
_DUMMY_KEY = "offline-pipeline-definition"
_ENV_UNSET = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "SAGEMAKER_ENABLE_RICH_LOGGING",
)


def _environment(region: str) -> dict[str, str]:
    """What the SDK reads from the environment while it builds: region, and nothing to look up."""
    return {
        "AWS_DEFAULT_REGION": region,  # the SDK creates boto3 clients when it is imported
        "AWS_REGION": region,
        "AWS_ACCESS_KEY_ID": _DUMMY_KEY,  # so that no credential provider goes looking
        "AWS_SECRET_ACCESS_KEY": _DUMMY_KEY,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_VALIDATE_ROLE": "false",  # else the SDK simulates the role's policies with IAM
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": os.devnull,  # no SDK defaults from config files
        "SAGEMAKER_USER_CONFIG_OVERRIDE": os.devnull,
    }


@contextlib.contextmanager
def _sdk_environment(region: str) -> Iterator[None]:
    """Run the SDK offline; restore the environment, boto3's default session and logging after."""
    import boto3

    with _BUILD_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        overrides = _environment(region)
        saved_env = {name: os.environ.get(name) for name in (*overrides, *_ENV_UNSET)}
        saved_default_session = boto3.DEFAULT_SESSION
        root = logging.getLogger()
        saved_root = (root.level, list(root.handlers))
        saved_loggers: dict[logging.Logger, bool] = {}
        try:
            for name in _ENV_UNSET:
                os.environ.pop(name, None)
            os.environ.update(overrides)
            _import_sdk()
            root.setLevel(saved_root[0])  # importing the SDK calls logging.basicConfig
            root.handlers[:] = saved_root[1]
            # The SDK's notes on what it fills in, and botocore finding the dummy credentials: noise here.
            quiet = [logging.getLogger("botocore.credentials")]
            quiet += [
                logger
                for name, logger in logging.root.manager.loggerDict.items()
                if isinstance(logger, logging.Logger) and name.split(".")[0].startswith("sagemaker")
            ]
            for logger in quiet:
                saved_loggers[logger] = logger.disabled
                logger.disabled = True
            yield
        finally:
            for logger, disabled in saved_loggers.items():
                logger.disabled = disabled
            root.setLevel(saved_root[0])
            root.handlers[:] = saved_root[1]
            boto3.DEFAULT_SESSION = saved_default_session
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


_SDK_MODULES = ("sagemaker.core.workflow", "sagemaker.mlops.workflow.pipeline", "sagemaker.serve", "sagemaker.train")


def _import_sdk() -> None:
    """Import the SDK here, the first time: importing it creates boto3 clients (region needed)."""
    if all(module in sys.modules for module in _SDK_MODULES):
        return
    disabled = logging.root.manager.disable
    logging.disable(logging.INFO)  # its import logs what it does not find (config files, credentials)
    try:
        for module in _SDK_MODULES:
            importlib.import_module(module)
    finally:
        logging.disable(disabled)


@functools.cache
def _session_class() -> type:
    from sagemaker.core.workflow.pipeline_context import PipelineSession  # type: ignore[import-untyped]

    class OfflinePipelineSession(PipelineSession):  # type: ignore[misc]
        """A PipelineSession whose default bucket is given, not looked up or created in S3."""

        def default_bucket(self) -> str:
            return str(self._default_bucket_name_override)

    return OfflinePipelineSession


def _session(settings: _Settings) -> Any:
    import boto3
    import botocore.session

    core = botocore.session.Session()
    core.set_config_variable("config_file", os.devnull)
    core.set_config_variable("credentials_file", os.devnull)
    boto_session = boto3.Session(
        aws_access_key_id=_DUMMY_KEY,
        aws_secret_access_key=_DUMMY_KEY,
        region_name=settings.region,
        botocore_session=core,
    )
    # The config files it would read are os.devnull while building (_environment).
    session = _session_class()(boto_session=boto_session, default_bucket=settings.artifacts_bucket)
    # No SDK defaults at all: the SDK validates its config against its JSON schema at every look-up
    # (about 0.2 s each, dozens per build) unless the config is empty.
    session.sagemaker_config = {}
    return session


# The only SDK defaults used: the opt-out of telemetry, read by the SDK calls that would send it.
_TELEMETRY_OFF: Final = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


@contextlib.contextmanager
def _telemetry_off(session: Any) -> Iterator[None]:
    """Around an SDK call that reports telemetry (over the network) unless the config opts out."""
    session.sagemaker_config = copy.deepcopy(_TELEMETRY_OFF)
    try:
        yield
    finally:
        session.sagemaker_config = {}


def _image(framework: str, version: str, region: str, scope: str, owner: str = _OWNER) -> str:
    from sagemaker.core import image_uris  # type: ignore[import-untyped]

    try:
        return str(image_uris.retrieve(framework, region=region, version=version, py_version="py3", image_scope=scope))
    except ValueError as error:
        raise _fail("region", region, f"has no SageMaker {framework} {version} image: {error}", owner) from error


def _analyzer_image(region: str, owner: str = _OWNER) -> str:
    """The SageMaker Model Monitor analyzer image of the region (it computes data-quality baselines)."""
    from sagemaker.core import image_uris

    try:
        return str(image_uris.retrieve("model-monitor", region=region))
    except ValueError as error:
        raise _fail("region", region, f"has no SageMaker Model Monitor analyzer image: {error}", owner) from error


# --- Processing jobs, shared by the pipelines ---------------------------------------------------


class _JobSettings(_Settings, Protocol):
    """What the processing-job helpers read from a settings dataclass."""

    @property
    def pipeline_name(self) -> str: ...
    @property
    def role_arn(self) -> str: ...
    @property
    def artifacts_prefix(self) -> str: ...
    @property
    def kms_key_arn(self) -> str: ...
    @property
    def subnet_ids(self) -> tuple[str, ...]: ...
    @property
    def security_group_ids(self) -> tuple[str, ...]: ...
    @property
    def volume_size_gb(self) -> int: ...
    @property
    def max_runtime_seconds(self) -> int: ...


def _location(s: _JobSettings, step: str, *path: str) -> Any:
    """s3://<bucket>/<prefix>/<pipeline>/<execution id>/<step>/<path>: one folder per execution."""
    from sagemaker.core.workflow import ExecutionVariables, Join  # type: ignore[import-untyped]

    prefix = [s.artifacts_prefix] if s.artifacts_prefix else []
    return Join(
        on="/",
        values=[
            "s3:/",
            s.artifacts_bucket,
            *prefix,
            s.pipeline_name,
            ExecutionVariables.PIPELINE_EXECUTION_ID,
            step,
            *path,
        ],
    )


def _processing_input(name: str, uri: Any, local_path: str) -> Any:
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input  # type: ignore[import-untyped]

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri,
            local_path=local_path,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def _processing_output(s: _JobSettings, step: str, name: str, local_path: str) -> Any:
    """The output ``name`` of ``step``, uploaded at the end of the job to its folder of the execution."""
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(s3_uri=_location(s, step, name), local_path=local_path, s3_upload_mode="EndOfJob"),
    )


def _code_inputs(s: _JobSettings, *, runner: Any = None, source: Any = None) -> list[Any]:
    """The runner (the job's entrypoint) and the source tarball it unpacks (default: the settings' URIs)."""
    return [
        _processing_input("code", s.runner_uri if runner is None else runner, _CODE_DIR),
        _processing_input("source", s.source_tar_uri if source is None else source, _SOURCE_DIR),
    ]


def _processor(
    s: _JobSettings,
    session: Any,
    names: _ObjectNames,
    *,
    image: str,
    job: str,
    instance_type: Any,
    isolated: bool,
    env: Mapping[str, Any] | None = None,
) -> Any:
    """A processing job that runs ``bash run_step.sh <script> <args>``, in the VPC, encrypted with the KMS key
    (``env``: more of its environment)."""
    return _image_processor(
        s,
        session,
        image=image,
        job=job,
        instance_type=instance_type,
        isolated=isolated,
        entrypoint=["bash", f"{_CODE_DIR}/{names.runner}"],
        env={"RUN_STEP_SOURCE_DIR": _SOURCE_DIR, **(env or {})},  # where run_step.sh finds the tarball
    )


def _image_processor(
    s: _JobSettings,
    session: Any,
    *,
    image: str,
    job: str,
    instance_type: Any,
    isolated: bool,
    entrypoint: list[str] | None,
    env: Mapping[str, Any],
) -> Any:
    """A processing job running ``image`` (with ``entrypoint``, else the image's own), in the VPC, encrypted
    with the KMS key."""
    from sagemaker.core.network import NetworkConfig  # type: ignore[import-untyped]
    from sagemaker.core.processing import Processor  # type: ignore[import-untyped]

    return Processor(
        role=s.role_arn,
        image_uri=image,
        instance_count=1,
        instance_type=instance_type,
        entrypoint=entrypoint,
        volume_size_in_gb=s.volume_size_gb,
        volume_kms_key=s.kms_key_arn,
        output_kms_key=s.kms_key_arn,
        max_runtime_in_seconds=s.max_runtime_seconds,
        base_job_name=job,
        sagemaker_session=session,
        network_config=NetworkConfig(
            enable_network_isolation=isolated,
            security_group_ids=list(s.security_group_ids),
            subnets=list(s.subnet_ids),
            encrypt_inter_container_traffic=True,
        ),
        env=dict(env),
    )


# The model package's metadata key holding the sha256 of the inference code its model carries.
SERVING_CODE_SHA256_KEY: Final = "serving_code_sha256"


def serving_environment(settings: PipelineSettings) -> dict[str, str]:
    """The registered model's container environment (``container_environment`` in the pipeline's region)."""
    return container_environment(settings.region)


def container_environment(region: str) -> dict[str, str]:
    """The XGBoost container's script mode runs inference.py (`SERVING_PROGRAM`) from the model itself:
    train.py puts the serving code into the model folder's code/, so ``model.tar.gz`` carries it and
    the container finds it at `MODEL_CODE_DIR`, copies it to /opt/ml/code and pip-installs it. An
    endpoint with network isolation reaches no package index: ``PIP_NO_BUILD_ISOLATION=0`` (pip reads
    "0" as "build isolation off") builds with the image's own setuptools where pip would otherwise
    fetch setuptools into an isolated build environment (pip >= 25.3 always does)."""
    return {
        "SAGEMAKER_PROGRAM": SERVING_PROGRAM,
        "SAGEMAKER_SUBMIT_DIRECTORY": MODEL_CODE_DIR,
        "PIP_NO_BUILD_ISOLATION": "0",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": str(logging.INFO),
        "SAGEMAKER_REGION": region,
    }


def champion_metadata_keys(metric: str) -> tuple[str, ...]:
    """The customer metadata keys that carry the new model's and the champion's results (evaluate.py's
    ``metadata``): ``challenger_<metric>``, ``champion_<metric>``, ``champion``, ``champion_model_data``,
    ``champion_margin``."""
    return (f"challenger_{metric}", f"champion_{metric}", "champion", "champion_model_data", "champion_margin")


# The registered version's lineage in its customer metadata (lineage_metadata_keys). Values are what
# CreateModelPackage's CustomerMetadataProperties allow (botocore's CustomerMetadataMap: at most 50 entries,
# keys up to 128 and values up to 256 characters of letters, digits, spaces and _.:/=+-@).
MLFLOW_RUN_KEY: Final = "mlflow_run_id"
MLFLOW_EXPERIMENT_KEY: Final = "mlflow_experiment"
GIT_COMMIT_KEY: Final = "git_commit"
DATA_MANIFEST_KEY: Final = "data_manifest_sha256"
DATA_PARTITIONS_KEY: Final = "data_partitions"
EXECUTION_ARN_KEY: Final = "pipeline_execution_arn"
EVALUATION_KEY_PREFIX: Final = "evaluation_"
EVALUATION_METRIC_KEYS: Final = ("rmse", "mae", "r2", "mse")


def lineage_metadata_keys() -> tuple[str, ...]:
    """The customer metadata keys of a registered version's lineage: its MLflow run (``none`` without
    tracking) and experiment, the git commit (``unknown`` unless CI passed it), the data version (the
    sha256 of the manifest of the files read, and ``<count>:<first>..<last>`` of their partitions), the
    pipeline execution ARN and the evaluation's metrics."""
    return (
        MLFLOW_RUN_KEY,
        MLFLOW_EXPERIMENT_KEY,
        GIT_COMMIT_KEY,
        DATA_MANIFEST_KEY,
        DATA_PARTITIONS_KEY,
        EXECUTION_ARN_KEY,
        *(f"{EVALUATION_KEY_PREFIX}{name}" for name in EVALUATION_METRIC_KEYS),
    )


def serving_metadata() -> dict[str, str]:
    """The model package's customer metadata: the sha256 of the serving code (``packaging.code_sha256``
    of what train.py copies into code/, from the same checkout as the steps tarball)."""
    return {SERVING_CODE_SHA256_KEY: code_sha256(serving_code())}


def _compile(s: PipelineSettings, names: _ObjectNames) -> str:
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines  # type: ignore[import-untyped]
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics  # type: ignore[import-untyped]
    from sagemaker.core.shapes import (
        Channel,
        DataSource,
        MetricDefinition,
        S3DataSource,
    )
    from sagemaker.core.training.configs import (  # type: ignore[import-untyped]
        Compute,
        Networking,
        OutputDataConfig,
        StoppingCondition,
    )
    from sagemaker.core.workflow import (
        ExecutionVariables,
        Join,
        JsonGet,
        ParameterFloat,
        ParameterString,
        PropertyFile,
    )
    from sagemaker.core.workflow.conditions import (  # type: ignore[import-untyped]
        ConditionEquals,
        ConditionGreaterThanOrEqualTo,
        ConditionLessThanOrEqualTo,
    )
    from sagemaker.mlops.workflow.condition_step import ConditionStep  # type: ignore[import-untyped]
    from sagemaker.mlops.workflow.fail_step import FailStep  # type: ignore[import-untyped]
    from sagemaker.mlops.workflow.model_step import ModelStep  # type: ignore[import-untyped]
    from sagemaker.mlops.workflow.pipeline import Pipeline  # type: ignore[import-untyped]
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep  # type: ignore[import-untyped]
    from sagemaker.serve import ModelBuilder  # type: ignore[import-untyped]
    from sagemaker.train import ModelTrainer  # type: ignore[import-untyped]

    session = _session(s)
    monitor = s.data_quality_monitor
    sklearn_image = _image("sklearn", SKLEARN_VERSION, s.region, "training")
    xgboost_image = _image("xgboost", XGBOOST_VERSION, s.region, "training")
    xgboost_inference_image = _image("xgboost", XGBOOST_VERSION, s.region, "inference")

    input_data = ParameterString(name=INPUT_DATA_URI, default_value=s.input_data_uri)
    processing_type = ParameterString(name=PROCESSING_INSTANCE_TYPE, default_value=s.processing_instance_type)
    training_type = ParameterString(name=TRAINING_INSTANCE_TYPE, default_value=s.training_instance_type)
    threshold = ParameterFloat(name=METRIC_THRESHOLD, default_value=s.threshold)
    runner_code = ParameterString(name=RUNNER_URI, default_value=s.runner_uri)
    source_code = ParameterString(name=SOURCE_TAR_URI, default_value=s.source_tar_uri)
    contract_code = ParameterString(name=CONTRACT_URI, default_value=s.contract_uri)
    champion_model_data = ParameterString(name=CHAMPION_MODEL_DATA, default_value=s.runner_uri)
    git_commit = ParameterString(name=GIT_COMMIT, default_value=NO_COMMIT)
    tracking = s.tracking_uri is not None

    def tracking_environment(image: str) -> dict[str, Any]:
        """Where a tracked job logs (none: tracking off) and the lineage it records (steps/tracking.py)."""
        if s.tracking_uri is None:
            return {}
        return {
            TRACKING_URI_VARIABLE: s.tracking_uri,
            EXPERIMENT_VARIABLE: s.model_package_group_name,
            RUN_NAME_VARIABLE: ExecutionVariables.PIPELINE_EXECUTION_ID,
            EXECUTION_ARN_VARIABLE: ExecutionVariables.PIPELINE_EXECUTION_ARN,
            COMMIT_VARIABLE: git_commit,
            IMAGE_VARIABLE: image,
            SERVING_IMAGE_VARIABLE: xgboost_inference_image,
        }

    def output_uri(step: Any, name: str) -> Any:
        return step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    def processor(image: str, job: str, *, tracked: bool = False) -> Any:
        # Processing jobs read their inputs from local disk: no network. A tracked job logs to the tracking
        # server over the network (VPC endpoints only: the subnets have no NAT), and only with tracking on.
        return _processor(
            s,
            session,
            names,
            image=image,
            job=job,
            instance_type=processing_type,
            isolated=not (tracked and tracking),
            env=tracking_environment(image) if tracked else None,
        )

    code_inputs = _code_inputs(s, runner=runner_code, source=source_code)
    data_inputs = [
        _processing_input("contract", contract_code, _CONTRACT_DIR),
        _processing_input("data", input_data, _DATA_DIR),
    ]
    data_arguments = ["--data-dir", _DATA_DIR, "--contract", f"{_CONTRACT_DIR}/{names.contract}"]

    # ValidateData -> CheckDataContract
    report_dir = f"{_PROCESSING_OUTPUT}/report"
    validation_report = PropertyFile(name=VALIDATION_REPORT, output_name="report", path=VALIDATION_REPORT_FILE)
    validate = ProcessingStep(
        name=VALIDATE_DATA,
        step_args=processor(sklearn_image, "validate-data").run(
            inputs=code_inputs + data_inputs,
            outputs=[_processing_output(s, VALIDATE_DATA, "report", report_dir)],
            arguments=["validate.py", *data_arguments, "--output-dir", report_dir],
        ),
        property_files=[validation_report],
    )
    contract_violated = FailStep(
        name=DATA_CONTRACT_VIOLATED,
        error_message=Join(
            on="",
            values=[
                "The input data violates the data contract: see the validation report ",
                output_uri(validate, "report"),
                f"/{VALIDATION_REPORT_FILE}",
            ],
        ),
    )

    # Preprocess (-> MonitorBaseline)
    splits = ("train", "validation", "test", "baseline", *((SERVING_OUTPUT,) if monitor else ()))
    data_version = PropertyFile(name=DATA_VERSION, output_name="baseline", path=DATA_VERSION_FILE)
    preprocess = ProcessingStep(
        name=PREPROCESS,
        step_args=processor(sklearn_image, "preprocess", tracked=True).run(
            inputs=code_inputs + data_inputs,
            outputs=[_processing_output(s, PREPROCESS, split, f"{_PROCESSING_OUTPUT}/{split}") for split in splits],
            arguments=[
                "preprocess.py",
                *data_arguments,
                "--output-dir",
                _PROCESSING_OUTPUT,
                *(["--serving-sample"] if monitor else []),
            ],
        ),
        property_files=[data_version],
    )

    # MonitorBaseline (data_quality_monitor only): the Model Monitor analyzer on Preprocess's serving sample.
    monitor_steps: list[Any] = []
    monitor_statistics: Any = None  # the analyzer's statistics.json and constraints.json, as registered
    monitor_constraints: Any = None
    if monitor:
        analyzer = _image_processor(
            s,
            session,
            image=_analyzer_image(s.region),
            job="monitor-baseline",
            instance_type=processing_type,
            isolated=True,
            entrypoint=None,  # the analyzer image's own
            env=ANALYZER_ENVIRONMENT,
        )
        monitor_baseline = ProcessingStep(
            name=MONITOR_BASELINE,
            step_args=analyzer.run(
                inputs=[
                    _processing_input(ANALYZER_INPUT, output_uri(preprocess, SERVING_OUTPUT), _ANALYZER_DATASET_DIR)
                ],
                outputs=[_processing_output(s, MONITOR_BASELINE, MONITOR_OUTPUT, _PROCESSING_OUTPUT)],
            ),
        )
        monitor_steps.append(monitor_baseline)
        monitor_statistics, monitor_constraints = (
            MetricsSource(
                content_type="application/json",
                s3_uri=Join(on="/", values=[output_uri(monitor_baseline, MONITOR_OUTPUT), name]),
            )
            for name in (MONITOR_STATISTICS_FILE, MONITOR_CONSTRAINTS_FILE)
        )

    # Train: XGBoost framework container, script mode, train.py from the tarball's code channel.
    def channel(name: str, uri: Any, content_type: str | None) -> Any:
        s3 = S3DataSource(s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type="FullyReplicated")
        extra = {"content_type": content_type} if content_type else {}
        return Channel(channel_name=name, data_source=DataSource(s3_data_source=s3), input_mode="File", **extra)

    hyperparameters: dict[str, HyperparameterValue] = dict(s.hyperparameters)
    hyperparameters.update(
        sagemaker_program="train.py",
        sagemaker_submit_directory=f"{_TRAINING_CODE_DIR}/{names.source}",
        sagemaker_region=s.region,
        sagemaker_container_log_level=str(logging.INFO),
    )
    trainer = ModelTrainer(
        training_image=xgboost_image,
        role=s.role_arn,
        sagemaker_session=session,
        base_job_name="train",
        compute=Compute(
            instance_type=training_type,
            instance_count=1,
            volume_size_in_gb=s.volume_size_gb,
            volume_kms_key_id=s.kms_key_arn,
        ),
        networking=Networking(
            subnets=list(s.subnet_ids),
            security_group_ids=list(s.security_group_ids),
            enable_network_isolation=not tracking,
            enable_inter_container_traffic_encryption=True,
        ),
        environment=tracking_environment(xgboost_image) or None,
        stopping_condition=StoppingCondition(max_runtime_in_seconds=s.max_runtime_seconds),
        output_data_config=OutputDataConfig(
            s3_output_path=_location(s, TRAIN, "model"), kms_key_id=s.kms_key_arn, compression_type="GZIP"
        ),
        hyperparameters=hyperparameters,
    ).with_metric_definitions([MetricDefinition(name=TRAINING_METRIC_NAME, regex=TRAINING_METRIC_REGEX)])
    with _telemetry_off(session):
        train_arguments = trainer.train(
            input_data_config=[
                channel("train", output_uri(preprocess, "train"), "text/csv"),
                channel("validation", output_uri(preprocess, "validation"), "text/csv"),
                channel(_TRAINING_CODE_CHANNEL, source_code, None),
            ]
        )
    train = TrainingStep(name=TRAIN, step_args=train_arguments)
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts

    # Evaluate -> CheckMetric
    evaluation_dir = f"{_PROCESSING_OUTPUT}/evaluation"
    evaluation_report = PropertyFile(name=EVALUATION_REPORT, output_name="evaluation", path=EVALUATION_REPORT_FILE)
    evaluate = ProcessingStep(
        name=EVALUATE,
        step_args=processor(xgboost_image, "evaluate", tracked=True).run(
            inputs=[
                *code_inputs,
                _processing_input("model", model_data, _MODEL_DIR),
                _processing_input("test", output_uri(preprocess, "test"), _TEST_DIR),
                _processing_input("champion", champion_model_data, _CHAMPION_DIR),
            ],
            outputs=[_processing_output(s, EVALUATE, "evaluation", evaluation_dir)],
            arguments=[
                "evaluate.py",
                "--model-dir",
                _MODEL_DIR,
                "--test-dir",
                _TEST_DIR,
                "--output-dir",
                evaluation_dir,
                *("--metric", s.metric, "--goal", s.goal, "--threshold", Join(on="", values=[threshold])),
                *("--champion-margin", repr(s.champion_margin), "--champion-dir", _CHAMPION_DIR),
                *("--champion-model-data", champion_model_data, "--no-champion", s.runner_uri),
            ],
        ),
        property_files=[evaluation_report],
    )
    metric_value = JsonGet(
        step_name=EVALUATE, property_file=evaluation_report, json_path=f"regression_metrics.{s.metric}.value"
    )
    not_worse = JsonGet(step_name=EVALUATE, property_file=evaluation_report, json_path="gate.not_worse")
    gate_reason = JsonGet(step_name=EVALUATE, property_file=evaluation_report, json_path="gate.reason")
    champion_metadata = {
        key: Join(
            on="", values=[JsonGet(step_name=EVALUATE, property_file=evaluation_report, json_path=f"metadata.{key}")]
        )
        for key in champion_metadata_keys(s.metric)
    }

    def text(value: Any) -> Any:
        return Join(on="", values=[value])

    # The version's lineage (lineage_metadata_keys): run, commit, data version, execution, evaluation metrics.
    lineage_metadata = {
        MLFLOW_RUN_KEY: text(
            JsonGet(step_name=EVALUATE, property_file=evaluation_report, json_path="metadata.mlflow_run_id")
        ),
        MLFLOW_EXPERIMENT_KEY: s.model_package_group_name if tracking else "none",
        GIT_COMMIT_KEY: text(git_commit),
        DATA_MANIFEST_KEY: text(JsonGet(step_name=PREPROCESS, property_file=data_version, json_path="manifest_sha256")),
        DATA_PARTITIONS_KEY: text(
            JsonGet(step_name=PREPROCESS, property_file=data_version, json_path="partitions_summary")
        ),
        EXECUTION_ARN_KEY: text(ExecutionVariables.PIPELINE_EXECUTION_ARN),
        **{
            f"{EVALUATION_KEY_PREFIX}{name}": text(
                JsonGet(
                    step_name=EVALUATE, property_file=evaluation_report, json_path=f"regression_metrics.{name}.value"
                )
            )
            for name in EVALUATION_METRIC_KEYS
        },
    }
    meets = ConditionLessThanOrEqualTo if s.goal == "minimize" else ConditionGreaterThanOrEqualTo
    operator = "<=" if s.goal == "minimize" else ">="

    # RegisterModel: the XGBoost model with its evaluation and its data baseline (and the Model Monitor
    # baseline), served by the inference.py the model carries in code/ (script mode).
    builder = ModelBuilder(
        s3_model_data_url=model_data,
        image_uri=xgboost_inference_image,
        role_arn=s.role_arn,
        sagemaker_session=session,
        env_vars=serving_environment(s),
        dependencies=None,  # nothing to repack into the model artifact: train.py put the code in it
        log_level=None,  # leave the SDK's log levels alone
    )
    with _telemetry_off(session):
        register_arguments = builder.register(
            model_package_group_name=s.model_package_group_name,
            # The request contract (serving/inference.py): CSV or JSON rows in, JSON (default) or CSV out.
            content_types=["text/csv", "application/json"],
            response_types=["application/json", "text/csv"],
            approval_status=REGISTERED_APPROVAL_STATUS,
            customer_metadata_properties={**serving_metadata(), **champion_metadata, **lineage_metadata},
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(
                    content_type="application/json",
                    s3_uri=Join(on="/", values=[output_uri(evaluate, "evaluation"), EVALUATION_REPORT_FILE]),
                ),
                model_data_statistics=monitor_statistics,
                model_data_constraints=monitor_constraints,
            ),
            drift_check_baselines=DriftCheckBaselines(
                model_data_statistics=MetricsSource(
                    content_type="application/json",
                    s3_uri=Join(on="/", values=[output_uri(preprocess, "baseline"), BASELINE_FILE]),
                ),
                model_data_constraints=monitor_constraints,
            ),
        )
    register = ModelStep(name=REGISTER_MODEL, step_args=register_arguments)
    metric_not_met = FailStep(
        name=METRIC_NOT_MET,
        error_message=Join(
            on="",
            values=[
                f"The model's {s.metric} on the test split is ",
                metric_value,
                f"; it must meet the threshold ({s.metric} {operator} ",
                threshold,
                ") and not be worse than the version serving production by more than ",
                repr(s.champion_margin),
                ": ",
                gate_reason,
                ". It was not registered.",
            ],
        ),
    )
    check_metric = ConditionStep(
        name=CHECK_METRIC,
        conditions=[meets(left=metric_value, right=threshold), ConditionEquals(left=not_worse, right=True)],
        if_steps=[register],
        else_steps=[metric_not_met],
    )
    check_contract = ConditionStep(
        name=CHECK_DATA_CONTRACT,
        conditions=[
            ConditionEquals(
                left=JsonGet(step_name=VALIDATE_DATA, property_file=validation_report, json_path="violation_count"),
                right=0,
            )
        ],
        if_steps=[preprocess, *monitor_steps, train, evaluate],
        else_steps=[contract_violated],
    )
    pipeline = Pipeline(
        name=s.pipeline_name,
        parameters=[
            input_data,
            processing_type,
            training_type,
            threshold,
            runner_code,
            source_code,
            contract_code,
            git_commit,
            champion_model_data,
        ],
        # SageMaker does not run a ConditionStep nested in another's branches: CheckMetric is top-level,
        # after Evaluate (whose evaluation it reads), so it runs only where CheckDataContract let Evaluate run.
        steps=[validate, check_contract, check_metric],
        sagemaker_session=session,
        pipeline_experiment_config=None,  # no SageMaker Experiments: the model registry keeps the lineage
    )
    return str(pipeline.definition())
