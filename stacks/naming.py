"""The physical names stacks share: set once here so a stack can refer to another's resource by name.

Names that several stacks (and the Lambda functions, and later stages of CI/CD) must agree on
are derived from the stage config, never typed twice.
"""

from __future__ import annotations

from stacks.config import StageConfig


def model_package_group(config: StageConfig) -> str:
    return f"{config.prefix}-{config.model.name}"


def curation_job(config: StageConfig) -> str:
    """The Glue job that curates the model's dataset (raw -> curated, quarantine)."""
    return f"{config.prefix}-{config.model.dataset.replace('_', '-')}-curate"


def build_pipeline(config: StageConfig) -> str:
    """The SageMaker model-build pipeline."""
    return f"{config.prefix}-{config.model.name}-build"


def drift_pipeline(config: StageConfig) -> str:
    """The SageMaker drift-check pipeline."""
    return f"{config.prefix}-{config.model.name}-drift-check"


def deploy_pipeline(config: StageConfig) -> str:
    """The model-deploy CodePipeline (started by the registry-approval function)."""
    return f"{config.prefix}-{config.model.name}-deploy"


def endpoint(config: StageConfig, target: str = "production") -> str:
    """The SageMaker real-time endpoint serving the approved model version (its staging twin: -staging)."""
    suffix = "" if target == "production" else f"-{target}"
    return f"{config.prefix}-{config.model.name}{suffix}"


def drift_alarm_prefix(config: StageConfig) -> str:
    """Every drift alarm of the model starts with this; the composite alarm is exactly this name."""
    return f"{config.prefix}-{config.model.name}-drift"


def capture_prefix(config: StageConfig) -> str:
    """Where the endpoint's data capture lands, in the raw zone (SageMaker adds <endpoint>/<variant>/y/m/d/h/)."""
    return "datacapture/"


def deployed_baseline_prefix(config: StageConfig) -> str:
    """Where the deploy pipeline puts the deployed version's baseline.json, in the artifacts zone."""
    return f"deployed/{endpoint(config)}/baseline/"
