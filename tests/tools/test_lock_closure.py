"""requirements.lock is exactly what the project needs: nothing more, nothing missing but the exclusions,
and no code path of the project imports what it leaves out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from tests.conftest import ROOT
from tests.tools import unlocked
from tools import lock_closure

LOCK = ROOT / "requirements.lock"


def _lock_text() -> str:
    return LOCK.read_text()


def test_the_lock_holds_exactly_what_the_project_requirements_need() -> None:
    locked = {entry.name for entry in lock_closure.parse_lock(_lock_text())}
    needed = set(lock_closure.needed(lock_closure.project_requirements()))
    assert sorted(locked - needed) == [], "locked but nothing needs it (make lock)"
    assert sorted(needed - locked) == [], "needed but not locked (make lock)"
    assert not needed & set(lock_closure.EXCLUDED)


def test_this_environment_meets_every_requirement_of_the_lock_but_the_exclusions() -> None:
    assert lock_closure.problems(_lock_text(), lock_closure.project_requirements()) == []


def test_every_exclusion_is_required_by_a_locked_distribution_and_says_why() -> None:
    requiring: dict[NormalizedName, list[str]] = {name: [] for name in lock_closure.EXCLUDED}
    for entry in lock_closure.parse_lock(_lock_text()):
        _, requires = lock_closure.installed(entry.name)
        for line in requires:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) in requiring and requirement.marker is None:
                requiring[canonicalize_name(requirement.name)].append(entry.name)
    # sagemaker-mlflow is required by sagemaker-train; mlflow by sagemaker-train (and sagemaker-mlflow).
    assert all(requiring.values()), requiring
    assert all(len(reason) > 40 for reason in lock_closure.EXCLUDED.values())


def test_make_install_installs_the_lock_without_its_dependencies_and_checks_it() -> None:
    recipe = (ROOT / "Makefile").read_text().split("$(STAMPS)/python:", 1)[1].split("\n\n", 1)[0]
    assert "pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements.lock" in recipe
    assert "tools/lock_closure.py check requirements.lock" in recipe
    # An existing .venv loses what an earlier lock installed and this one leaves out, before the check.
    uninstall = (
        "tools/lock_closure.py unlocked requirements.lock tools/pip.lock | xargs -r $(BIN)/python -m pip uninstall"
    )
    assert recipe.index(uninstall) < recipe.index("lock_closure.py check")
    lock_recipe = (ROOT / "Makefile").read_text().split("\nlock:", 1)[1].split("\n\n", 1)[0]
    assert lock_recipe.index("lock_closure.py prune requirements.lock") < lock_recipe.index(
        "lock_hashes.py requirements.lock"
    )


# A small dependency graph: the app needs sdk (with its `fast` extra) and a linter; sdk requires heavy (excluded)
# and util; heavy alone requires plot; both heavy and sdk require util.
GRAPH: dict[str, tuple[str, list[str]]] = {
    "sdk": ("1.0", ["util>=1", "heavy>=2", "speedups; extra == 'fast'", "docs-theme; extra == 'docs'"]),
    "heavy": ("2.0", ["plot", "util"]),
    "plot": ("3.0", []),
    "util": ("1.5", ["colorama; sys_platform == 'win32'"]),
    "speedups": ("0.1", []),
    "linter": ("4.0", ["util<2"]),
}


def _metadata(name: NormalizedName) -> tuple[str, list[str]]:
    return GRAPH[name]


ROOTS = [Requirement("sdk[fast]==1.0"), Requirement("linter==4.0")]


def _lock(*names: str) -> str:
    return "".join(f"{name}=={GRAPH[name][0]} \\\n    --hash=sha256:{'a' * 64}\n" for name in names)


def test_pruning_drops_the_exclusions_and_what_only_they_need(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_closure, "EXCLUDED", {"heavy": "sdk requires it; nothing imports it"})
    pruned = lock_closure.prune(_lock(*GRAPH), ROOTS, _metadata)
    assert [entry.name for entry in lock_closure.parse_lock(pruned)] == ["sdk", "util", "speedups", "linter"]
    assert pruned.splitlines()[1:3] == ["# Excluded: heavy; with them, what only they need:", "#   heavy, plot"]
    # The releases keep their hashes; pruning a pruned lock keeps the same releases.
    assert f"util==1.5 \\\n    --hash=sha256:{'a' * 64}\n" in pruned
    assert lock_closure.parse_lock(lock_closure.prune(pruned, ROOTS, _metadata)) == lock_closure.parse_lock(pruned)


def test_pruning_refuses_an_exclusion_nothing_requires_and_a_lock_that_misses_a_need(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lock_closure, "EXCLUDED", {"plot": "only heavy requires it"})
    kept = lock_closure.parse_lock(lock_closure.prune(_lock(*GRAPH), ROOTS, _metadata))
    assert [entry.name for entry in kept] == ["sdk", "heavy", "util", "speedups", "linter"]
    monkeypatch.setattr(lock_closure, "EXCLUDED", {"colorama": "only on Windows"})
    with pytest.raises(lock_closure.ClosureError, match=r"^colorama is excluded but nothing requires it"):
        lock_closure.prune(_lock(*GRAPH), ROOTS, _metadata)
    monkeypatch.setattr(lock_closure, "EXCLUDED", {})
    with pytest.raises(lock_closure.ClosureError, match=r"^needed but not in the lock: speedups$"):
        lock_closure.prune(_lock("sdk", "heavy", "plot", "util", "linter"), ROOTS, _metadata)


def test_the_check_names_every_requirement_neither_locked_nor_excluded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_closure, "EXCLUDED", {"heavy": "sdk requires it; nothing imports it"})
    assert lock_closure.problems(_lock("sdk", "util", "speedups", "linter"), ROOTS, _metadata) == []
    wrong = dict(GRAPH, util=("2.1", []))
    assert lock_closure.problems(
        _lock("sdk", "util", "linter").replace("==1.5", "==2.1"), ROOTS, wrong.__getitem__
    ) == [
        "linter requires util<2: 2.1 is locked",
        'sdk requires speedups; extra == "fast": neither locked nor excluded',
    ]
    missing = lock_closure.problems(_lock("sdk", "util", "speedups"), ROOTS, _metadata)
    assert missing == ["the project requires linter==4.0: not locked"]
    installed_other = dict(GRAPH, util=("1.6", []))
    assert lock_closure.problems(_lock("sdk", "util", "speedups", "linter"), ROOTS, installed_other.__getitem__) == [
        "util==1.5 is locked but 1.6 is installed"
    ]


def test_a_file_two_distributions_install_is_the_dependents_and_make_install_puts_it_back() -> None:
    names = [entry.name for entry in lock_closure.parse_lock(_lock_text())]
    shared = lock_closure.shared_files(names)
    winner, _, others = shared["aws_cdk/cloud_assembly_schema/__init__.py"]
    assert (winner, others) == ("aws-cdk-lib", ["aws-cdk-cloud-assembly-schema"])
    assert shared["sagemaker/__init__.py"][0] == "sagemaker-mlops"
    # In this environment every shared file is its winner's (make install reinstalled what was overwritten).
    assert lock_closure.overwritten(_lock_text()) == ("", [])
    recipe = (ROOT / "Makefile").read_text().split("$(STAMPS)/python:", 1)[1].split("\n\n", 1)[0]
    again = "--no-deps --force-reinstall --require-hashes -r $(STAMPS)/overwritten.lock"
    assert recipe.index("lock_closure.py overwritten requirements.lock > $(STAMPS)/overwritten.lock") < recipe.index(
        again
    )
    assert recipe.index(again) < recipe.index("lock_closure.py check")


def test_what_an_earlier_lock_installed_is_listed_for_uninstalling_and_nothing_else() -> None:
    locks = [_lock("sdk", "util"), "pip==25.3 \\\n    --hash=sha256:" + "b" * 64 + "\n"]
    present = ["sdk", "Util", "pip", "mlops_platform", "MLflow", "heavy"]
    assert lock_closure.unlocked(locks, present) == ["heavy", "mlflow"]
    assert lock_closure.unlocked(locks, ["sdk", "util", "pip"]) == []


def test_this_environment_holds_nothing_beyond_its_locks_once_make_install_ran() -> None:
    """(Before make install ran with this lock, .venv still holds what the earlier lock installed.)"""
    texts = [_lock_text(), (ROOT / "tools" / "pip.lock").read_text()]
    stamp = ROOT / ".make" / "python"
    if not stamp.exists() or stamp.stat().st_mtime < LOCK.stat().st_mtime:
        pytest.skip("make install has not run here since requirements.lock changed")
    assert lock_closure.unlocked(texts) == []


def _blocked_run(*args: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", AWS_DEFAULT_REGION="us-east-1")
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False, env=environment, timeout=900
    )


def test_what_the_lock_leaves_out_cannot_be_imported_under_the_block() -> None:
    completed = _blocked_run("-c", "import tests.tools.block_unlocked\nimport mlflow")
    assert completed.returncode == 1
    assert "ModuleNotFoundError: No module named 'mlflow'" in completed.stderr
    completed = _blocked_run("-c", "import tests.tools.block_unlocked\nimport sagemaker.mlops.feature_store")
    assert "No module named 'pyiceberg'" in completed.stderr or "No module named 'pyiceberg." in completed.stderr


@pytest.mark.slow  # a fresh process imports every module of the project; another builds every pipeline definition
def test_no_code_path_of_the_project_imports_what_the_lock_leaves_out() -> None:
    imported = _blocked_run("-m", "tests.tools.unlocked")
    assert imported.returncode == 0, imported.stdout + imported.stderr[-3000:]
    definitions = [
        str(path.relative_to(ROOT)) for path in sorted((ROOT / "tests" / "pipelines").glob("test_*definition*.py"))
    ]
    assert "tests/pipelines/test_definition.py" in definitions
    assert "tests/pipelines/test_drift_definition.py" in definitions
    assert "tests/pipelines/test_quality_definition.py" in definitions
    plugins = [f"-pno:{name}" for name in unlocked.unlocked_pytest_plugins()]
    block = ["-p", "tests.tools.block_unlocked", "-p", "no:cacheprovider", *plugins]
    tests = _blocked_run("-m", "pytest", *block, "-q", "-m", "not slow", *definitions)
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-3000:]
    assert " passed" in tests.stdout.splitlines()[-1]
