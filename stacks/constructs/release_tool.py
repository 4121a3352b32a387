"""The release tool as the platform deploys it: an S3 asset the model-deploy pipeline takes as its source.

The asset holds exactly the modules the deploy builds run, at the paths they import them from:
endpoint_release (the release), lambdas/shared/arns.py (the version-ARN check it shares with the
registry-approval function) and pipelines_src/promote.py (publishing the served version's baseline).
They use the standard library and boto3 only, which CodeBuild's standard image has, so a deploy build
installs nothing and reads nothing from the model repository. The asset is content-addressed: a
change to any of these files is a new object, published by `cdk deploy` of the platform, never by a push.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / ".build" / "release-tool"
# What the bundle carries, relative to the repository root (folders whole, without caches).
FILES = (
    "endpoint_release",
    "lambdas/__init__.py",
    "lambdas/shared/__init__.py",
    "lambdas/shared/arns.py",
    "pipelines_src/__init__.py",
    "pipelines_src/promote.py",
)


@functools.cache
def release_tool_dir() -> Path:
    """Assemble the bundle once per process from the files above."""
    if BUILD_DIR.exists():
        shutil.rmtree(BUILD_DIR)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for relative in FILES:
        source = ROOT / relative
        target = BUILD_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    return BUILD_DIR


def release_tool_asset(scope: Construct, id_: str) -> s3_assets.Asset:
    return s3_assets.Asset(scope, id_, path=str(release_tool_dir()))
