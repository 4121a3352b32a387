"""The drift-check pipeline definition, built with the SageMaker Python SDK from `DriftSettings`.

One ProcessingStep, DetectDrift, runs ``bash run_step.sh drift.py <args...>`` in the scikit-learn
framework container, from the same runner and step tarball as the model-build pipeline
(pipelines_src/definition.py): it compares recent inputs (SageMaker endpoint data capture or
dataset files) with the deployed model version's ``baseline.json``, and writes ``drift_report.json``
and ``drift_metrics.json`` (the run's CloudWatch metrics, namespace ``MLOps/Drift``, dimensions Model
and Stage) to the artifacts bucket. No SageMaker Model Monitor is involved; a schedule starts the
pipeline.

The job runs in the VPC, network-isolated, with its volume and output encrypted with the KMS key,
like the build steps: it calls nothing. When the step has succeeded, a function outside the VPC
(lambdas/drift_metrics) puts the metrics file to CloudWatch, so no workload of the VPC needs its
CloudWatch (monitoring) endpoint for them.

`build_drift_definition(settings)` is built as `build_definition` is: offline, deterministic
(sorted keys, compact separators), deploy-time values given as ``${Name}`` Fn::Sub placeholders
passing through verbatim (`list_placeholders` lists them).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from pipelines_src.definition import (
    _CONTRACT_DIR,
    _DATA_DIR,
    _PROCESSING_INPUT,
    _PROCESSING_OUTPUT,
    BASELINE_FILE,
    PROCESSING_INSTANCE_TYPE,
    SKLEARN_VERSION,
    SettingsError,
    _build,
    _check_jobs,
    _check_sequences,
    _check_strings,
    _code_inputs,
    _fail,
    _image,
    _ObjectNames,
    _processing_input,
    _processing_output,
    _processor,
    _session,
    _settings_placeholders,
    list_placeholders,
)
from resolver.naming import DRIFT_ARTIFACTS_PREFIX

__all__ = [
    "BASELINE_URI",
    "DATA_URI",
    "DETECT_DRIFT",
    "INPUT_FORMAT",
    "INPUT_FORMATS",
    "PROCESSING_INSTANCE_TYPE",
    "WINDOW_HOURS",
    "DriftSettings",
    "SettingsError",
    "build_drift_definition",
    "list_placeholders",
]

# The step.
DETECT_DRIFT: Final = "DetectDrift"
REPORT_OUTPUT: Final = "report"
REPORT_FILE: Final = "drift_report.json"
# drift.py --metrics writes the run's PutMetricData request next to the report.
METRICS_FILE: Final = "drift_metrics.json"

# Pipeline parameters (PROCESSING_INSTANCE_TYPE as in the model-build pipeline).
BASELINE_URI: Final = "BaselineUri"
DATA_URI: Final = "DataUri"
INPUT_FORMAT: Final = "InputFormat"
WINDOW_HOURS: Final = "WindowHours"
# drift.py --input-format: endpoint data-capture JSONL, or dataset files as the contract reader reads them.
INPUT_FORMATS: Final = ("capture", "dataset")

# drift.py's defaults (PSI_THRESHOLD, KS_THRESHOLD).
DEFAULT_PSI_THRESHOLD: Final = 0.2
DEFAULT_KS_THRESHOLD: Final = 0.1
MAX_WINDOW_HOURS: Final = 24 * 366

# Paths inside the container.
_BASELINE_DIR = f"{_PROCESSING_INPUT}/baseline"
_REPORT_DIR = f"{_PROCESSING_OUTPUT}/{REPORT_OUTPUT}"

_OWNER: Final = "DriftSettings"

# A CloudWatch dimension value (1 to 1024 characters) that is also one command-line argument.
_DIMENSION = re.compile(r"[^\s-]\S{0,1023}")


def check_dimensions(settings: object, owner: str) -> None:
    """``model_name`` and ``stage_name``: CloudWatch dimension values that are also one argument each."""
    for name in ("model_name", "stage_name"):
        value = getattr(settings, name)
        if not isinstance(value, str) or not _DIMENSION.fullmatch(value):
            raise _fail(
                name,
                value,
                "is not a CloudWatch dimension value (1 to 1024 characters, no whitespace, not starting with '-')",
                owner,
            )


@dataclass(frozen=True)
class DriftSettings:
    """Everything the drift-check definition depends on. String fields may hold `${Name}` placeholders.

    As in `PipelineSettings`: role_arn, artifacts_bucket, kms_key_arn, subnet_ids, security_group_ids,
    pipeline_name and the S3 URIs may be or contain placeholders; region, input_format, the metric
    dimensions model_name and stage_name and the instance type may not.
    """

    pipeline_name: str
    region: str
    role_arn: str
    # The report goes to s3://<artifacts_bucket>/<artifacts_prefix>/<pipeline>/<execution id>/DetectDrift/report.
    artifacts_bucket: str
    # Default of the BaselineUri parameter: the S3 prefix holding the deployed model version's baseline.json.
    baseline_uri: str
    # Default of the DataUri parameter: the S3 prefix of the recent inputs (data capture or dataset files).
    data_uri: str
    # The dataset's data contract (JSON); the steps tarball and the runner, as for the model-build pipeline.
    contract_uri: str
    source_tar_uri: str
    runner_uri: str
    # Encrypts the job volume and the report.
    kms_key_arn: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    # The Model and Stage dimensions of the published metrics.
    model_name: str
    stage_name: str
    artifacts_prefix: str = DRIFT_ARTIFACTS_PREFIX
    # Defaults of the InputFormat and WindowHours parameters: what DataUri holds, and how many hours
    # before the run (by inference time) count as recent; 0 means all of it.
    input_format: str = "capture"
    window_hours: int = 24
    # A feature has drifted when its PSI or its (binned) KS statistic exceeds these.
    psi_threshold: float = DEFAULT_PSI_THRESHOLD
    ks_threshold: float = DEFAULT_KS_THRESHOLD
    processing_instance_type: str = "ml.m5.large"
    volume_size_gb: int = 30
    max_runtime_seconds: int = 3600

    def __post_init__(self) -> None:
        _check_sequences(self, ("subnet_ids", "security_group_ids"))
        _check_strings(
            self,
            fixed=("region", "input_format", "model_name", "stage_name", "processing_instance_type"),
            required=("kms_key_arn",),
            uris=("baseline_uri", "data_uri", "contract_uri", "source_tar_uri", "runner_uri"),
        )
        self._check_drift()
        _check_jobs(self, ("processing_instance_type",))

    def _check_drift(self) -> None:
        if self.input_format not in INPUT_FORMATS:
            raise _fail("input_format", self.input_format, f"is not one of {', '.join(INPUT_FORMATS)}", _OWNER)
        hours: object = self.window_hours
        if isinstance(hours, bool) or not isinstance(hours, int) or not 0 <= hours <= MAX_WINDOW_HOURS:
            raise _fail("window_hours", hours, f"must be an integer from 0 (no window) to {MAX_WINDOW_HOURS}", _OWNER)
        check_dimensions(self, _OWNER)
        # As drift.py checks them: it refuses what these would let through.
        for name, high in (("psi_threshold", math.inf), ("ks_threshold", 1.0)):
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or not 0 <= value <= high:
                reason = "must be a finite number >= 0" if high == math.inf else "must be a number from 0 to 1"
                raise _fail(name, value, reason, _OWNER)
            object.__setattr__(self, name, float(value))

    def placeholders(self) -> list[str]:
        """The names of the `${Name}` placeholders these settings hold, sorted."""
        return _settings_placeholders(self)


def build_drift_definition(settings: DriftSettings) -> str:
    """The drift-check pipeline definition JSON: offline, deterministic, placeholders verbatim.

    Raises SettingsError for settings the SDK rejects (e.g. a region without the framework image).
    """
    return _build(settings, _compile)


def _compile(s: DriftSettings, names: _ObjectNames) -> str:
    from sagemaker.core.workflow import ParameterInteger, ParameterString  # type: ignore[import-untyped]
    from sagemaker.mlops.workflow.pipeline import Pipeline  # type: ignore[import-untyped]
    from sagemaker.mlops.workflow.steps import ProcessingStep  # type: ignore[import-untyped]

    session = _session(s)
    image = _image("sklearn", SKLEARN_VERSION, s.region, "training", _OWNER)

    baseline = ParameterString(name=BASELINE_URI, default_value=s.baseline_uri)
    data = ParameterString(name=DATA_URI, default_value=s.data_uri)
    input_format = ParameterString(name=INPUT_FORMAT, default_value=s.input_format, enum_values=list(INPUT_FORMATS))
    window_hours = ParameterInteger(name=WINDOW_HOURS, default_value=s.window_hours)
    processing_type = ParameterString(name=PROCESSING_INSTANCE_TYPE, default_value=s.processing_instance_type)

    # Network-isolated: drift.py only writes files; the metrics are published from outside the VPC.
    processor = _processor(
        s, session, names, image=image, job="detect-drift", instance_type=processing_type, isolated=True
    )
    arguments: list[Any] = [
        "drift.py",
        "--baseline",
        f"{_BASELINE_DIR}/{BASELINE_FILE}",
        "--data-dir",
        _DATA_DIR,
        "--contract",
        f"{_CONTRACT_DIR}/{names.contract}",
        "--output-dir",
        _REPORT_DIR,
        "--input-format",
        input_format,
        "--window-hours",
        window_hours.to_string(),  # job arguments are strings
        "--psi-threshold",
        repr(s.psi_threshold),
        "--ks-threshold",
        repr(s.ks_threshold),
        "--metrics",
        "--model",
        s.model_name,
        "--stage",
        s.stage_name,
    ]
    detect = ProcessingStep(
        name=DETECT_DRIFT,
        step_args=processor.run(
            inputs=[
                *_code_inputs(s),
                _processing_input("contract", s.contract_uri, _CONTRACT_DIR),
                _processing_input("baseline", baseline, _BASELINE_DIR),
                _processing_input("data", data, _DATA_DIR),
            ],
            outputs=[_processing_output(s, DETECT_DRIFT, REPORT_OUTPUT, _REPORT_DIR)],
            arguments=arguments,
        ),
    )
    pipeline = Pipeline(
        name=s.pipeline_name,
        parameters=[baseline, data, input_format, window_hours, processing_type],
        steps=[detect],
        sagemaker_session=session,
        pipeline_experiment_config=None,
    )
    return str(pipeline.definition())
