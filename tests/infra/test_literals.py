"""Every resource name has one owner, the resolver: no code outside it spells a name or a piece of one.

The names are the resolver's own output for every stage of cdk.json; the pieces are what is left of
a name once the stage's own words (project, stage, model, dataset, repository) are taken out, as
``-build-ci`` of ``<prefix>-<model>-build-ci``. A string constant or an f-string part that equals one
of them, outside ``resolver/`` and the tests, is a name rebuilt by hand. Docstrings and comments are
prose and are not read.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path

from resolver import naming
from resolver.config import StageConfig, load_config
from tests.conftest import ROOT

# Code that is not the platform's, or is the owner itself.
NOT_READ = {"resolver", "tests", "node_modules", "cdk.out"}
TARGETS = ("staging", "production")


def _stages() -> list[StageConfig]:
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return list(load_config(context).stages.values())


def _resolved(config: StageConfig) -> Iterator[str]:
    for name, function in inspect.getmembers(naming, inspect.isfunction):
        if function.__module__ != naming.__name__ or name.startswith("_"):
            continue
        parameters = list(inspect.signature(function).parameters)
        if parameters[:1] != ["config"]:
            continue
        answers = [function(config)] if len(parameters) == 1 else [function(config, target) for target in TARGETS]
        for answer in answers:
            yield from answer.values() if isinstance(answer, dict) else [answer]


def names_and_pieces() -> tuple[set[str], set[str]]:
    names: set[str] = set()
    pieces: set[str] = set()
    for config in _stages():
        words = {
            config.prefix,
            config.project,
            config.name,
            config.model.name,
            config.model.dataset,
            config.model.dataset.replace("_", "-"),
            config.source.repository.replace("/", "-"),
        }
        for name in _resolved(config):
            names.add(name)
            rest = name
            for word in sorted(words, key=len, reverse=True):
                rest = re.sub(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", "\0", rest)
            pieces.update(piece for piece in rest.split("\0") if len(piece) >= 4 and re.search("[a-z]{3}", piece))
    for prefix in (naming.BUILD_ARTIFACTS_PREFIX, naming.DRIFT_ARTIFACTS_PREFIX):
        names.add(prefix)
        pieces.add(f"{prefix}/")
    return names, pieces


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def spelled_names(root: Path, names: set[str], pieces: set[str]) -> list[str]:
    """Where code outside the resolver spells one of ``names`` or ``pieces``: ``path:line: 'text'``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in NOT_READ or relative.parts[0].startswith("."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        prose = _docstrings(tree)
        for node in ast.walk(tree):
            texts: list[tuple[int, str]] = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
                texts.append((node.lineno, node.value))
            elif isinstance(node, ast.JoinedStr):
                texts.extend(
                    (node.lineno, part.value)
                    for part in node.values
                    if isinstance(part, ast.Constant) and isinstance(part.value, str)
                )
            found.extend(f"{relative}:{line}: {text!r}" for line, text in texts if text in names or text in pieces)
    return sorted(set(found))


def test_the_pieces_are_found_in_the_resolvers_own_patterns() -> None:
    names, pieces = names_and_pieces()
    assert "-build-ci" in pieces and "/platform-values" in pieces and "model-build/" in pieces
    assert all(name for name in names)


def test_no_code_outside_the_resolver_spells_a_resource_name() -> None:
    names, pieces = names_and_pieces()
    assert spelled_names(ROOT, names, pieces) == []


def test_a_name_rebuilt_by_hand_is_found(tmp_path: Path) -> None:
    names, pieces = names_and_pieces()
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "rebuilt.py").write_text(
        '"""A docstring may say -build-ci."""\nNAME = f"{PREFIX}-{MODEL}-build-ci"\nPATH = "model-build/"\n',
        encoding="utf-8",
    )
    assert spelled_names(tmp_path, names, pieces) == [
        "stacks/rebuilt.py:2: '-build-ci'",
        "stacks/rebuilt.py:3: 'model-build/'",
    ]
