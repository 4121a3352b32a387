"""Validation helpers for EventBridge events: a bad event is rejected with a reason, never retried."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any


class InvalidEventError(ValueError):
    """The event does not have the expected shape; the message says what was wrong."""


def rejected(reason: str) -> dict[str, Any]:
    """The result returned (not raised) for an event that will never be processed."""
    return {"status": "rejected", "reason": reason}


def ignored(reason: str) -> dict[str, Any]:
    """The result returned for a valid event this function deliberately does not act on."""
    return {"status": "ignored", "reason": reason}


def require_mapping(value: object, path: str) -> Mapping[str, Any]:
    """``value`` as a mapping with string keys, or InvalidEventError naming ``path``."""
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidEventError(f"{path} must be an object, got {type(value).__name__}")
    return value


def require_field(mapping: Mapping[str, Any], key: str, path: str, *, max_length: int = 2048) -> str:
    """The non-empty string at ``mapping[key]``, or InvalidEventError naming ``path.key``."""
    if key not in mapping:
        raise InvalidEventError(f"{path}.{key} is missing")
    value = mapping[key]
    if not isinstance(value, str):
        raise InvalidEventError(f"{path}.{key} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidEventError(f"{path}.{key} is empty")
    if len(value) > max_length:
        raise InvalidEventError(f"{path}.{key} is longer than {max_length} characters")
    return value


def optional_field(mapping: Mapping[str, Any], key: str, path: str, *, max_length: int = 2048) -> str | None:
    """The string at ``mapping[key]`` if present and not null, else None."""
    if mapping.get(key) is None:
        return None
    return require_field(mapping, key, path, max_length=max_length)


def require_envelope(event: object, *, source: str, detail_type: str) -> Mapping[str, Any]:
    """Check the EventBridge envelope (source, detail-type) and return its ``detail`` object."""
    envelope = require_mapping(event, "event")
    actual_source = require_field(envelope, "source", "event")
    if actual_source != source:
        raise InvalidEventError(f"event.source is {actual_source!r}, expected {source!r}")
    actual_type = require_field(envelope, "detail-type", "event")
    if actual_type != detail_type:
        raise InvalidEventError(f"event.detail-type is {actual_type!r}, expected {detail_type!r}")
    if "detail" not in envelope:
        raise InvalidEventError("event.detail is missing")
    return require_mapping(envelope["detail"], "event.detail")


def derive_token(*parts: str) -> str:
    """A stable 64-character hex token from ``parts``: the same event gives the same token."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()
