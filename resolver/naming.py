"""The physical names stacks share: set once here so a stack can refer to another's resource by name.

Names that several stacks (and the Lambda functions, and later stages of CI/CD) must agree on
are derived from the stage config, never typed twice.
"""

from __future__ import annotations

from resolver.config import StageConfig

# Prefixes of the artifacts bucket: the model-build pipeline's step outputs (<prefix>/<pipeline>/<execution>/),
# the step code CI uploads (content-addressed), the drift-check pipeline's outputs.
BUILD_ARTIFACTS_PREFIX = "model-build"
CODE_PREFIX = "code"
DRIFT_ARTIFACTS_PREFIX = "drift-check"
# The stage's managed MLflow App keeps its run artifacts under this prefix of the artifacts bucket.
TRACKING_ARTIFACTS_PREFIX = "mlflow"


def model_package_group(config: StageConfig) -> str:
    return f"{config.prefix}-{config.model.name}"


def tracking_app(config: StageConfig) -> str:
    """The stage's SageMaker managed MLflow App (tracking.mode managed), before the suffix its stack adds (the first
    group of the stack's id, stacks/constructs/tracking.py); its ARN carries a generated id, not the name."""
    return f"{config.prefix}-tracking"


def tracking_reader_role(config: StageConfig) -> str:
    """The role a data scientist assumes to open the stage's MLflow UI (tracking.reader_role_arns may assume it)."""
    return f"{config.prefix}-tracking-reader"


def lake_database(config: StageConfig) -> str:
    """The Glue database of the lake (Glue and Athena fold names to lowercase; no dashes)."""
    return f"{config.project}_{config.name}_lake".replace("-", "_")


def curation_job(config: StageConfig) -> str:
    """The Glue job that curates the model's dataset (raw -> curated, quarantine)."""
    return f"{config.prefix}-{config.model.dataset.replace('_', '-')}-curate"


def local_build_pipeline(dataset: str) -> str:
    """The model-build pipeline of a local run (``make pipeline-local``), named for its dataset, not a stage."""
    return f"{local_model_package_group(dataset)}-build"


def local_drift_pipeline(dataset: str) -> str:
    """The drift-check pipeline of a local run, named for its dataset."""
    return f"{local_model_package_group(dataset)}-drift"


def local_model_package_group(dataset: str) -> str:
    """The model package group local runs of a dataset register into (one group across runs)."""
    return f"local-{dataset.replace('_', '-')}"


def build_pipeline(config: StageConfig) -> str:
    """The SageMaker model-build pipeline."""
    return f"{config.prefix}-{config.model.name}-build"


def drift_pipeline(config: StageConfig) -> str:
    """The SageMaker drift-check pipeline."""
    return f"{config.prefix}-{config.model.name}-drift-check"


def build_ci_pipeline(config: StageConfig) -> str:
    """The model-build CodePipeline (push -> test -> train)."""
    return f"{config.prefix}-{config.model.name}-build-ci"


def source_object(config: StageConfig) -> str:
    """With the s3 source provider: the key of the source zip in the delivery bucket."""
    return f"source/{config.source.repository.replace('/', '-')}.zip"


def deploy_pipeline(config: StageConfig) -> str:
    """The model-deploy CodePipeline (started by the registry-approval function)."""
    return f"{config.prefix}-{config.model.name}-deploy"


def endpoint(config: StageConfig, target: str = "production") -> str:
    """The SageMaker real-time endpoint serving the approved model version (its staging twin: -staging)."""
    suffix = "" if target == "production" else f"-{target}"
    return f"{config.prefix}-{config.model.name}{suffix}"


def endpoint_alarms(config: StageConfig, target: str = "production") -> dict[str, str]:
    """The endpoint's rollback alarms, by what they watch: 5XX errors a minute and p99 model latency."""
    name = endpoint(config, target)
    return {"errors": f"{name}-5xx", "latency": f"{name}-latency"}


def release_role(config: StageConfig, target: str) -> str:
    """The role CloudFormation takes to release a version to a target's endpoint (that endpoint only)."""
    return f"{endpoint(config, target)}-release"


def endpoint_stack(config: StageConfig, target: str) -> str:
    """The CloudFormation name of a target's Endpoint stack (a CDK Stage names its stacks <stage>-<id>)."""
    return f"{config.prefix}-Endpoint-{target}"


def infrastructure_pipeline(config: StageConfig) -> str:
    """The self-updating CodePipeline of the platform's own stacks (source.self_update)."""
    return f"{config.prefix}-infrastructure"


def role_prefix(config: StageConfig) -> str:
    """Every IAM role of the project starts with this: the stacks' names (CloudFormation names a role
    <stack>-<logical id>-<suffix>) and the roles named here. The bootstrap policies allow IAM writes on it only."""
    return f"{config.project}-"


def permissions_boundary(config: StageConfig) -> str:
    """The managed policy every role of the project carries as its permissions boundary (one per account)."""
    return f"{config.project}-permissions-boundary"


def execution_policy(config: StageConfig) -> str:
    """The managed policy of the CDK bootstrap's CloudFormation execution role (cdk bootstrap
    --cloudformation-execution-policies), in place of AdministratorAccess."""
    return f"{config.project}-cfn-execution"


def feature_drift_alarm(alarm_prefix: str, statistic: str, feature: str) -> str:
    """A feature's drift alarm under the model's prefix: statistic is "psi" (every feature) or "ks" (numeric)."""
    return f"{alarm_prefix}-{statistic}-{feature}"


