"""Run a SageMaker pipeline definition on this machine.

Each step of the definition runs as SageMaker would run it, with the container
replaced by a local subprocess: processing inputs are downloaded from S3 into a
job folder laid out like ``/opt/ml/processing``, the step's own entrypoint and
arguments run with those paths rewritten into the job folder, and its outputs go
back to S3. A processing step without an entrypoint (one that runs its image's own,
such as the SageMaker Model Monitor analyzer) cannot run here: it fails, naming the
step. Training runs the script-mode entry script with SageMaker's environment
(``SM_CHANNEL_*``, ``SM_MODEL_DIR``, hyperparameters as arguments) and packs the
model as ``model.tar.gz``. Conditions, Fail steps and parameters are
honoured; RegisterModel calls CreateModelPackage on the given SageMaker client.

S3 and SageMaker are whatever clients are passed in: embedded (moto) for local
runs and tests. A processing job that runs without network isolation may reach AWS
itself (e.g. drift.py publishing CloudWatch metrics): it gets ``job_environment``
(e.g. ``AWS_ENDPOINT_URL`` of an embedded AWS server), which isolated jobs never see.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines_src.local import images
from pipelines_src.local.expressions import ExpressionError, Resolver
from pipelines_src.local.graph import step_graph
from pipelines_src.local.storage import download, split_s3_uri, upload

CONTAINER_ROOT = "/opt/ml/"
# The account and region of local executions' ARNs (those of the embedded AWS).
LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"


@dataclass
class StepResult:
    name: str
    kind: str
    status: str  # Succeeded | Failed | Skipped
    seconds: float = 0.0
    detail: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    python: str = ""  # the interpreter the job ran on, and why when it is not its image's


@dataclass
class RunResult:
    status: str  # Succeeded | Failed
    steps: list[StepResult]
    failure: str = ""
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)

    def step(self, name: str) -> StepResult:
        return next(result for result in self.steps if result.name == name)


class StepFailedError(RuntimeError):
    """A step could not complete; the message says which and why."""


def _parameter_value(spec: Mapping[str, Any], value: Any) -> Any:
    kind = spec.get("Type", "String")
    if kind == "Float":
        return float(value)
    if kind == "Integer":
        return int(value)
    if kind == "Boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return str(value)


class LocalPipelineRunner:
    def __init__(
        self,
        definition: Mapping[str, Any],
        *,
        s3: Any,
        sagemaker: Any,
        workdir: Path,
        on_event: Callable[[str], None] = print,
        job_environment: Mapping[str, str] | None = None,
        interpreters: str = images.AUTO,
        on_step: Callable[[StepResult], None] | None = None,
        pipeline_name: str | None = None,
    ) -> None:
        self.definition = definition
        # Execution.PipelineName (and the execution's ARN): the definition JSON names no pipeline itself.
        self.pipeline_name = str(definition.get("PipelineName", "")) if pipeline_name is None else pipeline_name
        self.graph = step_graph(definition)
        self.s3 = s3
        self.sagemaker = sagemaker
        self.workdir = workdir
        self.on_event = on_event
        self.job_environment = dict(job_environment or {})
        self.interpreters = interpreters
        # Called with status Executing when a step starts, and with its result when it ends (skipped steps: never).
        self.on_step = on_step
        self._property_files: dict[tuple[str, str], Path] = {}
        self._fallbacks_said: set[str] = set()
        self._step_python: dict[str, str] = {}

    # ---------------------------------------------------------------- run
    def run(self, parameters: Mapping[str, Any] | None = None, *, execution_id: str = "local") -> RunResult:
        specs = {spec["Name"]: spec for spec in self.definition.get("Parameters", [])}
        unknown = set(parameters or {}) - set(specs)
        if unknown:
            raise ValueError(f"unknown pipeline parameters {sorted(unknown)}; known: {sorted(specs)}")
        values = {name: _parameter_value(spec, spec.get("DefaultValue")) for name, spec in specs.items()}
        values.update({name: _parameter_value(specs[name], value) for name, value in (parameters or {}).items()})
        properties: dict[str, dict[str, Any]] = {}
        self._property_files = {}
        resolver = Resolver(
            parameters=values,
            execution={
                "PipelineExecutionId": execution_id,
                "PipelineName": self.pipeline_name,
                "PipelineExecutionArn": execution_arn(self.pipeline_name, execution_id),
            },
            step_properties=properties,
            property_file=lambda step, name: self._property_files[(step, name)],
        )
        results: dict[str, StepResult] = {}
        chosen: dict[str, bool] = {}
        failure = ""
        for index, name in enumerate(self.graph.order, start=1):
            step = self.graph.steps[name]
            kind = step["Type"]
            blocked = [dep for dep in self.graph.depends_on[name] if results[dep].status != "Succeeded"]
            branch = self.graph.branch_of.get(name)
            if failure or blocked or (branch and chosen.get(branch[0]) != branch[1]):
                results[name] = StepResult(name, kind, "Skipped")
                continue
            self.on_event(f"[{index}/{len(self.graph.order)}] {name} ({kind}) ...")
            if self.on_step is not None:
                self.on_step(StepResult(name, kind, "Executing"))
            started = time.perf_counter()
            try:
                result = self._run_step(name, step, resolver, properties, chosen)
            except (StepFailedError, ExpressionError) as error:
                result = StepResult(name, kind, "Failed", detail=str(error))
                failure = f"{name}: {error}"
            result.seconds = time.perf_counter() - started
            result.python = self._step_python.pop(name, "")
            results[name] = result
            if self.on_step is not None:
                self.on_step(result)
            self.on_event(
                f"    {result.status} in {result.seconds:.1f}s" + (f": {result.detail}" if result.detail else "")
            )
        ordered = [results[name] for name in self.graph.order]
        return RunResult("Failed" if failure else "Succeeded", ordered, failure, properties)

    def _run_step(
        self,
        name: str,
        step: Mapping[str, Any],
        resolver: Resolver,
        properties: dict[str, dict[str, Any]],
        chosen: dict[str, bool],
    ) -> StepResult:
        kind = step["Type"]
        if kind == "Condition":
            outcome = all(resolver.condition(item) for item in step["Arguments"]["Conditions"])
            chosen[name] = outcome
            properties[name] = {"Outcome": outcome}
            return StepResult(name, kind, "Succeeded", detail=f"outcome {str(outcome).lower()}")
        if kind == "Fail":
            message = resolver.resolve(step["Arguments"].get("ErrorMessage", ""))
            raise StepFailedError(str(message))
        arguments = resolver.resolve(step["Arguments"])
        job_dir = self.workdir / name
        if kind == "Processing":
            properties[name], metrics = self._processing(name, step, arguments, job_dir)
        elif kind == "Training":
            properties[name], metrics = self._training(name, arguments, job_dir)
        elif kind == "RegisterModel":
            properties[name], metrics = self._register(arguments)
        else:
            raise StepFailedError(f"step type {kind} cannot run locally")
        detail = ", ".join(f"{key}={value:.4g}" for key, value in metrics.items())
        return StepResult(name, kind, "Succeeded", detail=detail, metrics=metrics)

    # ---------------------------------------------------------- processing
    def _processing(
        self, name: str, step: Mapping[str, Any], arguments: Mapping[str, Any], job_dir: Path
    ) -> tuple[dict[str, Any], dict[str, float]]:
        app = arguments.get("AppSpecification", {})
        if not app.get("ContainerEntrypoint"):
            raise StepFailedError(
                f"step {name} runs the image {app.get('ImageUri', '(none given)')} with the image's own entrypoint, "
                "not a script this runner can run: it runs only in SageMaker. Local runs need "
                "operations.drift.engine: processing (no SageMaker Model Monitor baseline step)"
            )
        command = [*app["ContainerEntrypoint"], *app.get("ContainerArguments", [])]
        for item in arguments.get("ProcessingInputs", []):
            self._download(item["S3Input"]["S3Uri"], self._local(job_dir, item["S3Input"]["LocalPath"]))
        outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for output in outputs:
            self._local(job_dir, output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        env = {key: self._remap(job_dir, str(value)) for key, value in arguments.get("Environment", {}).items()}
        if arguments.get("NetworkConfig", {}).get("EnableNetworkIsolation") is not True:
            env = {**self.job_environment, **env}
        python = self._interpreter(name, str(app.get("ImageUri", "")))
        self._execute(name, [self._remap(job_dir, part) for part in command], env, job_dir, python=python)
        described: dict[str, Any] = {"ProcessingJobName": f"{name}-local", "ProcessingOutputConfig": {"Outputs": {}}}
        metrics: dict[str, float] = {}
        for output in outputs:
            local = self._local(job_dir, output["S3Output"]["LocalPath"])
            upload(self.s3, local, output["S3Output"]["S3Uri"])
            described["ProcessingOutputConfig"]["Outputs"][output["OutputName"]] = output
            for spec in step.get("PropertyFiles", []):
                if spec["OutputName"] == output["OutputName"]:
                    path = local / spec["FilePath"]
                    if not path.exists():
                        raise StepFailedError(f"property file {spec['PropertyFileName']} was not written at {path}")
                    self._property_files[(name, spec["PropertyFileName"])] = path
                    metrics.update(model_quality_metrics(json.loads(path.read_text())))
        return described, metrics

    # ------------------------------------------------------------ training
    def _training(
        self, name: str, arguments: Mapping[str, Any], job_dir: Path
    ) -> tuple[dict[str, Any], dict[str, float]]:
        """Framework script mode: channels under input/data, the entry script run with hyperparameters as flags.

        On the image's environment the image's own toolkit (sagemaker-containers) starts the script, as the
        XGBoost image's training entry point does: it reads ``input/config/*.json``, installs the code
        folder and runs ``python -m <program> --<hyperparameter> <value> ...`` from ``/opt/ml/code``. On the
        project venv the runner does the same by itself.
        """
        channels = {}
        for channel in arguments.get("InputDataConfig", []):
            local = job_dir / "input" / "data" / channel["ChannelName"]
            self._download(channel["DataSource"]["S3DataSource"]["S3Uri"], local)
            channels[channel["ChannelName"]] = local
        raw = {key: str(value) for key, value in arguments.get("HyperParameters", {}).items()}
        program, submit = raw.get("sagemaker_program"), raw.get("sagemaker_submit_directory")
        if not program or not submit:
            raise StepFailedError(
                "only script-mode training (sagemaker_program, sagemaker_submit_directory) runs locally"
            )
        if not submit.startswith(CONTAINER_ROOT):
            raise StepFailedError(f"sagemaker_submit_directory {submit!r} must be a file in a channel under /opt/ml/")
        model_dir, output_dir = job_dir / "model", job_dir / "output" / "data"
        model_dir.mkdir(parents=True, exist_ok=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        python = self._interpreter(name, str(arguments.get("AlgorithmSpecification", {}).get("TrainingImage", "")))
        if python.is_image and _has_module(python.python, "sagemaker_containers"):
            command, env = self._toolkit_training(job_dir, raw, channels, python)
        else:
            command, env = self._script_training(job_dir, raw, channels, python)
        # the job's own environment (CreateTrainingJob's Environment), then what the toolkit sets
        env = {**{key: str(value) for key, value in arguments.get("Environment", {}).items()}, **env}
        output = self._execute(name, command, env, job_dir, python=python, cwd=job_dir / "code")
        job_name = f"{name}-local"
        uri = f"{str(arguments['OutputDataConfig']['S3OutputPath']).rstrip('/')}/{job_name}/output/model.tar.gz"
        archive = pack_model(model_dir, job_dir / "output" / "model.tar.gz")
        bucket, key = split_s3_uri(uri)
        self.s3.upload_file(str(archive), bucket, key)
        metrics = parse_metrics(output, arguments.get("AlgorithmSpecification", {}).get("MetricDefinitions", []))
        described = {
            "TrainingJobName": job_name,
            "ModelArtifacts": {"S3ModelArtifacts": uri},
            "FinalMetricDataList": [{"MetricName": metric, "Value": value} for metric, value in metrics.items()],
        }
        return described, metrics

    def _toolkit_training(
        self, job_dir: Path, raw: Mapping[str, str], channels: Mapping[str, Path], python: images.Interpreter
    ) -> tuple[list[str], dict[str, str]]:
        """The files SageMaker writes under /opt/ml/input/config, and the toolkit's script-mode launch."""
        config = job_dir / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        hyperparameters = {key: self._remap(job_dir, value) for key, value in raw.items()}
        files = {
            "hyperparameters.json": hyperparameters,
            "inputdataconfig.json": {
                channel: {
                    "TrainingInputMode": "File",
                    "S3DistributionType": "FullyReplicated",
                    "RecordWrapperType": "None",
                }
                for channel in channels
            },
            "resourceconfig.json": {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"},
        }
        for file_name, content in files.items():
            (config / file_name).write_text(json.dumps(content, sort_keys=True))
        (job_dir / "code").mkdir(parents=True, exist_ok=True)
        env = {
            "SAGEMAKER_BASE_DIR": str(job_dir),
            # A network-isolated job fetches nothing: no index, not this machine's pip configuration either.
            "PIP_NO_INDEX": "1",
            "PIP_CONFIG_FILE": os.devnull,
            # The code is installed into the job folder, not into the shared image environment.
            "PIP_TARGET": str(job_dir / "installed"),
        }
        return [str(python.python), "-c", _TOOLKIT_TRAINING], env

    def _script_training(
        self, job_dir: Path, raw: Mapping[str, str], channels: Mapping[str, Path], python: images.Interpreter
    ) -> tuple[list[str], dict[str, str]]:
        """What the toolkit does, for an interpreter without it: extract, then ``python -m <program> <flags>``."""
        hyperparameters = {key: value for key, value in raw.items() if not key.startswith("sagemaker_")}
        framework = {key: value for key, value in raw.items() if key.startswith("sagemaker_")}
        code_dir = job_dir / "code"
        code_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(self._local(job_dir, framework["sagemaker_submit_directory"])) as tar:
            tar.extractall(code_dir, filter="data")
        typed = {key: _typed(value) for key, value in hyperparameters.items()}
        env = {
            "SM_MODEL_DIR": str(job_dir / "model"),
            "SM_OUTPUT_DATA_DIR": str(job_dir / "output" / "data"),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(typed, sort_keys=True),
            "SM_CURRENT_HOST": "algo-1",
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_LOG_LEVEL": framework.get("sagemaker_container_log_level", "20"),
            **{f"SM_CHANNEL_{channel.upper()}": str(path) for channel, path in channels.items()},
        }
        flags = [part for key, value in sorted(typed.items()) for part in (_flag_name(key), _flag(value))]
        module = framework["sagemaker_program"].removesuffix(".py")
        return [str(python.python), "-m", module, *flags], env

    # ------------------------------------------------------------ register
    def _register(self, arguments: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
        response = self.sagemaker.create_model_package(**arguments)
        return {"ModelPackageArn": response["ModelPackageArn"]}, {}

    # ------------------------------------------------------------- helpers
    def _download(self, uri: str, destination: Path) -> None:
        try:
            download(self.s3, uri, destination)
        except (FileNotFoundError, ValueError) as error:
            raise StepFailedError(str(error)) from None

    def _local(self, job_dir: Path, container_path: str) -> Path:
        if not container_path.startswith(CONTAINER_ROOT):
            raise StepFailedError(f"container path {container_path!r} is outside {CONTAINER_ROOT}")
        return job_dir / container_path[len(CONTAINER_ROOT) :]

    def _remap(self, job_dir: Path, value: str) -> str:
        """Rewrite container paths (/opt/ml/...) in one argument into the job folder."""
        return re.sub(r"/opt/ml/[^\s=:,]*", lambda match: str(self._local(job_dir, match.group(0))), value)

    def _interpreter(self, step: str, image_uri: str) -> images.Interpreter:
        """The interpreter for a step of this image, announced with the step (and a fallback, once per image)."""
        try:
            chosen = images.choose(image_uri, self.interpreters)
        except images.ImageEnvironmentError as error:
            raise StepFailedError(f"image {image_uri}: {error}") from None
        if chosen.fallback and image_uri not in self._fallbacks_said:
            self._fallbacks_said.add(image_uri)
            self.on_event(f"    {chosen.fallback}")
        self.on_event(f"    python: {chosen.describe() if not chosen.fallback else 'project venv'}")
        self._step_python[step] = chosen.describe()
        return chosen

    def _execute(
        self,
        name: str,
        command: list[str],
        env: Mapping[str, str],
        job_dir: Path,
        *,
        python: images.Interpreter,
        cwd: Path | None = None,
    ) -> str:
        log = job_dir / "job.log"
        path = f"{python.python.parent}{os.pathsep}{os.environ['PATH']}"  # python3 on PATH is the image's
        environment = {**os.environ, **env, "PATH": path}
        environment.pop("PYTHONPATH", None)
        with log.open("w") as handle:
            completed = subprocess.run(
                command, cwd=cwd or job_dir, env=environment, stdout=handle, stderr=subprocess.STDOUT, check=False
            )
        output = log.read_text()
        if completed.returncode != 0:
            tail = "\n".join(output.strip().splitlines()[-5:])
            raise StepFailedError(f"exited with {completed.returncode} (log: {log})\n{tail}")
        return output


# What the XGBoost image's training entry point does in script mode, with the image's own toolkit.
_TOOLKIT_TRAINING = (
    "from sagemaker_containers.beta.framework import modules, training_env\n"
    "env = training_env()\n"
    "modules.run_module(env.module_dir, env.to_cmd_args(), env.to_env_vars(), env.module_name)\n"
)


@functools.lru_cache(maxsize=16)
def _has_module(python: Path, module: str) -> bool:
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(python), "-c", probe], capture_output=True, check=False).returncode == 0


