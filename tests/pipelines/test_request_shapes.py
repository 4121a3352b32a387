"""Every job step of every deployed definition is a request SageMaker accepts, by botocore's request shapes.

For each stage of cdk.json and both drift engines, the model-build and drift-check definitions the
stacks deploy are read (the processing engine, which cdk.json ships, from the synthesized templates;
model_monitor from the same stacks built with that engine, without a synth). Each step's Arguments,
with its placeholders and pipeline expressions resolved to plausible values, is validated against the
input shape of the API SageMaker calls for it: botocore's ParamValidator (types, required and unknown
members) and a walker over the shape for what it leaves out (enum values, patterns, min and max).
No definition nests a ConditionStep in another's branches, which SageMaker does not support.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import botocore.session
import pytest
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.validate import ParamValidator

from pipelines_src.local.expressions import ExpressionError, Resolver, split_path
from pipelines_src.local.graph import step_graph
from resolver import naming
from resolver.config import StageConfig, load_config
from tests.conftest import Synthesized, cdk_json_context, new_app

STAGES = tuple(cdk_json_context()["mlops"]["stages"])
ENGINES = ("processing", "model_monitor")
PIPELINES = ("build", "drift-check")

# What SageMaker calls for a step, and the member of the request it names itself.
OPERATIONS: Mapping[str, tuple[str, str | None]] = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "RegisterModel": ("CreateModelPackage", None),  # the Arguments give ModelPackageGroupName
}
# A step's properties, as `Steps.<name>.<path>` reads them: the response of the job's Describe call.
DESCRIPTIONS: Mapping[str, str] = {
    "Processing": "DescribeProcessingJob",
    "Training": "DescribeTrainingJob",
    "RegisterModel": "DescribeModelPackage",
}
# Steps that call no API of their own.
NO_REQUEST = frozenset({"Condition", "Fail"})

EXECUTION_ID = "5ab2q9kz6dje"
DEV_ACCOUNT = "123456789012"  # a stage without an account deploys to the CLI's


@functools.cache
def sagemaker_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


# --- Java regular expressions (the service model's patterns) in Python ----------------------------


class PatternError(ValueError):
    """A pattern of the service model this translation cannot express in Python."""


# Java's POSIX classes (US-ASCII only, Java's default) as the contents of a character class.
_POSIX_CLASSES: Final = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "XDigit": "0-9a-fA-F",
    "Space": r" \t\n\x0b\f\r",
    "Punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
}
# Escapes that mean the same in Java and in Python (with re.ASCII: Java's \w, \d, \s are ASCII).
_SAME_ESCAPES: Final = frozenset("dDsSwWbBtnrfaeAG0\\.-/[](){}^$*+?|!\"#%&',:;<=>@_`~ ")
_QUANTIFIER = re.compile(r"(?:[*+?]|\{(\d+)(?:,\d*)?\})[+?]?")


@functools.cache
def _category_runs() -> Mapping[str, tuple[tuple[int, int], ...]]:
    """Unicode general category (two letters) -> its code points as (first, last) runs."""
    runs: dict[str, list[list[int]]] = {}
    for code in range(sys.maxunicode + 1):
        found = runs.setdefault(unicodedata.category(chr(code)), [])
        if found and found[-1][1] == code - 1:
            found[-1][1] = code
        else:
            found.append([code, code])
    return {category: tuple((first, last) for first, last in items) for category, items in runs.items()}


def _code(code: int) -> str:
    return f"\\U{code:08x}"


def _property_class(name: str) -> str:
    """The contents of a character class for Java's ``\\p{name}``."""
    if name in _POSIX_CLASSES:
        return _POSIX_CLASSES[name]
    categories = _category_runs()
    if not re.fullmatch(r"[A-Z][a-z]?", name) or not any(category.startswith(name) for category in categories):
        raise PatternError(f"no translation for \\p{{{name}}}")
    runs = sorted(run for category, items in categories.items() if category.startswith(name) for run in items)
    return "".join(_code(first) if first == last else f"{_code(first)}-{_code(last)}" for first, last in runs)