def deployed_version_parameter(config: StageConfig, target: str) -> str:
    """The SSM parameter recording the model package ARN a target's endpoint serves (each release writes it)."""
    return f"/{config.project}/{config.name}/{config.model.name}/{target}/model-package-arn"


def platform_values_parameter(config: StageConfig) -> str:
    """The SSM parameter holding the stage's deploy-time values as one JSON document (resolver/published.py).
    CloudFormation writes it (the MLPlatform stack); CI and the operator CLI read it."""
    return f"/{config.project}/{config.name}/{config.model.name}/platform-values"


def champion_parameter(config: StageConfig) -> str:
    """The record of the version production serves: a new model version must not be worse than it to register."""
    return deployed_version_parameter(config, "production")


def drift_alarm_prefix(config: StageConfig) -> str:
    """Every drift alarm of the model starts with this; the composite alarm is exactly this name."""
    return f"{config.prefix}-{config.model.name}-drift"


def capture_prefix(config: StageConfig) -> str:
    """Where the endpoint's data capture lands, in the raw zone (SageMaker adds <endpoint>/<variant>/y/m/d/h/)."""
    return "datacapture/"


def deployed_baseline_prefix(config: StageConfig) -> str:
    """Where the deploy pipeline puts the deployed version's baseline.json, in the artifacts zone."""
    return f"deployed/{endpoint(config)}/baseline/"


def monitoring_schedule(config: StageConfig) -> str:
    """The production endpoint's Model Monitor data-quality schedule (drift engine model_monitor)."""
    return f"{endpoint(config)}-data-quality"


def monitoring_reports_prefix(config: StageConfig) -> str:
    """Where the data-quality schedule writes its reports (statistics, constraint violations), in the artifacts zone."""
    return f"monitoring/{endpoint(config)}/"


# --- the model-quality check --------------------------------------------------------------------------------

# Prefix of the artifacts bucket holding the quality-check pipeline's outputs (<prefix>/<pipeline>/<execution>/).
QUALITY_ARTIFACTS_PREFIX = "quality-check"


def quality_pipeline(config: StageConfig) -> str:
    """The SageMaker model-quality check pipeline (labels joined with the served predictions)."""
    return f"{config.prefix}-{config.model.name}-quality-check"


def quality_alarm_prefix(config: StageConfig) -> str:
    """Every model-quality alarm of the model starts with this; the decay alarm is exactly this name."""
    return f"{config.prefix}-{config.model.name}-quality"


def quality_decay_alarm(config: StageConfig) -> str:
    """The alarm on the decay of the live metric against the served version's evaluation: it retrains."""
    return quality_alarm_prefix(config)


def quality_check_missing_alarm(config: StageConfig) -> str:
    """The alarm on the quality check's heartbeat (no completed check in N periods): it only notifies."""
    return f"{quality_alarm_prefix(config)}-check-missing"


def operations_event_source(config: StageConfig) -> str:
    """The source of the events the stage's schedules put on the default bus (a custom source: never ``aws.``)."""
    return f"{config.project}.{config.name}.operations"


# What publish-baseline (pipelines_src/promote.py) puts beside baseline.json when the version has a Model
# Monitor baseline; the data-quality schedule compares captured requests with them.
MONITOR_STATISTICS_FILE = "statistics.json"
MONITOR_CONSTRAINTS_FILE = "constraints.json"


def main(argv: list[str] | None = None) -> int:
    """``python -m resolver.naming <what> <stage> [arg]``: names for Makefile targets, from cdk.json.

    stack-path STAGE STACK   the CDK CLI's path of a stack (e.g. mlops-dev/Endpoint-staging)
    endpoint STAGE TARGET    the endpoint name of a deployment target (staging | production)
    contract STAGE           the data contract file of the stage's dataset
    baseline-prefix STAGE    where the deployed version's baseline goes in the artifacts bucket
    drift-engine STAGE       processing or model_monitor (operations.drift.engine)
    """
    import json
    import sys
    from pathlib import Path

    from resolver.config import CONTRACTS_DIR, ConfigError, load_config

    args = sys.argv[1:] if argv is None else argv
    usage = (
        "usage: python -m resolver.naming "
        "{stack-path STAGE STACK | endpoint STAGE TARGET | contract STAGE | baseline-prefix STAGE | drift-engine STAGE}"
    )
    if len(args) < 2 or args[0] not in ("stack-path", "endpoint", "contract", "baseline-prefix", "drift-engine"):
        print(usage, file=sys.stderr)
        return 2
    context = json.loads((Path(__file__).resolve().parents[1] / "cdk.json").read_text())["context"]
    try:
        config = load_config(context).stage(args[1])
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if args[0] == "contract":
        print(CONTRACTS_DIR / f"{config.model.dataset}.json")
    elif args[0] == "baseline-prefix":
        print(deployed_baseline_prefix(config))
    elif args[0] == "drift-engine":
        print(config.operations.drift.engine)
    elif len(args) != 3:
        print(usage, file=sys.stderr)
        return 2
    elif args[0] == "stack-path":
        print(f"{config.prefix}/{args[2]}")
    else:
        if args[2] not in ("staging", "production"):
            print(f"unknown target {args[2]!r}: staging or production", file=sys.stderr)
            return 2
        print(endpoint(config, args[2]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
