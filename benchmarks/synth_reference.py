"""`make synth` beside a reference CDK app's synth, per synthesized resource, interleaved run by run.

Usage:
    python benchmarks/synth_reference.py --reference DIR --reference-python PYTHON [--runs 5]

DIR is a CDK app's folder (its ``app.py`` and ``cdk.json``); PYTHON the interpreter of a virtualenv
holding that app's requirements. Both synths go through this project's pinned CDK CLI
(node_modules/.bin/cdk), so only the apps differ. Each pair runs A B, A B, ... after one untimed
warm-up of each; the medians of wall and CPU seconds (this process's children: user + sys) are
printed, divided by the number of resources in the synthesized templates, with the ratio of the
medians per resource. CPU seconds move less than wall seconds when the machine is shared.

The reference of issue #16 is aws-solutions/mlops-workload-orchestrator, whose app synthesizes 14
stacks. To measure it (nothing of it is kept in this repository):

    git clone https://github.com/aws-solutions/mlops-workload-orchestrator /tmp/mwo
    python3.11 -m venv /tmp/mwo-venv && /tmp/mwo-venv/bin/pip install -r /tmp/mwo/source/requirements.txt
    python benchmarks/synth_reference.py --reference /tmp/mwo/source/infrastructure \
        --reference-python /tmp/mwo-venv/bin/python --runs 5

Figures, 2 cores, reference at commit debb689 (aws-cdk-lib 2.167.0, which has no built-in CloudFormation
validation; ours keeps it on, as `make synth` does), 1 pair on a machine at load 12 (2026-12-02):
ours 7 stacks / 214 resources, 77.6 s wall, 19.1 s CPU (89.0 ms CPU a resource); reference 14 stacks /
373 resources, 56.2 s wall, 16.2 s CPU (43.3 ms CPU a resource): ratio 2.41 wall, 2.06 CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


@dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float


def resources(outdir: Path) -> tuple[int, int]:
    """(stacks, resources) in a cloud assembly, nested stage assemblies included."""
    stacks = count = 0
    for template in outdir.rglob("*.template.json"):
        stacks += 1
        count += len(json.loads(template.read_text(encoding="utf-8")).get("Resources", {}))
    return stacks, count


def synth(command: list[str], cwd: Path, environment: dict[str, str]) -> Sample:
    before = os.times()
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = os.times()
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} in {cwd} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Sample(wall, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="the reference CDK app's folder")
    parser.add_argument("--reference-python", type=Path, required=True, help="its virtualenv's python")
    parser.add_argument("--runs", type=int, default=5, help="timed pairs (default 5)")
    args = parser.parse_args()
    if not CDK.exists():
        sys.exit(f"{CDK} is missing: run make install first")
    work = Path(tempfile.mkdtemp(prefix="synth-reference-"))
    ours_out, theirs_out = work / "ours", work / "reference"
    base = dict(os.environ, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20")
    ours_env = dict(base, PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{base['PATH']}")
    theirs_env = dict(base, PATH=f"{args.reference_python.parent}{os.pathsep}{base['PATH']}")
    # As `make synth` runs it: every stack of dev, cdk-nag and CloudFormation validation on.
    ours = [str(CDK), "synth", "--quiet", "-c", "stage=dev", "-o", str(ours_out)]
    theirs = [str(CDK), "synth", "--quiet", "--app", f"{args.reference_python} app.py", "-o", str(theirs_out)]

    def one(which: str) -> Sample:
        out = ours_out if which == "ours" else theirs_out
        shutil.rmtree(out, ignore_errors=True)
        if which == "ours":
            return synth(ours, ROOT, ours_env)
        return synth(theirs, args.reference, theirs_env)

    one("ours"), one("reference")  # warm-up: file caches, compiled bytecode
    samples: dict[str, list[Sample]] = {"ours": [], "reference": []}
    for _ in range(args.runs):
        for which in ("ours", "reference"):
            samples[which].append(one(which))
    counts = {"ours": resources(ours_out), "reference": resources(theirs_out)}
    shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, runs={args.runs}")
    widths = {"app": -10, "stacks": 6, "resources": 9, "wall s": 8, "cpu s": 8, "wall ms/res": 12, "cpu ms/res": 11}
    print(" ".join(f"{name:<{-width}}" if width < 0 else f"{name:>{width}}" for name, width in widths.items()))
    per_resource: dict[str, tuple[float, float]] = {}
    for which in ("ours", "reference"):
        stacks, count = counts[which]
        wall = statistics.median(sample.wall for sample in samples[which])
        cpu = statistics.median(sample.cpu for sample in samples[which])
        per_resource[which] = (1000 * wall / count, 1000 * cpu / count)
        print(
            f"{which:<10} {stacks:>6} {count:>9} {wall:8.2f} {cpu:8.2f} "
            f"{per_resource[which][0]:12.1f} {per_resource[which][1]:11.1f}"
        )
    wall_ratio = per_resource["ours"][0] / per_resource["reference"][0]
    cpu_ratio = per_resource["ours"][1] / per_resource["reference"][1]
    print(f"ratio per resource (ours / reference): wall {wall_ratio:.2f}, cpu {cpu_ratio:.2f} (target: at most 1.00)")


if __name__ == "__main__":
    main()
