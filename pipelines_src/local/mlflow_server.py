"""The local MLflow server: local pipeline runs log to it, and its UI shows what they logged.

    python -m pipelines_src.local.mlflow_server ui [--store .mlflow] [--port 5000]   # make mlflow-ui

It runs the pinned MLflow release of ``.venv-mlflow`` (``make mlflow-env``, from tools/mlflow.lock), never
the project's environment, on 127.0.0.1 only, with its whole store in one folder: the runs in
``<store>/mlflow.db`` (SQLite), the artifacts in ``<store>/artifacts``, served through the server's
artifact proxy (``mlflow-artifacts:/`` URIs), so a job needs nothing but HTTP to the server.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-mlflow"
# Another MLflow executable (e.g. one installed elsewhere) may be named here.
EXECUTABLE_VARIABLE = "MLOPS_MLFLOW"
DEFAULT_STORE = ROOT / ".mlflow"
HOST = "127.0.0.1"
UI_PORT = 5050  # make mlflow-ui's (5000 is the local AWS emulation's)
START_SECONDS = 90.0


class MlflowServerError(RuntimeError):
    """The server cannot start; the message says why and what to do."""


@dataclass
class MlflowServer:
    url: str
    store: Path
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def executable() -> Path:
    """The ``mlflow`` command of .venv-mlflow (or ``MLOPS_MLFLOW``); MlflowServerError if there is none."""
    named = os.environ.get(EXECUTABLE_VARIABLE, "")
    path = Path(named) if named else VENV / "bin" / "mlflow"
    if not path.is_file():
        raise MlflowServerError(f"no MLflow server at {path}: run `make mlflow-env` (it builds {VENV.name})")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start(store: Path = DEFAULT_STORE, *, port: int = 0, timeout: float = START_SECONDS) -> MlflowServer:
    """Start a server on 127.0.0.1 with its store in ``store``; returns once it answers /health."""
    store = store.resolve()
    store.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = store / "server.log"
    command = [
        str(executable()),
        "server",
        "--host",
        HOST,
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{store / 'mlflow.db'}",
        "--artifacts-destination",
        str(store / "artifacts"),
        "--workers",
        "1",
    ]
    environment = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    environment.pop("PYTHONPATH", None)
    with log.open("ab") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=environment, cwd=store)
    server = MlflowServer(url=f"http://{HOST}:{port}", store=store, process=process, log=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-5:])
            raise MlflowServerError(f"the MLflow server exited with {process.returncode} (log: {log})\n{tail}")
        if healthy(server.url):
            return server
        time.sleep(0.3)
    server.stop()
    raise MlflowServerError(f"the MLflow server did not answer on {server.url} within {timeout:.0f} s (log: {log})")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running(store: Path = DEFAULT_STORE, *, port: int = 0) -> Iterator[MlflowServer]:
    """A server for the duration of a ``with`` block."""
    server = start(store, port=port)
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The MLflow UI on the local tracking store, on 127.0.0.1.")
    commands = parser.add_subparsers(dest="command", required=True)
    ui = commands.add_parser("ui", help="serve the UI until Ctrl-C")
    ui.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"the store folder (default {DEFAULT_STORE})")
    ui.add_argument("--port", type=int, default=UI_PORT, help=f"port on 127.0.0.1 (default {UI_PORT}; 0: any free one)")
    args = parser.parse_args(argv)
    try:
        server = start(args.store, port=args.port)
    except MlflowServerError as error:
        print(f"mlflow-ui: {error}", file=sys.stderr)
        return 1
    print(f"MLflow UI: {server.url} (store {server.store}); Ctrl-C stops it", flush=True)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
