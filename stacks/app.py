"""The CDK app: read the stage config once, build that stage, fail synth on any validation finding."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from resolver.config import CONTEXT_KEY, DEFAULT_STAGE, ConfigError, PlatformConfig, load_config
from stacks.infra_pipeline_stack import InfraPipelineStack
from stacks.platform import PlatformStage

VALIDATION_REPORT = "validation-report.json"


def config_from(app: App) -> PlatformConfig:
    context: Mapping[str, Any] = {}
    raw = app.node.try_get_context(CONTEXT_KEY)
    if raw is not None:
        context = {CONTEXT_KEY: raw}
    return load_config(context)


def build(app: App, config: PlatformConfig, stage_names: Iterable[str]) -> list[PlatformStage]:
    """Each stage's stacks; with ``source.self_update``, also the pipeline that deploys them on push."""
    stages = []
    for name in stage_names:
        stage_config = config.stage(name)
        stage = PlatformStage(app, stage_config)
        if stage_config.source.self_update:
            stage.infra_pipeline = InfraPipelineStack(
                app,
                f"{stage_config.prefix}-InfraPipeline",
                config=stage_config,
                stage=stage,
                env=Environment(account=stage_config.account, region=stage_config.region),
                description=f"{stage_config.prefix}: self-updating pipeline of the platform's infrastructure",
            )
        stages.append(stage)
    return stages


def validation_failures(assembly_dir: str | Path) -> list[str]:
    """One line per failing rule of the synth's validation report (cdk-nag and CloudFormation checks).

    Under the CDK CLI a failing plugin only sets the exit code of the jsii kernel,
    which never reaches this process; the report on disk is the reliable signal.
    """
    report_file = Path(assembly_dir) / VALIDATION_REPORT
    if not report_file.exists():
        return []
    report = json.loads(report_file.read_text())
    lines = []
    for plugin in report.get("pluginReports", []):
        if plugin.get("conclusion") != "failure":
            continue
        for violation in plugin.get("violations", []):
            if violation.get("severity", "error") != "error":
                continue
            paths = ", ".join(c["constructPath"] for c in violation.get("violatingConstructs", []))
            lines.append(f"{plugin['pluginName']}: {violation['ruleName']}: {violation['description']} at {paths}")
    return lines


def main() -> None:
    app = App()
    try:
        config = config_from(app)
        stage = app.node.try_get_context("stage") or DEFAULT_STAGE
        build(app, config, [stage])
    except ConfigError as error:
        print(f"Invalid stage configuration in cdk.json: {error}", file=sys.stderr)
        sys.exit(2)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()
    failures = validation_failures(assembly.directory)
    if failures:
        print(f"Synth failed validation ({len(failures)} unacknowledged findings):", file=sys.stderr)
        for line in failures:
            print(f"  - {line}", file=sys.stderr)
        print(f"Full report: {Path(assembly.directory) / VALIDATION_REPORT}", file=sys.stderr)
        sys.exit(1)