def translate_java_pattern(pattern: str) -> str:
    """A Python regular expression (to compile with re.ASCII) matching what the Java one matches.

    Translated: ``\\p{...}`` (Unicode general categories and Java's POSIX classes), ``\\uXXXX`` escapes
    with surrogate pairs as one code point (as Java reads them), quantified anchors (``${1,128}``,
    which Java accepts and Python refuses). Anything else Java and Python read differently fails.
    """
    out: list[str] = []
    position, in_class = 0, False
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            escape = pattern[position + 1 : position + 2]
            if escape in ("p", "P"):
                name = re.compile(r"\{(\w+)\}").match(pattern, position + 2)
                if escape == "P" or name is None:
                    raise PatternError(f"no translation for {pattern[position : position + 12]!r}")
                contents = _property_class(name.group(1))
                out.append(contents if in_class else f"[{contents}]")
                position = name.end()
                continue
            if escape == "u":
                code, position = int(pattern[position + 2 : position + 6], 16), position + 6
                low = re.compile(r"\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE).match(pattern, position)
                if 0xD800 <= code <= 0xDBFF and low:
                    code = 0x10000 + ((code - 0xD800) << 10) + (int(low.group(1), 16) - 0xDC00)
                    position = low.end()
                out.append(_code(code))
                continue
            if escape == "" or escape not in _SAME_ESCAPES:
                raise PatternError(f"no translation for the escape \\{escape} in {pattern!r}")
            out.append(pattern[position : position + 2])
            position += 2
            continue
        if in_class:
            if char == "[" or pattern.startswith("&&", position):
                raise PatternError(f"nested or intersected character classes in {pattern!r}")
            in_class = char != "]"
            out.append(char)
            position += 1
            continue
        if char == "[":
            in_class = True
            start = position + (2 if pattern.startswith("[^", position) else 1)
            out.append(pattern[position:start])
            if pattern.startswith("]", start):  # a leading ']' is a literal in both
                out.append("\\]")
                start += 1
            position = start
            continue
        if char in "^$":
            quantifier = _QUANTIFIER.match(pattern, position + 1)
            position += 1
            if quantifier:
                position = quantifier.end()
                least = 1 if quantifier.group(0)[0] == "+" else int(quantifier.group(1) or 0)
                if least == 0:
                    continue  # an anchor that may match zero times matches nothing
            out.append(char)
            continue
        out.append(char)
        position += 1
    if in_class:
        raise PatternError(f"unterminated character class in {pattern!r}")
    return "".join(out)


@functools.cache
def java_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled translation of a service-model pattern; PatternError if it cannot be compiled."""
    translated = translate_java_pattern(pattern)
    try:
        return re.compile(translated, re.ASCII)
    except re.error as error:
        raise PatternError(f"pattern {pattern!r} (as {translated!r}) does not compile: {error}") from error


# --- The checker ----------------------------------------------------------------------------------


def _join(path: str, member: str | int) -> str:
    if isinstance(member, int):
        return f"{path}[{member}]"
    return f"{path}.{member}" if path else member


def _size_rule(shape: Shape, size: int | float, what: str) -> str | None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        return f"{what} {size} is below the minimum {low}"
    if high is not None and size > high:
        return f"{what} {size} is above the maximum {high}"
    return None


def constraint_errors(value: Any, shape: Shape, path: str = "") -> Iterator[str]:
    """What ParamValidator does not check: enum values, patterns (matching the whole value, as the
    service does), min and max of string lengths, list and map sizes and numbers."""
    kind = shape.type_name
    rules: list[str | None] = []
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                yield from constraint_errors(value[name], member, _join(path, name))
    elif isinstance(shape, ListShape) and isinstance(value, list):
        rules.append(_size_rule(shape, len(value), "length"))
        for index, item in enumerate(value):
            yield from constraint_errors(item, shape.member, _join(path, index))
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        rules.append(_size_rule(shape, len(value), "size"))
        for key, item in value.items():
            yield from constraint_errors(key, shape.key, f"{path} key {key!r}")
            yield from constraint_errors(item, shape.value, _join(path, str(key)))
    elif kind == "string" and isinstance(value, str):
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            rules.append(f"enum: {value!r} is not one of {list(enum)}")
        rules.append(_size_rule(shape, len(value), "string length"))
        pattern = shape.metadata.get("pattern")
        if pattern is not None and not java_pattern(pattern).fullmatch(value):
            rules.append(f"pattern: {value!r} does not match {pattern!r}")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        rules.append(_size_rule(shape, value, "value"))
    for rule in rules:
        if rule:
            yield f"{path or '(request)'}: {rule}"


def request_errors(request: Mapping[str, Any], operation: str) -> list[str]:
    """Everything botocore's ParamValidator and `constraint_errors` find in an ``operation`` request."""
    shape = sagemaker_model().operation_model(operation).input_shape
    report = ParamValidator().validate(dict(request), shape)
    errors = report.generate_report().splitlines() if report.has_errors() else []
    return errors + list(constraint_errors(request, shape))


# --- Plausible values for what is known only at deploy or run time --------------------------------


@dataclass(frozen=True)
class Deployment:
    """Plausible deploy-time values of one stage, shaped as the real ones are."""

    config: StageConfig

    @property
    def account(self) -> str:
        return self.config.account or DEV_ACCOUNT

    def bucket(self, zone: str) -> str:
        return f"{self.config.prefix}-datalake-{zone}0a1b2c3d-1q2w3e4r5t6y".lower()

    def placeholder(self, name: str) -> str:
        """The value Fn::Sub gives ``${name}``; an unknown name fails."""
        config, account, region = self.config, self.account, self.config.region
        subnet = re.fullmatch(r"Subnet(\d+)", name)
        if subnet:
            return f"subnet-{int(subnet.group(1)):017x}"
        values = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "RoleArn": f"arn:aws:iam::{account}:role/{config.prefix}-MLPlatform-ExecutionRole0A1B2C3D-Ab1Cd2Ef3Gh4",
            "KmsKeyArn": f"arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "ArtifactsBucket": self.bucket("artifacts"),
            "CodeBucket": f"cdk-hnb659fds-assets-{account}-{region}",
            "JobsSecurityGroup": "sg-0123456789abcdef0",
            "InputDataUri": f"s3://{self.bucket('raw')}/{config.model.dataset}/",
            "BaselineUri": f"s3://{self.bucket('artifacts')}/{naming.deployed_baseline_prefix(config)}",
            "DataUri": f"s3://{self.bucket('raw')}/{naming.capture_prefix(config)}",
            # the stage's MLflow App (tracking.mode managed): the tracked jobs' MLFLOW_TRACKING_URI
            "TrackingUri": f"arn:aws:sagemaker:{region}:{account}:mlflow-app/app-0a1b2c3d4e5f",
        }
        if name not in values:
            raise KeyError(f"no plausible value for the placeholder ${{{name}}}")
        return values[name]

    def substitute(self, definition: str) -> str:
        """The definition as Fn::Sub deploys it (placeholders are never inside JSON escapes)."""
        return re.sub(r"\$\{([^}]*)\}", lambda match: self.placeholder(match.group(1)), definition)


