"""The demo's wiring, read from the cloud assembly `cdk synth` writes for one stage.

`synthesize` builds the stage as the CDK CLI would (cdk.json's context, `stacks.app.build`) into a folder;
`Assembly` reads its templates; `Resolver` gives each logical resource the physical name or ARN it has in
the emulated account and resolves the templates' intrinsic functions (Ref, Fn::GetAtt, Fn::ImportValue,
Fn::Join, Fn::Sub) against them. Names a template spells out (they come from `resolver.naming`) are used as
they are; a resource the stacks leave unnamed gets a CloudFormation-style generated name
(<stack>-<logical id>-<suffix>). From these the demo takes each function's environment and entry point,
the EventBridge rules in front of each function, and the published-values parameter.

A reference the resolver cannot resolve raises `AssemblyError` naming the stack, logical id and property.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from aws_cdk import App

LAMBDAS = Path(__file__).resolve().parents[1] / "lambdas"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"

# The property that names a resource, by type (CloudFormation generates a name when it is absent).
NAME_PROPERTIES: dict[str, str] = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::DynamoDB::GlobalTable": "TableName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SageMaker::Pipeline": "PipelineName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::SSM::Parameter": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::CompositeAlarm": "AlarmName",
    "AWS::Events::Rule": "Name",
    "AWS::CodeBuild::Project": "Name",
    "AWS::CodePipeline::Pipeline": "Name",
    "AWS::Glue::Job": "Name",
    "AWS::Glue::Database": "DatabaseInput.Name",
}
# Resources whose Ref is an id CloudFormation (or the service) assigns: the id's prefix.
ID_PREFIXES = {"AWS::EC2::VPC": "vpc-", "AWS::EC2::Subnet": "subnet-", "AWS::EC2::SecurityGroup": "sg-"}


class AssemblyError(RuntimeError):
    """The cloud assembly lacks something the demo reads, or holds a reference it cannot resolve."""


def _quiet_jsii() -> None:
    """As the Makefile exports it, before the jsii runtime starts: no notice about the Node.js version."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def new_app(context: Mapping[str, Any], **kwargs: Any) -> App:
    """An app with ``context`` (cdk.json's, feature flags included), as the CDK CLI would build it."""
    _quiet_jsii()
    from aws_cdk import App

    return App(context=dict(context), builtin_cloud_formation_validation=False, **kwargs)


def synthesize(context: Mapping[str, Any], stage: str, outdir: Path) -> Assembly:
    """Synthesize one stage of ``context`` into ``outdir`` (as ``cdk synth -c stage=<stage>``) and read it."""
    _quiet_jsii()
    from resolver.config import load_config
    from stacks.app import build

    app = new_app(context, outdir=str(outdir))
    build(app, load_config(context), [stage])
    return Assembly.read(Path(app.synth().directory))


@dataclass(frozen=True)
class FileAsset:
    """A file the stacks reference as an asset: where `cdk deploy` uploads it (the bucket name may hold pseudo
    parameters, ``${AWS::AccountId}``)."""

    source: Path
    bucket: str
    key: str


@dataclass(frozen=True)
class Stack:
    name: str
    template: dict[str, Any]
    assets: tuple[FileAsset, ...] = ()

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.template.get("Resources", {})
        return resources

    def of_type(self, kind: str) -> dict[str, Any]:
        return {logical: resource for logical, resource in self.resources.items() if resource["Type"] == kind}


