"""Wall and CPU time of the unit suite (`pytest -m "not slow"`) against its 60 s target, and where the CPU goes.

Usage: python benchmarks/unit_suite.py [--runs N] [--top N] [-- extra pytest arguments]

Each run is a fresh `python -m pytest -m "not slow" -q -p no:cacheprovider` (what `make unit` runs)
with this module loaded as a pytest plugin. The plugin charges each test's setup, call and teardown
with the CPU seconds they used: this process's own and its descendants' (the jsii Node.js process
every CDK synth talks to, subprocesses the tests start). CPU seconds hardly change with the load
other processes put on the machine, wall seconds do; on an idle machine of 2 cores the wall time of
this mostly single-threaded suite is close to its CPU time.

Printed: per run the wall and CPU seconds (user + system of pytest and all it started, from
getrusage), then for the last run the CPU of start-up and collection, the costliest test phases and
the costliest test files. The target (issue 16) is a wall time of at most 60 s on 2 cores.

Measured on 2 cores shared with other jobs (2026-12-02; CPU moves by 15-20% under that load):
    before: wall 266 s at load 7, CPU 136 s (user 124, sys 12).
    after shared botocore models, in-process checks: wall 240 s at load 6-9, CPU 92 s and 111 s (two runs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 60.0
REPORT_VARIABLE = "MLOPS_UNIT_SUITE_REPORT"
_TICKS = os.sysconf("SC_CLK_TCK")


# --- The plugin (loaded into the pytest process with -p benchmarks.unit_suite) ------------------


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            threads = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for thread in threads:
            try:
                children = (thread / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                pending.append(child)
    return found


def _live_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def cpu_seconds() -> tuple[float, float]:
    """User + system CPU of this process, and of its waited-for children and live descendants."""
    times = os.times()
    children = times.children_user + times.children_system
    return times.user + times.system, children + sum(_live_cpu(child) for child in _descendants(os.getpid()))


def _total(cpu: tuple[float, float]) -> float:
    return cpu[0] + cpu[1]


class _Recorder:
    def __init__(self) -> None:
        self.started = _total(cpu_seconds())
        self.phases: list[tuple[str, str, float, float]] = []
        self.collection = 0.0

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self) -> None:
        self._collect_start = _total(cpu_seconds())

    def pytest_collection_finish(self) -> None:
        self.collection = _total(cpu_seconds()) - self._collect_start

    def _phase(self, item: pytest.Item, when: str) -> Generator[None, None, None]:
        before = cpu_seconds()
        try:
            yield
        finally:
            own, children = cpu_seconds()
            self.phases.append((item.nodeid, when, own + children - _total(before), children - before[1]))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self._phase(item, "setup"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self._phase(item, "call"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self._phase(item, "teardown"))

    def pytest_unconfigure(self) -> None:
        report = {
            # before the plugin: interpreter start, pytest and conftest imports
            "before_plugin": self.started,
            "collection": self.collection,
            "total_in_process": _total(cpu_seconds()),
            "phases": self.phases,
        }
        Path(os.environ[REPORT_VARIABLE]).write_text(json.dumps(report))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(REPORT_VARIABLE):
        config.pluginmanager.register(_Recorder(), "unit-suite-recorder")


# --- The benchmark -------------------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(extra: list[str], report: Path) -> tuple[float, float, dict[str, Any]]:
    """One suite run: (wall seconds, CPU seconds, the plugin's report)."""
    command = [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "benchmarks.unit_suite", *extra]
    environment = {**os.environ, REPORT_VARIABLE: str(report), "PYTHONPATH": str(ROOT)}
    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    if done.returncode != 0:
        sys.exit(f"the unit suite failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    print(f"  wall {wall:7.1f} s   CPU {cpu:7.1f} s   {summary}", flush=True)
    return wall, cpu, json.loads(report.read_text())


def print_costs(report: dict[str, Any], top: int) -> None:
    phases = [(node, when, float(seconds), float(children)) for node, when, seconds, children in report["phases"]]
    in_tests = sum(phase[2] for phase in phases)
    in_children = sum(phase[3] for phase in phases)
    print(f"\nCPU seconds of the last run: {report['total_in_process']:.1f} in the pytest process tree")
    print(f"  {report['before_plugin']:6.1f}  start-up (interpreter, pytest, plugins)")
    print(f"  {report['collection']:6.1f}  collection (test module imports)")
    print(f"  {in_tests:6.1f}  test phases ({len(phases)}: setup, call, teardown; {in_children:.1f} in children)")
    print(f"\ncostliest {top} test phases (CPU s, of which in child processes; setup includes the fixtures it builds):")
    for node, when, seconds, children in sorted(phases, key=lambda phase: -phase[2])[:top]:
        print(f"  {seconds:6.2f} {children:6.2f}  {when:<8} {node}")
    by_file: dict[str, float] = {}
    tests: Counter[str] = Counter()
    for node, when, seconds, _ in phases:
        path = node.partition("::")[0]
        by_file[path] = by_file.get(path, 0.0) + seconds
        tests[path] += when == "call"
    print(f"\ncostliest {top} test files (CPU s, tests):")
    for path, seconds in sorted(by_file.items(), key=lambda item: -item[1])[:top]:
        print(f"  {seconds:6.2f}  {tests[path]:4d}  {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="suite runs (default 1)")
    parser.add_argument("--top", type=int, default=25, help="how many test phases and files to list (default 25)")
    parser.add_argument("--save", type=Path, help="also write the last run's per-phase figures (JSON) there")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
    print(f"the unit suite, {args.runs} run(s):")
    walls: list[float] = []
    cpus: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.runs):
            wall, cpu, report = run_once(args.pytest_args, Path(folder) / f"run{index}.json")
            walls.append(wall)
            cpus.append(cpu)
    if args.save:
        args.save.write_text(json.dumps(report))
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"\nmedian wall {wall:.1f} s ({wall / TARGET_SECONDS:.2f} of the {TARGET_SECONDS:.0f} s target)")
    print(f"median CPU  {cpu:.1f} s ({cpu / TARGET_SECONDS:.2f} of the {TARGET_SECONDS:.0f} s target)")
    print(f"load average after: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
    print_costs(report, args.top)


if __name__ == "__main__":
    main()