def plausible(shape: Shape, member: str, where: str) -> Any:
    """A value of the right type for a property SageMaker fills in, named ``member``."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        return max(int(shape.metadata.get("min", 1)), 1)
    if kind in ("float", "double"):
        return float(shape.metadata.get("min", 1.0)) or 1.0
    if kind == "boolean":
        return True
    if kind == "string":
        step = where.split(".")[1]
        if member.startswith("S3") or member.endswith(("Uri", "Url")):
            return f"s3://plausible-bucket/{EXECUTION_ID}/{step}/{member}"
        if member.endswith("Arn"):
            resource = re.sub(r"(?<=[a-z])(?=[A-Z])", "-", member[: -len("Arn")]).lower()  # ProcessingJob
            return f"arn:aws:sagemaker:us-east-1:{DEV_ACCOUNT}:{resource}/{step.lower()}"
    raise ExpressionError(f"{where}: no plausible value for a {kind} property {member!r}")


class Properties(Mapping[Any, Any]):
    """A step's properties: its Describe response, holding what the step's request gave (SageMaker
    reports it back), and plausible values of the right type for the rest."""

    def __init__(self, shape: Shape, known: Any, where: str) -> None:
        self._shape, self._known, self._where = shape, known, where

    def __getitem__(self, key: Any) -> Any:
        shape, known, where = self._shape, self._known, _join(self._where, key)
        if isinstance(shape, StructureShape):
            if key not in shape.members:
                raise KeyError(key)
            member, name = shape.members[key], str(key)
            value = known.get(key) if isinstance(known, dict) else None
        elif isinstance(shape, ListShape):
            member, name, value = shape.member, shape.member.name, None
            items = known if isinstance(known, list) else []
            if isinstance(key, int):
                value = items[key] if key < len(items) else None
            else:  # Outputs['train']: the item of that name
                named = [item for item in items if isinstance(item, dict) and key in _names(item)]
                if not named:
                    raise KeyError(key)
                value = named[0]
        elif isinstance(shape, MapShape):
            member, name = shape.value, str(key)
            value = known.get(key) if isinstance(known, dict) else None
        else:
            raise TypeError(f"{self._where} is a {shape.type_name}")
        if isinstance(member, StructureShape | ListShape | MapShape):
            return Properties(member, value, where)
        if value is not None:
            return value
        value = plausible(member, name, where)
        broken = list(constraint_errors(value, member, where))
        if broken:
            raise AssertionError(f"the plausible value breaks the Describe response's shape: {broken}")
        return value

    def __iter__(self) -> Iterator[Any]:
        return iter(self._shape.members if isinstance(self._shape, StructureShape) else ())

    def __len__(self) -> int:
        return len(list(iter(self)))


def _names(item: Mapping[str, Any]) -> set[Any]:
    return {value for key, value in item.items() if key.endswith("Name")}


class PlausibleResolver(Resolver):
    """Resolves expressions as a run of the definition would, property files giving a number."""

    def __init__(
        self,
        definition: Mapping[str, Any],
        steps: Mapping[str, Properties],
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        """Parameters take their default values (typed), or the ones given in ``parameters``."""
        types = {"String": str, "Integer": int, "Float": float, "Boolean": bool}
        values = {spec["Name"]: spec["DefaultValue"] for spec in definition["Parameters"]} | dict(parameters or {})
        parameters = {spec["Name"]: types[spec["Type"]](values[spec["Name"]]) for spec in definition["Parameters"]}
        execution = {
            "PipelineExecutionId": EXECUTION_ID,
            "PipelineName": definition.get("PipelineName", "pipeline"),
            "PipelineExecutionArn": f"arn:aws:sagemaker:us-east-1:{DEV_ACCOUNT}:pipeline/p/execution/{EXECUTION_ID}",
            "PipelineArn": f"arn:aws:sagemaker:us-east-1:{DEV_ACCOUNT}:pipeline/p",
        }
        super().__init__(parameters=parameters, execution=execution, step_properties=steps, property_file=_no_file)
        self._property_files = {
            (name, spec["PropertyFileName"])
            for name, step in step_graph(definition).steps.items()
            for spec in step.get("PropertyFiles", [])
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Std:JsonGet"}:
            tokens = split_path(value["Std:JsonGet"]["PropertyFile"]["Get"])
            if (str(tokens[1]), str(tokens[-1])) not in self._property_files:
                raise ExpressionError(f"{tokens}: no such property file")
            return 0.5
        return super().resolve(value)


def _no_file(step: str, name: str) -> Any:
    raise AssertionError(f"property file {step}.{name} read as a file")


def job_name(step: str) -> str:
    """The name SageMaker gives a pipeline step's job: pipelines-<execution id>-<step>-<suffix>."""
    return f"pipelines-{EXECUTION_ID}-{step}"[:52] + "-a1B2c3D4e5"


