"""Imports of what requirements.lock leaves out fail, as in an environment installed from it.

`install` (in a fresh process: ``python -m tests.tools.unlocked``, or ``pytest -p tests.tools.block_unlocked``)
makes every top-level module that only unlocked installed distributions provide (the exclusions of
tools/lock_closure.py and what only they need, when the environment still has them) raise
ModuleNotFoundError, the error an import of a missing distribution gives. A top-level name that a locked
distribution provides too (a namespace package such as ``google``) stays importable.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import pkgutil
import sys
import types
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from tools import lock_closure

ROOT = Path(__file__).resolve().parents[2]
LOCKS = (ROOT / "requirements.lock", ROOT / "tools" / "pip.lock")
PROJECT = canonicalize_name("mlops-platform")
# The project's own packages and modules (what pyproject.toml installs and what runs from a checkout).
PACKAGES = ("resolver", "stacks", "lambdas", "pipelines_src", "mlops_cli", "demo", "endpoint_release", "etl")
MARK = "is not in requirements.lock"


def locked() -> set[str]:
    return {entry.name for lock in LOCKS for entry in lock_closure.parse_lock(lock.read_text())}


def blocked_modules() -> dict[str, str]:
    """Top-level module -> the unlocked distribution that provides it, for modules no locked one provides."""
    keep = locked() | {PROJECT}
    providers = importlib.metadata.packages_distributions()
    blocked = {}
    for module, distributions in providers.items():
        names = {canonicalize_name(name) for name in distributions}
        if names and not names & keep:
            blocked[module] = sorted(names)[0]
    return blocked


def unlocked_pytest_plugins() -> list[str]:
    """The pytest plugins (``pytest11`` entry points) of installed distributions the lock leaves out: a run under
    the block passes ``-p no:<name>`` for each, since an environment from the lock has none of them."""
    keep = locked() | {PROJECT}
    return sorted(
        entry.name
        for entry in importlib.metadata.entry_points(group="pytest11")
        if entry.dist is not None and canonicalize_name(entry.dist.name) not in keep
    )


class _Blocker(importlib.abc.MetaPathFinder):
    def __init__(self, blocked: dict[str, str]) -> None:
        self.blocked = blocked

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top in self.blocked:
            raise ModuleNotFoundError(f"No module named {fullname!r} ({self.blocked[top]} {MARK})", name=fullname)
        return None


def install() -> dict[str, str]:
    blocked = blocked_modules()
    already = sorted(name for name in sys.modules if name.partition(".")[0] in blocked)
    if already:
        raise RuntimeError(f"imported before the block: {', '.join(already)}")
    sys.meta_path.insert(0, _Blocker(blocked))
    return blocked


def import_everything() -> list[str]:
    """Import every module of the project's packages; the ones that failed on a blocked import, with why.
    (Modules that fail for another reason, such as the serving handlers that need an image's toolkit, are
    the business of their own tests.)"""
    failed = []
    for package in PACKAGES:
        for module in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if module.name.endswith(".__main__"):  # runs the program
                continue
            try:
                importlib.import_module(module.name)
            except Exception as error:  # only blocked imports count
                cause: BaseException | None = error
                while cause is not None and MARK not in str(cause):
                    cause = cause.__cause__ or cause.__context__
                if cause is not None:
                    failed.append(f"{module.name}: {cause}")
    return failed


if __name__ == "__main__":
    install()
    problems = import_everything()
    print("\n".join(problems))
    sys.exit(1 if problems else 0)
