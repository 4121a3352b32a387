"""Powertools idempotency wired to a DynamoDB table whose client is passed in (tests pass moto's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

F = TypeVar("F", bound=Callable[..., Any])


def make_idempotent(
    function: F,
    *,
    table_name: str,
    dynamodb: Any,
    key_jmespath: str,
    expires_after_seconds: int,
    data_keyword_argument: str = "event",
) -> tuple[F, IdempotencyConfig]:
    """Wrap ``function`` so a call with the same key in ``data_keyword_argument`` runs once per TTL.

    The table's partition key is ``id`` (Powertools' default). Returns the wrapped function and
    its config, on which the handler registers the Lambda context for in-progress expiry.
    """
    persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb)
    config = IdempotencyConfig(
        event_key_jmespath=key_jmespath,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=expires_after_seconds,
    )
    wrapped: F = idempotent_function(
        data_keyword_argument=data_keyword_argument,
        persistence_store=persistence,
        config=config,
    )(function)
    return wrapped, config
