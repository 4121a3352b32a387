"""The locked set of the project environment: what pyproject.toml's requirements need, less the exclusions.

    python tools/lock_closure.py prune requirements.lock   # make lock, in the venv that resolved it
    python tools/lock_closure.py check requirements.lock   # make install, in .venv after the install
    python tools/lock_closure.py unlocked requirements.lock tools/pip.lock   # what make install uninstalls
    python tools/lock_closure.py overwritten requirements.lock   # what make install installs again

``make install`` installs requirements.lock with ``--no-deps``, so the environment is exactly the lock:
pip pulls nothing back. ``prune`` keeps, of a lock, the releases that the project's requirements
(``[project] dependencies`` and the ``dev`` extra) need transitively, walking the requirements recorded
in the installed distributions' metadata, markers and extras evaluated; it walks no requirement on a
distribution of `EXCLUDED`, so what only an excluded distribution needs goes too. The lock then starts
with a comment naming what was left out. ``check`` verifies an installed environment against a lock:
every locked release is installed at its version, and every requirement of an installed locked
distribution is met by another one (version included) or names an excluded distribution. ``unlocked``
lists what an environment holds beyond its locks (left by an earlier lock): make install uninstalls it, so
an existing .venv ends up the same as a new one. ``overwritten`` prints the lock entries of distributions
whose file another one overwrote (see `shared_files`), for make install to install them again.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import re
import sys
import textwrap
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
EXTRAS = ("dev",)
PROJECT_NAME = "mlops-platform"

# Required by a dependency's metadata, never imported on the project's code paths. Each reason names what
# requires it and which modules import it; tests/tools/test_lock_closure.py runs the pipeline definitions
# with these (and what only they need) made unimportable.
EXCLUDED: dict[NormalizedName, str] = {
    canonicalize_name(name): reason
    for name, reason in {
        # About 300 MB with what only it needs (mlflow-skinny, -tracing, matplotlib, scikit-learn, sqlalchemy,
        # alembic, databricks-sdk, fastapi, ...).
        "mlflow": (
            "sagemaker-train requires it; only sagemaker.train's fine-tuning waiters (common_utils.trainer_wait, "
            "job_wait), its metrics plots (metrics_visualizer, mlflow_metrics_util) and sagemaker.serve's MLflow "
            "model path import it, inside functions. The project uses ModelTrainer and ModelBuilder for pipeline "
            "definitions, with no MLflow model; an MLflow tracking server runs in an environment of its own."
        ),
        "sagemaker-mlflow": (
            "sagemaker-train requires it: mlflow's plugin for SageMaker tracking servers, used by mlflow only"
        ),
        "pyiceberg": (
            "sagemaker-mlops requires it (with zstandard, pyroaring, mmh3, strictyaml); only "
            "sagemaker.mlops.feature_store.feature_group_manager imports it. The project uses no Feature Store."
        ),
        "s3fs": "sagemaker-mlops requires it; no module of the SageMaker SDK imports it (nor aiobotocore, fsspec)",
    }.items()
}

PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")


class ClosureError(ValueError):
    """The lock and the requirements disagree; the message says how."""


@dataclass(frozen=True)
class Entry:
    """One release of a lock: its pin and its text (the pin line and its hash continuation lines)."""

    name: NormalizedName
    version: str
    text: str


def parse_lock(text: str) -> list[Entry]:
    """The releases of a lock, whole-line comments and blank lines dropped."""
    entries: list[Entry] = []
    lines: list[str] = []
    for raw in [*text.splitlines(), ""]:
        if lines and (not raw.startswith((" ", "\t")) or not lines[-1].rstrip().endswith("\\")):
            match = PIN.match(lines[0])
            if match is None:
                raise ClosureError(f"{lines[0].strip()!r} is not a name==version pin")
            entries.append(Entry(canonicalize_name(match["name"]), match["version"], "\n".join(lines)))
            lines = []
        if raw.strip() and not raw.lstrip().startswith("#"):
            lines.append(raw.rstrip())
    return entries


def project_requirements(pyproject: Path = PYPROJECT, extras: Iterable[str] = EXTRAS) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    return [Requirement(requirement) for requirement in requirements]


def _applies(requirement: Requirement, extras: Iterable[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in ("", *extras))


# A distribution's name -> (its version, its Requires-Dist lines); KeyError when not installed.
Metadata = Callable[[NormalizedName], tuple[str, list[str]]]


def installed(name: NormalizedName) -> tuple[str, list[str]]:
    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise KeyError(name) from None
    return distribution.version, distribution.requires or []


def needed(
    roots: Iterable[Requirement], metadata: Metadata = installed, excluded: Iterable[str] | None = None
) -> dict[NormalizedName, set[str]]:
    """Every distribution the roots need (-> the extras asked of it), not walking into the excluded ones
    (default `EXCLUDED`)."""
    skip = {canonicalize_name(name) for name in (EXCLUDED if excluded is None else excluded)}
    found: dict[NormalizedName, set[str]] = {}
    pending = [(canonicalize_name(root.name), set(root.extras)) for root in roots if _applies(root, ())]
    while pending:
        name, extras = pending.pop()
        if name in skip or (name in found and extras <= found[name]):
            continue
        found.setdefault(name, set()).update(extras)
        try:
            _, requires = metadata(name)
        except KeyError:
            raise ClosureError(f"{name} is needed but not installed: its requirements are unknown") from None
        for line in requires:
            requirement = Requirement(line)
            if _applies(requirement, found[name]):
                pending.append((canonicalize_name(requirement.name), set(requirement.extras)))
    return found


def prune(text: str, roots: list[Requirement], metadata: Metadata = installed) -> str:
    """The lock ``text`` with only the releases the roots need; a header comment names what was left out."""
    entries = parse_lock(text)
    locked = {entry.name for entry in entries}
    keep = needed(roots, metadata)
    missing = sorted(set(keep) - locked)
    if missing:
        raise ClosureError(f"needed but not in the lock: {', '.join(missing)}")
    for name in EXCLUDED:
        if name in {canonicalize_name(root.name) for root in roots}:
            raise ClosureError(f"{name} is excluded but a requirement of the project itself")
        if name not in needed(roots, metadata, excluded=set(EXCLUDED) - {name}):
            raise ClosureError(f"{name} is excluded but nothing requires it: remove it from EXCLUDED")
    dropped = sorted(locked - set(keep))
    header = [
        "# Installed with --no-deps: exactly these releases (make lock; tools/lock_closure.py says why).",
        f"# Excluded: {', '.join(sorted(EXCLUDED))}; with them, what only they need:",
        *textwrap.wrap(", ".join(dropped), width=108, initial_indent="#   ", subsequent_indent="#   "),
    ]
    return "\n".join([*header, *(entry.text for entry in entries if entry.name in keep)]) + "\n"


def problems(text: str, roots: list[Requirement], metadata: Metadata = installed) -> list[str]:
    """What is wrong with an environment installed from the lock ``text`` for the requirements ``roots``;
    nothing when it is right."""
    entries = parse_lock(text)
    versions = {entry.name: entry.version for entry in entries}
    found: list[str] = []
    requested: dict[NormalizedName, set[str]] = {name: set() for name in versions}
    requirements: dict[NormalizedName, list[Requirement]] = {}
    for name, version in versions.items():
        try:
            present, requires = metadata(name)
        except KeyError:
            found.append(f"{name}=={version} is locked but not installed")
            continue
        if present != version:
            found.append(f"{name}=={version} is locked but {present} is installed")
        requirements[name] = [Requirement(line) for line in requires]
    for root in roots:
        if canonicalize_name(root.name) in requested:
            requested[canonicalize_name(root.name)].update(root.extras)
    # Extras asked of a distribution add requirements, which may ask for more extras: until nothing changes.
    changed = True
    while changed:
        changed = False
        for name, reqs in requirements.items():
            for requirement in reqs:
                target = canonicalize_name(requirement.name)
                applies = _applies(requirement, requested[name]) and target in requested
                if applies and not set(requirement.extras) <= requested[target]:
                    requested[target].update(requirement.extras)
                    changed = True
    for root in roots:
        target = canonicalize_name(root.name)
        if target not in versions:
            found.append(f"the project requires {root}: not locked")
        elif not root.specifier.contains(versions[target], prereleases=True):
            found.append(f"the project requires {root}: {versions[target]} is locked")
    if metadata is installed and not found:
        found += overwritten(text, metadata)[1]
    for name, reqs in sorted(requirements.items()):
        for requirement in reqs:
            target = canonicalize_name(requirement.name)
            if not _applies(requirement, requested[name]) or target in EXCLUDED:
                continue
            if target not in versions:
                found.append(f"{name} requires {requirement}: neither locked nor excluded")
            elif not requirement.specifier.contains(versions[target], prereleases=True):
                found.append(f"{name} requires {requirement}: {versions[target]} is locked")
    return found


def _sha256(path: Path) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()


def shared_files(
    names: Iterable[NormalizedName], metadata: Metadata = installed
) -> dict[str, tuple[NormalizedName, str, list[NormalizedName]]]:
    """Files that several installed distributions (of ``names``) install -> (the one that must win: it requires
    the others, as pip installs a dependency before its dependent; its sha256; the others). aws-cdk-lib and
    aws-cdk.cloud-assembly-schema both install aws_cdk/cloud_assembly_schema/__init__.py, aws-cdk-lib's the one
    that works. With --no-deps pip knows no dependency and installs in reverse name order instead."""
    owners: dict[str, dict[NormalizedName, str]] = {}
    for name in names:
        for file in importlib.metadata.distribution(name).files or []:
            if file.hash is not None and ".dist-info/" not in str(file) and "__pycache__" not in file.parts:
                owners.setdefault(str(file), {})[name] = file.hash.value
    shared = {}
    for path, by in owners.items():
        if len(by) < 2:
            continue
        winners = [name for name in by if set(by) - {name} <= set(needed([Requirement(name)], metadata))]
        if len(winners) != 1:
            raise ClosureError(f"{path} is installed by {', '.join(sorted(by))}, none of which requires the others")
        (winner,) = winners
        shared[path] = (winner, by[winner], sorted(set(by) - {winner}))
    return shared


def overwritten(text: str, metadata: Metadata = installed) -> tuple[str, list[str]]:
    """The lock entries to reinstall (``--force-reinstall``) because a dependency overwrote a file of theirs,
    and one line per such file."""
    entries = {entry.name: entry for entry in parse_lock(text)}
    site = importlib.metadata.distribution(next(iter(entries)))
    again: set[NormalizedName] = set()
    lines = []
    for path, (winner, digest, others) in sorted(shared_files(entries, metadata).items()):
        file = Path(str(site.locate_file(path)))
        if not file.exists() or _sha256(file) != digest:
            again.add(winner)
            lines.append(f"{path} is not {winner}'s (it requires {', '.join(others)}, which overwrote it)")
    return "".join(entries[name].text + "\n" for name in sorted(again)), lines


def unlocked(texts: Iterable[str], present: Iterable[str] | None = None) -> list[NormalizedName]:
    """The installed distributions (default: of this environment) that none of the locks ``texts`` pins and that
    are not the project itself: what an environment installed earlier from another lock still holds."""
    keep = {entry.name for text in texts for entry in parse_lock(text)} | {canonicalize_name(PROJECT_NAME)}
    if present is None:
        present = (distribution.metadata["Name"] for distribution in importlib.metadata.distributions())
    return sorted({canonicalize_name(name) for name in present} - keep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["prune", "check", "unlocked", "overwritten"])
    parser.add_argument("lock", type=Path)
    parser.add_argument("more", type=Path, nargs="*", help="unlocked: the other locks of the environment")
    args = parser.parse_args(argv)
    text = args.lock.read_text()
    if args.command == "unlocked":
        print("\n".join(unlocked([text, *(path.read_text() for path in args.more)])))
        return 0
    try:
        if args.command == "overwritten":
            print(overwritten(text)[0], end="")
            return 0
        if args.command == "prune":
            args.lock.write_text(prune(text, project_requirements()))
            return 0
        found = problems(text, project_requirements())
    except ClosureError as error:
        print(f"lock_closure: {args.lock}: {error}", file=sys.stderr)
        return 2
    for problem in found:
        print(f"lock_closure: {args.lock}: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
