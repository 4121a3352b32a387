"""Add the sha256 of every published file of each pinned release to a requirements lock, for --require-hashes.

    python tools/lock_hashes.py requirements.lock [--index https://pypi.org/simple]

Each ``name==version`` line becomes ``name==version --hash=sha256:... ...`` with the hashes of all the
release's wheels and its sdist, read from the index's JSON simple API (PEP 691), so the lock installs
on any platform the release supports and pip refuses any file whose content differs from what the
index published when the lock was made. Lines that already carry hashes are rewritten from the index.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")
ACCEPT = "application/vnd.pypi.simple.v1+json"


class LockError(ValueError):
    """A line of the lock cannot be hashed; the message names it."""


def release_hashes(name: str, version: str, *, index: str) -> list[str]:
    """The sha256 of every file of ``name`` ``version`` on the index, sorted."""
    request = urllib.request.Request(f"{index.rstrip('/')}/{canonicalize_name(name)}/", headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    wanted = Version(version)
    hashes = set()
    for item in files:
        filename = item["filename"]
        try:
            if filename.endswith(".whl"):
                found = parse_wheel_filename(filename)[1]
            else:
                found = parse_sdist_filename(filename)[1]
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
        if found == wanted and "sha256" in item.get("hashes", {}):
            hashes.add(item["hashes"]["sha256"])
    if not hashes:
        raise LockError(f"{name}=={version}: the index lists no file of this release")
    return sorted(hashes)


def hash_lock(text: str, *, index: str) -> str:
    """``text`` with the hashes of each pin; whole-line comments and blank lines between pins stay where they are
    (the image environments' headers, pipelines_src/images/)."""
    pins: list[tuple[str, str]] = []
    # Each output line: a comment kept as it is, or the index of a pin.
    layout: list[str | int] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.lstrip().startswith("#") or (not raw.strip() and layout):
            layout.append(raw.rstrip())
            continue
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("--hash") or line == "\\":
            continue
        match = PIN.match(line)
        if match is None:
            raise LockError(f"line {number}: {raw.strip()!r} is not a name==version pin")
        layout.append(len(pins))
        pins.append((match["name"], match["version"]))
    while layout and layout[-1] == "":
        layout.pop()
    with ThreadPoolExecutor(max_workers=8) as pool:
        hashes = list(pool.map(lambda pin: release_hashes(*pin, index=index), pins))
    lines = []
    for item in layout:
        if isinstance(item, str):
            lines.append(item)
            continue
        (name, version), digests = pins[item], hashes[item]
        parts = [f"{name}=={version}", *(f"    --hash=sha256:{digest}" for digest in digests)]
        lines.append(" \\\n".join(parts))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("--index", default="https://pypi.org/simple")
    args = parser.parse_args(argv)
    try:
        args.lock.write_text(hash_lock(args.lock.read_text(), index=args.index))
    except LockError as error:
        print(f"lock_hashes: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
