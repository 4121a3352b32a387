"""After a production deployment: make the deployed version's data baseline the drift check's reference.

The model-build pipeline registers each version with its training-data baseline
(``DriftCheckBaselines.ModelDataQuality.Statistics``, the ``baseline.json`` preprocess writes).
The drift-check pipeline compares recent inputs with ``<prefix>baseline.json`` in the
artifacts bucket; this copies the deployed version's baseline there and records which
version it came from in ``<prefix>deployed.json``.

A version built for SageMaker Model Monitor (drift engine ``model_monitor``) also has the Model
Monitor analyzer's baseline: ``DriftCheckBaselines.ModelDataQuality.Constraints`` and
``ModelMetrics.ModelDataQuality.Statistics``. When the Constraints are registered, both files are
copied beside it as ``<prefix>statistics.json`` and ``<prefix>constraints.json``, for the
data-quality monitoring schedule, and ``deployed.json`` names them (``monitor_statistics``,
``monitor_constraints``); Constraints without those Statistics are an error. Without Constraints
only ``baseline.json`` is published.

    python -m pipelines_src.promote --model-package-arn ARN --bucket BUCKET --prefix deployed/<endpoint>/baseline/

Exit codes: 0 published; 1 the version has no baseline (or Model Monitor constraints without their
statistics) or a file cannot be copied; 2 bad arguments.
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
# The Model Monitor baseline, beside baseline.json when the version has one.
STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
RECORD_FILE = "deployed.json"
_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[\w-]+/\d+$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")


class PromoteError(RuntimeError):
    """The version cannot be promoted; the message says why."""


def baseline_sources(sagemaker: Any, model_package_arn: str) -> dict[str, str]:
    """The files to publish, by published name: the version's registered data baseline and, when it
    registered Model Monitor constraints, the Model Monitor statistics and constraints (S3 URIs)."""
    package = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    drift_quality = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
    uri = drift_quality.get("Statistics", {}).get("S3Uri")
    if not isinstance(uri, str) or not _S3_URI.match(uri):
        raise PromoteError(
            f"{model_package_arn} has no data baseline (DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri)"
        )
    sources = {BASELINE_FILE: uri}
    if "Constraints" not in drift_quality:
        return sources
    constraints = drift_quality["Constraints"].get("S3Uri")
    if not isinstance(constraints, str) or not _S3_URI.match(constraints):
        raise PromoteError(
            f"{model_package_arn} has Model Monitor constraints without an S3 URI "
            f"(DriftCheckBaselines.ModelDataQuality.Constraints.S3Uri: {constraints!r})"
        )
    statistics = package.get("ModelMetrics", {}).get("ModelDataQuality", {}).get("Statistics", {}).get("S3Uri")
    if not isinstance(statistics, str) or not _S3_URI.match(statistics):
        raise PromoteError(
            f"{model_package_arn} has Model Monitor constraints ({constraints}) but no Model Monitor statistics "
            "(ModelMetrics.ModelDataQuality.Statistics.S3Uri)"
        )
    return sources | {STATISTICS_FILE: statistics, CONSTRAINTS_FILE: constraints}


_WHAT = {
    BASELINE_FILE: "the baseline",
    STATISTICS_FILE: "the Model Monitor statistics",
    CONSTRAINTS_FILE: "the Model Monitor constraints",
}
_RECORD_KEYS = {STATISTICS_FILE: "monitor_statistics", CONSTRAINTS_FILE: "monitor_constraints"}


def publish_baseline(
    sagemaker: Any,
    s3: Any,
    model_package_arn: str,
    bucket: str,
    prefix: str,
    *,
    require_monitor: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Copy the version's baseline to ``s3://bucket/<prefix>baseline.json`` (and its Model Monitor baseline
    to ``<prefix>statistics.json`` and ``<prefix>constraints.json``); record the version beside it.

    ``require_monitor`` (drift engine model_monitor): a version without a Model Monitor baseline is an
    error, raised before anything is copied, so the schedule never compares with another version's."""
    if not _ARN.match(model_package_arn):
        raise PromoteError(f"not a model package version ARN: {model_package_arn!r}")
    sources = baseline_sources(sagemaker, model_package_arn)
    if require_monitor and CONSTRAINTS_FILE not in sources:
        raise PromoteError(
            f"{model_package_arn} has no Model Monitor baseline (DriftCheckBaselines.ModelDataQuality.Constraints), "
            "which the drift engine model_monitor needs: it was built without the MonitorBaseline step; "
            "retrain it with the engine set"
        )
    prefix = prefix if prefix.endswith("/") else f"{prefix}/"
    published = {}
    for name, source in sources.items():
        match = _S3_URI.match(source)
        assert match is not None
        try:
            s3.copy_object(
                Bucket=bucket, Key=f"{prefix}{name}", CopySource={"Bucket": match["bucket"], "Key": match["key"]}
            )
        except Exception as error:  # any SDK error: name what could not be copied
            raise PromoteError(
                f"cannot copy {_WHAT[name]} {source} to s3://{bucket}/{prefix}{name}: {error}"
            ) from error
        published[name] = f"s3://{bucket}/{prefix}{name}"
    record = {
        "model_package_arn": model_package_arn,
        "version": int(model_package_arn.rsplit("/", 1)[1]),
        "baseline_source": sources[BASELINE_FILE],
        "baseline": published[BASELINE_FILE],
        **{key: published[name] for name, key in _RECORD_KEYS.items() if name in published},
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
    parser.add_argument(
        "--require-monitor-baseline",
        action="store_true",
        help="fail when the version has no Model Monitor baseline (drift engine model_monitor)",
    )
    args = parser.parse_args(argv)
    if not args.bucket:
        parser.error("--bucket (or ARTIFACTS_BUCKET) is required")
    import boto3

    try:
        record = publish_baseline(
            boto3.client("sagemaker"),
            boto3.client("s3"),
            args.model_package_arn,
            args.bucket,
            args.prefix,
            require_monitor=args.require_monitor_baseline,
        )
    except PromoteError as error:
        print(f"publish-baseline: {error}", file=sys.stderr)
        return 1
    published = f"publish-baseline: version {record['version']}: {record['baseline_source']} -> {record['baseline']}"
    if "monitor_constraints" in record:
        published += f"; Model Monitor baseline -> {record['monitor_statistics']}, {record['monitor_constraints']}"
    print(published)
    return 0


if __name__ == "__main__":
    sys.exit(main())
