"""A stage's deploy-time values, as the MLPlatform stack publishes them: one JSON SSM parameter per stage.

CloudFormation is the parameter's only writer: the stack fills `PlatformValues` with its resources'
references and renders it into the parameter (`naming.platform_values_parameter`). CI's train stage
(pipelines_src/cicd.py) and the operator CLI read it back with `read`, so the buckets, role, key,
subnets, security group and names they use are the ones the last platform deploy created, never a
copy frozen somewhere else.

This module imports no CDK code: CI and the CLI load it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines_src.definition import PipelineSettings
from resolver import naming
from resolver.config import ModelConfig, StageConfig

# Raised for a parameter that is missing or does not hold what `PlatformValues` needs.
NOT_PUBLISHED = "is not published: deploy the stage's MLPlatform stack first (cdk deploy)"


class PublishedValuesError(ValueError):
    """The published values are missing or malformed; the message names the parameter and the field."""


@dataclass(frozen=True)
class PlatformValues:
    """What the stage's stacks created, by the name CI and the CLI use (field names are the JSON keys)."""

    stage: str
    region: str
    # The SageMaker pipelines and the role the model-build pipeline's jobs run as.
    build_pipeline: str
    drift_pipeline: str
    pipeline_role_arn: str
    # The lake: its buckets, its key, the prefixes of the artifacts bucket, the training input.
    raw_bucket: str
    curated_bucket: str
    artifacts_bucket: str
    artifacts_prefix: str
    code_prefix: str
    drift_artifacts_prefix: str
    input_data_uri: str
    kms_key_arn: str
    # Where the jobs run.
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    model_package_group: str
    # The model config the deployed definition was built with (it changes only with a platform deploy),
    # and whether it has the Model Monitor baseline step.
    model: ModelConfig
    data_quality_monitor: bool
    # Experiment tracking: the stage's MLflow App ARN (MLFLOW_TRACKING_URI of the steps and of a data scientist's
    # client), None with tracking.mode none. Always in the document (null then).
    tracking_uri: str | None = None

    def as_document(self) -> dict[str, Any]:
        """The JSON document (lists for the id tuples); the stack renders it with its tokens resolved."""
        document = {item.name: _plain(getattr(self, item.name)) for item in dataclasses.fields(self)}
        document["model"] = dataclasses.asdict(self.model)
        return document

    def pipeline_settings(self, code: Mapping[str, str]) -> PipelineSettings:
        """The model-build definition's settings as the stack builds them, its references resolved to these values
        and ``code`` (by `CODE_PARAMETERS` field): for local runs of what CloudFormation deployed."""
        model = self.model
        return PipelineSettings(
            pipeline_name=self.build_pipeline,
            region=self.region,
            role_arn=self.pipeline_role_arn,
            artifacts_bucket=self.artifacts_bucket,
            artifacts_prefix=self.artifacts_prefix,
            input_data_uri=self.input_data_uri,
            model_package_group_name=self.model_package_group,
            kms_key_arn=self.kms_key_arn,
            subnet_ids=self.subnet_ids,
            security_group_ids=self.security_group_ids,
            metric=model.metric,
            goal=model.goal,
            threshold=model.threshold,
            champion_margin=model.champion_margin,
            processing_instance_type=model.processing_instance_type,
            training_instance_type=model.training_instance_type,
            data_quality_monitor=self.data_quality_monitor,
            tracking_uri=self.tracking_uri,
            runner_uri=code["runner_uri"],
            source_tar_uri=code["source_tar_uri"],
            contract_uri=code["contract_uri"],
        )

    @classmethod
    def from_json(cls, text: str, *, where: str) -> PlatformValues:
        """Parse a published document; a `PublishedValuesError` names ``where`` and the field that is wrong."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise PublishedValuesError(f"{where}: not JSON ({error})") from None
        values = _fields(cls, document, where)
        values["model"] = ModelConfig(**_fields(ModelConfig, values["model"], f"{where}: model"))
        return cls(**values)


def _fields(cls: type, document: Any, where: str) -> dict[str, Any]:
    """The fields of dataclass ``cls`` from a JSON object, each checked against its annotated type."""
    if not isinstance(document, dict):
        raise PublishedValuesError(f"{where}: not a JSON object")
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        if item.name in _OPTIONAL and document.get(item.name) is None:
            # CloudFormation's JSON rendering drops null values; absent is the field's default.
            values[item.name] = None
            continue
        if item.name not in document:
            raise PublishedValuesError(f"{where}: has no {item.name!r}: the MLPlatform stack deployed is older")
        value = document[item.name]
        kind = _KINDS.get(item.name, str)
        if kind is tuple:
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise PublishedValuesError(f"{where}: {item.name} is {value!r}, not a list of ids")
            value = tuple(value)
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PublishedValuesError(f"{where}: {item.name} is {value!r}, not a number")
            value = float(value)
        elif not isinstance(value, kind) or (kind is str and not value):
            raise PublishedValuesError(f"{where}: {item.name} is {value!r}, not a {kind.__name__}")
        values[item.name] = value
    return values


# Fields that are not strings, by name (PlatformValues and ModelConfig).
_KINDS: dict[str, type] = {
    "subnet_ids": tuple,
    "security_group_ids": tuple,
    "model": dict,
    "threshold": float,
    "champion_margin": float,
    "data_quality_monitor": bool,
}


# Fields whose JSON value may be null (their dataclass default).
_OPTIONAL = frozenset({"tracking_uri"})


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def read(ssm: Any, config: StageConfig) -> PlatformValues:
    """The stage's published values, read with an SSM client of the stage's region."""
    name = naming.platform_values_parameter(config)
    try:
        text = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        raise PublishedValuesError(f"SSM parameter {name} {NOT_PUBLISHED}") from None
    values = PlatformValues.from_json(text, where=f"SSM parameter {name}")
    if values.stage != config.name:
        raise PublishedValuesError(f"SSM parameter {name}: published for stage {values.stage!r}, not {config.name!r}")
    return values
