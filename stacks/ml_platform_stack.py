"""MLPlatform stack: the model's registry, the roles its jobs run as, the model-build and drift-check pipelines."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from resolver import naming
from resolver.config import StageConfig
from resolver.naming import BUILD_ARTIFACTS_PREFIX, CODE_PREFIX, DRIFT_ARTIFACTS_PREFIX, TRACKING_ARTIFACTS_PREFIX
from resolver.published import PlatformValues
from stacks.constructs.data_lake import LakeStorage
from stacks.constructs.drift_check import DriftCheckPipeline
from stacks.constructs.model_build import ModelBuildPipeline
from stacks.constructs.network import PrivateNetwork
from stacks.constructs.quality_check import QualityCheckPipeline
from stacks.constructs.sagemaker_access import ModelRegistry, SageMakerExecutionRole
from stacks.constructs.tracking import ExperimentTracking
from stacks.datasets import labels_folder
from stacks.network_needs import DRIFT_JOB, MODEL_BUILD_JOBS, QUALITY_JOB, TRACKED_BUILD_STEPS

ENDPOINT_TARGETS = ("staging", "production")


class MLPlatformStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        network: PrivateNetwork,
        lake: LakeStorage,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        model = config.model
        self.pipeline_name = naming.build_pipeline(config)
        dataset_prefix = f"{model.dataset}/"
        # Step outputs land under model-build/<pipeline>/<execution>/ (pipelines_src.definition).
        artifacts_prefix = BUILD_ARTIFACTS_PREFIX
        self.registry = ModelRegistry(
            self,
            "Registry",
            group_name=naming.model_package_group(config),
            description=f"Versions of the {model.name} model trained on {model.dataset} ({config.name})",
            retain=config.retain_data,
        )
        network.require(MODEL_BUILD_JOBS)
        network.require(DRIFT_JOB)
        tracking = config.tracking
        if tracking.managed:
            network.require(TRACKED_BUILD_STEPS)
        # HTTPS to the interface endpoints and S3 only; all TCP between instances of one distributed job.
        self.jobs_security_group = network.workload_security_group(
            Construct(self, "JobsNetwork"),
            "Group",
            description="SageMaker processing and training jobs: HTTPS to the VPC endpoints and S3, "
            "traffic between instances of one job",
            peers=True,
        )
        self.execution = SageMakerExecutionRole(
            self,
            "Execution",
            key=lake.key,
            # ...and the step code CI uploads (make ci-train) under code/, besides the stack's own assets.
            read_prefixes=[
                (lake.raw, dataset_prefix),
                (lake.curated, dataset_prefix),
                (lake.artifacts, f"{CODE_PREFIX}/"),
            ],
            write_prefixes=[(lake.artifacts, f"{artifacts_prefix}/{self.pipeline_name}/")],
            vpc=network.vpc,
            model_package_group_name=self.registry.group_name,
            subnet_ids=network.workload_subnet_ids,
            security_group_ids=[self.jobs_security_group.security_group_id],
            # Steps that log to the MLflow App need the network and the job's credentials (TRACKED_BUILD_STEPS).
            network_isolation=not tracking.managed,
        )
        # The stage's MLflow App (tracking.mode managed): one experiment per model, one run per execution.
        self.tracking: ExperimentTracking | None = None
        if tracking.managed:
            self.tracking = ExperimentTracking(
                self,
                "Tracking",
                name=naming.tracking_app(config),
                artifacts=lake.artifacts,
                artifacts_prefix=f"{TRACKING_ARTIFACTS_PREFIX}/",
                key=lake.key,
                retain=config.retain_data,
                reader_role_name=naming.tracking_reader_role(config),
                reader_principals=tracking.reader_role_arns,
                values_parameter=naming.platform_values_parameter(config),
            )
            self.tracking.grant_logging(self.execution.role, network.vpc)
        tracking_uri = self.tracking.app_arn if self.tracking else None
        self.model_build = ModelBuildPipeline(
            self,
            "ModelBuild",
            pipeline_name=self.pipeline_name,
            config=model,
            region=config.region,
            role=self.execution.role,
            key=lake.key,
            # The curation job's output (curated Parquet, bad rows quarantined), never the raw zone.
            input_data_uri=lake.curated.s3_url_for_object(dataset_prefix),
            artifacts_bucket=lake.artifacts.bucket_name,
            artifacts_prefix=artifacts_prefix,
            model_package_group_name=self.registry.group_name,
            subnets=network.workload_subnet_ids,
            security_groups=[self.jobs_security_group.security_group_id],
            data_quality_monitor=config.operations.drift.model_monitor,
            tracking_uri=tracking_uri,
        )
        self.model_build.node.add_dependency(self.registry.group)

        drift = config.operations.drift
        drift_pipeline = naming.drift_pipeline(config)
        capture = naming.capture_prefix(config)
        baseline = naming.deployed_baseline_prefix(config)
        self.drift_execution = SageMakerExecutionRole(
            self,
            "DriftExecution",
            key=lake.key,
            read_prefixes=[(lake.raw, capture), (lake.curated, dataset_prefix), (lake.artifacts, baseline)],
            write_prefixes=[(lake.artifacts, f"{DRIFT_ARTIFACTS_PREFIX}/{drift_pipeline}/")],
            vpc=network.vpc,
            model_package_group_name=None,
            description="Drift-check pipeline and its processing job",
            subnet_ids=network.workload_subnet_ids,
            security_group_ids=[self.jobs_security_group.security_group_id],
            # The drift job only writes files (pipelines_src/drift_definition.py); its metrics are put to
            # CloudWatch from outside the VPC by the Operations stack's drift-metrics function.
            network_isolation=True,
        )
        self.drift_check = DriftCheckPipeline(
            self,
            "DriftCheck",
            pipeline_name=drift_pipeline,
            config=drift,
            model_name=model.name,
            stage_name=config.name,
            region=config.region,
            role=self.drift_execution.role,
            key=lake.key,
            baseline_uri=lake.artifacts.s3_url_for_object(baseline),
            data_uri=lake.raw.s3_url_for_object(capture)
            if drift.input == "capture"
            else lake.curated.s3_url_for_object(dataset_prefix),
            artifacts_bucket=lake.artifacts.bucket_name,
            artifacts_prefix=DRIFT_ARTIFACTS_PREFIX,
            source=self.model_build.source,
            runner=self.model_build.runner,
            contract=self.model_build.contract,
            subnets=network.workload_subnet_ids,
            security_groups=[self.jobs_security_group.security_group_id],
        )

        self._quality_check(config, network, lake)

        self.values = PlatformValues(
            stage=config.name,
            region=config.region,
            build_pipeline=self.pipeline_name,
            drift_pipeline=drift_pipeline,
            pipeline_role_arn=self.execution.role.role_arn,
            raw_bucket=lake.raw.bucket_name,
            curated_bucket=lake.curated.bucket_name,
            artifacts_bucket=lake.artifacts.bucket_name,
            artifacts_prefix=artifacts_prefix,
            code_prefix=CODE_PREFIX,
            drift_artifacts_prefix=DRIFT_ARTIFACTS_PREFIX,
            input_data_uri=self.model_build.input_data_uri,
            kms_key_arn=lake.key.key_arn,
            subnet_ids=tuple(network.workload_subnet_ids),
            security_group_ids=(self.jobs_security_group.security_group_id,),
            model_package_group=self.registry.group_name,
            model=model,
            data_quality_monitor=config.operations.drift.model_monitor,
            tracking_uri=tracking_uri,
        )
        # The stage's deploy-time values for CI and the operator CLI (resolver/published.py): written here only.
        self.values_parameter = ssm.StringParameter(
            self,
            "PlatformValues",
            parameter_name=naming.platform_values_parameter(config),
            description=f"{config.prefix}: the platform's deploy-time values (JSON), written by CloudFormation",
            string_value=self.to_json_string(self.values.as_document()),
        )

    def _quality_check(self, config: StageConfig, network: PrivateNetwork, lake: LakeStorage) -> None:
        """The model-quality check: the production capture joined with the curated labels (read only), its
        report and metrics file written under its own prefix of the artifacts zone, network-isolated."""
        network.require(QUALITY_JOB)
        quality_pipeline = naming.quality_pipeline(config)
        capture = naming.capture_prefix(config)
        # The curation job's output for the labels dataset (contract-checked, quarantined), never raw labels.
        labels = f"{labels_folder(config.model.dataset)}/"
        self.quality_execution = SageMakerExecutionRole(
            self,
            "QualityExecution",
            key=lake.key,
            read_prefixes=[(lake.raw, capture), (lake.curated, labels)],
            write_prefixes=[(lake.artifacts, f"{naming.QUALITY_ARTIFACTS_PREFIX}/{quality_pipeline}/")],
            vpc=network.vpc,
            model_package_group_name=None,
            description="Model-quality check pipeline and its processing job",
            subnet_ids=network.workload_subnet_ids,
            security_group_ids=[self.jobs_security_group.security_group_id],
            # quality.py only reads and writes files; the Operations stack's quality-metrics function puts its
            # metrics to CloudWatch from outside the VPC.
            network_isolation=True,
        )
        self.quality_check = QualityCheckPipeline(
            self,
            "QualityCheck",
            pipeline_name=quality_pipeline,
            config=config.operations.quality,
            model=config.model,
            stage_name=config.name,
            region=config.region,
            role=self.quality_execution.role,
            key=lake.key,
            capture_uri=lake.raw.s3_url_for_object(capture),
            labels_uri=lake.curated.s3_url_for_object(labels),
            artifacts_bucket=lake.artifacts.bucket_name,
            artifacts_prefix=naming.QUALITY_ARTIFACTS_PREFIX,
            source=self.model_build.source,
            runner=self.model_build.runner,
            contract=self.model_build.contract,
            subnets=network.workload_subnet_ids,
            security_groups=[self.jobs_security_group.security_group_id],
        )
