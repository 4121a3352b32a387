"""Moving step inputs and outputs between S3 (real or embedded) and a job's local folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an S3 URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def download(s3: Any, uri: str, destination: Path) -> int:
    """Copy every object under an S3 prefix (or one object) into a folder, keeping relative paths.

    Returns the number of files written. An empty prefix is an error, as in SageMaker.
    """
    bucket, prefix = split_s3_uri(uri)
    destination.mkdir(parents=True, exist_ok=True)
    count = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key: str = item["Key"]
            if key.endswith("/"):
                continue
            # The key below the prefix; the object's own name when the URI names that object.
            relative = key[len(prefix) :].lstrip("/") or Path(key).name
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            count += 1
    if count == 0:
        raise FileNotFoundError(f"no objects under {uri}")
    return count


def upload(s3: Any, source: Path, uri: str) -> list[str]:
    """Upload every file of a folder under an S3 prefix; returns the keys written."""
    bucket, prefix = split_s3_uri(uri)
    keys = []
    for path in sorted(source.rglob("*")):
        if path.is_file():
            key = "/".join(part for part in (prefix.rstrip("/"), path.relative_to(source).as_posix()) if part)
            s3.upload_file(str(path), bucket, key)
            keys.append(key)
    return keys
