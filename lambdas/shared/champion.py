"""The champion of a model-build execution: the version serving production, resolved once for every caller.

The model-build pipeline's Evaluate step scores the new model and the champion on the same test split
(pipelines_src/definition.py). Its jobs are network-isolated, so the champion's model artifact reaches
them as a processing input named by the execution parameter ``ChampionModelData``, which whoever starts
an execution resolves here: the CI Train build (pipelines_src/cicd.py) and the drift-alert function.

The served version is what the release tool records after a successful deployment, in the SSM parameter
``/<project>/<stage>/<model>/production/model-package-arn`` (resolver/naming.py). The record is used only
when it names exactly a version of this stage's group (lambdas/shared/arns.py) and that version is
Approved in the registry; its ``ModelDataUrl`` is the champion. No record (nothing deployed yet) means no
champion: the parameter is left out and the definition's default (no champion) applies. A record that
fails the check raises ChampionError: an execution is not started against a champion nobody can vouch
for, nor silently without the comparison.

Needs ``ssm:GetParameter`` on that one parameter and ``sagemaker:DescribeModelPackage`` on the group's
versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import arns, config

# The model-build pipeline's parameter (pipelines_src/definition.py CHAMPION_MODEL_DATA).
PARAMETER = "ChampionModelData"
APPROVED = "Approved"


class ChampionError(RuntimeError):
    """The served-version record cannot be used as the champion; the message says why, on one line."""


@dataclass(frozen=True)
class Champion:
    """The version serving production and its model artifact."""

    model_package_arn: str
    version: int
    model_data_url: str

    def start_parameters(self) -> list[dict[str, str]]:
        """StartPipelineExecution's ``PipelineParameters`` that make this version the champion."""
        return [{"Name": PARAMETER, "Value": self.model_data_url}]


def find(ssm: Any, sagemaker: Any, *, parameter: str, scope: arns.VersionScope) -> Champion | None:
    """The champion recorded in ``parameter``, checked against the registry; None when nothing is recorded."""
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    try:
        version = arns.require_version_arn(value, scope=scope)
    except arns.InvalidArnError as error:
        raise ChampionError(f"{parameter}: {error}") from None
    package = sagemaker.describe_model_package(ModelPackageName=value)
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        raise ChampionError(f"{parameter}: {value} is {status}, not {APPROVED}: it cannot be the champion")
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    url = containers[0].get("ModelDataUrl") if containers else None
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise ChampionError(f"{parameter}: {value} has no S3 ModelDataUrl: it cannot be the champion")
    return Champion(model_package_arn=value, version=version, model_data_url=url)


def start_parameters(ssm: Any, sagemaker: Any, *, parameter: str, scope: arns.VersionScope) -> list[dict[str, str]]:
    """``PipelineParameters`` for StartPipelineExecution: the champion's, or none (the definition's default)."""
    found = find(ssm, sagemaker, parameter=parameter, scope=scope)
    return [] if found is None else found.start_parameters()


def start_parameters_from_environ(environ: Mapping[str, str], ssm: Any, sagemaker: Any) -> list[dict[str, str]]:
    """``start_parameters`` for a caller configured by its environment (the CI Train build): the record in
    CHAMPION_PARAMETER, the group in MODEL_PACKAGE_GROUP, _PARTITION, _REGION and _ACCOUNT."""
    parameter = config.require_str(environ, "CHAMPION_PARAMETER")
    return start_parameters(ssm, sagemaker, parameter=parameter, scope=config.require_version_scope(environ))
