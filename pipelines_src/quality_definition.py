"""The model-quality check's pipeline definition, built with the SageMaker Python SDK from `QualitySettings`.

One ProcessingStep, CheckQuality, runs ``bash run_step.sh quality.py <args...>`` in the scikit-learn
framework container, from the same runner and step tarball as the model-build pipeline: it joins the
curated labels (``LabelsUri``, the ``<dataset>_labels`` dataset under ``curated/labels/<dataset>/``)
with the production endpoint's data capture (``CaptureUri``) over the window that ends ``lateness_hours``
before the run, scores the stage's metric and compares it with ``ReferenceMetric`` (the served version's
``challenger_<metric>`` metadata; empty: no comparison). It writes ``quality_report.json`` and
``quality_metrics.json`` (namespace ``MLOps/ModelQuality``, dimensions Model and Stage) to the artifacts
bucket.

The job runs in the VPC, network-isolated, with its volume and output encrypted with the KMS key, like
the drift check: it calls nothing, and the metrics file is put to CloudWatch from outside the VPC once
the step has succeeded (as lambdas/drift_metrics does for drift).

`build_quality_definition(settings)` is built as `build_drift_definition` is: offline, deterministic,
``${Name}`` placeholders passing through verbatim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from pipelines_src.definition import (
    _CONTRACT_DIR,
    _PROCESSING_INPUT,
    _PROCESSING_OUTPUT,
    CONTRACT_NAME,
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
    _object_name,
    _ObjectNames,
    _processing_input,
    _processing_output,
    _processor,
    _session,
    _settings_placeholders,
    list_placeholders,
)
from pipelines_src.drift_definition import check_dimensions

__all__ = [
    "CAPTURE_URI",
    "CHECK_QUALITY",
    "LABELS_URI",
    "REFERENCE_METRIC",
    "QualitySettings",
    "SettingsError",
    "build_quality_definition",
    "list_placeholders",
]

CHECK_QUALITY: Final = "CheckQuality"
REPORT_OUTPUT: Final = "report"
REPORT_FILE: Final = "quality_report.json"
METRICS_FILE: Final = "quality_metrics.json"

# Pipeline parameters (PROCESSING_INSTANCE_TYPE as in the model-build pipeline).
CAPTURE_URI: Final = "CaptureUri"
LABELS_URI: Final = "LabelsUri"
# The served version's evaluation metric, as its registry metadata holds it (text); "" for none.
REFERENCE_METRIC: Final = "ReferenceMetric"

METRICS: Final = ("mse", "rmse", "mae", "r2")
GOALS: Final = ("minimize", "maximize")

_CAPTURE_DIR = f"{_PROCESSING_INPUT}/capture"
_LABELS_DIR = f"{_PROCESSING_INPUT}/labels"
_LABELS_CONTRACT_DIR = f"{_PROCESSING_INPUT}/labels_contract"
_REPORT_DIR = f"{_PROCESSING_OUTPUT}/{REPORT_OUTPUT}"
_OWNER: Final = "QualitySettings"


@dataclass(frozen=True)
class QualitySettings:
    """Everything the quality-check definition depends on. String fields may hold `${Name}` placeholders,
    except region, metric, goal, the metric dimensions and the instance type."""

    pipeline_name: str
    region: str
    role_arn: str
    artifacts_bucket: str
    # Defaults of the CaptureUri and LabelsUri parameters.
    capture_uri: str
    labels_uri: str
    # The model's contract and the labels' contract (JSON); the steps tarball and the runner.
    contract_uri: str
    labels_contract_uri: str
    source_tar_uri: str
    runner_uri: str
    kms_key_arn: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    model_name: str
    stage_name: str
    # The stage's model.metric and model.goal, and operations.quality.
    metric: str = "rmse"
    goal: str = "minimize"
    window_hours: int = 24
    lateness_hours: int = 24
    min_labels: int = 100
    max_degradation: float = 1.0
    artifacts_prefix: str = "quality-check"
    processing_instance_type: str = "ml.m5.large"
    volume_size_gb: int = 30
    max_runtime_seconds: int = 3600

    def __post_init__(self) -> None:
        _check_sequences(self, ("subnet_ids", "security_group_ids"))
        _check_strings(
            self,
            fixed=("region", "metric", "goal", "model_name", "stage_name", "processing_instance_type"),
            required=("kms_key_arn",),
            uris=("capture_uri", "labels_uri", "contract_uri", "labels_contract_uri", "source_tar_uri", "runner_uri"),
        )
        self._check_quality()
        _check_jobs(self, ("processing_instance_type",))

    def _check_quality(self) -> None:
        if self.metric not in METRICS:
            raise _fail("metric", self.metric, f"is not one of {', '.join(METRICS)}", _OWNER)
        if self.goal not in GOALS:
            raise _fail("goal", self.goal, f"is not one of {', '.join(GOALS)}", _OWNER)
        for name, low, high in (("window_hours", 1, 24 * 90), ("lateness_hours", 0, 24 * 30), ("min_labels", 1, 10**7)):
            value: object = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise _fail(name, value, f"must be an integer from {low} to {high}", _OWNER)
        degradation: object = self.max_degradation
        if (
            isinstance(degradation, bool)
            or not isinstance(degradation, (int, float))
            or not math.isfinite(degradation)
            or degradation < 0
        ):
            raise _fail("max_degradation", degradation, "must be a finite number >= 0", _OWNER)
        object.__setattr__(self, "max_degradation", float(degradation))
        check_dimensions(self, _OWNER)

    def placeholders(self) -> list[str]:
        """The names of the `${Name}` placeholders these settings hold, sorted."""
        return _settings_placeholders(self)


def build_quality_definition(settings: QualitySettings) -> str:
    """The quality-check pipeline definition JSON: offline, deterministic, placeholders verbatim."""
    return _build(settings, _compile)


def _compile(s: QualitySettings, names: _ObjectNames) -> str:
    from sagemaker.core.workflow import ParameterString  # type: ignore[import-untyped]
    from sagemaker.mlops.workflow.pipeline import Pipeline  # type: ignore[import-untyped]
    from sagemaker.mlops.workflow.steps import ProcessingStep  # type: ignore[import-untyped]

    session = _session(s)
    image = _image("sklearn", SKLEARN_VERSION, s.region, "training", _OWNER)
    labels_contract = _object_name(s.labels_contract_uri, "labels_contract_uri", CONTRACT_NAME, ".json", _OWNER)
    capture = ParameterString(name=CAPTURE_URI, default_value=s.capture_uri)
    labels = ParameterString(name=LABELS_URI, default_value=s.labels_uri)
    reference = ParameterString(name=REFERENCE_METRIC, default_value="")
    processing_type = ParameterString(name=PROCESSING_INSTANCE_TYPE, default_value=s.processing_instance_type)
    # Network-isolated: quality.py only reads and writes files; its metrics are put from outside the VPC.
    processor = _processor(
        s, session, names, image=image, job="check-quality", instance_type=processing_type, isolated=True
    )
    arguments: list[Any] = [
        "quality.py",
        *("--capture-dir", _CAPTURE_DIR, "--labels-dir", _LABELS_DIR),
        *("--contract", f"{_CONTRACT_DIR}/{names.contract}"),
        *("--labels-contract", f"{_LABELS_CONTRACT_DIR}/{labels_contract}"),
        *("--output-dir", _REPORT_DIR),
        *("--window-hours", str(s.window_hours), "--lateness-hours", str(s.lateness_hours)),
        *("--metric", s.metric, "--goal", s.goal),
        *("--max-degradation", repr(s.max_degradation), "--min-labels", str(s.min_labels)),
        # One argument "--reference=<value>", so an empty value (no reference) stays one argument.
        _joined_reference(reference),
        *("--metrics", "--model", s.model_name, "--stage", s.stage_name),
    ]
    step = ProcessingStep(
        name=CHECK_QUALITY,
        step_args=processor.run(
            inputs=[
                *_code_inputs(s),
                _processing_input("contract", s.contract_uri, _CONTRACT_DIR),
                _processing_input("labels_contract", s.labels_contract_uri, _LABELS_CONTRACT_DIR),
                _processing_input("capture", capture, _CAPTURE_DIR),
                _processing_input("labels", labels, _LABELS_DIR),
            ],
            outputs=[_processing_output(s, CHECK_QUALITY, REPORT_OUTPUT, _REPORT_DIR)],
            arguments=arguments,
        ),
    )
    pipeline = Pipeline(
        name=s.pipeline_name,
        parameters=[capture, labels, reference, processing_type],
        steps=[step],
        sagemaker_session=session,
        pipeline_experiment_config=None,
    )
    return str(pipeline.definition())


def _joined_reference(reference: Any) -> Any:
    from sagemaker.core.workflow import Join

    return Join(on="", values=["--reference=", reference])
