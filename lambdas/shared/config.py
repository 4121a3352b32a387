"""Parsing of Lambda environment variables into typed values, with errors naming the variable."""

from __future__ import annotations

import re
from collections.abc import Mapping

from . import arns

_ACCOUNT = re.compile(r"[0-9]{12}")
_ARN = re.compile(r"^arn:aws[a-z-]*:(?P<service>[a-z0-9-]+):[a-z0-9-]+:\d{12}:\S+$")


class ConfigError(ValueError):
    """An environment variable is missing or invalid."""


def require_str(env: Mapping[str, str], name: str) -> str:
    """The non-blank value of ``name``, stripped."""
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is missing or empty")
    return value


def require_int(env: Mapping[str, str], name: str, *, minimum: int = 0) -> int:
    """The integer value of ``name``, at least ``minimum``."""
    raw = require_str(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"environment variable {name} must be >= {minimum}, got {value}")
    return value


def require_account(env: Mapping[str, str], name: str) -> str:
    """The value of ``name``, which must be a 12-digit AWS account id."""
    value = require_str(env, name)
    if _ACCOUNT.fullmatch(value) is None:
        raise ConfigError(f"environment variable {name} must be a 12-digit account id, got {value!r}")
    return value


def require_arn(env: Mapping[str, str], name: str, *, service: str) -> str:
    """The value of ``name``, which must be an ARN of ``service`` (e.g. "sns")."""
    value = require_str(env, name)
    match = _ARN.match(value)
    if match is None or match["service"] != service:
        raise ConfigError(f"environment variable {name} must be an {service} ARN, got {value!r}")
    return value


def require_version_scope(env: Mapping[str, str]) -> arns.VersionScope:
    """The stage's model package group and where it lives: MODEL_PACKAGE_GROUP, _PARTITION, _REGION, _ACCOUNT."""
    return arns.VersionScope(
        partition=require_str(env, "MODEL_PACKAGE_PARTITION"),
        region=require_str(env, "MODEL_PACKAGE_REGION"),
        account=require_account(env, "MODEL_PACKAGE_ACCOUNT"),
        group=require_str(env, "MODEL_PACKAGE_GROUP"),
    )
