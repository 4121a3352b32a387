"""The SageMaker pipeline executions started in the emulated account, run as SageMaker would run them.

moto records a StartPipelineExecution and reports it Succeeded at once, running no step. The demo's moto
server runs in this process, so its SageMaker backend is reachable: `Executor` hooks the backend's
StartPipelineExecution so that an execution starts Executing (as SageMaker reports a started execution) and is
queued, whoever started it (the drift-alert function, CI's train command in a subprocess, the demo itself). A
worker thread runs each queued execution with the local pipeline runner (pipelines_src/local/runner.py): the
definition the execution was started on (the pipeline's definition at that moment, as SageMaker snapshots it),
the execution's own parameters (the definition's defaults for the others), each step a local process reading
and writing the emulated S3, RegisterModel calling CreateModelPackage on the emulator. When the run ends, the
execution's status becomes Succeeded or Failed, with the failure reason, so DescribePipelineExecution and
ListPipelineExecutions answer what SageMaker would
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribePipelineExecution.html: status
Executing | Stopping | Stopped | Failed | Succeeded, FailureReason). ListPipelineExecutionSteps, which moto
does not implement, answers from the steps the run has started so far (status Executing, then Succeeded or
Failed with the failure reason, a Fail step's message as Metadata.Fail.ErrorMessage;
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListPipelineExecutionSteps.html), newest first
unless SortOrder is Ascending.

Executions run one at a time, in the order they were started.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pipelines_src.local import images
from pipelines_src.local.runner import LocalPipelineRunner, RunResult, StepResult

EXECUTING: Final = "Executing"
SUCCEEDED: Final = "Succeeded"
FAILED: Final = "Failed"
TERMINAL: Final = frozenset({SUCCEEDED, FAILED})
# How long `wait` waits for an execution to end, by default.
WAIT_SECONDS: Final = 1800.0


class ExecutionError(RuntimeError):
    """An execution the demo waits for is unknown, or did not end in time."""


@dataclass
class Execution:
    """One execution the executor picked up: who started it with what, and how it ended."""

    arn: str
    pipeline: str
    display_name: str
    description: str
    parameters: dict[str, str]
    definition: str
    status: str = EXECUTING
    failure: str = ""
    seconds: float = 0.0
    result: RunResult | None = None
    events: list[str] = field(default_factory=list)
    # The steps started so far, in the order they started: ListPipelineExecutionSteps' entries.
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def registered(self) -> str | None:
        """The model package ARN its RegisterModel step created, if it ran."""
        if self.result is None:
            return None
        return next(
            (str(item["ModelPackageArn"]) for item in self.result.properties.values() if "ModelPackageArn" in item),
            None,
        )


def sagemaker_backend(account: str, region: str) -> Any:
    """moto's SageMaker backend of the account and region (the in-process server serves from it)."""
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[account][region]


