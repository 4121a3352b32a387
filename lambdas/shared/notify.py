"""SNS notifications with subjects that satisfy the API's limits."""

from __future__ import annotations

from typing import Any

_SUBJECT_MAX = 100
_MESSAGE_MAX = 256 * 1024 - 1024  # SNS allows 256 KiB; keep room for attributes


def clean_subject(subject: str) -> str:
    """Printable ASCII, one line, at most 100 characters, never empty (SNS rules for Subject)."""
    printable = "".join(ch if " " <= ch <= "~" else " " for ch in subject).strip()
    return (printable or "MLOps notification")[:_SUBJECT_MAX]


def publish(sns: Any, topic_arn: str, subject: str, message: str) -> str:
    """Publish ``message`` to ``topic_arn`` and return the MessageId; API errors propagate."""
    body = message.encode("utf-8", "replace")[:_MESSAGE_MAX].decode("utf-8", "ignore")
    response = sns.publish(TopicArn=topic_arn, Subject=clean_subject(subject), Message=body)
    message_id: str = response["MessageId"]
    return message_id