def _typed(value: str) -> Any:
    """A hyperparameter as the toolkit reads it: JSON where it parses (numbers, booleans, lists), else the string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _flag(value: Any) -> str:
    """A typed hyperparameter as a command-line value, as the toolkit writes it (``str``; maps as k=v,k=v)."""
    if isinstance(value, dict):
        return ",".join(f"{key}={item}" for key, item in sorted(value.items()))
    return str(value)


def _flag_name(key: str) -> str:
    return f"--{key}" if len(key) > 1 else f"-{key}"


def execution_arn(pipeline: str, execution_id: str) -> str:
    """The ARN a local execution goes by: a SageMaker pipeline execution ARN of the local account and region."""
    return f"arn:aws:sagemaker:{LOCAL_REGION}:{LOCAL_ACCOUNT}:pipeline/{pipeline.lower()}/execution/{execution_id}"


def pack_model(model_dir: Path, archive: Path) -> Path:
    """model.tar.gz as SageMaker packs /opt/ml/model after training."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
    return archive


def model_quality_metrics(document: Any) -> dict[str, float]:
    """``{"regression_metrics": {"rmse": {"value": 4.1}}}`` (SageMaker's model-quality format) -> {"rmse": 4.1}."""
    found: dict[str, float] = {}
    if isinstance(document, dict):
        for group, entries in document.items():
            if str(group).endswith("_metrics") and isinstance(entries, dict):
                for metric, entry in entries.items():
                    value = entry.get("value") if isinstance(entry, dict) else None
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        found[metric] = float(value)
    return found


def parse_metrics(output: str, definitions: list[Mapping[str, str]]) -> dict[str, float]:
    """The last value each metric definition's regex finds in the job output, as SageMaker reports it."""
    found: dict[str, float] = {}
    for definition in definitions:
        matches = re.findall(definition["Regex"], output)
        if matches:
            last = matches[-1]
            found[definition["Name"]] = float(last[0] if isinstance(last, tuple) else last)
    return found


def load_definition(text: str) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(text)
    return definition