class Executor:
    """Runs every pipeline execution started in the emulated SageMaker (see the module's docstring).

    ``s3`` and ``sagemaker`` are clients of the emulated account the runs use; ``workdir`` holds a job folder per
    execution (``<pipeline>/<execution id>/``); ``job_environment`` is what a job without network isolation
    sees (the emulator's endpoint and fake credentials). ``listener``, when set, gets every line the runner prints
    (the demo shows a progress bar from them)."""

    def __init__(
        self,
        backend: Any,
        *,
        s3: Any,
        sagemaker: Any,
        workdir: Path,
        job_environment: Mapping[str, str] | None = None,
        interpreters: str = images.AUTO,
    ) -> None:
        self.backend = backend
        self.s3 = s3
        self.sagemaker = sagemaker
        self.workdir = workdir
        self.job_environment = dict(job_environment or {})
        self.interpreters = interpreters
        self.listener: Callable[[Execution, str], None] | None = None
        self._executions: dict[str, Execution] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._changed = threading.Condition()
        self._worker: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @contextlib.contextmanager
    def running(self) -> Iterator[Executor]:
        """Hook the backend and run the worker for the block; afterwards the backend is as moto made it."""
        self._hook()
        self._worker = threading.Thread(target=self._work, name="pipeline-executor", daemon=True)
        self._worker.start()
        try:
            yield self
        finally:
            self._queue.put(None)
            self._worker.join()
            self._worker = None
            for name in ("start_pipeline_execution", "describe_pipeline_execution"):
                self.backend.__dict__.pop(name, None)
            from moto.sagemaker.responses import SageMakerResponse

            with contextlib.suppress(AttributeError):
                delattr(SageMakerResponse, "list_pipeline_execution_steps")

    def _hook(self) -> None:
        backend = self.backend
        start, describe = backend.start_pipeline_execution, backend.describe_pipeline_execution

        def start_pipeline_execution(pipeline_name: str, display_name: str, parameters: Any, *rest: Any) -> Any:
            response = start(pipeline_name, display_name, parameters, *rest)
            arn = str(response["PipelineExecutionArn"])
            record = self._record(arn)
            record.pipeline_execution_status = EXECUTING
            self._picked_up(
                Execution(
                    arn=arn,
                    pipeline=arn.split(":pipeline/", 1)[1].split("/execution/", 1)[0],
                    display_name=str(record.pipeline_execution_display_name or ""),
                    description=str(record.pipeline_execution_description or ""),
                    parameters={str(item["Name"]): str(item["Value"]) for item in parameters or []},
                    definition=str(record.pipeline_definition_for_execution),
                )
            )
            return response

        def describe_pipeline_execution(arn: str) -> Any:
            described = dict(describe(arn))
            described["FailureReason"] = str(self._record(arn).pipeline_execution_failure_reason or "")
            return described

        # Instance attributes: the server's request handlers call the backend's methods by name.
        backend.start_pipeline_execution = start_pipeline_execution
        backend.describe_pipeline_execution = describe_pipeline_execution
        self._answer_step_listing()

    def _answer_step_listing(self) -> None:
        """ListPipelineExecutionSteps from the executor's records: moto's responses dispatch actions to methods of
        its response class by name, and it has none for this one."""
        from moto.core.responses import ActionResult
        from moto.sagemaker.responses import SageMakerResponse

        executor = self

        def list_pipeline_execution_steps(response: Any) -> Any:
            arn = str(response._get_param("PipelineExecutionArn"))
            with executor._changed:
                execution = executor._executions.get(arn)
                steps = [dict(step) for step in execution.steps.values()] if execution else None
            if steps is None:
                self._record(arn)  # raises moto's ValidationError for an unknown execution
                steps = []
            if response._get_param("SortOrder", "Descending") != "Ascending":
                steps.reverse()
            return ActionResult({"PipelineExecutionSteps": steps})

        if hasattr(SageMakerResponse, "list_pipeline_execution_steps"):
            raise ExecutionError("moto answers ListPipelineExecutionSteps already: one executor at a time")
        setattr(SageMakerResponse, "list_pipeline_execution_steps", list_pipeline_execution_steps)  # noqa: B010

    def _record(self, arn: str) -> Any:
        from moto.sagemaker.utils import get_pipeline_execution_from_arn

        return get_pipeline_execution_from_arn(self.backend.pipelines, arn)

    def _picked_up(self, execution: Execution) -> None:
        with self._changed:
            self._executions[execution.arn] = execution
        self._queue.put(execution.arn)

    # ------------------------------------------------------------------- running
    def _work(self) -> None:
        while True:
            arn = self._queue.get()
            if arn is None:
                return
            execution = self._executions[arn]
            began = time.perf_counter()
            result: RunResult | None = None
            try:
                result = self._run(execution)
                status, failure = result.status, result.failure
            except Exception as error:  # the execution fails, as SageMaker's would; the worker goes on
                status, failure = FAILED, f"{type(error).__name__}: {error}"
            self._finish(execution, status, failure, result, time.perf_counter() - began)

    def _run(self, execution: Execution) -> RunResult:
        def on_event(line: str) -> None:
            execution.events.append(line)
            listener = self.listener
            if listener is not None:
                listener(execution, line)

        def on_step(step: StepResult) -> None:
            now = dt.datetime.now(dt.UTC)
            with self._changed:
                entry = execution.steps.setdefault(step.name, {"StepName": step.name, "StartTime": now})
                entry["StepStatus"] = step.status
                if step.status != EXECUTING:
                    entry["EndTime"] = now
                if step.status == FAILED:
                    entry["FailureReason"] = step.detail
                    if step.kind == "Fail":
                        entry["Metadata"] = {"Fail": {"ErrorMessage": step.detail}}

        runner = LocalPipelineRunner(
            json.loads(execution.definition),
            s3=self.s3,
            sagemaker=self.sagemaker,
            workdir=self.workdir / execution.pipeline / execution.execution_id,
            on_event=on_event,
            job_environment=self.job_environment,
            interpreters=self.interpreters,
            on_step=on_step,
        )
        return runner.run(execution.parameters, execution_id=execution.execution_id)

    def _finish(
        self, execution: Execution, status: str, failure: str, result: RunResult | None, seconds: float
    ) -> None:
        record = self._record(execution.arn)
        record.pipeline_execution_failure_reason = failure or None
        record.last_modified_time = dt.datetime.now(dt.UTC)
        record.pipeline_execution_status = status
        with self._changed:
            execution.status, execution.failure, execution.result, execution.seconds = status, failure, result, seconds
            self._changed.notify_all()

    # ------------------------------------------------------------------ reading
    def executions(self, pipeline: str | None = None) -> list[Execution]:
        """The executions picked up so far (of one pipeline), in the order they were started."""
        with self._changed:
            return [item for item in self._executions.values() if pipeline is None or item.pipeline == pipeline]

    def get(self, arn: str) -> Execution:
        """The execution ``arn``, as it is now."""
        with self._changed:
            if arn not in self._executions:
                raise ExecutionError(f"no execution {arn} was started in the emulated SageMaker")
            return self._executions[arn]

    def wait(self, arn: str, *, timeout: float = WAIT_SECONDS) -> Execution:
        """The execution once it has ended."""
        deadline = time.monotonic() + timeout
        with self._changed:
            if arn not in self._executions:
                raise ExecutionError(f"no execution {arn} was started in the emulated SageMaker")
            execution = self._executions[arn]
            while execution.status not in TERMINAL:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ExecutionError(f"execution {arn} is still {execution.status} after {timeout:g}s")
                self._changed.wait(remaining)
            return execution