@dataclass(frozen=True)
class Assembly:
    """The stacks of a cloud assembly (nested stage assemblies included), by CloudFormation stack name."""

    directory: Path
    stacks: dict[str, Stack]

    @classmethod
    def read(cls, directory: Path) -> Assembly:
        stacks: dict[str, Stack] = {}
        cls._collect(directory, stacks)
        if not stacks:
            raise AssemblyError(f"{directory}: the cloud assembly holds no stack")
        return cls(directory=directory, stacks=stacks)

    @classmethod
    def _collect(cls, directory: Path, stacks: dict[str, Stack]) -> None:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        for artifact_id, artifact in manifest.get("artifacts", {}).items():
            properties = artifact.get("properties", {})
            if artifact["type"] == "cdk:cloud-assembly":
                cls._collect(directory / properties["directoryName"], stacks)
            elif artifact["type"] == "aws:cloudformation:stack":
                name = properties.get("stackName", artifact_id)
                template = json.loads((directory / properties["templateFile"]).read_text(encoding="utf-8"))
                stacks[name] = Stack(name=name, template=template, assets=cls._file_assets(directory, artifact_id))

    @staticmethod
    def _file_assets(directory: Path, stack_id: str) -> tuple[FileAsset, ...]:
        """The single-file assets of a stack's asset manifest (<stack>.assets.json); folders (zipped by
        cdk-assets: the functions' code) and images are not published here."""
        manifest = directory / f"{stack_id}.assets.json"
        if not manifest.is_file():
            return ()
        assets = []
        for asset in json.loads(manifest.read_text(encoding="utf-8")).get("files", {}).values():
            source = asset["source"]
            if source.get("packaging", "file") != "file" or "path" not in source:
                continue
            path = (directory / source["path"]).resolve()
            if not path.is_file():
                continue
            for destination in asset["destinations"].values():
                assets.append(FileAsset(source=path, bucket=destination["bucketName"], key=destination["objectKey"]))
        return tuple(assets)

    def stack(self, suffix: str) -> Stack:
        """The one stack whose name ends with ``-<suffix>`` (e.g. "Operations")."""
        found = [stack for name, stack in self.stacks.items() if name.endswith(f"-{suffix}")]
        if len(found) != 1:
            raise AssemblyError(f"{self.directory}: {len(found)} stacks named *-{suffix}, expected one")
        return found[0]

    def exported(self, name: str) -> tuple[Stack, Any] | None:
        """The stack exporting ``name`` and its output's value (None: no stack exports it)."""
        for stack in self.stacks.values():
            for output in stack.template.get("Outputs", {}).values():
                if output.get("Export", {}).get("Name") == name:
                    return stack, output["Value"]
        return None


