"""Evaluate the expression language of a SageMaker pipeline definition.

A definition refers to run-time values with ``{"Get": "Parameters.X"}``,
``{"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}``, ``{"Std:Join": ...}``
and ``{"Std:JsonGet": ...}``; conditions compare such values. This module
resolves them against the state of a local run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

_PATH_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]")


class ExpressionError(ValueError):
    """A reference in the definition cannot be resolved: names the reference."""


def split_path(path: str) -> list[str | int]:
    """``Steps.A.Outputs['train'].S3Output.S3Uri`` -> ['Steps', 'A', 'Outputs', 'train', 'S3Output', 'S3Uri']."""
    tokens: list[str | int] = []
    position = 0
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if not match or match.end() == position:
            raise ExpressionError(f"cannot parse reference {path!r} at offset {position}")
        name, index, key = match.groups()
        tokens.append(int(index) if index is not None else (key if key is not None else name))
        position = match.end()
    return tokens


def lookup(data: Any, tokens: list[str | int], reference: str) -> Any:
    for token in tokens:
        try:
            data = data[token]
        except (KeyError, IndexError, TypeError):
            raise ExpressionError(f"{reference}: no value at {token!r}") from None
    return data


def json_path_get(document: Any, path: str, reference: str) -> Any:
    """The subset of JsonPath that property files use: dotted names and [index]."""
    return lookup(document, split_path(path), reference)


class Resolver:
    """Resolves definition expressions from parameters, execution variables and finished steps."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        execution: Mapping[str, Any],
        step_properties: Mapping[str, Mapping[str, Any]],
        property_file: Callable[[str, str], Path],
    ) -> None:
        """``property_file(step, name)`` returns the local path of a step's property file."""
        self._parameters = parameters
        self._execution = execution
        self._steps = step_properties
        self._property_file = property_file

    def get(self, reference: str) -> Any:
        tokens = split_path(reference)
        root = tokens[0]
        if root == "Parameters":
            return lookup(self._parameters, tokens[1:], reference)
        if root == "Execution":
            return lookup(self._execution, tokens[1:], reference)
        if root == "Steps":
            if len(tokens) < 2 or tokens[1] not in self._steps:
                raise ExpressionError(f"{reference}: step has not run")
            return lookup(self._steps[str(tokens[1])], tokens[2:], reference)
        raise ExpressionError(f"{reference}: unknown root {root!r}")

    def resolve(self, value: Any) -> Any:
        """Resolve every expression inside a JSON value, leaving plain values as they are."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self.get(value["Get"])
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return str(join["On"]).join(_as_text(self.resolve(item)) for item in join["Values"])
        if set(value) == {"Std:JsonGet"}:
            spec = value["Std:JsonGet"]
            reference = spec["PropertyFile"]["Get"]
            tokens = split_path(reference)
            if len(tokens) != 4 or tokens[0] != "Steps" or tokens[2] != "PropertyFiles":
                raise ExpressionError(f"{reference}: not a property file reference")
            path = self._property_file(str(tokens[1]), str(tokens[3]))
            document = json.loads(path.read_text())
            return json_path_get(document, spec["Path"], f"{reference}:{spec['Path']}")
        return {key: self.resolve(item) for key, item in value.items()}

    def condition(self, condition: Mapping[str, Any]) -> bool:
        """Evaluate one entry of a ConditionStep's Conditions list."""
        kind = condition["Type"]
        if kind == "Not":
            return not self.condition(condition["Condition"])
        if kind == "Or":
            return any(self.condition(inner) for inner in condition["Conditions"])
        if kind == "In":
            value = self.resolve(condition["QueryValue"])
            return any(value == self.resolve(item) for item in condition["Values"])
        left, right = self.resolve(condition["LeftValue"]), self.resolve(condition["RightValue"])
        comparisons: dict[str, Callable[[Any, Any], bool]] = {
            "Equals": lambda a, b: bool(a == b),
            "GreaterThan": lambda a, b: bool(a > b),
            "GreaterThanOrEqualTo": lambda a, b: bool(a >= b),
            "LessThan": lambda a, b: bool(a < b),
            "LessThanOrEqualTo": lambda a, b: bool(a <= b),
        }
        if kind not in comparisons:
            raise ExpressionError(f"unsupported condition type {kind!r}")
        return comparisons[kind](left, right)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def step_references(value: Any) -> set[str]:
    """Names of the steps a JSON value refers to (data dependencies)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= step_references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Get" and isinstance(item, str) and item.startswith("Steps."):
                found.add(str(split_path(item)[1]))
            else:
                found |= step_references(item)
    return found
