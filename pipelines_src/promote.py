"""After a production deployment: make the deployed version's data baseline the drift check's reference.

The model-build pipeline registers each version with its training-data baseline
(``DriftCheckBaselines.ModelDataQuality.Statistics``, the ``baseline.json`` preprocess writes).
The drift-check pipeline compares recent inputs with ``<prefix>baseline.json`` in the
artifacts bucket; this copies the deployed version's baseline there and records which
version it came from in ``<prefix>deployed.json``.

    python -m pipelines_src.promote --model-package-arn ARN --bucket BUCKET --prefix deployed/<endpoint>/baseline/

Exit codes: 0 published; 1 the version has no baseline or it cannot be read; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from typing import Any

BASELINE_FILE = "baseline.json"
RECORD_FILE = "deployed.json"
_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[\w-]+/\d+$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")


class PromoteError(RuntimeError):
    """The version cannot be promoted; the message says why."""


def baseline_uri(sagemaker: Any, model_package_arn: str) -> str:
    """The S3 URI of the version's registered data baseline."""
    package = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    quality = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
    uri = quality.get("Statistics", {}).get("S3Uri")
    if not isinstance(uri, str) or not _S3_URI.match(uri):
        raise PromoteError(
            f"{model_package_arn} has no data baseline (DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri)"
        )
    return uri


def publish_baseline(
    sagemaker: Any, s3: Any, model_package_arn: str, bucket: str, prefix: str, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Copy the version's baseline to ``s3://bucket/<prefix>baseline.json``; record the version beside it."""
    if not _ARN.match(model_package_arn):
        raise PromoteError(f"not a model package version ARN: {model_package_arn!r}")
    source = baseline_uri(sagemaker, model_package_arn)
    match = _S3_URI.match(source)
    assert match is not None
    prefix = prefix if prefix.endswith("/") else f"{prefix}/"
    try:
        s3.copy_object(
            Bucket=bucket,
            Key=f"{prefix}{BASELINE_FILE}",
            CopySource={"Bucket": match["bucket"], "Key": match["key"]},
        )
    except Exception as error:  # any SDK error: name what could not be copied
        raise PromoteError(
            f"cannot copy the baseline {source} to s3://{bucket}/{prefix}{BASELINE_FILE}: {error}"
        ) from error
    record = {
        "model_package_arn": model_package_arn,
        "version": int(model_package_arn.rsplit("/", 1)[1]),
        "baseline_source": source,
        "baseline": f"s3://{bucket}/{prefix}{BASELINE_FILE}",
        "published_at": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
    }
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}{RECORD_FILE}",
        Body=(json.dumps(record, indent=2) + "\n").encode(),
        ContentType="application/json",
    )
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make a deployed version's data baseline the drift reference.")
    parser.add_argument("--model-package-arn", required=True)
    parser.add_argument("--bucket", default=os.environ.get("ARTIFACTS_BUCKET"), help="default: $ARTIFACTS_BUCKET")
    parser.add_argument("--prefix", required=True, help="e.g. deployed/<endpoint>/baseline/")
    args = parser.parse_args(argv)
    if not args.bucket:
        parser.error("--bucket (or ARTIFACTS_BUCKET) is required")
    import boto3

    try:
        record = publish_baseline(
            boto3.client("sagemaker"), boto3.client("s3"), args.model_package_arn, args.bucket, args.prefix
        )
    except PromoteError as error:
        print(f"publish-baseline: {error}", file=sys.stderr)
        return 1
    print(f"publish-baseline: version {record['version']}: {record['baseline_source']} -> {record['baseline']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
