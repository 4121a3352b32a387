"""Fixtures for the Lambda handlers: moto-backed AWS resources and the Lambda import layout.

``lambdas/`` goes on sys.path so handlers import ``shared`` as a top-level package, exactly as in
their deployed asset (see lambdas/shared/__init__.py). The environment is set here, before any
handler module is imported, because handlers parse it once at import.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import strategies as st

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
TOPIC_NAME = "mlops-notifications"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC_NAME}"
TABLE = "mlops-idempotency"
MODEL_PACKAGE_GROUP = "churn-models"
DEPLOY_PIPELINE = "churn-deploy"
MODEL_BUILD_PIPELINE = "churn-model-build"
ALARM_PREFIX = "mlops-drift-"
DRIFT_PIPELINE = "mlops-dev-churn-drift-check"
DRIFT_PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{DRIFT_PIPELINE}"
ARTIFACTS_BUCKET = "mlops-dev-artifacts"
CHAMPION_PARAMETER = "/mlops/test/churn/production/model-package-arn"
# Arbitrary JSON values that malformed events are made of (property tests of both handlers).
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)

_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_SERVICE_NAME": "mlops-lambdas-test",
    "POWERTOOLS_METRICS_NAMESPACE": "mlops-test",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "MODEL_PACKAGE_GROUP": MODEL_PACKAGE_GROUP,
    "MODEL_PACKAGE_PARTITION": "aws",
    "MODEL_PACKAGE_REGION": REGION,
    "MODEL_PACKAGE_ACCOUNT": ACCOUNT,
    "DEPLOY_PIPELINE_NAME": DEPLOY_PIPELINE,
    "MODEL_BUILD_PIPELINE_NAME": MODEL_BUILD_PIPELINE,
    "ALARM_PREFIX": ALARM_PREFIX,
    "COOLDOWN_MINUTES": "60",
    "NOTIFICATION_TOPIC_ARN": TOPIC_ARN,
    "IDEMPOTENCY_TABLE": TABLE,
    "PIPELINE_ARN": DRIFT_PIPELINE_ARN,
    "STEP_NAME": "DetectDrift",
    "METRICS_BUCKET": ARTIFACTS_BUCKET,
    "METRICS_PREFIX": f"drift-check/{DRIFT_PIPELINE}/",
    "METRICS_KEY_SUFFIX": "DetectDrift/report/drift_metrics.json",
    "METRIC_NAMESPACE": "MLOps/Drift",
    "METRIC_DIMENSIONS": '{"Model": "churn", "Stage": "dev"}',
    "CHAMPION_PARAMETER": CHAMPION_PARAMETER,
    # quality_start (the quality metrics function shares drift_metrics' variables).
    "EVENT_SOURCE": "mlops.dev.operations",
    "QUALITY_PIPELINE_NAME": "mlops-dev-churn-quality-check",
    "REFERENCE_PARAMETER": "ReferenceMetric",
    "REFERENCE_METADATA_KEY": "challenger_rmse",
}
os.environ.update(_ENV)
for _variable in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(_variable, None)


@dataclass
class Aws:
    """moto-backed clients plus the resources every handler test shares."""

    client: Callable[[str], Any]
    queue_url: str

    @property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @property
    def sns(self) -> Any:
        return self.client("sns")

    def published(self) -> list[dict[str, Any]]:
        """Every SNS message delivered to the test queue so far (Subject, Message)."""
        sqs = self.client("sqs")
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def items(self) -> list[dict[str, Any]]:
        """Every item of the idempotency table."""
        items: list[dict[str, Any]] = self.dynamodb.scan(TableName=TABLE)["Items"]
        return items


@pytest.fixture(scope="session")
def boto3_session() -> Any:
    """One session for the whole run: it caches service models, so clients are cheap to create.

    moto is imported first: it hooks the handlers a new session copies, so clients of this session
    reach moto whenever a test has mock_aws active (and fail offline otherwise).
    """
    import boto3
    import moto  # noqa: F401

    return boto3.session.Session(region_name=REGION)


@pytest.fixture(scope="session")
def aws_client(boto3_session: Any) -> Callable[[str], Any]:
    """One client per service for the whole run (creating clients is the slow part of a test)."""

    @functools.cache
    def client(service: str) -> Any:
        return boto3_session.client(service)

    return client


@pytest.fixture
def aws(aws_client: Callable[[str], Any]) -> Iterator[Aws]:
    """Fresh moto state: the idempotency table and the notification topic, subscribed to by an SQS queue."""
    from moto import mock_aws

    with mock_aws():
        aws_client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = aws_client("sqs")
        topic_arn = aws_client("sns").create_topic(Name=TOPIC_NAME)["TopicArn"]
        assert topic_arn == TOPIC_ARN
        queue_url = sqs.create_queue(QueueName="notifications-probe")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        aws_client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        yield Aws(client=aws_client, queue_url=queue_url)


@pytest.fixture
def lambda_context() -> Any:
    """The attributes of a Lambda context that Powertools reads."""
    return SimpleNamespace(
        function_name="test-function",
        function_version="$LATEST",
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:test-function",
        aws_request_id="00000000-0000-0000-0000-000000000000",
        get_remaining_time_in_millis=lambda: 30_000,
    )
