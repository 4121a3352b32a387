"""An in-memory stand-in for an MLflow tracking server's REST API 2.0, on 127.0.0.1, for the client's unit tests.

It answers what steps/tracking.py calls, as MLflow answers it (error bodies ``{"error_code", "message"}``),
records every request, and fails on demand (``fail``: path -> HTTP status, for the next ``times`` calls).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API = "/api/2.0/mlflow/"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/"
_TAG_FILTER = re.compile(r"tags\.`([^`]+)` = '((?:[^'\\]|\\.)*)'")


@dataclass
class Store:
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    times: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def fail_next(self, path: str, status: int, times: int = 1_000_000) -> None:
        self.fail[path] = status
        self.times[path] = times

    def calls(self, path: str) -> int:
        return sum(1 for request in self.requests if request["path"] == path)

    def run(self, run_id: str) -> dict[str, Any]:
        return self.runs[run_id]


class _Error(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _handle(store: Store, method: str, path: str, query: dict[str, str], body: bytes) -> Any:
    if path.startswith(ARTIFACTS):
        if method != "PUT":
            raise _Error(405, "BAD_REQUEST", "only PUT")
        store.artifacts[urllib.parse.unquote(path[len(ARTIFACTS) :])] = body
        return {}
    api = path[len(API) :]
    document = json.loads(body or b"{}") if method == "POST" else query
    if api == "experiments/get-by-name":
        for experiment in store.experiments.values():
            if experiment["name"] == document["experiment_name"]:
                return {"experiment": experiment}
        raise _Error(
            404, "RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{document['experiment_name']}'"
        )
    if api == "experiments/create":
        if any(item["name"] == document["name"] for item in store.experiments.values()):
            raise _Error(400, "RESOURCE_ALREADY_EXISTS", f"Experiment '{document['name']}' already exists.")
        experiment_id = str(len(store.experiments) + 1)
        store.experiments[experiment_id] = {"experiment_id": experiment_id, "name": document["name"]}
        return {"experiment_id": experiment_id}
    if api == "runs/create":
        run_id = uuid.uuid4().hex
        info = {
            "run_id": run_id,
            "experiment_id": document["experiment_id"],
            "run_name": document.get("run_name", ""),
            "status": "RUNNING",
            "start_time": document.get("start_time"),
            "artifact_uri": f"mlflow-artifacts:/{document['experiment_id']}/{run_id}/artifacts",
        }
        tags = {tag["key"]: tag["value"] for tag in document.get("tags", [])}
        store.runs[run_id] = {"info": info, "params": {}, "metrics": {}, "tags": tags}
        return {"run": _shown(store.runs[run_id])}
    if api == "runs/search":
        match = _TAG_FILTER.fullmatch(document.get("filter", ""))
        found = [
            _shown(run)
            for run in store.runs.values()
            if run["info"]["experiment_id"] in document["experiment_ids"]
            and (match is None or run["tags"].get(match.group(1)) == match.group(2).replace("\\'", "'"))
        ]
        return {"runs": found[: int(document.get("max_results", 1000))]} if found else {}
    if api == "runs/get":
        return {"run": _shown(_existing(store, document["run_id"]))}
    if api == "runs/log-batch":
        run = _existing(store, document["run_id"])
        for param in document.get("params", []):
            if run["params"].get(param["key"], param["value"]) != param["value"]:
                raise _Error(400, "INVALID_PARAMETER_VALUE", f"Changing param values is not allowed: {param['key']}")
            run["params"][param["key"]] = param["value"]
        for metric in document.get("metrics", []):
            run["metrics"].setdefault(metric["key"], []).append((metric["step"], metric["value"]))
        for tag in document.get("tags", []):
            run["tags"][tag["key"]] = tag["value"]
        return {}
    if api == "runs/update":
        run = _existing(store, document["run_id"])
        run["info"].update(status=document["status"], end_time=document.get("end_time"))
        return {"run_info": run["info"]}
    raise _Error(404, "ENDPOINT_NOT_FOUND", f"no endpoint {api}")


def _existing(store: Store, run_id: str) -> dict[str, Any]:
    if run_id not in store.runs:
        raise _Error(404, "RESOURCE_DOES_NOT_EXIST", f"Run '{run_id}' not found")
    return store.runs[run_id]


def _shown(run: dict[str, Any]) -> dict[str, Any]:
    return {"info": run["info"], "data": {"tags": [{"key": k, "value": v} for k, v in run["tags"].items()]}}


def serve(store: Store) -> ThreadingHTTPServer:
    """A server on 127.0.0.1 (any free port) answering from ``store``, running in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            query = dict(urllib.parse.parse_qsl(parts.query))
            with store.lock:
                store.requests.append(
                    {"method": self.command, "path": parts.path, "headers": dict(self.headers.items()), "body": body}
                )
                status = store.fail.get(parts.path)
                if status and store.times.get(parts.path, 0) > 0:
                    store.times[parts.path] -= 1
                    self._send(status, {"error_code": "INTERNAL_ERROR", "message": "failing on purpose"})
                    return
                try:
                    self._send(200, _handle(store, self.command, parts.path, query, body))
                except _Error as error:
                    self._send(error.status, {"error_code": error.code, "message": error.message})

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def do_PUT(self) -> None:
            self._answer()

        def _send(self, status: int, document: Any) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@contextlib.contextmanager
def running() -> Iterator[Store]:
    """A fresh store served on 127.0.0.1 for a ``with`` block; its ``url`` set."""
    state = Store()
    server = serve(state)
    state.url = url(server)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