@dataclass(frozen=True)
class Rule:
    """An EventBridge rule in front of a function: where it is and its pattern, references resolved."""

    stack: str
    logical_id: str
    pattern: dict[str, Any]

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether EventBridge would deliver ``event`` to the rule's targets, decided by moto's own pattern matcher
        (the one its event buses route with). As EventBridge matches: the event must hold every field of the pattern,
        nested as in the pattern; the values in a pattern's array are alternatives; an array in the event matches when
        one of its values does; filters such as prefix and exists apply to one field
        (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern.html,
        https://docs.aws.amazon.com/eventbridge/latest/userguide/content-filtering-with-event-patterns.html)."""
        from moto.events.models import EventPattern, EventPatternParser

        raw = json.dumps(self.pattern)
        matched: bool = EventPattern(raw, EventPatternParser(raw).parse()).matches_event(cast(Any, dict(event)))
        return matched


@dataclass(frozen=True)
class Function:
    """A Lambda function of the assembly whose code is a folder of lambdas/."""

    stack: str
    logical_id: str
    name: str
    arn: str
    module: str  # the Handler property's module, under lambdas/ (e.g. drift_alert.handler)
    entry: str  # the function the module exports (e.g. lambda_handler)
    environment: dict[str, str]
    memory_mb: int
    rules: tuple[Rule, ...]

    @property
    def package(self) -> str:
        return self.module.split(".")[0]

    def rule_for(self, event: Mapping[str, Any]) -> Rule | None:
        return next((rule for rule in self.rules if rule.matches(event)), None)


@dataclass(frozen=True)
class CompositeAlarm:
    """A composite alarm's properties and those of the metric alarms its rule combines (ALARM(...) OR ...)."""

    properties: dict[str, Any]
    alarms: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Pipeline:
    """A SageMaker pipeline as deployed: its definition (JSON), the role it runs as, its description."""

    name: str
    definition: str
    role_arn: str
    description: str


# The phases of a buildspec, in the order CodeBuild runs them
# (https://docs.aws.amazon.com/codebuild/latest/userguide/build-spec-ref.html#build-spec.phases).
BUILD_PHASES = ("install", "pre_build", "build", "post_build")


@dataclass(frozen=True)
class BuildAction:
    """A CodeBuild action of a CodePipeline as synthesized: its project's buildspec and the environment the build
    gets (the buildspec's ``env.variables``, then the project's, then the action's: the later wins, as CodeBuild
    ranks them, https://docs.aws.amazon.com/codebuild/latest/userguide/build-spec-ref.html#build-spec.env.variables).
    Values may hold CodePipeline variables (``#{variables.Name}``), which the caller resolves."""

    pipeline: str
    stage: str
    action: str
    project: str
    buildspec: dict[str, Any]
    environment: dict[str, str]

    def phases(self) -> list[tuple[str, list[str]]]:
        """(phase, commands) in the order CodeBuild runs them; phases without commands left out."""
        phases = self.buildspec.get("phases", {})
        return [
            (phase, [str(command) for command in phases[phase].get("commands", [])])
            for phase in BUILD_PHASES
            if phase in phases and phases[phase].get("commands")
        ]

    def runtime_versions(self) -> dict[str, str]:
        return {
            str(k): str(v)
            for k, v in self.buildspec.get("phases", {}).get("install", {}).get("runtime-versions", {}).items()
        }


@dataclass(frozen=True)
class GlueJob:
    """A Glue job as synthesized: its name, its script's location and its default arguments, references resolved."""

    name: str
    script: str
    arguments: dict[str, str]


@dataclass(frozen=True)
class Resolver:
    """Physical names and ARNs of the assembly's resources in the emulated account, and the templates' references
    resolved to them."""

    assembly: Assembly
    account: str
    region: str

    # ----------------------------------------------------------------- resources
    def _resource(self, stack: Stack, logical_id: str, where: str) -> dict[str, Any]:
        resource = stack.resources.get(logical_id)
        if resource is None:
            raise AssemblyError(f"{where}: no resource {logical_id!r} in {stack.name}")
        found: dict[str, Any] = resource
        return found

    def name(self, stack: Stack, logical_id: str) -> str:
        """The resource's physical name: its name property, else one generated as CloudFormation does."""
        resource = self._resource(stack, logical_id, f"{stack.name}: {logical_id}")
        prop = NAME_PROPERTIES.get(resource["Type"])
        given: Any = resource.get("Properties", {})
        for part in prop.split(".") if prop else [""]:
            given = given.get(part) if isinstance(given, dict) and part else None
        if given is not None:
            return str(self.resolve(given, stack=stack.name, logical_id=logical_id, prop=str(prop)))
        suffix = hashlib.sha256(f"{stack.name}/{logical_id}".encode()).hexdigest()[:12]
        if resource["Type"] == "AWS::S3::Bucket":  # lowercase, at most 63 characters
            return f"{stack.name}-{logical_id}"[: 63 - 13].lower() + f"-{suffix}"
        return f"{stack.name}-{logical_id}"[:50] + f"-{suffix.upper()}"

    def ref(self, stack: Stack, logical_id: str, where: str) -> str:
        if logical_id in self._pseudo(stack):
            return self._pseudo(stack)[logical_id]
        if logical_id in stack.template.get("Parameters", {}):
            raise AssemblyError(
                f"{where}: Ref to the template parameter {logical_id!r}, which the demo has no value for"
            )
        kind = self._resource(stack, logical_id, where)["Type"]
        if kind in ID_PREFIXES:
            return ID_PREFIXES[kind] + hashlib.sha256(f"{stack.name}/{logical_id}".encode()).hexdigest()[:17]
        if kind == "AWS::KMS::Key":
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.account}/{stack.name}/{logical_id}"))
        if kind == "AWS::SNS::Topic":
            return self.arn(stack, logical_id, where)
        if kind in NAME_PROPERTIES:
            return self.name(stack, logical_id)
        raise AssemblyError(f"{where}: Ref to {logical_id} ({kind}), which the emulated account has no name for")

    def arn(self, stack: Stack, logical_id: str, where: str) -> str:
        kind = self._resource(stack, logical_id, where)["Type"]
        head = f"arn:{PARTITION}"
        if kind == "AWS::KMS::Key":
            return f"{head}:kms:{self.region}:{self.account}:key/{self.ref(stack, logical_id, where)}"
        name = self.name(stack, logical_id)
        patterns = {
            "AWS::S3::Bucket": f"{head}:s3:::{name}",
            "AWS::SNS::Topic": f"{head}:sns:{self.region}:{self.account}:{name}",
            "AWS::SQS::Queue": f"{head}:sqs:{self.region}:{self.account}:{name}",
            "AWS::DynamoDB::Table": f"{head}:dynamodb:{self.region}:{self.account}:table/{name}",
            "AWS::DynamoDB::GlobalTable": f"{head}:dynamodb:{self.region}:{self.account}:table/{name}",
            "AWS::IAM::Role": f"{head}:iam::{self.account}:role/{name}",
            "AWS::Lambda::Function": f"{head}:lambda:{self.region}:{self.account}:function:{name}",
            "AWS::SageMaker::Pipeline": f"{head}:sagemaker:{self.region}:{self.account}:pipeline/{name}",
            "AWS::CloudWatch::Alarm": f"{head}:cloudwatch:{self.region}:{self.account}:alarm:{name}",
            "AWS::CloudWatch::CompositeAlarm": f"{head}:cloudwatch:{self.region}:{self.account}:alarm:{name}",
        }
        if kind not in patterns:
            raise AssemblyError(f"{where}: the ARN of {logical_id} ({kind}), which the emulated account has none for")
        return patterns[kind]

    def attribute(self, stack: Stack, logical_id: str, attribute: str, where: str) -> str:
        kind = self._resource(stack, logical_id, where)["Type"]
        if attribute == "Arn":
            return self.arn(stack, logical_id, where)
        if (kind, attribute) == ("AWS::EC2::SecurityGroup", "GroupId"):
            return self.ref(stack, logical_id, where)
        if (kind, attribute) == ("AWS::SNS::Topic", "TopicName"):
            return self.name(stack, logical_id)
        raise AssemblyError(f"{where}: Fn::GetAtt {logical_id}.{attribute} ({kind}) has no emulated value")

    def _pseudo(self, stack: Stack) -> dict[str, str]:
        return {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": stack.name,
        }

    # --------------------------------------------------------------- intrinsics
    def resolve(self, value: Any, *, stack: str, logical_id: str, prop: str) -> Any:
        """``value`` with every intrinsic function resolved; ``prop`` (a property path) names it in errors."""
        owner = self.assembly.stacks[stack]
        where = f"{stack}: {logical_id}.{prop}"
        if isinstance(value, list):
            return [self.resolve(item, stack=stack, logical_id=logical_id, prop=prop) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self.ref(owner, argument, where)
            if function == "Fn::GetAtt":
                target, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.attribute(owner, target, attribute, where)
            if function == "Fn::ImportValue":
                name = self.resolve(argument, stack=stack, logical_id=logical_id, prop=prop)
                found = self.assembly.exported(name)
                if found is None:
                    raise AssemblyError(f"{where}: Fn::ImportValue {name!r}: no stack of the assembly exports it")
                exporter, exported = found
                return self.resolve(exported, stack=exporter.name, logical_id=f"Export {name}", prop="Value")
            if function == "Fn::Join":
                delimiter, items = argument
                parts = self.resolve(items, stack=stack, logical_id=logical_id, prop=prop)
                return str(delimiter).join(str(part) for part in parts)
            if function == "Fn::Sub":
                return self._sub(owner, argument, where, logical_id=logical_id, prop=prop)
            if function.startswith("Fn::") or function == "Condition":
                raise AssemblyError(f"{where}: {function} is not resolved by the demo")
        return {
            key: self.resolve(item, stack=stack, logical_id=logical_id, prop=f"{prop}.{key}" if prop else key)
            for key, item in value.items()
        }

    def _sub(self, stack: Stack, argument: Any, where: str, *, logical_id: str, prop: str) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {
            name: self.resolve(item, stack=stack.name, logical_id=logical_id, prop=prop)
            for name, item in variables.items()
        }

        def replace(match: re.Match[str]) -> str:
            name = match[1]
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and not name.startswith("AWS::"):
                target, attribute = name.split(".", 1)
                return self.attribute(stack, target, attribute, where)
            return self.ref(stack, name, where)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # ------------------------------------------------------------- what the demo reads
    def functions(self) -> dict[str, Function]:
        """The functions whose Handler is a module of lambdas/, by that module's package (e.g. "drift_alert")."""
        functions: dict[str, Function] = {}
        for stack in self.assembly.stacks.values():
            for logical_id, resource in stack.of_type("AWS::Lambda::Function").items():
                properties = resource.get("Properties", {})
                module, _, entry = str(properties.get("Handler", "")).rpartition(".")
                if not module or not (LAMBDAS / f"{module.replace('.', '/')}.py").is_file():
                    continue  # the CDK's own providers (custom resources), not the platform's code
                variables = properties.get("Environment", {}).get("Variables", {})
                environment = self.resolve(
                    variables, stack=stack.name, logical_id=logical_id, prop="Environment.Variables"
                )
                arn = self.arn(stack, logical_id, f"{stack.name}: {logical_id}")
                function = Function(
                    stack=stack.name,
                    logical_id=logical_id,
                    name=self.name(stack, logical_id),
                    arn=arn,
                    module=module,
                    entry=entry,
                    environment={key: str(item) for key, item in environment.items()},
                    memory_mb=int(properties.get("MemorySize", 128)),
                    rules=self._rules_targeting(stack, logical_id),
                )
                functions[function.package] = function
        return functions

    def _rules_targeting(self, stack: Stack, function: str) -> tuple[Rule, ...]:
        """The rules of the function's stack with the function as a target (CDK writes Fn::GetAtt <function>.Arn)."""
        target = {"Fn::GetAtt": [function, "Arn"]}
        rules = []
        for logical_id, resource in stack.of_type("AWS::Events::Rule").items():
            properties = resource.get("Properties", {})
            if "EventPattern" in properties and target in [item["Arn"] for item in properties.get("Targets", [])]:
                pattern = self.resolve(
                    properties["EventPattern"], stack=stack.name, logical_id=logical_id, prop="EventPattern"
                )
                rules.append(Rule(stack=stack.name, logical_id=logical_id, pattern=pattern))
        return tuple(rules)

    def composite_alarm(self, name: str) -> CompositeAlarm:
        """The composite alarm ``name`` and the metric alarms its rule combines, their properties resolved."""
        for stack in self.assembly.stacks.values():
            for logical_id, resource in stack.of_type("AWS::CloudWatch::CompositeAlarm").items():
                properties = self.resolve(resource["Properties"], stack=stack.name, logical_id=logical_id, prop="")
                if properties.get("AlarmName") != name:
                    continue
                members = set(re.findall(r'ALARM\("([^"]+)"\)', properties["AlarmRule"]))
                alarms = [
                    self.resolve(alarm["Properties"], stack=stack.name, logical_id=alarm_id, prop="")
                    for alarm_id, alarm in stack.of_type("AWS::CloudWatch::Alarm").items()
                    if self.arn(stack, alarm_id, f"{stack.name}: {alarm_id}") in members
                ]
                if len(alarms) != len(members):
                    raise AssemblyError(
                        f"{stack.name}: {logical_id}.AlarmRule: {len(members) - len(alarms)} of its alarms are not "
                        "metric alarms of the stack"
                    )
                return CompositeAlarm(properties=properties, alarms=tuple(alarms))
        raise AssemblyError(f"{self.assembly.directory}: no stack creates the composite alarm {name}")

    def file_assets(self) -> list[FileAsset]:
        """Every stack's file assets, their bucket names resolved (``cdk deploy`` publishes them first)."""
        assets = {}
        for stack in self.assembly.stacks.values():
            for asset in stack.assets:
                bucket = self._sub(stack, asset.bucket, f"{stack.name}: asset {asset.key}", logical_id="", prop="")
                assets[(bucket, asset.key)] = FileAsset(source=asset.source, bucket=bucket, key=asset.key)
        return list(assets.values())

    def pipeline(self, name: str) -> Pipeline:
        """The SageMaker pipeline ``name`` as CloudFormation deploys it: its definition (PipelineDefinitionBody) and
        role, references resolved."""
        for stack in self.assembly.stacks.values():
            for logical_id, resource in stack.of_type("AWS::SageMaker::Pipeline").items():
                if self.name(stack, logical_id) != name:
                    continue
                properties = resource["Properties"]
                body = properties["PipelineDefinition"].get("PipelineDefinitionBody")
                if body is None:
                    raise AssemblyError(f"{stack.name}: {logical_id}.PipelineDefinition has no PipelineDefinitionBody")
                prop = "PipelineDefinition.PipelineDefinitionBody"
                return Pipeline(
                    name=name,
                    definition=str(self.resolve(body, stack=stack.name, logical_id=logical_id, prop=prop)),
                    role_arn=str(
                        self.resolve(properties["RoleArn"], stack=stack.name, logical_id=logical_id, prop="RoleArn")
                    ),
                    description=str(properties.get("PipelineDescription", "")),
                )
        raise AssemblyError(f"{self.assembly.directory}: no stack creates the SageMaker pipeline {name}")

    def build_action(self, pipeline: str, action: str) -> BuildAction:
        """The CodeBuild action ``action`` of the CodePipeline ``pipeline``: its project's buildspec and environment."""
        for stack in self.assembly.stacks.values():
            for logical_id, resource in stack.of_type("AWS::CodePipeline::Pipeline").items():
                if self.name(stack, logical_id) != pipeline:
                    continue
                for stage in resource["Properties"]["Stages"]:
                    for item in stage["Actions"]:
                        if item["Name"] == action and item["ActionTypeId"]["Provider"] == "CodeBuild":
                            return self._build_action(stack, pipeline, stage["Name"], item)
                raise AssemblyError(f"{stack.name}: {logical_id} ({pipeline}) has no CodeBuild action {action!r}")
        raise AssemblyError(f"{self.assembly.directory}: no stack creates the CodePipeline {pipeline}")

    def _build_action(self, stack: Stack, pipeline: str, stage: str, action: dict[str, Any]) -> BuildAction:
        where = f"{stack.name}: {pipeline} action {action['Name']}"
        reference = action["Configuration"]["ProjectName"]
        if not (isinstance(reference, dict) and set(reference) == {"Ref"}):
            raise AssemblyError(f"{where}: ProjectName {reference!r} is not a project of the stack")
        project = self._resource(stack, reference["Ref"], where)["Properties"]
        source = project.get("Source", {})
        try:
            buildspec = json.loads(source["BuildSpec"])
        except (KeyError, TypeError, ValueError):
            raise AssemblyError(f"{where}: the project's Source.BuildSpec is not an inline JSON buildspec") from None
        resolved = self.resolve(
            project.get("Environment", {}).get("EnvironmentVariables", []),
            stack=stack.name,
            logical_id=reference["Ref"],
            prop="Environment.EnvironmentVariables",
        )
        overrides = json.loads(action["Configuration"].get("EnvironmentVariables", "[]"))
        variables = {str(k): str(v) for k, v in buildspec.get("env", {}).get("variables", {}).items()}
        for item in [*resolved, *({"Name": o["name"], "Value": o["value"], "Type": o.get("type")} for o in overrides)]:
            if item.get("Type", "PLAINTEXT") not in (None, "PLAINTEXT"):
                raise AssemblyError(f"{where}: variable {item['Name']} is {item['Type']}, which the demo cannot read")
            variables[str(item["Name"])] = str(item["Value"])
        return BuildAction(
            pipeline=pipeline,
            stage=stage,
            action=str(action["Name"]),
            project=self.name(stack, reference["Ref"]),
            buildspec=buildspec,
            environment=variables,
        )

    def glue_job(self, name: str) -> GlueJob:
        """The Glue job ``name``: its script location and its DefaultArguments, references resolved."""
        for stack in self.assembly.stacks.values():
            for logical_id, resource in stack.of_type("AWS::Glue::Job").items():
                if self.name(stack, logical_id) != name:
                    continue
                properties = resource["Properties"]
                script = self.resolve(
                    properties["Command"]["ScriptLocation"],
                    stack=stack.name,
                    logical_id=logical_id,
                    prop="Command.ScriptLocation",
                )
                arguments = self.resolve(
                    properties.get("DefaultArguments", {}),
                    stack=stack.name,
                    logical_id=logical_id,
                    prop="DefaultArguments",
                )
                return GlueJob(name=name, script=str(script), arguments={str(k): str(v) for k, v in arguments.items()})
        raise AssemblyError(f"{self.assembly.directory}: no stack creates the Glue job {name}")

    def catalog(self, database: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The Glue database ``database``'s DatabaseInput and its tables' TableInputs, as CloudFormation creates
        them."""
        for stack in self.assembly.stacks.values():
            for logical_id, resource in stack.of_type("AWS::Glue::Database").items():
                if self.name(stack, logical_id) != database:
                    continue
                created = self.resolve(resource["Properties"], stack=stack.name, logical_id=logical_id, prop="")
                tables = [
                    self.resolve(table["Properties"], stack=stack.name, logical_id=table_id, prop="")
                    for table_id, table in stack.of_type("AWS::Glue::Table").items()
                ]
                return created["DatabaseInput"], [
                    table["TableInput"] for table in tables if table["DatabaseName"] == database
                ]
        raise AssemblyError(f"{self.assembly.directory}: no stack creates the Glue database {database}")

    def parameter(self, name: str) -> str:
        """The value CloudFormation writes into the SSM parameter ``name`` (an AWS::SSM::Parameter resource)."""
        for stack in self.assembly.stacks.values():
            for logical_id, resource in stack.of_type("AWS::SSM::Parameter").items():
                properties = resource.get("Properties", {})
                if self.resolve(properties.get("Name"), stack=stack.name, logical_id=logical_id, prop="Name") == name:
                    return str(self.resolve(properties["Value"], stack=stack.name, logical_id=logical_id, prop="Value"))
        raise AssemblyError(f"{self.assembly.directory}: no stack creates the SSM parameter {name}")

    def metric_alarm(self, name: str) -> dict[str, Any]:
        """The properties of the metric alarm ``name`` (an AWS::CloudWatch::Alarm), references resolved."""
        for stack in self.assembly.stacks.values():
            for logical_id, resource in stack.of_type("AWS::CloudWatch::Alarm").items():
                properties = resource.get("Properties", {})
                if self.resolve(properties.get("AlarmName"), stack=stack.name, logical_id=logical_id, prop="") == name:
                    found: dict[str, Any] = self.resolve(properties, stack=stack.name, logical_id=logical_id, prop="")
                    return found
        raise AssemblyError(f"{self.assembly.directory}: no stack creates the metric alarm {name}")

    def scheduled_event(self, detail_type: str) -> ScheduledEvent:
        """The EventBridge Scheduler schedule whose target puts ``detail_type`` events: its source, its expression
        and its input (with the scheduler's context placeholders)."""
        for stack in self.assembly.stacks.values():
            for logical_id, resource in stack.of_type("AWS::Scheduler::Schedule").items():
                properties = self.resolve(resource["Properties"], stack=stack.name, logical_id=logical_id, prop="")
                target = properties.get("Target", {})
                parameters = target.get("EventBridgeParameters", {})
                if parameters.get("DetailType") == detail_type:
                    return ScheduledEvent(
                        logical_id=logical_id,
                        expression=str(properties["ScheduleExpression"]),
                        source=str(parameters["Source"]),
                        detail_type=detail_type,
                        input=str(target.get("Input", "{}")),
                    )
        raise AssemblyError(f"{self.assembly.directory}: no schedule puts {detail_type!r} events")

    def codepipeline(self, name: str) -> dict[str, Any]:
        """The CodePipeline ``name`` as CreatePipeline takes it (the template's properties, references resolved,
        in the API's spelling); its role is left to the caller (``roleArn``)."""
        for stack in self.assembly.stacks.values():
            for logical_id, resource in stack.of_type("AWS::CodePipeline::Pipeline").items():
                properties = resource.get("Properties", {})
                if self.resolve(properties.get("Name"), stack=stack.name, logical_id=logical_id, prop="") != name:
                    continue
                stages = self.resolve(properties["Stages"], stack=stack.name, logical_id=logical_id, prop="Stages")
                store = self.resolve(
                    properties.get("ArtifactStore", {}), stack=stack.name, logical_id=logical_id, prop="ArtifactStore"
                )
                return {
                    "name": name,
                    "pipelineType": properties.get("PipelineType", "V1"),
                    "artifactStore": {"type": store.get("Type", "S3"), "location": store.get("Location", "")},
                    "variables": [
                        {"name": item["Name"], "description": item.get("Description", "")}
                        for item in properties.get("Variables", [])
                    ],
                    "stages": [
                        {"name": stage["Name"], "actions": [_action(action) for action in stage["Actions"]]}
                        for stage in stages
                    ],
                }
        raise AssemblyError(f"{self.assembly.directory}: no stack creates the CodePipeline {name}")


@dataclass(frozen=True)
class ScheduledEvent:
    """An EventBridge Scheduler schedule putting events on a bus: what each run puts."""

    logical_id: str
    expression: str
    source: str
    detail_type: str
    # The target's Input: the event's detail, with <aws.scheduler.*> context placeholders.
    input: str

    def detail(self, scheduled_time: str) -> dict[str, Any]:
        """The detail of the event the run for ``scheduled_time`` puts (the scheduler fills its placeholders in)."""
        text = self.input.replace("<aws.scheduler.scheduled-time>", scheduled_time)
        detail: dict[str, Any] = json.loads(text)
        return detail


def _action(action: Mapping[str, Any]) -> dict[str, Any]:
    """A template's CodePipeline action as CreatePipeline spells it (configuration values are strings)."""
    kind = action["ActionTypeId"]
    shaped: dict[str, Any] = {
        "name": action["Name"],
        "actionTypeId": {
            "category": kind["Category"],
            "owner": kind["Owner"],
            "provider": kind["Provider"],
            "version": kind["Version"],
        },
        "runOrder": int(action.get("RunOrder", 1)),
        "configuration": {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in action.get("Configuration", {}).items()
        },
    }
    for key, api in (("InputArtifacts", "inputArtifacts"), ("OutputArtifacts", "outputArtifacts")):
        if action.get(key):
            shaped[api] = [{"name": item["Name"]} for item in action[key]]
    return shaped
