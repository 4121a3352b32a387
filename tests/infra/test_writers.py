"""Who writes what (README): each mutable resource has one writer among the roles every template of a stage defines.

Every IAM statement of every synthesized template (cross-stack references resolved through the exports of
the same cloud assembly) is checked for actions that would write the resource; the roles holding one are
that resource's writers. CloudFormation itself deploys under the CDK bootstrap roles, which no template
defines: a resource CloudFormation alone writes has no writer here.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from resolver import naming
from resolver.config import PlatformConfig
from stacks.nag import flatten_reference
from tests.conftest import Synthesized

STAGES = ["dev", "staging", "prod"]
DEFINITION_WRITES = ("sagemaker:CreatePipeline", "sagemaker:UpdatePipeline", "sagemaker:DeletePipeline")
PARAMETER_WRITES = ("ssm:PutParameter", "ssm:DeleteParameter", "ssm:DeleteParameters", "ssm:LabelParameterVersion")
OBJECT_WRITES = ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:RestoreObject")


@dataclass(frozen=True)
class Grant:
    template: str  # the template file's name
    role: str  # the role's logical id in that template
    actions: tuple[str, ...]
    resources: tuple[str, ...]  # flattened, cross-stack references resolved


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resolve(node: Any, exports: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, exports) for item in node]
    if isinstance(node, dict):
        if set(node) == {"Fn::ImportValue"} and node["Fn::ImportValue"] in exports:
            return _resolve(exports[node["Fn::ImportValue"]], exports)
        return {key: _resolve(item, exports) for key, item in node.items()}
    return node


def grants(outdir: Path) -> Iterator[Grant]:
    """Every Allow statement attached to a role, in every cloud assembly under ``outdir``."""
    for assembly in sorted({path.parent for path in outdir.rglob("*.template.json")}):
        templates = {path.name: json.loads(path.read_text()) for path in sorted(assembly.glob("*.template.json"))}
        exports = {
            output["Export"]["Name"]: output["Value"]
            for template in templates.values()
            for output in template.get("Outputs", {}).values()
            if isinstance(output.get("Export", {}).get("Name"), str)
        }
        for name, template in templates.items():
            for logical_id, resource in template.get("Resources", {}).items():
                properties = resource.get("Properties", {})
                if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                    roles = [flatten_reference(role) for role in properties.get("Roles", [])]
                    documents = [properties["PolicyDocument"]]
                elif resource["Type"] == "AWS::IAM::Role":
                    roles = [f"<{logical_id}>"]
                    documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
                else:
                    continue
                for document in documents:
                    for statement in _list(document["Statement"]):
                        if statement.get("Effect") != "Allow" or "Resource" not in statement:
                            continue
                        resources = tuple(
                            flatten_reference(_resolve(item, exports)) for item in _list(statement["Resource"])
                        )
                        for role in roles:
                            yield Grant(name, role, tuple(_list(statement["Action"])), resources)


def _allows(grant: Grant, wanted: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in grant.actions for action in wanted)


def writers(outdir: Path, wanted: tuple[str, ...], covers: Any) -> set[tuple[str, str]]:
    """The (template, role) pairs allowed one of ``wanted`` on a resource ``covers`` accepts."""
    return {
        (grant.template, grant.role)
        for grant in grants(outdir)
        if _allows(grant, wanted) and any(covers(resource) for resource in grant.resources)
    }


def _arn_name(resource: str, kind: str) -> str | None:
    """The name pattern of an ARN of this resource kind (``*`` for a resource that is every resource)."""
    if resource == "*":
        return "*"
    marker = f":{kind}/"
    if marker in resource:
        return resource.split(marker, 1)[1]
    head = resource.split(":")
    return "*" if len(head) > 5 and head[5] == "*" else None


def _covers(kind: str, name: str) -> Any:
    def covers(resource: str) -> bool:
        pattern = _arn_name(resource, kind)
        return pattern is not None and fnmatch.fnmatchcase(name, pattern)

    return covers


def _role_of_project(synthesized: Synthesized, stage: str, logical_prefix: str) -> str:
    resources = synthesized.template(stage, "cicd").to_json()["Resources"]
    (role,) = [
        flatten_reference(r["Properties"]["ServiceRole"]).split(".")[0] + ">"
        for name, r in resources.items()
        if r["Type"] == "AWS::CodeBuild::Project" and name.startswith(logical_prefix)
    ]
    return role


def _stage_templates(synthesized: Synthesized, stage: str) -> set[str]:
    prefix = synthesized.stages[stage].config.prefix.replace("-", "")
    return {path.name for path in synthesized.outdir.rglob("*.template.json") if path.name.startswith(prefix)}


def _in_stage(found: set[tuple[str, str]], synthesized: Synthesized, stage: str) -> set[tuple[str, str]]:
    templates = _stage_templates(synthesized, stage)
    return {(template, role) for template, role in found if template in templates}


def _cicd_template(synthesized: Synthesized, stage: str) -> str:
    (name,) = {name for name in _stage_templates(synthesized, stage) if "CICD" in name}
    return name


@pytest.mark.parametrize("stage", STAGES)
def test_cloudformation_alone_writes_the_model_build_pipelines_definition(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    pipeline = _covers("pipeline", naming.build_pipeline(config))
    assert _in_stage(writers(synthesized.outdir, DEFINITION_WRITES, pipeline), synthesized, stage) == set()
    # ...and CI's Train role runs it (the check would pass vacuously if the grant were never recognised).
    runs = writers(synthesized.outdir, ("sagemaker:StartPipelineExecution",), pipeline)
    assert (_cicd_template(synthesized, stage), _role_of_project(synthesized, stage, "Train")) in runs


@pytest.mark.parametrize("stage", STAGES)
def test_cloudformation_alone_writes_the_published_values(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    name = naming.platform_values_parameter(platform_config.stage(stage)).lstrip("/")
    found = writers(synthesized.outdir, PARAMETER_WRITES, _covers("parameter", name))
    assert _in_stage(found, synthesized, stage) == set()


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("target", ["staging", "production"])
def test_the_release_tool_of_a_target_alone_records_the_version_it_serves(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str, target: str
) -> None:
    config = platform_config.stage(stage)
    record = naming.deployed_version_parameter(config, target).lstrip("/")
    found = _in_stage(writers(synthesized.outdir, PARAMETER_WRITES, _covers("parameter", record)), synthesized, stage)
    assert found == {(_cicd_template(synthesized, stage), _role_of_project(synthesized, stage, f"Deploy{target}"))}
    stack = f"{naming.endpoint_stack(config, target)}/id"
    updates = writers(synthesized.outdir, ("cloudformation:UpdateStack",), _covers("stack", stack))
    assert _in_stage(updates, synthesized, stage) == found, "the served version changes only with the release"


@pytest.mark.parametrize("stage", STAGES)
def test_the_production_release_alone_writes_the_drift_checks_baseline(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    artifacts = synthesized.stages[stage].data_lake.storage.artifacts
    bucket = flatten_reference(synthesized.stages[stage].data_lake.resolve(artifacts.bucket_arn))
    key = f"{naming.deployed_baseline_prefix(config)}baseline.json"

    def covers(resource: str) -> bool:
        return resource == "*" or fnmatch.fnmatchcase(f"{bucket}/{key}", resource)

    found = _in_stage(writers(synthesized.outdir, OBJECT_WRITES, covers), synthesized, stage)
    assert found == {(_cicd_template(synthesized, stage), _role_of_project(synthesized, stage, "Deployproduction"))}
