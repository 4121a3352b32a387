"""One line about a registered model version for people deciding on it: its evaluation metrics.

    python -m pipelines_src.version_info --model-package-arn ARN
    -> version 7 of mlops-prod-delivery-time: rmse 4.404, mae 2.914, r2 0.828

The deploy pipeline puts this line in its manual-approval notification. The metrics come from the
version's registered ModelQuality statistics (the Evaluate step's evaluation.json).

Exit codes: 0 printed; 1 the version or its metrics cannot be read.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")


class VersionInfoError(RuntimeError):
    """The version's metrics cannot be read; the message says why."""


def metrics_line(sagemaker: Any, s3: Any, model_package_arn: str) -> str:
    """``version N of GROUP: name value, ...`` from the version's evaluation report."""
    try:
        package = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    except Exception as error:  # any SDK error: not found, access denied
        raise VersionInfoError(f"cannot describe {model_package_arn}: {error}") from error
    uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri", "")
    match = _S3_URI.match(uri)
    if match is None:
        raise VersionInfoError(f"{model_package_arn} has no evaluation report (ModelMetrics.ModelQuality.Statistics)")
    try:
        report = json.loads(s3.get_object(Bucket=match["bucket"], Key=match["key"])["Body"].read())
        metrics = report["regression_metrics"]
        values = ", ".join(f"{name} {float(entry['value']):.3f}" for name, entry in metrics.items())
    except Exception as error:  # unreadable object or unexpected shape
        raise VersionInfoError(f"cannot read the evaluation report {uri}: {error}") from error
    group = package.get("ModelPackageGroupName", "?")
    return f"version {package.get('ModelPackageVersion', '?')} of {group}: {values}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print a registered model version's evaluation metrics.")
    parser.add_argument("--model-package-arn", required=True)
    args = parser.parse_args(argv)
    import boto3

    try:
        print(metrics_line(boto3.client("sagemaker"), boto3.client("s3"), args.model_package_arn))
    except VersionInfoError as error:
        print(f"version-info: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
