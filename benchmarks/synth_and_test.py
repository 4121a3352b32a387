"""Wall time of `make synth`, of the unit and end-to-end test suites and of `make test`, on an installed checkout.

Usage: python benchmarks/synth_and_test.py [--runs N]   (or: make bench)

Each command runs N times after one untimed warm-up (which fills the mypy and
ruff caches and the OS file cache, as on a developer's machine); the median,
minimum and maximum are printed in seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PYTEST = [str(ROOT / ".venv" / "bin" / "pytest"), "-q", "-p", "no:cacheprovider"]
COMMANDS = {
    "make synth": ["make", "--no-print-directory", "synth"],
    "unit tests (make unit)": [
        str(ROOT / ".venv" / "bin" / "pytest"),
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
    ],
    "end-to-end tests (make e2e)": [
        str(ROOT / ".venv" / "bin" / "pytest"),
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "slow",
    ],
    "make test": ["make", "--no-print-directory", "test"],
}


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'command':<14} {'median':>8} {'min':>8} {'max':>8}   runs={args.runs}")
    for name, command in COMMANDS.items():
        timed(command)  # warm-up
        samples = [timed(command) for _ in range(args.runs)]
        print(f"{name:<14} {statistics.median(samples):8.2f} {min(samples):8.2f} {max(samples):8.2f}")


if __name__ == "__main__":
    main()
