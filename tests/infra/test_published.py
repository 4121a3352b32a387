"""The stage's deploy-time values, published once by CloudFormation as one JSON SSM parameter (resolver.published)."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from resolver import naming
from resolver.config import PlatformConfig
from resolver.published import PlatformValues, PublishedValuesError
from tests.conftest import Synthesized, exported_value

STAGES = ["dev", "staging", "prod"]


def published_document(synthesized: Synthesized, stage: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parameter's resource and its JSON document, each CloudFormation reference left as the object it is."""
    resources = synthesized.template(stage, "ml_platform").to_json()["Resources"]
    config = synthesized.stages[stage].config
    (parameter,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::SSM::Parameter" and r["Properties"]["Name"] == naming.platform_values_parameter(config)
    ]
    value = parameter["Value"]
    parts = value["Fn::Join"][1] if isinstance(value, dict) else [value]
    references = {f"@{index}@": part for index, part in enumerate(parts) if not isinstance(part, str)}
    text = "".join(part if isinstance(part, str) else f"@{index}@" for index, part in enumerate(parts))

    def restore(node: Any) -> Any:
        if isinstance(node, list):
            return [restore(item) for item in node]
        if isinstance(node, dict):
            return {key: restore(item) for key, item in node.items()}
        if not isinstance(node, str):
            return node
        pieces = [references.get(piece, piece) for piece in re.split(r"(@\d+@)", node) if piece]
        return pieces[0] if len(pieces) == 1 else pieces

    return parameter, restore(json.loads(text))


