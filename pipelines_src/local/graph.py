"""The step graph of a pipeline definition: what runs after what, and which branch a step belongs to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines_src.local.expressions import step_references


@dataclass(frozen=True)
class StepGraph:
    steps: Mapping[str, Mapping[str, Any]]
    depends_on: Mapping[str, frozenset[str]]
    # step -> (condition step, True for its IfSteps, False for its ElseSteps)
    branch_of: Mapping[str, tuple[str, bool]]
    order: tuple[str, ...]


def step_graph(definition: Mapping[str, Any]) -> StepGraph:
    """Dependencies from DependsOn, data references and condition branches, in a deterministic topological order."""
    steps: dict[str, Mapping[str, Any]] = {}
    branch_of: dict[str, tuple[str, bool]] = {}

    def add(step: Mapping[str, Any]) -> None:
        if step["Name"] in steps:
            raise ValueError(f"step name {step['Name']!r} appears twice")
        steps[step["Name"]] = step
        if step["Type"] == "Condition":
            for chosen, key in ((True, "IfSteps"), (False, "ElseSteps")):
                for inner in step["Arguments"].get(key, []):
                    branch_of[inner["Name"]] = (step["Name"], chosen)
                    add(inner)

    for step in definition.get("Steps", []):
        add(step)
    depends_on: dict[str, frozenset[str]] = {}
    for name, step in steps.items():
        arguments = step.get("Arguments", {})
        if step["Type"] == "Condition":
            arguments = arguments.get("Conditions", [])
        needed = set(step.get("DependsOn", [])) | step_references(arguments)
        if name in branch_of:
            needed.add(branch_of[name][0])
        needed.discard(name)
        unknown = needed - set(steps)
        if unknown:
            raise ValueError(f"step {name!r} depends on unknown steps {sorted(unknown)}")
        depends_on[name] = frozenset(needed)
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(steps):
        ready = [name for name in steps if name not in placed and depends_on[name] <= placed]
        if not ready:
            raise ValueError(f"dependency cycle among {sorted(set(steps) - placed)}")
        order.append(ready[0])
        placed.add(ready[0])
    return StepGraph(steps=steps, depends_on=depends_on, branch_of=branch_of, order=tuple(order))
