"""The local runner reads SageMaker's definition language: references, joins, property files, conditions, branches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines_src.local.expressions import ExpressionError, Resolver, split_path
from pipelines_src.local.graph import step_graph


def _resolver(tmp_path: Path, **steps: dict[str, Any]) -> Resolver:
    report = tmp_path / "evaluation.json"
    report.write_text(json.dumps({"regression_metrics": {"rmse": {"value": 6.5}}, "folds": [1.0, 2.0]}))

    def property_file(step: str, name: str) -> Path:
        assert (step, name) == ("Evaluate", "EvaluationReport")
        return report

    return Resolver(
        parameters={"MetricThreshold": 8.0, "InputDataUri": "s3://raw/data/"},
        execution={"PipelineExecutionId": "run-1"},
        step_properties=steps,
        property_file=property_file,
    )


def test_paths_split_into_names_keys_and_indexes() -> None:
    assert split_path("Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri") == [
        "Steps",
        "Prep",
        "ProcessingOutputConfig",
        "Outputs",
        "train",
        "S3Output",
        "S3Uri",
    ]
    assert split_path("regression_metrics.rmse.value") == ["regression_metrics", "rmse", "value"]
    assert split_path("folds[1]") == ["folds", 1]


def test_references_joins_and_property_files_resolve(tmp_path: Path) -> None:
    resolver = _resolver(
        tmp_path, Prep={"ProcessingOutputConfig": {"Outputs": {"train": {"S3Output": {"S3Uri": "s3://a/train"}}}}}
    )
    value = {
        "Uri": {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
        "Report": {"Std:Join": {"On": "/", "Values": ["s3://art", {"Get": "Execution.PipelineExecutionId"}, "r.json"]}},
        "Rmse": {
            "Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                "Path": "regression_metrics.rmse.value",
            }
        },
        "Plain": [1, "x"],
    }
    assert resolver.resolve(value) == {
        "Uri": "s3://a/train",
        "Report": "s3://art/run-1/r.json",
        "Rmse": 6.5,
        "Plain": [1, "x"],
    }


def test_unknown_references_name_what_is_missing(tmp_path: Path) -> None:
    resolver = _resolver(tmp_path)
    with pytest.raises(ExpressionError, match=r"Steps\.Train\.ModelArtifacts: step has not run"):
        resolver.get("Steps.Train.ModelArtifacts")
    with pytest.raises(ExpressionError, match=r"Parameters\.Nope: no value at 'Nope'"):
        resolver.get("Parameters.Nope")


@pytest.mark.parametrize(
    ("kind", "threshold", "expected"),
    [
        ("LessThanOrEqualTo", 8.0, True),
        ("LessThanOrEqualTo", 6.0, False),
        ("GreaterThan", 6.0, True),
        ("Equals", 6.5, True),
    ],
)
def test_conditions_compare_property_file_values_with_parameters(
    tmp_path: Path, kind: str, threshold: float, expected: bool
) -> None:
    resolver = _resolver(tmp_path)
    condition = {
        "Type": kind,
        "LeftValue": {
            "Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                "Path": "regression_metrics.rmse.value",
            }
        },
        "RightValue": threshold,
    }
    assert resolver.condition(condition) is expected
    assert resolver.condition({"Type": "Not", "Condition": condition}) is not expected


def _step(name: str, kind: str = "Processing", **arguments: Any) -> dict[str, Any]:
    return {"Name": name, "Type": kind, "Arguments": arguments}


def test_graph_orders_by_data_and_declared_dependencies_and_flattens_branches() -> None:
    register = _step("Register", "RegisterModel", Model={"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"})
    fail = {"Name": "TooBad", "Type": "Fail", "Arguments": {"ErrorMessage": "no"}}
    check = _step(
        "Check",
        "Condition",
        Conditions=[{"Type": "Equals", "LeftValue": {"Get": "Steps.Evaluate.X"}, "RightValue": 1}],
        IfSteps=[register],
        ElseSteps=[fail],
    )
    evaluate = _step("Evaluate", Model={"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"})
    train = _step("Train", "Training", Data={"Get": "Steps.Prep.Outputs"})
    prep = {**_step("Prep"), "DependsOn": ["Validate"]}
    graph = step_graph({"Steps": [check, evaluate, train, prep, _step("Validate")]})
    assert graph.order == ("Validate", "Prep", "Train", "Evaluate", "Check", "Register", "TooBad")
    assert graph.branch_of == {"Register": ("Check", True), "TooBad": ("Check", False)}
    assert graph.depends_on["Register"] == {"Check", "Train"}
    assert graph.depends_on["Check"] == {"Evaluate"}


def test_graph_refuses_cycles_and_unknown_steps() -> None:
    with pytest.raises(ValueError, match="dependency cycle"):
        step_graph({"Steps": [{**_step("A"), "DependsOn": ["B"]}, {**_step("B"), "DependsOn": ["A"]}]})
    with pytest.raises(ValueError, match="depends on unknown steps"):
        step_graph({"Steps": [{**_step("A"), "DependsOn": ["Ghost"]}]})