@pytest.mark.parametrize("stage", STAGES)
def test_the_stage_publishes_the_values_its_stacks_created(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    platform = synthesized.stages[stage]
    lake, ml = platform.data_lake.storage, platform.ml_platform
    lake_template = synthesized.template(stage, "data_lake").to_json()
    network_template = synthesized.template(stage, "network").to_json()
    parameter, document = published_document(synthesized, stage)
    assert parameter["Type"] == "String"
    # CloudFormation renders no null: a stage without tracking publishes no tracking_uri, which reads as None.
    untracked = set() if config.tracking.managed else {"tracking_uri"}
    assert set(document) == {item.name for item in dataclasses.fields(PlatformValues)} - untracked

    def lake_value(reference: Any) -> Any:
        return exported_value(lake_template, reference)

    assert lake_value(document["raw_bucket"]) == platform.data_lake.resolve(lake.raw.bucket_name)
    assert lake_value(document["curated_bucket"]) == platform.data_lake.resolve(lake.curated.bucket_name)
    assert lake_value(document["artifacts_bucket"]) == platform.data_lake.resolve(lake.artifacts.bucket_name)
    assert lake_value(document["kms_key_arn"]) == platform.data_lake.resolve(lake.key.key_arn)
    # Training reads what the curation job wrote, as the deployed pipeline does.
    curated, suffix = document["input_data_uri"][1:]
    assert document["input_data_uri"][0] == "s3://"
    assert lake_value(curated) == platform.data_lake.resolve(lake.curated.bucket_name)
    assert suffix == f"/{config.model.dataset}/"
    assert document["pipeline_role_arn"] == ml.resolve(ml.execution.role.role_arn)
    assert document["security_group_ids"] == [ml.resolve(ml.jobs_security_group.security_group_id)]
    subnets = [exported_value(network_template, subnet) for subnet in document["subnet_ids"]]
    network = platform.network
    assert subnets == [network.resolve(subnet) for subnet in network.network.workload_subnet_ids]
    assert document["build_pipeline"] == naming.build_pipeline(config) == ml.pipeline_name
    assert document["drift_pipeline"] == naming.drift_pipeline(config)
    assert document["model_package_group"] == naming.model_package_group(config)
    assert (document["stage"], document["region"]) == (config.name, config.region)
    assert (document["artifacts_prefix"], document["code_prefix"], document["drift_artifacts_prefix"]) == (
        naming.BUILD_ARTIFACTS_PREFIX,
        naming.CODE_PREFIX,
        naming.DRIFT_ARTIFACTS_PREFIX,
    )
    assert document["model"] == dataclasses.asdict(config.model)
    assert document["data_quality_monitor"] is config.operations.drift.model_monitor
    # The steps' and a data scientist's MLFLOW_TRACKING_URI: the stage's MLflow App, by the ARN CloudFormation gives it.
    if config.tracking.managed:
        assert ml.tracking is not None
        assert document["tracking_uri"] == ml.resolve(ml.tracking.app_arn)
    else:
        assert ml.tracking is None


@pytest.mark.parametrize("stage", STAGES)
def test_what_the_stack_publishes_is_what_the_readers_parse(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    """The document CloudFormation renders (each reference a stand-in) parses back into the stage's values."""
    config = platform_config.stage(stage)
    parameter, _ = published_document(synthesized, stage)
    parts = parameter["Value"]["Fn::Join"][1]
    rendered = "".join(part if isinstance(part, str) else f"resolved-{index}" for index, part in enumerate(parts))
    parsed = PlatformValues.from_json(rendered, where="test")
    assert parsed.model == config.model and isinstance(parsed.model.threshold, float)
    assert parsed.data_quality_monitor is config.operations.drift.model_monitor
    assert len(parsed.subnet_ids) == len(synthesized.stages[stage].network.network.workload_subnet_ids)
    assert parsed.input_data_uri.startswith("s3://") and parsed.input_data_uri.endswith(f"/{config.model.dataset}/")
    assert (parsed.tracking_uri is not None) is config.tracking.managed
    # Local runs of the deployed definition log where the deployed one does.
    code = {"runner_uri": "s3://b/r.sh", "source_tar_uri": "s3://b/s.tar.gz", "contract_uri": "s3://b/c.json"}
    real = dataclasses.replace(parsed, pipeline_role_arn="arn:aws:iam::111111111111:role/r", kms_key_arn=_KEY)
    assert real.pipeline_settings(code).tracking_uri == parsed.tracking_uri


def test_a_published_tracking_uri_must_be_a_non_empty_string_and_may_be_absent() -> None:
    document = json.loads(_VALID)
    assert (
        PlatformValues.from_json(json.dumps(document), where="w").tracking_uri == "arn:aws:sagemaker:r:1:mlflow-app/x"
    )
    for absent in ({k: v for k, v in document.items() if k != "tracking_uri"}, {**document, "tracking_uri": None}):
        assert PlatformValues.from_json(json.dumps(absent), where="w").tracking_uri is None
    for bad in ("", 3, ["arn"]):
        with pytest.raises(PublishedValuesError, match=r"^w: tracking_uri is .*, not a str$"):
            PlatformValues.from_json(json.dumps({**document, "tracking_uri": bad}), where="w")


_KEY = "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000"
_VALID = json.dumps(
    {
        "stage": "staging",
        "region": "us-east-1",
        "build_pipeline": "p",
        "drift_pipeline": "d",
        "pipeline_role_arn": "arn:aws:iam::1:role/r",
        "raw_bucket": "raw",
        "curated_bucket": "cur",
        "artifacts_bucket": "art",
        "artifacts_prefix": "model-build",
        "code_prefix": "code",
        "drift_artifacts_prefix": "drift-check",
        "input_data_uri": "s3://cur/delivery_time/",
        "kms_key_arn": "arn:aws:kms:us-east-1:1:key/k",
        "subnet_ids": ["subnet-1"],
        "security_group_ids": ["sg-1"],
        "model_package_group": "g",
        "model": {
            "name": "m",
            "dataset": "delivery_time",
            "metric": "rmse",
            "goal": "minimize",
            "threshold": 8.0,
            "processing_instance_type": "ml.m5.xlarge",
            "training_instance_type": "ml.m5.xlarge",
            "champion_margin": 0.0,
        },
        "data_quality_monitor": False,
        "tracking_uri": "arn:aws:sagemaker:r:1:mlflow-app/x",
    }
)


def test_malformed_published_values_name_the_parameter_and_the_field() -> None:
    with pytest.raises(PublishedValuesError, match=r"^where: has no 'stage': the MLPlatform stack deployed is older$"):
        PlatformValues.from_json("{}", where="where")
    with pytest.raises(PublishedValuesError, match=r"^where: not JSON"):
        PlatformValues.from_json("{", where="where")