def step_requests(
    definition: Mapping[str, Any], parameters: Mapping[str, Any] | None = None
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(step, operation, request) for every step that calls an API, in the order a run would call them."""
    graph = step_graph(definition)
    properties: dict[str, Properties] = {}
    resolver = PlausibleResolver(definition, properties, parameters)
    for name in graph.order:
        step = graph.steps[name]
        kind = step["Type"]
        if kind in NO_REQUEST:
            continue
        if kind not in OPERATIONS:
            raise AssertionError(f"step {name}: no request shape known for steps of type {kind}")
        operation, name_member = OPERATIONS[kind]
        request = resolver.resolve(step["Arguments"])
        if name_member:
            request[name_member] = job_name(name)
        description = sagemaker_model().operation_model(DESCRIPTIONS[kind]).output_shape
        properties[name] = Properties(description, request, f"Steps.{name}")
        yield name, operation, request


def definition_errors(definition: str, deployment: Deployment, label: str) -> tuple[list[str], list[str]]:
    """(failures, the steps checked as "step: operation"), each failure starting with ``label``/step.

    Run with the parameters' defaults, then once with each other value a parameter's EnumValues allows.
    """
    document = json.loads(deployment.substitute(definition))
    variants: list[dict[str, Any]] = [{}]
    for spec in document["Parameters"]:
        variants += [{spec["Name"]: value} for value in spec.get("EnumValues", []) if value != spec["DefaultValue"]]
    failures, checked = [], []
    for parameters in variants:
        given = "".join(f" ({name}={value})" for name, value in parameters.items())
        for step, operation, request in step_requests(document, parameters):
            if not parameters:
                checked.append(f"{step}: {operation}")
            errors = request_errors(request, operation)
            failures += [f"{label}/{step}{given}: {operation}: {error}" for error in errors]
    return failures, checked


# --- The deployed definitions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Deployed:
    config: StageConfig
    definitions: Mapping[str, str]  # "build" / "drift-check" -> definition with its ${Name} placeholders


def _model_monitor_context() -> dict[str, Any]:
    """cdk.json's context with every stage on engine model_monitor (instance endpoints, captured inputs)."""
    context = copy.deepcopy(cdk_json_context())
    for stage in context["mlops"]["stages"].values():
        stage.setdefault("operations", {}).setdefault("drift", {}).update(engine="model_monitor", input="capture")
        stage.setdefault("endpoint", {})["serverless"] = None
        # Model Monitor's metrics go through the monitoring endpoint: a stage that lists none (dev) gets it.
        network = stage.setdefault("network", {})
        if network.get("interface_endpoints") is not None:
            network["interface_endpoints"] = sorted({*network["interface_endpoints"], "monitoring"})
    return context


@pytest.fixture(scope="module")
def deployed(synthesized: Synthesized) -> Mapping[tuple[str, str], Deployed]:
    from stacks.app import build

    found: dict[tuple[str, str], Deployed] = {}
    for stage, platform in synthesized.stages.items():
        config = platform.config
        assert config.operations.drift.engine == "processing"
        pipelines = synthesized.template(stage, "ml_platform").find_resources("AWS::SageMaker::Pipeline")
        bodies = {
            resource["Properties"]["PipelineName"]: resource["Properties"]["PipelineDefinition"][
                "PipelineDefinitionBody"
            ]["Fn::Sub"][0]
            for resource in pipelines.values()
        }
        names = {"build": naming.build_pipeline(config), "drift-check": naming.drift_pipeline(config)}
        found[stage, "processing"] = Deployed(config, {kind: bodies[name] for kind, name in names.items()})
    context = _model_monitor_context()
    for platform in build(new_app(), load_config(context), STAGES):  # built, not synthesized
        config = platform.config
        assert config.operations.drift.model_monitor
        definitions = {
            "build": platform.ml_platform.model_build.definition,
            "drift-check": platform.ml_platform.drift_check.definition,
        }
        found[config.name, "model_monitor"] = Deployed(config, definitions)
    return found


# --- The definitions against the shapes -----------------------------------------------------------

CHECKED = {
    ("build", "processing"): [
        "ValidateData: CreateProcessingJob",
        "Preprocess: CreateProcessingJob",
        "Train: CreateTrainingJob",
        "Evaluate: CreateProcessingJob",
        "RegisterModel: CreateModelPackage",
    ],
    ("build", "model_monitor"): [
        "ValidateData: CreateProcessingJob",
        "Preprocess: CreateProcessingJob",
        "MonitorBaseline: CreateProcessingJob",
        "Train: CreateTrainingJob",
        "Evaluate: CreateProcessingJob",
        "RegisterModel: CreateModelPackage",
    ],
    ("drift-check", "processing"): ["DetectDrift: CreateProcessingJob"],
    ("drift-check", "model_monitor"): ["DetectDrift: CreateProcessingJob"],
}


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("stage", STAGES)
def test_every_job_step_is_a_request_sagemaker_accepts(
    deployed: Mapping[tuple[str, str], Deployed], stage: str, engine: str, pipeline: str
) -> None:
    stack = deployed[stage, engine]
    names = {"build": naming.build_pipeline(stack.config), "drift-check": naming.drift_pipeline(stack.config)}
    label = f"{stage}/{engine}/{names[pipeline]}"
    failures, checked = definition_errors(stack.definitions[pipeline], Deployment(stack.config), label)
    assert failures == []
    assert checked == CHECKED[pipeline, engine]


def nested_conditions(steps: list[dict[str, Any]], inside: str | None = None) -> Iterator[str]:
    """Each ConditionStep inside another's IfSteps or ElseSteps, as "<step> in <condition>.<branch>"."""
    for step in steps:
        if step["Type"] != "Condition":
            continue
        if inside:
            yield f"{step['Name']} in {inside}"
        for branch in ("IfSteps", "ElseSteps"):
            yield from nested_conditions(step["Arguments"].get(branch, []), f"{step['Name']}.{branch}")


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("stage", STAGES)
def test_no_condition_step_is_nested_in_another(
    deployed: Mapping[tuple[str, str], Deployed], stage: str, engine: str, pipeline: str
) -> None:
    # SageMaker Pipelines does not support nested condition steps (Developer Guide, "Add a step": Condition).
    document = json.loads(deployed[stage, engine].definitions[pipeline])
    assert list(nested_conditions(document["Steps"])) == []


def test_nested_conditions_are_found_in_either_branch_at_any_depth() -> None:
    def condition(name: str, if_steps: list[Any], else_steps: list[Any]) -> dict[str, Any]:
        return {"Name": name, "Type": "Condition", "Arguments": {"IfSteps": if_steps, "ElseSteps": else_steps}}

    fail = {"Name": "Stop", "Type": "Fail", "Arguments": {}}
    steps = [condition("A", [condition("B", [], [condition("C", [fail], [])])], []), condition("D", [], [fail])]
    assert list(nested_conditions(steps)) == ["B in A.IfSteps", "C in B.ElseSteps"]


# --- The checker itself ---------------------------------------------------------------------------


def processing_request() -> dict[str, Any]:
    """A CreateProcessingJob request the checker passes."""
    return {
        "ProcessingJobName": job_name("Check"),
        "RoleArn": f"arn:aws:iam::{DEV_ACCOUNT}:role/pipeline",
        "AppSpecification": {"ImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1"},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
        },
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "report",
                    "S3Output": {
                        "S3Uri": "s3://bucket/report",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "Environment": {"RUN_STEP_SOURCE_DIR": "/opt/ml/processing/input/source"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def test_the_checker_passes_a_good_request() -> None:
    assert request_errors(processing_request(), "CreateProcessingJob") == []


def _broken(change: Callable[[dict[str, Any]], None]) -> list[str]:
    request = processing_request()
    change(request)
    return request_errors(request, "CreateProcessingJob")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda r: r["ProcessingOutputConfig"]["Outputs"][0]["S3Output"].update(S3UploadMode="Sometimes"),
            "ProcessingOutputConfig.Outputs[0].S3Output.S3UploadMode: enum: 'Sometimes' is not one of "
            "['Continuous', 'EndOfJob']",
        ),
        (
            lambda r: r["ProcessingOutputConfig"]["Outputs"][0]["S3Output"].update(S3Uri="ftp://bucket/report"),
            "ProcessingOutputConfig.Outputs[0].S3Output.S3Uri: pattern: 'ftp://bucket/report' does not match",
        ),
        (
            lambda r: r.update(ProcessingJobName="validate_data"),
            "ProcessingJobName: pattern: 'validate_data' does not match '[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}'",
        ),
        (
            lambda r: r["Environment"].update(SAGEMAKER_SUBMIT_DIRECTORY="s3://bucket/" + "k" * 300),
            "Environment.SAGEMAKER_SUBMIT_DIRECTORY: string length 312 is above the maximum 256",
        ),
        (
            lambda r: r["ProcessingResources"]["ClusterConfig"].update(InstanceCount=101),
            "ProcessingResources.ClusterConfig.InstanceCount: value 101 is above the maximum 100",
        ),
        (
            lambda r: r["ProcessingOutputConfig"].update(Outputs=r["ProcessingOutputConfig"]["Outputs"] * 11),
            "ProcessingOutputConfig.Outputs: length 11 is above the maximum 10",
        ),
        (
            lambda r: r["Environment"].update({"1-bad": "x"}),
            "Environment key '1-bad': pattern: '1-bad' does not match '[a-zA-Z_][a-zA-Z0-9_]*'",
        ),
        (
            lambda r: r["ProcessingResources"]["ClusterConfig"].update(Colour="blue"),
            'Unknown parameter in ProcessingResources.ClusterConfig: "Colour", must be one of:',
        ),
        (
            lambda r: r["ProcessingResources"]["ClusterConfig"].update(InstanceCount="1"),
            "Invalid type for parameter ProcessingResources.ClusterConfig.InstanceCount",
        ),
        (lambda r: r.pop("RoleArn"), 'Missing required parameter in input: "RoleArn"'),
    ],
    ids=[
        "enum",
        "pattern",
        "pattern-whole-value",
        "string-max",
        "number-max",
        "list-max",
        "map-key",
        "unknown-member",
        "type",
        "required",
    ],
)
def test_the_checker_finds_each_kind_of_error_and_names_its_path(
    change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    (error,) = _broken(change)
    assert error.startswith(expected)


def test_failures_name_the_stage_engine_pipeline_step_and_the_enum_value_of_a_parameter() -> None:
    definition = {
        "Parameters": [
            {"Name": "Mode", "Type": "String", "DefaultValue": "EndOfJob", "EnumValues": ["EndOfJob", "Sometimes"]}
        ],
        "Steps": [{"Name": "Check", "Type": "Processing", "Arguments": copy.deepcopy(processing_request())}],
    }
    del definition["Steps"][0]["Arguments"]["ProcessingJobName"]
    output = definition["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
    output["S3UploadMode"] = {"Get": "Parameters.Mode"}
    output["S3Uri"] = {
        "Std:Join": {"On": "/", "Values": ["s3:/", "${ArtifactsBucket}", {"Get": "Execution.PipelineExecutionId"}]}
    }
    config = load_config(cdk_json_context()).stage("dev")
    failures, checked = definition_errors(json.dumps(definition), Deployment(config), "dev/processing/p")
    assert checked == ["Check: CreateProcessingJob"]
    assert failures == [
        "dev/processing/p/Check (Mode=Sometimes): CreateProcessingJob: "
        "ProcessingOutputConfig.Outputs[0].S3Output.S3UploadMode: "
        "enum: 'Sometimes' is not one of ['Continuous', 'EndOfJob']"
    ]


def test_step_properties_are_typed_by_the_describe_response_and_unknown_ones_fail() -> None:
    request = {"ProcessingOutputConfig": {"Outputs": [{"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}}]}}
    description = sagemaker_model().operation_model("DescribeProcessingJob").output_shape
    resolver = PlausibleResolver({"Parameters": [], "Steps": []}, {"P": Properties(description, request, "Steps.P")})
    assert resolver.get("Steps.P.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri") == "s3://b/train"
    assert resolver.get("Steps.P.ProcessingJobArn") == f"arn:aws:sagemaker:us-east-1:{DEV_ACCOUNT}:processing-job/p"
    with pytest.raises(ExpressionError):
        resolver.get("Steps.P.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri")
    with pytest.raises(ExpressionError):
        resolver.get("Steps.P.NoSuchMember")
    training = sagemaker_model().operation_model("DescribeTrainingJob").output_shape
    resolver = PlausibleResolver({"Parameters": [], "Steps": []}, {"T": Properties(training, {}, "Steps.T")})
    uri = resolver.get("Steps.T.ModelArtifacts.S3ModelArtifacts")
    assert uri == f"s3://plausible-bucket/{EXECUTION_ID}/T/S3ModelArtifacts"


def test_placeholders_without_a_plausible_value_fail() -> None:
    deployment = Deployment(load_config(cdk_json_context()).stage("prod"))
    assert deployment.substitute('"${Subnet2}/${RoleArn}"') == (
        '"subnet-00000000000000002/arn:aws:iam::222222222222:role/mlops-prod-MLPlatform-ExecutionRole0A1B2C3D-'
        'Ab1Cd2Ef3Gh4"'
    )
    with pytest.raises(KeyError, match=r"\$\{LakeBucket\}"):
        deployment.substitute('"${LakeBucket}"')


def test_steps_of_an_unknown_type_are_not_skipped() -> None:
    definition = {"Parameters": [], "Steps": [{"Name": "Transform", "Type": "Transform", "Arguments": {}}]}
    with pytest.raises(AssertionError, match="no request shape known for steps of type Transform"):
        list(step_requests(definition))


# --- Java patterns --------------------------------------------------------------------------------


def _patterns(shape: Shape, seen: frozenset[str] = frozenset()) -> Iterator[str]:
    if shape.name in seen:
        return
    seen |= {shape.name}
    if "pattern" in shape.metadata:
        yield shape.metadata["pattern"]
    if isinstance(shape, StructureShape):
        for member in shape.members.values():
            yield from _patterns(member, seen)
    elif isinstance(shape, ListShape):
        yield from _patterns(shape.member, seen)
    elif isinstance(shape, MapShape):
        yield from _patterns(shape.key, seen)
        yield from _patterns(shape.value, seen)


@pytest.mark.parametrize("operation", sorted({operation for operation, _ in OPERATIONS.values()}))
def test_every_pattern_of_the_request_shapes_compiles(operation: str) -> None:
    patterns = set(_patterns(sagemaker_model().operation_model(operation).input_shape))
    assert patterns
    for pattern in patterns:
        java_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        (r"[\p{L}\p{N}_.:/=+\-@]*", ["Zürich_2", "東京:1"], ["a b", "tab\t"]),
        (r"[\p{L}\p{M}\p{Z}\p{S}\p{N}\p{P}]*", ["a + b = c!", "€5"], ["line\nbreak"]),
        (r"arn:[\p{Alnum}\-]+:lambda", ["arn:aws-cn:lambda"], ["arn:aws_x:lambda", "arn:äws:lambda"]),
        (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*", ["a\tb", "emoji \U0001f600"], ["a\nb"]),
        (r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,128}", ["key:1"], ["key!"]),
        (r"\w+", ["abc_1"], ["é"]),  # Java's \w is ASCII
        (r"[]a]+", ["]a"], ["b"]),
    ],
)
def test_java_patterns_match_as_in_java(pattern: str, matching: list[str], not_matching: list[str]) -> None:
    compiled = java_pattern(pattern)
    assert [value for value in matching if not compiled.fullmatch(value)] == []
    assert [value for value in not_matching if compiled.fullmatch(value)] == []


@pytest.mark.parametrize("pattern", [r"\p{InGreek}", r"\P{L}", r"[a-z&&[^b]]", r"\Qa.b\E", r"[a-", r"(a"])
def test_a_pattern_that_cannot_be_translated_fails_loudly(pattern: str) -> None:
    with pytest.raises(PatternError):
        java_pattern(pattern)
