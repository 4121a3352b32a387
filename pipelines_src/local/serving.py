"""A SageMaker endpoint's container on this machine: the XGBoost image's own serving stack over real HTTP.

``ServingStack(model, environment)`` serves a model as the endpoint's container would, on the image's
Python environment (``.venv-images/sagemaker-xgboost-3.0-5``: sagemaker-containers 2.8.6, Flask,
gunicorn with gevent workers, xgboost 3.0.5), in a subprocess:

- a scratch folder is laid out like ``/opt/ml`` (``SAGEMAKER_BASE_DIR``): ``model/`` holds the
  extracted ``model.tar.gz`` (or a copy of a model folder), ``code/`` is where the stack installs
  the inference code;
- the container's environment is the model package's (``environment``: ``SAGEMAKER_PROGRAM``,
  ``SAGEMAKER_SUBMIT_DIRECTORY``, ...), with container paths (``/opt/ml/...``) moved into the scratch
  folder, plus what SageMaker and this machine add: ``SAGEMAKER_BIND_TO_PORT`` (a free port),
  ``SAGEMAKER_USE_NGINX=false`` (no nginx here), the worker count;
- ``script_mode_server.py`` (copied into the scratch folder) runs on the image's interpreter: it
  installs the code with sagemaker_containers' own ``_modules.import_module`` (the step
  ``_server.start`` runs before gunicorn), then execs gunicorn with ``_server.start``'s arguments but
  ``-b 127.0.0.1:PORT`` (``_server.start`` binds 0.0.0.0), serving a WSGI app that does what the
  image's ``sagemaker_xgboost_container.serving:main`` does in script mode.

What differs from the image: no nginx in front of gunicorn; the process that installs the code
becomes gunicorn instead of waiting for it; ``pip install .`` installs into a folder of the scratch
(``PIP_TARGET``, on ``PYTHONPATH``) instead of the image's site-packages, so the shared environment
stays as it is (the workers import the program from the code folder either way: gunicorn's
``--pythonpath`` puts it first, as in the image); the image's default handlers and algorithm mode
are not there.

Network isolation is emulated: the stack gets no AWS credentials, ``PIP_NO_INDEX=1``, no pip
configuration (``PIP_CONFIG_FILE`` is the null device, so no index or find-links of this machine),
and proxies that lead nowhere for anything else that tries to reach out; an ``s3://`` submit
directory is refused (pass a local copy). ``invoke`` posts to ``/invocations`` over HTTP; leaving the
``with`` block stops the process group (SIGTERM, then SIGKILL), with bounded waits.

    with ServingStack(Path("model.tar.gz"), {"SAGEMAKER_PROGRAM": "inference.py",
                                               "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}) as stack:
        status, content_type, body = stack.invoke(b"1,2,3", "text/csv", "application/json")

Only the standard library is used here; the stack's own libraries are the image environment's.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

from pipelines_src.local.images import ImageEnvironmentError, ImageRuntime, for_image

XGBOOST_IMAGE = "sagemaker-xgboost:3.0-5"
HOST = "127.0.0.1"
CONTAINER_ROOT = "/opt/ml"
SERVER_SCRIPT = Path(__file__).with_name("script_mode_server.py")
STARTUP_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
PING_INTERVAL_S = 0.2
# Where a request that tries to leave the machine through a proxy goes: the discard port, refused.
NOWHERE = "http://127.0.0.1:9"
# How SageMaker passes InvokeEndpoint's InferenceId to the container (pipelines_src/serving/inference.py).
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
# Variables of this process the stack keeps; everything else (credentials, pip settings) stays out.
_KEPT = ("HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


class ServingError(RuntimeError):
    """The stack did not start or stopped answering; the message holds the end of its log."""


class HTTPStatusError(RuntimeError):
    """A non-200 answer to an invocation, with its status (``status_code``), Content-Type and body."""

    def __init__(self, status: int, content_type: str | None, body: bytes) -> None:
        super().__init__(f"HTTP {status} ({content_type}): {body[:300].decode('utf-8', 'replace').strip()}")
        self.status_code = status
        self.content_type = content_type
        self.body = body


def image_runtime(image_uri: str = XGBOOST_IMAGE) -> ImageRuntime:
    """The image's environment; ImageEnvironmentError (one line, naming make image-envs) if it is not built."""
    runtime = for_image(image_uri)
    if not runtime.is_built():
        raise ImageEnvironmentError(
            f"the {runtime.name} image environment is not built ({runtime.env_dir}): run `make image-envs`"
        )
    return runtime


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class ServingStack:
    """The image's serving stack for ``model`` (a model.tar.gz or a model folder) with the container's
    ``environment`` (module doc); a context manager that starts it and stops it."""

    def __init__(
        self,
        model: Path,
        environment: Mapping[str, str],
        *,
        image_uri: str = XGBOOST_IMAGE,
        workers: int = 1,
        scratch: Path | None = None,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers: must be at least 1, got {workers}")
        submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
        if submit.startswith("s3://"):
            raise ValueError(
                f"SAGEMAKER_SUBMIT_DIRECTORY {submit}: an isolated container here reaches no S3; give a local copy"
            )
        self.model = Path(model)
        self.environment = dict(environment)
        self.image_uri = image_uri
        self.workers = workers
        self.startup_timeout_s = startup_timeout_s
        self.request_timeout_s = request_timeout_s
        self._given_scratch = scratch
        self.scratch: Path | None = None
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._local = threading.local()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> ServingStack:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_dir(self) -> Path:
        """The scratch folder laid out like /opt/ml."""
        if self.scratch is None:
            raise ServingError("the stack is not started")
        return self.scratch / "opt" / "ml"

    @property
    def log_path(self) -> Path:
        if self.scratch is None:
            raise ServingError("the stack is not started")
        return self.scratch / "server.log"

    def start(self) -> None:
        """Lay out the scratch folder, start the stack and wait until /ping answers 200."""
        if self._process is not None:
            raise ServingError("the stack is already started")
        runtime = image_runtime(self.image_uri)
        scratch = self._given_scratch or Path(tempfile.mkdtemp(prefix="serving-"))
        self.scratch = scratch
        try:
            scratch.mkdir(parents=True, exist_ok=True)
            _place_model(self.model, self.base_dir / "model")
            server = scratch / "server" / SERVER_SCRIPT.name
            server.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SERVER_SCRIPT, server)
            self.port = free_port()
            environment = self._container_environment(runtime, scratch / "site-packages")
            self._log = self.log_path.open("wb")
            self._process = subprocess.Popen(
                [str(runtime.interpreter), str(server), HOST],
                cwd=scratch,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def _container_environment(self, runtime: ImageRuntime, target: Path) -> dict[str, str]:
        """The container's environment (module doc); ``target`` is where pip installs the code."""
        target.mkdir(parents=True, exist_ok=True)
        kept = {name: os.environ[name] for name in _KEPT if name in os.environ}
        container = {name: self._container_path(value) for name, value in self.environment.items()}
        return {
            **kept,
            "PATH": os.pathsep.join([str(runtime.interpreter.parent), "/usr/local/bin", "/usr/bin", "/bin"]),
            # The image's Dockerfile.
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONIOENCODING": "utf-8",
            **container,
            # What SageMaker and this machine set.
            "SAGEMAKER_BASE_DIR": str(self.base_dir),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SAGEMAKER_USE_NGINX": "false",
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(self.workers),
            # Network isolation: no index, no configuration, no proxy that leads anywhere.
            "PIP_NO_INDEX": "1",
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_TARGET": str(target),
            "PYTHONPATH": str(target),
            "HTTP_PROXY": NOWHERE,
            "HTTPS_PROXY": NOWHERE,
            "http_proxy": NOWHERE,
            "https_proxy": NOWHERE,
            "NO_PROXY": f"{HOST},localhost",
            "no_proxy": f"{HOST},localhost",
        }

    def _container_path(self, value: str) -> str:
        """A container path (``/opt/ml/...``) as the scratch folder holds it; other values as they are."""
        if value == CONTAINER_ROOT or value.startswith(CONTAINER_ROOT + "/"):
            return str(self.base_dir) + value[len(CONTAINER_ROOT) :]
        return value

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            process = self._process
            if process is None:
                raise ServingError("the stack is not started")
            code = process.poll()
            if code is not None:
                raise ServingError(f"the serving stack exited with {code} before /ping answered: {self.log_tail()}")
            if self.ping() == 200:
                return
            if time.monotonic() > deadline:
                raise ServingError(f"/ping did not answer 200 within {self.startup_timeout_s:g} s: {self.log_tail()}")
            time.sleep(PING_INTERVAL_S)

    def stop(self) -> None:
        """Stop the process group: SIGTERM, SIGKILL when it has not exited within STOP_TIMEOUT_S."""
        process, self._process = self._process, None
        if process is not None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT_S)
            _signal_group(process.pid, signal.SIGKILL)  # workers the master left behind
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.scratch is not None and self._given_scratch is None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except (OSError, ServingError):
            return ""

    def log_tail(self, lines: int = 15) -> str:
        return " | ".join(self.log_text().strip().splitlines()[-lines:])

    # ------------------------------------------------------------------ requests
    def ping(self) -> int | None:
        """The status of GET /ping, None when nothing answers."""
        connection = http.client.HTTPConnection(HOST, self.port, timeout=2.0)
        try:
            connection.request("GET", "/ping")
            response = connection.getresponse()
            response.read()
            return response.status
        except OSError:
            return None
        finally:
            connection.close()

    def invoke(
        self, body: bytes, content_type: str | None, accept: str | None, *, inference_id: str | None = None
    ) -> tuple[int, str | None, bytes]:
        """POST /invocations: the status, Content-Type and body of the answer (``exchange`` without headers)."""
        status, media, data, _ = self.exchange(body, content_type, accept, inference_id=inference_id)
        return status, media, data

    def exchange(
        self, body: bytes, content_type: str | None, accept: str | None, *, inference_id: str | None = None
    ) -> tuple[int, str | None, bytes, dict[str, str]]:
        """POST /invocations as SageMaker forwards an InvokeEndpoint call: Content-Type, Accept and the
        client's InferenceId (``X-Amzn-SageMaker-Inference-Id``); headers that are None are not sent. The
        answer's status, Content-Type, body and headers. Safe to call from several threads (one connection
        per thread)."""
        if self._process is None:
            raise ServingError("the stack is not started")
        headers: dict[str, str] = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        if inference_id is not None:
            headers[INFERENCE_ID_HEADER] = inference_id
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request("POST", "/invocations", body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
                continue  # the server closed an idle keep-alive connection: once more on a new one
            if response.will_close:
                connection.close()
                self._local.connection = None
            return response.status, response.getheader("Content-Type"), data, dict(response.getheaders())
        raise AssertionError("unreachable")

    def call(self, body: bytes, content_type: str, accept: str) -> bytes:
        """The body of a 200 answer; HTTPStatusError (with ``status_code``) for any other: the endpoint's
        InvokeEndpoint as smoke_test's ``Invoke`` sees it."""
        status, media, data = self.invoke(body, content_type, accept)
        if status != 200:
            raise HTTPStatusError(status, media, data)
        return data

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None or connection.port != self.port:
            connection = http.client.HTTPConnection(HOST, self.port, timeout=self.request_timeout_s)
            self._local.connection = connection
        return connection


def _place_model(model: Path, model_dir: Path) -> None:
    """The model as SageMaker puts it in /opt/ml/model: model.tar.gz extracted, or a folder copied."""
    if model_dir.exists():
        shutil.rmtree(model_dir)
    if model.is_dir():
        shutil.copytree(model, model_dir)
        return
    if not model.is_file():
        raise FileNotFoundError(f"model {model}: no such file or folder")
    model_dir.mkdir(parents=True)
    with tarfile.open(model, "r:*") as archive:
        archive.extractall(model_dir, filter="data")


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
