"""Lambda code without Docker: the handlers' folder as one asset, Powertools as a layer built from this venv.

The layer is assembled by copying the installed, pinned ``aws_lambda_powertools`` (pure Python)
and its one dependency the Lambda runtime lacks (``typing_extensions``) into
``.build/powertools-layer/python/``; jmespath ships with the runtime's boto3. The copy is
content-addressed by CDK like any asset, so a new pin in requirements.lock means a new layer.
"""

from __future__ import annotations

import functools
import importlib.metadata
import shutil
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = ROOT / "lambdas"
BUILD_DIR = ROOT / ".build"
# Never shipped: caches change the asset hash on every run (FACTS), tests are not code.
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "tests", "**/tests"]
# Python and architecture of every platform function (pure-Python code and layer).
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
_LAYER_DISTRIBUTIONS = {"aws-lambda-powertools": "aws_lambda_powertools", "typing-extensions": "typing_extensions"}


def _top_level_path(distribution: str, module: str) -> Path:
    """The installed folder or single-file module ``module`` of ``distribution``."""
    for file in importlib.metadata.files(distribution) or ():
        parts = file.parts
        if parts[0] == module or parts[0] == f"{module}.py":
            return Path(str(file.locate())).parents[len(parts) - 1] / parts[0]
    raise FileNotFoundError(f"{distribution} is not installed with a top-level {module}: run make install")


@functools.cache
def powertools_layer_dir() -> Path:
    """Assemble the layer folder once per process; its content is exactly the installed pins."""
    target = BUILD_DIR / "powertools-layer"
    if target.exists():
        shutil.rmtree(target)
    site = target / "python"
    site.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for distribution, module in _LAYER_DISTRIBUTIONS.items():
        source = _top_level_path(distribution, module)
        if source.is_dir():
            shutil.copytree(source, site / source.name, ignore=ignore)
        else:
            shutil.copy2(source, site / source.name)
    version = importlib.metadata.version("aws-lambda-powertools")
    (site / "POWERTOOLS_VERSION").write_text(version + "\n", encoding="utf-8")
    return target


def powertools_layer(scope: Construct, id_: str) -> lambda_.LayerVersion:
    version = importlib.metadata.version("aws-lambda-powertools")
    return lambda_.LayerVersion(
        scope,
        id_,
        code=lambda_.Code.from_asset(str(powertools_layer_dir())),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description=f"aws-lambda-powertools {version} (pure Python) and typing_extensions",
    )


def handlers_code() -> lambda_.Code:
    """Every handler and the ``shared`` package, importable as top-level packages in the function."""
    return lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=ASSET_EXCLUDES)
