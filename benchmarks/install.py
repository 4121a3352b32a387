"""Size and install times of the project environment from requirements.lock, beside a reference lock.

Usage: python benchmarks/install.py [--reference-lock FILE | --reference-rev main] [--python PY] [--workdir DIR]

Each lock is installed the way ``make install`` does it (``tools/pip.lock`` first, then
``pip install --no-deps --require-hashes -r <lock>``, then the project itself with ``--no-deps``,
then again with ``--force-reinstall`` what ``tools/lock_closure.py overwritten`` names: a file a
dependency overwrote, since ``--no-deps`` installs in reverse name order) into a scratch venv created
with ``--python`` (default: this interpreter) under ``--workdir`` (default: a temporary folder), never
into ``.venv``:

cold
    a new venv and an empty pip cache: every file downloaded and every wheel unpacked;
warm
    a new venv again, the cache the cold run filled: what a re-install after a pin change costs.

Then ``pip check``, ``tools/lock_closure.py check`` (``pip check`` names the exclusions as missing),
``du -sm`` of the venv against the target (issue: at most 1.5 GB) and its biggest site-packages
entries. The reference is the lock of another revision (default ``main``, read with ``git show``)
or a file; the two locks are installed interleaved (reference cold, project cold, reference warm,
project warm) so that network and disk conditions are shared.

Measured on 2 cores shared with other work (load average 9 to 13; Python 3.11.7, 2026-12-02),
reference the lock of ``main`` (every release ``sagemaker-train`` and ``sagemaker-mlops`` require),
project the lock without mlflow, sagemaker-mlflow, pyiceberg, s3fs and the 52 releases only they
need (tools/lock_closure.py), before the reinstall step was added (it adds about 60 s under that
load: aws-cdk-lib and sagemaker-mlops unpacked again)::

    python benchmarks/install.py --python /root/.pyenv/versions/3.11.7/bin/python --workdir .build/bench

                           project  reference   ratio
    venv size (du -sm)     1743 MB    2108 MB    0.83   target <= 1500 MB
    cold install           699.4 s    629.1 s    1.11
    warm install           250.5 s    236.0 s    1.06
    project venv: 1743 MB, target 1500 MB: 243 MB over
    lock_closure check (project): ok
    biggest (project): aws_cdk 428, pyspark 345, pyarrow 156, scipy 113, pandas 84, sympy 80, moto 49,
      numpy 45, cfnlint 41, mypy's compiled module 36, botocore 31, scipy.libs 30

The times are the machine's more than the locks' (other work ran beside the project's cold run).
What is left over the target: pyspark (345 MB, the local Glue job's Spark) alone would bring the venv
to about 1400 MB in an environment of its own, like the SageMaker images'; sympy and networkx are
cfn-lint's (its conditions and template graph import them on every template); pyarrow, pandas,
numpy and scipy are the step scripts' and xgboost's. About 450 MB of the venv is the bytecode pip
compiles at install for every module (``--no-compile`` would leave only what gets imported).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MB = 1500


def _run(command: list[str], **kwargs: object) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}")


def install(python: str, lock: Path, venv: Path, cache: Path) -> float:
    """Seconds to create ``venv`` and install ``lock`` and the project into it, with pip's cache at ``cache``."""
    if venv.exists():
        shutil.rmtree(venv)
    environment = {"PIP_CACHE_DIR": str(cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PATH": "/usr/bin:/bin"}
    started = time.perf_counter()
    _run([python, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run([*pip, "--require-hashes", "-r", str(ROOT / "tools" / "pip.lock")], env=environment)
    _run([*pip, "--no-deps", "--require-hashes", "-r", str(lock)], env=environment)
    _run([*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)], env=environment)
    # As make install: put back the files a dependency overwrote (--no-deps installs in reverse name order).
    again = venv / "overwritten.lock"
    closure = [str(venv / "bin" / "python"), str(ROOT / "tools" / "lock_closure.py"), "overwritten", str(lock)]
    again.write_text(subprocess.run(closure, capture_output=True, text=True, check=True).stdout)
    if again.read_text().strip():
        _run([*pip, "--no-deps", "--force-reinstall", "--require-hashes", "-r", str(again)], env=environment)
    return time.perf_counter() - started


def size_mb(path: Path) -> int:
    return int(subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def biggest(venv: Path, count: int = 12) -> list[tuple[str, int]]:
    """The ``count`` biggest entries of the venv's site-packages (``du -sm``), biggest first."""
    (site,) = venv.glob("lib/python3*/site-packages")
    listed = subprocess.run(
        ["du", "-sm", *map(str, site.iterdir())], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    sizes = [(Path(path).name, int(mb)) for mb, path in (line.split("\t", 1) for line in listed)]
    return sorted(sizes, key=lambda item: -item[1])[:count]


def check(venv: Path) -> str:
    completed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    return "ok" if completed.returncode == 0 else completed.stdout.strip().replace("\n", "; ")


def closure_check(venv: Path, lock: Path) -> str:
    """tools/lock_closure.py's verdict on the venv: every locked release installed, every requirement met
    or excluded (``pip check`` reports the excluded ones as missing)."""
    command = [str(venv / "bin" / "python"), str(ROOT / "tools" / "lock_closure.py"), "check", str(lock)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    return "ok" if completed.returncode == 0 else completed.stderr.strip().replace("\n", "; ")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock", help="the lock measured")
    parser.add_argument("--reference-lock", type=Path, help="the reference lock (a file)")
    parser.add_argument("--reference-rev", default="main", help="else the lock of this git revision (default main)")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the scratch venvs")
    parser.add_argument("--workdir", type=Path, help="where the scratch venvs and caches go (default: temporary)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch venvs")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="install-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    reference = args.reference_lock
    if reference is None:
        reference = workdir / "reference.lock"
        shown = subprocess.run(
            ["git", "show", f"{args.reference_rev}:requirements.lock"], cwd=ROOT, capture_output=True, text=True
        )
        if shown.returncode != 0:
            raise SystemExit(f"git show {args.reference_rev}:requirements.lock: {shown.stderr.strip()}")
        reference.write_text(shown.stdout)
    locks = {"reference": reference, "project": args.lock}
    seconds: dict[tuple[str, str], float] = {}
    for phase in ("cold", "warm"):
        for name, lock in locks.items():
            cache = workdir / f"cache-{name}"
            if phase == "cold" and cache.exists():
                shutil.rmtree(cache)
            seconds[name, phase] = install(args.python, lock, workdir / f"venv-{name}", cache)
            print(f"{name:<9} {phase}: {seconds[name, phase]:6.1f} s", flush=True)
    sizes = {name: size_mb(workdir / f"venv-{name}") for name in locks}
    print()
    print(f"{'':<22} {'project':>9} {'reference':>10} {'ratio':>7}")
    print(
        f"{'venv size (du -sm)':<22} {sizes['project']:>6} MB {sizes['reference']:>7} MB "
        f"{sizes['project'] / sizes['reference']:7.2f}   target <= {TARGET_MB} MB"
    )
    for phase in ("cold", "warm"):
        project, ref = seconds["project", phase], seconds["reference", phase]
        print(f"{phase + ' install':<22} {project:>7.1f} s {ref:>8.1f} s {project / ref:7.2f}")
    verdict = "within" if sizes["project"] <= TARGET_MB else f"{sizes['project'] - TARGET_MB} MB over"
    print(f"project venv: {sizes['project']} MB, target {TARGET_MB} MB: {verdict}")
    for name in locks:
        print(f"pip check ({name}): {check(workdir / f'venv-{name}')}")
    print(f"lock_closure check (project): {closure_check(workdir / 'venv-project', args.lock)}")
    print("biggest (project): " + ", ".join(f"{name} {mb}" for name, mb in biggest(workdir / "venv-project")))
    print(f"scratch venvs: {workdir}" if args.keep or args.workdir else "")
    if not (args.keep or args.workdir):
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
