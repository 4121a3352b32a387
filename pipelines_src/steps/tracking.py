"""MLflow tracking from the step scripts: a small client of MLflow's REST API, standard library and botocore only.

The SageMaker images the steps run in have no mlflow package, so this module ships with the step code
and speaks the tracking server's REST API 2.0 itself (https://mlflow.org/docs/latest/rest-api.html):
``experiments/get-by-name`` and ``experiments/create``, ``runs/search``, ``runs/create``, ``runs/update``,
``runs/log-batch``, ``runs/get``. It runs on the images' Python (3.9 and 3.10).

Where it logs to is ``MLFLOW_TRACKING_URI``:

* ``http(s)://...``: an MLflow server (the local runs' server on 127.0.0.1), unsigned requests. Artifacts
  go through the server's artifact proxy (``PUT /api/2.0/mlflow-artifacts/artifacts/<path>``) when the
  run's artifact URI is ``mlflow-artifacts:/...``.
* ``arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>`` (or ``mlflow-app/<id>``): a
  SageMaker managed MLflow server. Requests go to ``https://<region>.experiments.sagemaker.aws`` signed
  with SigV4 for the service ``sagemaker-mlflow`` and name the server in the header
  ``x-mlflow-sm-tracking-server-arn``, as the sagemaker-mlflow plugin signs them (AWS docs: "Integrate
  MLflow with your environment", https://docs.aws.amazon.com/sagemaker/latest/dg/mlflow-track-experiments.html:
  "The AWS MLflow plugin authenticates API calls made with MLflow using AWS Signature Version 4"; the
  plugin's source, aws/sagemaker-mlflow: auth.py SERVICE_NAME and mlflow_sagemaker_helpers.py
  get_tracking_server_url). Artifacts go to the run's ``s3://`` artifact URI with botocore, under the job's
  execution role.
* unset or empty: tracking is off; the step says so in one line and carries on.

One experiment per model (``MLFLOW_EXPERIMENT_NAME``), one run per pipeline execution: the run carries
the tag ``mlops.pipeline_execution_id`` (``MLFLOW_RUN_NAME``, the execution id), and each step finds
the run by it, or creates it (Preprocess does first).

Failure policy: tracking never fails a step. Every failed call is logged as a warning line and counted;
after ``MAX_CONSECUTIVE_FAILURES`` failures in a row the tracker stops calling (an unreachable server
costs a few seconds, not a timeout per call). ``Tracker.report()`` is the outcome: status ``ok``,
``degraded`` (with the failures and their first errors) or ``off``, written as ``tracking.json`` beside
the step's outputs, and carried in the evaluation report, so a degraded run is never silent.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("tracking")
# Signs one request: (method, url, body, headers) -> the headers to send.
Signer = Callable[[str, str, bytes, dict[str, str]], dict[str, str]]

URI_VARIABLE = "MLFLOW_TRACKING_URI"
EXPERIMENT_VARIABLE = "MLFLOW_EXPERIMENT_NAME"
RUN_NAME_VARIABLE = "MLFLOW_RUN_NAME"
# What the pipeline definition gives the jobs besides MLflow's own variables.
EXECUTION_ARN_VARIABLE = "MLOPS_PIPELINE_EXECUTION_ARN"
COMMIT_VARIABLE = "MLOPS_GIT_COMMIT"
IMAGE_VARIABLE = "MLOPS_IMAGE_URI"
SERVING_IMAGE_VARIABLE = "MLOPS_SERVING_IMAGE_URI"

EXECUTION_TAG = "mlops.pipeline_execution_id"
STATUS_FILE = "tracking.json"
OK, DEGRADED, OFF = "ok", "degraded", "off"
# No run id (tracking off or failed): what the registry's lineage metadata records instead.
NO_RUN = "none"

SIGNING_NAME = "sagemaker-mlflow"
CUSTOM_ENDPOINT_VARIABLE = "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT"
ARN_HEADER = "x-mlflow-sm-tracking-server-arn"
_ARN = re.compile(r"arn:(aws[a-z-]*):sagemaker:([a-z0-9-]+):(\d{12}):(mlflow-tracking-server|mlflow-app)/\S+")

TIMEOUT_SECONDS = 10.0
RETRIES = 2  # per call, on connection errors, 429 and 5xx
MAX_CONSECUTIVE_FAILURES = 3
# MLflow's limits (mlflow/utils/validation.py): per log-batch request, and the length of a param value.
BATCH_METRICS, BATCH_PARAMS, BATCH_TAGS = 1000, 100, 100
MAX_PARAM_VALUE, MAX_TAG_VALUE = 6000, 8000
MAX_ERRORS_KEPT = 5


class TrackingError(Exception):
    """A tracking call failed; the message says which and why."""

    def __init__(self, message: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def endpoint(arn: str) -> tuple[str, str]:
    """The REST endpoint and region of a SageMaker MLflow server ARN; ValueError if it is none."""
    match = _ARN.fullmatch(arn)
    if not match:
        raise ValueError(f"{arn!r} is not a SageMaker MLflow tracking server ARN")
    partition, region = match.group(1), match.group(2)
    if partition not in ("aws", "aws-us-gov"):
        raise ValueError(f"{arn}: partition {partition} has no SageMaker MLflow endpoint")
    return f"https://{region}.experiments.sagemaker.aws", region


class RestClient:
    """JSON over HTTP to an MLflow server: ``call("GET", "experiments/get-by-name", {...})``.

    ``signer`` (SigV4 for SageMaker) signs each request in place; ``opener`` is urllib's by default.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        signer: Signer | None = None,
        timeout: float = TIMEOUT_SECONDS,
        retries: int = RETRIES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.signer = signer
        self.timeout = timeout
        self.retries = retries
        self.sleep = sleep

    def call(self, method: str, api: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``/api/2.0/mlflow/<api>``: GET with ``payload`` as the query, POST with it as the JSON body."""
        url = f"{self.base_url}/api/2.0/mlflow/{api}"
        body = b""
        if method == "GET":
            if payload:
                url += "?" + urllib.parse.urlencode(payload, quote_via=urllib.parse.quote)
        else:
            body = json.dumps(payload or {}).encode("utf-8")
        data = self.send(method, url, body, {"Content-Type": "application/json"})
        try:
            answer = json.loads(data.decode("utf-8") or "{}")
        except ValueError:
            raise TrackingError(f"{method} {api}: the answer is not JSON: {data[:200]!r}") from None
        if not isinstance(answer, dict):
            raise TrackingError(f"{method} {api}: the answer is not a JSON object")
        return answer

    def send(self, method: str, url: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        """One request, retried on connection errors, 429 and 5xx; TrackingError on failure."""
        shown = f"{method} {urllib.parse.urlsplit(url).path}"
        attempt = 0
        while True:
            all_headers = {**self.headers, **headers}
            if self.signer is not None:
                all_headers = self.signer(method, url, body, all_headers)
            request = urllib.request.Request(url, data=body or None, method=method, headers=all_headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return bytes(response.read())
            except urllib.error.HTTPError as error:
                text = error.read().decode("utf-8", "replace")
                code, message = _error_fields(text)
                if (error.code == 429 or error.code >= 500) and attempt < self.retries:
                    attempt += 1
                    self.sleep(0.5 * attempt)
                    continue
                raise TrackingError(
                    f"{shown}: HTTP {error.code} {code or error.reason}: {message or text[:200]}",
                    code=code,
                    status=error.code,
                ) from None
            except (urllib.error.URLError, OSError) as error:
                if attempt < self.retries:
                    attempt += 1
                    self.sleep(0.5 * attempt)
                    continue
                reason = getattr(error, "reason", error)
                raise TrackingError(f"{shown}: {reason}") from None


def _error_fields(text: str) -> tuple[str, str]:
    """MLflow's error body ``{"error_code": ..., "message": ...}``, if it is one."""
    try:
        document = json.loads(text)
    except ValueError:
        return "", ""
    if not isinstance(document, dict):
        return "", ""
    return str(document.get("error_code", "")), str(document.get("message", ""))


def sigv4_signer(
    arn: str, region: str, credentials: Any = None
) -> Callable[[str, str, bytes, dict[str, str]], dict[str, str]]:
    """A signer for SageMaker MLflow: SigV4, service ``sagemaker-mlflow``, the server named in a header.

    ``credentials``: botocore credentials (default: botocore's chain, e.g. the job's execution role).
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    if credentials is None:
        import botocore.session

        credentials = botocore.session.get_session().get_credentials()
        if credentials is None:
            raise TrackingError("no AWS credentials to sign the tracking requests with")

    def sign(method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        headers = {**headers, ARN_HEADER: arn}
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(credentials, SIGNING_NAME, region).add_auth(request)
        return dict(request.headers.items())

    return sign


class Artifacts:
    """Uploads files into a run's artifact URI: the server's proxy, S3, or a local folder."""

    def __init__(self, client: RestClient, s3: Any = None) -> None:
        self.client = client
        self._s3 = s3

    def upload(self, artifact_uri: str, relative: str, data: bytes, content_type: str) -> None:
        relative = relative.strip("/")
        if artifact_uri.startswith("mlflow-artifacts:"):
            parsed = urllib.parse.urlsplit(artifact_uri)
            path = f"{parsed.path.strip('/')}/{relative}"
            url = f"{self.client.base_url}/api/2.0/mlflow-artifacts/artifacts/{urllib.parse.quote(path)}"
            self.client.send("PUT", url, data, {"Content-Type": content_type})
        elif artifact_uri.startswith("s3://"):
            bucket, _, prefix = artifact_uri[len("s3://") :].partition("/")
            key = f"{prefix.strip('/')}/{relative}" if prefix.strip("/") else relative
            self.s3().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        elif artifact_uri.startswith("file:") or artifact_uri.startswith("/"):
            root = Path(urllib.parse.unquote(urllib.parse.urlsplit(artifact_uri).path))
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        else:
            raise TrackingError(f"artifact URI {artifact_uri!r}: no way to upload there")

    def s3(self) -> Any:
        if self._s3 is None:
            import botocore.session

            self._s3 = botocore.session.get_session().create_client("s3")
        return self._s3


class Tracker:
    """The run of this pipeline execution, as one step sees it. Never raises from its logging methods.

    ``Tracker.from_environment(step)`` reads the variables above; ``Tracker(None, ...)`` is off.
    """

    def __init__(
        self,
        client: RestClient | None,
        *,
        step: str,
        experiment: str = "",
        run_name: str = "",
        uri: str = "",
        artifacts: Artifacts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.step = step
        self.experiment = experiment
        self.run_name = run_name
        self.uri = uri
        self.artifacts = artifacts or (Artifacts(client) if client is not None else None)
        self.clock = clock
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.artifact_uri = ""
        self.calls = 0
        self.failures = 0
        self.skipped = 0
        self.errors: list[str] = []
        self._consecutive = 0
        self._off_reason = ""

    # ------------------------------------------------------------ creation
    @classmethod
    def from_environment(cls, step: str, environ: Mapping[str, str] | None = None) -> Tracker:
        environ = os.environ if environ is None else environ
        uri = environ.get(URI_VARIABLE, "").strip()
        experiment = environ.get(EXPERIMENT_VARIABLE, "").strip()
        run_name = environ.get(RUN_NAME_VARIABLE, "").strip()
        if not uri:
            tracker = cls(None, step=step)
            tracker._off_reason = f"{URI_VARIABLE} is not set"
            _say(f"tracking off: {tracker._off_reason}")
            return tracker
        tracker = cls(None, step=step, experiment=experiment, run_name=run_name, uri=uri)
        try:
            if not experiment or not run_name:
                raise TrackingError(f"{EXPERIMENT_VARIABLE} and {RUN_NAME_VARIABLE} must be set with {URI_VARIABLE}")
            tracker.client = client_for(uri, environ)
            tracker.artifacts = Artifacts(tracker.client)
        except (TrackingError, ValueError, ImportError) as error:
            tracker._failed("connect", error)
        return tracker

    @classmethod
    def open(cls, step: str, environ: Mapping[str, str] | None = None) -> Tracker:
        """``from_environment``, the run started, and the lineage the definition gives every job as tags:
        the git commit (also as MLflow's own ``mlflow.source.git.commit``), the pipeline execution ARN
        and this job's image URI (``mlops.image.<step>``)."""
        environ = os.environ if environ is None else environ
        tracker = cls.from_environment(step, environ)
        if tracker.start() is None:
            return tracker
        tags = {
            "mlops.git_commit": environ.get(COMMIT_VARIABLE, ""),
            "mlflow.source.git.commit": environ.get(COMMIT_VARIABLE, ""),
            "mlops.pipeline_execution_arn": environ.get(EXECUTION_ARN_VARIABLE, ""),
            f"mlops.image.{step}": environ.get(IMAGE_VARIABLE, ""),
            "mlops.image.serving": environ.get(SERVING_IMAGE_VARIABLE, ""),
        }
        tracker.set_tags({key: value for key, value in tags.items() if value})
        return tracker

    # ------------------------------------------------------------- the run
    def start(self, tags: Mapping[str, str] | None = None) -> str | None:
        """Find this execution's run (by its tag) or create it; its id, or None when tracking is off or failed."""
        if self.client is None:
            return None

        def find_or_create(client: RestClient) -> str:
            self.experiment_id = self._experiment_id(client)
            query = {
                "experiment_ids": [self.experiment_id],
                "filter": f"tags.`{EXECUTION_TAG}` = '{_quoted(self.run_name)}'",
                "max_results": 1,
            }
            found = client.call("POST", "runs/search", query).get("runs") or []
            if found:
                info = found[0]["info"]
            else:
                run_tags = {EXECUTION_TAG: self.run_name, **dict(tags or {})}
                created = client.call(
                    "POST",
                    "runs/create",
                    {
                        "experiment_id": self.experiment_id,
                        "run_name": self.run_name,
                        "start_time": int(self.clock() * 1000),
                        "tags": [{"key": key, "value": str(value)} for key, value in run_tags.items()],
                    },
                )
                info = created["run"]["info"]
            self.artifact_uri = str(info.get("artifact_uri", ""))
            return str(info["run_id"])

        self.run_id = self._call("start", find_or_create)
        if self.run_id:
            _say(f"tracking: run {self.run_id} of experiment {self.experiment!r} at {_shown_uri(self.uri)}")
        return self.run_id

    def _experiment_id(self, client: RestClient) -> str:
        try:
            found = client.call("GET", "experiments/get-by-name", {"experiment_name": self.experiment})
            return str(found["experiment"]["experiment_id"])
        except TrackingError as error:
            if error.code != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            return str(client.call("POST", "experiments/create", {"name": self.experiment})["experiment_id"])
        except TrackingError as error:  # created by another step in the meantime
            if error.code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = client.call("GET", "experiments/get-by-name", {"experiment_name": self.experiment})
            return str(found["experiment"]["experiment_id"])

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [{"key": key, "value": _text(value, MAX_PARAM_VALUE)} for key, value in sorted(params.items())]
        for chunk in _chunks(items, BATCH_PARAMS):
            self._batch("log params", params=chunk)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        items = [{"key": key, "value": _text(value, MAX_TAG_VALUE)} for key, value in sorted(tags.items())]
        for chunk in _chunks(items, BATCH_TAGS):
            self._batch("set tags", tags=chunk)

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> None:
        """Numbers only: booleans, None and non-finite values are left out (MLflow rejects NaN in JSON)."""
        now = int(self.clock() * 1000)
        items = [
            {"key": key, "value": float(value), "timestamp": now, "step": step}
            for key, value in sorted(metrics.items())
            if _is_number(value)
        ]
        for chunk in _chunks(items, BATCH_METRICS):
            self._batch("log metrics", metrics=chunk)

    def log_series(self, series: Mapping[str, Sequence[float]]) -> None:
        """Metric histories: value ``i`` of each series at step ``i`` (a training curve)."""
        now = int(self.clock() * 1000)
        items = [
            {"key": key, "value": float(value), "timestamp": now, "step": index}
            for key, values in sorted(series.items())
            for index, value in enumerate(values)
            if _is_number(value)
        ]
        for chunk in _chunks(items, BATCH_METRICS):
            self._batch("log metric series", metrics=chunk)

    def log_artifact(self, path: str | Path, artifact_path: str = "") -> None:
        """A file into the run's artifacts (under ``artifact_path``)."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as error:
            self._failed(f"log artifact {path.name}", error)
            return
        self.log_bytes(data, f"{artifact_path.strip('/')}/{path.name}".lstrip("/"), _content_type(path.name))

    def log_bytes(self, data: bytes, name: str, content_type: str = "application/octet-stream") -> None:
        artifacts = self.artifacts
        if artifacts is None:
            return
        self._call(
            f"log artifact {name}",
            lambda _client: artifacts.upload(self._artifact_uri(), name, data, content_type),
            needs_run=True,
        )

    def log_text(self, text: str, name: str) -> None:
        self.log_bytes(text.encode("utf-8"), name, _content_type(name))

    def finish(self, status: str = "FINISHED") -> None:
        """Mark the run ended (``FINISHED`` or ``FAILED``), the last step's call."""
        end = int(self.clock() * 1000)
        self._call(
            f"end run ({status})",
            lambda client: client.call(
                "POST", "runs/update", {"run_id": self.run_id, "status": status, "end_time": end}
            ),
            needs_run=True,
        )

    # ------------------------------------------------------------ outcome
    @property
    def status(self) -> str:
        if self.client is None and not self.errors:
            return OFF
        return DEGRADED if self.failures or self.run_id is None else OK

    def report(self) -> dict[str, Any]:
        """What tracking.json holds: the status, where it logged, the run, and what failed."""
        report: dict[str, Any] = {
            "status": self.status,
            "step": self.step,
            "tracking_uri": _shown_uri(self.uri),
            "experiment": self.experiment or None,
            "experiment_id": self.experiment_id,
            "run_name": self.run_name or None,
            "run_id": self.run_id,
            "calls": self.calls,
            "failed_calls": self.failures,
            "skipped_calls": self.skipped,
            "errors": list(self.errors),
        }
        if self.status == OFF:
            report["reason"] = self._off_reason
        return report

    def write_report(self, folder: str | Path) -> Path:
        """tracking.json in ``folder``; a failure to write it is logged, not raised."""
        path = Path(folder) / STATUS_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.report(), indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            LOGGER.warning("tracking: cannot write %s: %s", path, error)
        if self.status == DEGRADED:
            _say(f"tracking degraded: {self.failures} failed call(s); first error: {(self.errors or ['-'])[0]}")
        return path

    # ------------------------------------------------------------ internals
    def _artifact_uri(self) -> str:
        if not self.artifact_uri and self.client is not None:
            info = self.client.call("GET", "runs/get", {"run_id": self.run_id})["run"]["info"]
            self.artifact_uri = str(info.get("artifact_uri", ""))
        return self.artifact_uri

    def _batch(self, what: str, **fields: list[dict[str, Any]]) -> None:
        self._call(
            what,
            lambda client: client.call("POST", "runs/log-batch", {"run_id": self.run_id, **fields}),
            needs_run=True,
        )

    def _call(self, what: str, action: Callable[[RestClient], Any], *, needs_run: bool = False) -> Any:
        client = self.client
        if client is None or (needs_run and self.run_id is None):
            if client is not None or self.errors:
                self.skipped += 1
            return None
        if self._consecutive >= MAX_CONSECUTIVE_FAILURES:
            self.skipped += 1
            return None
        self.calls += 1
        try:
            result = action(client)
        except Exception as error:  # the failure policy: tracking never fails a step
            self._failed(what, error)
            return None
        self._consecutive = 0
        return result

    def _failed(self, what: str, error: BaseException) -> None:
        self.failures += 1
        self._consecutive += 1
        message = f"{self.step}: {what}: {error}"
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message)
        LOGGER.warning("tracking: %s", message)
        print(f"warning: tracking: {message}", flush=True)
        if self._consecutive == MAX_CONSECUTIVE_FAILURES:
            print(f"warning: tracking: {MAX_CONSECUTIVE_FAILURES} failures in a row: no more calls", flush=True)


def client_for(uri: str, environ: Mapping[str, str] | None = None) -> RestClient:
    """The REST client for a tracking URI: an http(s) server, or a SageMaker MLflow ARN (signed), at
    ``https://<region>.experiments.sagemaker.aws`` unless ``SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT`` names
    another endpoint (the sagemaker-mlflow plugin's override, for an endpoint the default is not)."""
    environ = os.environ if environ is None else environ
    if uri.startswith(("http://", "https://")):
        return RestClient(uri)
    if uri.startswith("arn:"):
        url, region = endpoint(uri)
        return RestClient(environ.get(CUSTOM_ENDPOINT_VARIABLE) or url, signer=sigv4_signer(uri, region))
    raise ValueError(f"{URI_VARIABLE}={uri!r} is neither an http(s) URL nor a SageMaker MLflow ARN")


def _say(line: str) -> None:
    print(line, flush=True)


def _shown_uri(uri: str) -> str:
    """The URI without any user:password part."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return uri


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value == value and value not in (float("inf"), float("-inf"))


def _chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _content_type(name: str) -> str:
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {"json": "application/json", "svg": "image/svg+xml", "txt": "text/plain", "csv": "text/csv"}.get(
        suffix, "application/octet-stream"
    )


# --- pictures without a plotting library ---------------------------------------------------------------


def bar_chart_svg(title: str, values: Mapping[str, float], *, width: int = 640) -> str:
    """A horizontal bar chart as SVG text, bars sorted by value (largest first): the images have no
    plotting library."""
    items = sorted(((str(name), float(value)) for name, value in values.items()), key=lambda item: -item[1])
    label_width, bar_height, gap, top = 170, 18, 6, 40
    height = top + len(items) * (bar_height + gap) + 20
    largest = max((value for _, value in items), default=0.0) or 1.0
    span = width - label_width - 90
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{_escape(title)}</text>',
    ]
    for index, (name, value) in enumerate(items):
        y = top + index * (bar_height + gap)
        length = max(1.0, span * max(value, 0.0) / largest)
        lines.append(f'<text x="{label_width - 8}" y="{y + 13}" text-anchor="end">{_escape(name)}</text>')
        lines.append(
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" fill="#3b75af">'
            f"<title>{_escape(name)}: {value:.6g}</title></rect>"
        )
        lines.append(f'<text x="{label_width + length + 6:.1f}" y="{y + 13}">{value:.4g}</text>')
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
