"""The asset publisher the infrastructure pipeline runs reads the asset manifests this app writes."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import ROOT, Synthesized

CDK_ASSETS = ROOT / "node_modules" / ".bin" / "cdk-assets"


def pinned_cdk_assets() -> str:
    return str(json.loads((ROOT / "package.json").read_text())["devDependencies"]["cdk-assets"])


def test_the_pinned_cdk_assets_is_the_installed_one() -> None:
    installed = json.loads((ROOT / "node_modules" / "cdk-assets" / "package.json").read_text())["version"]
    assert installed == pinned_cdk_assets()


@pytest.mark.slow  # one node process per manifest
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_pinned_cdk_assets_reads_every_asset_manifest_of_the_app(synthesized: Synthesized, stage: str) -> None:
    """`cdk-assets@latest` refuses manifests of a newer schema than it knows (4.7.3: at most 54, this app
    writes 55): the pin is checked against what this app really writes."""
    manifests = sorted(synthesized.outdir.glob(f"assembly-mlops-{stage}/*.assets.json"))
    assert manifests
    for manifest in manifests:
        result = subprocess.run(
            [str(CDK_ASSETS), "ls", "-p", str(manifest)], capture_output=True, text=True, check=False, timeout=120
        )
        assert result.returncode == 0, (manifest.name, result.stderr[-500:])
        listed = {line.split()[0] for line in result.stdout.splitlines() if line and not line.startswith(" ")}
        assert listed == set(json.loads(manifest.read_text())["files"]), manifest.name
