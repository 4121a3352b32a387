"""Model package version ARNs: one version of this stage's group, in its account and region, nothing else.

The registry-approval function and the release tool (stacks/release.py) accept an ARN only in exactly
this form, so a value that reaches a deploy command cannot carry anything but a version number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):sagemaker:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]):"
    r"(?P<account>[0-9]{12}):model-package/(?P<group>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})/"
    r"(?P<version>[1-9][0-9]{0,8})",
    re.ASCII,
)
_SHOWN = 200


class InvalidArnError(ValueError):
    """The value is not a version of the expected model package group; the message says why, on one line."""


@dataclass(frozen=True)
class VersionScope:
    """Where this stage's model versions live."""

    partition: str
    region: str
    account: str
    group: str

    def arn(self, version: int) -> str:
        """The ARN of ``version`` of the group."""
        return f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:model-package/{self.group}/{version}"


def require_version_arn(value: object, *, scope: VersionScope) -> int:
    """The version number ``value`` names, if it is exactly ``scope.arn(version)``; else InvalidArnError."""
    if not isinstance(value, str):
        raise InvalidArnError(f"a model package version ARN must be a string, got {type(value).__name__}")
    match = _VERSION_ARN.fullmatch(value)
    if match is None:
        raise InvalidArnError(
            "not a model package version ARN (arn:<partition>:sagemaker:<region>:<account>:model-package/"
            f"<group>/<version>): {value[:_SHOWN]!r}"
        )
    for part in ("partition", "region", "account"):
        if match[part] != getattr(scope, part):
            raise InvalidArnError(f"{value} is in {part} {match[part]}, not this stage's {getattr(scope, part)}")
    if match["group"] != scope.group:
        raise InvalidArnError(f"{value} is not a version of this stage's model package group {scope.group}")
    return int(match["version"])
