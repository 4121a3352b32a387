"""The synthesized templates as users deploy them: cfn-lint clean, validated at synth, summarized."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import RemovalPolicy, Stack, Validations
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from resolver.config import PlatformConfig
from stacks.app import build, validation_failures
from stacks.summary import stacks_in, summary
from tests.conftest import ROOT, Synthesized, cdk_json_context


@pytest.mark.slow
def test_every_template_of_every_stage_passes_cfn_lint(
    synthesized: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # .cfnlintrc.yaml holds the reasoned exceptions
    templates = sorted(str(path) for _, path in stacks_in(synthesized.outdir))
    # stages x (Network, DataLake, MLPlatform, Endpoint-staging, Endpoint-production, Operations, CICD)
    assert len(templates) == 3 * 7 + 1  # and prod's self-updating infrastructure pipeline
    from cfnlint.config import ConfigMixIn  # imported here: the unit runs (make unit) need no cfn-lint
    from cfnlint.runner import Runner

    # One runner for all templates: cfn-lint loads its rules and schemas once.
    findings = [str(match) for match in Runner(ConfigMixIn(templates)).run()]
    assert findings == []


@pytest.mark.slow
def test_synth_with_cloudformation_validation_and_cdk_nag_on_is_clean(
    platform_config: PlatformConfig, tmp_path: Path
) -> None:
    from aws_cdk import App

    # What `make synth` runs: built-in CloudFormation validation on, cdk-nag as a validation plugin.
    app = App(context=cdk_json_context(), outdir=str(tmp_path))
    build(app, platform_config, ["dev"])
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()
    assert validation_failures(assembly.directory) == []
    assert {name for name, _ in stacks_in(tmp_path)} == {
        "mlops-dev-Network",
        "mlops-dev-DataLake",
        "mlops-dev-MLPlatform",
        "mlops-dev-Endpoint-staging",
        "mlops-dev-Endpoint-production",
        "mlops-dev-Operations",
        "mlops-dev-CICD",
    }


def test_a_validation_failure_is_reported_line_by_line(tmp_path: Path) -> None:
    from aws_cdk import App

    app = App(context=cdk_json_context(), outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    s3.Bucket(Stack(app, "Insecure"), "Open", removal_policy=RemovalPolicy.DESTROY)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()  # in-process, CDK raises; under the CLI only the report on disk says so
    failures = validation_failures(tmp_path)
    assert "AwsSolutions: AwsSolutions-S10: " in "\n".join(failures)
    assert all(line.endswith("Insecure/Open/Resource") for line in failures if "-S" in line)


def test_summary_lists_each_stack_with_its_resource_count(synthesized: Synthesized) -> None:
    text = summary(synthesized.outdir)
    lines = text.splitlines()
    assert lines[0].split() == ["stack", "resources", "template"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert set(rows) == {
        f"mlops-{stage}-{stack}"
        for stage in ("dev", "staging", "prod")
        for stack in (
            "Network",
            "DataLake",
            "MLPlatform",
            "Endpoint-staging",
            "Endpoint-production",
            "Operations",
            "CICD",
        )
    } | {"mlops-prod-InfraPipeline"}
    for name, (count, template_file) in rows.items():
        resources = json.loads(Path(template_file).read_text())["Resources"]
        assert int(count) == len(resources), name
    assert lines[-1] == f"22 stacks synthesized to {synthesized.outdir.resolve()}"


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_cross_stack_references_are_exports_cloudformation_keeps_consistent(
    synthesized: Synthesized, stage: str
) -> None:
    """A value read with Fn::GetStackOutput is fixed when the consumer last deployed: replace the producer's
    resource and a consumer whose template did not change is skipped by `cdk deploy` and keeps the old id.
    An export cannot change while a stack imports it, so CloudFormation refuses the replacement instead."""
    platform = synthesized.stages[stage]
    for stack in platform.node.children:
        if isinstance(stack, Stack):
            assert "Fn::GetStackOutput" not in json.dumps(Template.from_stack(stack).to_json()), stack.stack_name
    assert "Fn::ImportValue" in json.dumps(synthesized.template(stage, "cicd").to_json())
