"""Where the commands' AWS calls go: the stage's names and region, clients, and the errors the CLI reports."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from resolver.config import StageConfig

LOCAL_ENDPOINT = "http://127.0.0.1:5000"
# What --local sends as credentials: an emulator accepts any.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
USAGE = 2
FAILED = 1
# Error codes that mean "no such resource" (SageMaker answers ValidationException with a message saying so).
NOT_FOUND_CODES = frozenset(
    {"ResourceNotFound", "ResourceNotFoundException", "PipelineNotFoundException", "NoSuchBucket", "NoSuchKey"}
)
_NOT_FOUND_MESSAGE = re.compile(r"could not find|does not exist|not found", re.IGNORECASE)


class CliError(Exception):
    """A failure the CLI reports as one line (``mlops: <message>``) and an exit code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def error_message(error: Exception) -> str:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return str(error)
    return str(response.get("Error", {}).get("Message", "")) or str(error)


def is_not_found(error: Exception) -> bool:
    """A botocore ClientError that says the named resource does not exist."""
    code = error_code(error)
    return code in NOT_FOUND_CODES or (code == "ValidationException" and bool(_NOT_FOUND_MESSAGE.search(str(error))))


@functools.cache
def _local_session() -> Any:
    """One session with the emulator's fake credentials per process: its clients share the loaded service models."""
    import boto3

    return boto3.Session(**LOCAL_CREDENTIALS)


@dataclass
class Aws:
    """The stage's config and lazily created clients for its region (and, with --local, the emulator)."""

    config: StageConfig
    region: str
    endpoint_url: str | None = None
    local: bool = False
    profile: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _session: Any = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """Where the calls went, for messages: ``stage dev, us-east-1`` (and the emulator's address)."""
        suffix = f", {self.endpoint_url}" if self.endpoint_url else ""
        return f"stage {self.config.name}, {self.region}{suffix}"

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            if self._session is None:
                self._session = _local_session() if self.local else boto3.Session(profile_name=self.profile)
            if self.local:
                settings = Config(
                    connect_timeout=2,
                    read_timeout=30,
                    retries={"mode": "standard", "max_attempts": 1},
                    s3={"addressing_style": "path"},
                )
            else:
                settings = Config(retries={"max_attempts": 5, "mode": "standard"})
            self._clients[service] = self._session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url, config=settings
            )
        return self._clients[service]

    def not_found(self, what: str, error: Exception) -> CliError:
        """``<what> not found (stage dev, us-east-1)`` for a not-found error; the service's message otherwise."""
        if is_not_found(error):
            return CliError(f"{what} not found ({self.where})")
        return CliError(f"{what}: {error_code(error) or type(error).__name__}: {error_message(error)}")
