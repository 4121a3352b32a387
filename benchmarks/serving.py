"""Requests per second through the endpoint's real serving stack, with captured requests, for 1 and N clients.

Usage: python benchmarks/serving.py [--requests 600] [--clients 1,4] [--workers 2] [--repeats 5]

A small model is trained on generated rows (preprocess, train: what the pipeline does) and
packed as ``model.tar.gz``; ``pipelines_src.local.serving.ServingStack`` serves it with the
registered package's container environment (``definition.container_environment``) on the
XGBoost 3.0-5 image's Python: sagemaker-containers, Flask and gunicorn, ``--workers``
gunicorn workers (the demo's ``STAND_IN_WORKERS``), over HTTP on 127.0.0.1. The requests
are the demo's: 1 to 15 rows each, CSV and JSON in turn. Each client is a thread with its
own keep-alive connection; every answer is captured as SageMaker data capture does it,
one JSON line per request (input and output, event id, inference time), buffered and
written as ``.jsonl`` files of at most ``CAPTURE_BATCH`` lines, never a file per request.

For each client count the ``--requests`` requests run ``--repeats`` times; printed are the
median requests/s and the p50/p99 latency of one request (pooled over the repeats). The
reference is the floor of the same requests answered in this process by
``inference.respond`` (the handler without HTTP, gunicorn or Flask), one client; the ratio
is the stack's rate over that floor. Target (issue): at least 100 requests/s.
Without the image environment (``make image-envs``) the benchmark stops with one line.

Measured 2026-12-02 on 2 cores shared with other work (``python benchmarks/serving.py
--requests 600 --clients 1,4 --repeats 5``, load average about 2.5-3):

    handler                          1 client: req/s  p50 ms   4 clients: req/s  p50 ms   floor req/s
    per-column pandas (before)          130.6          7.0           129.9       17.7        141.3
    one parse, plain-Python names       147.8          4.8           121.1       16.7        193.2

Under a load average of about 5 the same benchmark gave 67.6/63.1 req/s (before) and 93.0/89.2
(after): the stack is CPU-bound, and with 4 clients the client threads and both workers share the
2 cores, which the handler's own cost no longer dominates.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

TARGET_RPS = 100.0
MAX_ROWS = 15  # the demo's MAX_BATCH: rows per request
CAPTURE_BATCH = 500  # lines per capture file
REGION = "us-east-1"

Answer = Callable[[bytes, str], tuple[int, bytes]]


class CaptureBuffer:
    """Capture lines kept in memory and written CAPTURE_BATCH at a time, as data capture batches its files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lines: list[str] = []
        self.files = 0
        self._lock = threading.Lock()

    def add(self, body: bytes, content_type: str, answer: bytes) -> None:
        moment = dt.datetime.now(dt.UTC)
        record = {
            "captureData": {
                "endpointInput": {
                    "observedContentType": content_type,
                    "mode": "INPUT",
                    "data": body.decode("utf-8"),
                    "encoding": "CSV" if content_type == "text/csv" else "JSON",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": answer.decode("utf-8"),
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {
                "eventId": str(uuid.uuid4()),
                "inferenceTime": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            },
            "eventVersion": "0",
        }
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            self.lines.append(line)
            full = self.lines if len(self.lines) >= CAPTURE_BATCH else None
            if full is not None:
                self.lines = []
        if full is not None:
            self._write(full)

    def flush(self) -> None:
        with self._lock:
            lines, self.lines = self.lines, []
        if lines:
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        with self._lock:
            self.files += 1
            name = f"{self.files:05d}-{uuid.uuid4().hex[:8]}.jsonl"
        (self.folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_model(root: Path) -> Path:
    """A model trained as the pipeline trains it, packed as model.tar.gz."""
    from pipelines_src.datasets.delivery_time import generate, write_raw
    from pipelines_src.local.runner import pack_model
    from pipelines_src.steps.preprocess import preprocess
    from pipelines_src.steps.train import Hyperparameters, train

    contract = ROOT / "pipelines_src" / "contracts" / "delivery_time.json"
    write_raw(generate(3000, seed=41, days=5), root / "raw")
    preprocess(root / "raw" / "delivery_time", contract, root / "splits", seed=2)
    small = Hyperparameters(num_round=60, eta=0.3, max_depth=4, early_stopping_rounds=5, log_every=1000)
    train(root / "splits" / "train", root / "splits" / "validation", root / "model", small)
    return pack_model(root / "model", root / "model.tar.gz")


def build_requests(count: int, seed: int) -> list[tuple[bytes, str]]:
    """``count`` request bodies of 1 to MAX_ROWS generated rows, CSV and JSON in turn (the demo's traffic)."""
    import numpy as np

    from pipelines_src.datasets.delivery_time import generate
    from pipelines_src.steps import contract as contracts
    from pipelines_src.steps import features

    contract = contracts.load_contract(ROOT / "pipelines_src" / "contracts" / "delivery_time.json")
    names = features.from_contract(contract).names
    sizes = np.random.default_rng(seed).integers(1, MAX_ROWS + 1, size=count)
    frame = generate(int(sizes.sum()), seed=seed, days=30)[names]
    requests: list[tuple[bytes, str]] = []
    position = 0
    for index, size in enumerate(sizes.tolist()):
        rows = frame.iloc[position : position + size]
        position += size
        if index % 2 == 0:
            requests.append((rows.to_csv(header=False, index=False).encode("utf-8"), "text/csv"))
        else:
            body = '{"instances": ' + rows.to_json(orient="records") + "}"
            requests.append((body.encode("utf-8"), "application/json"))
    return requests


def run(answer: Answer, requests: list[tuple[bytes, str]], clients: int, capture: CaptureBuffer) -> dict[str, Any]:
    """Send every request from ``clients`` threads, capture each answer; the rate and each request's latency."""
    latencies: list[float] = []

    def one(request: tuple[bytes, str]) -> None:
        body, content_type = request
        started = time.perf_counter()
        status, data = answer(body, content_type)
        latencies.append(time.perf_counter() - started)
        if status != 200:
            raise SystemExit(f"the endpoint answered {status}: {data[:300]!r}")
        capture.add(body, content_type, data)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, requests))
    capture.flush()
    seconds = time.perf_counter() - started
    return {"rps": len(requests) / seconds, "latencies": latencies}


def _quantile(values: list[float], level: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(level * (len(ordered) - 1)))]


def main() -> None:
    from demo.run import STAND_IN_WORKERS
    from pipelines_src.definition import container_environment
    from pipelines_src.local.images import ImageEnvironmentError
    from pipelines_src.local.serving import ServingStack, image_runtime
    from pipelines_src.serving import inference

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per run (default 600)")
    parser.add_argument("--clients", default="1,4", help="client counts, comma-separated (default 1,4)")
    parser.add_argument("--workers", type=int, default=STAND_IN_WORKERS, help="gunicorn workers (the demo's)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per client count (default 5)")
    args = parser.parse_args()
    counts = [int(value) for value in args.clients.split(",")]
    try:
        image_runtime()
    except ImageEnvironmentError as error:
        raise SystemExit(f"serving benchmark: {error}") from None
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        archive = build_model(root / "build")
        requests = build_requests(args.requests, seed=7)
        rows = sum(body.count(b"\n") if media == "text/csv" else body.count(b"{") - 1 for body, media in requests)
        print(f"{len(requests)} requests, {rows} rows, {args.workers} gunicorn workers, {args.repeats} runs each")
        capture = CaptureBuffer(root / "capture")
        capture.folder.mkdir()
        model = inference.model_fn(str(root / "build" / "model"))

        def in_process(body: bytes, content_type: str) -> tuple[int, bytes]:
            reply = inference.respond(model, body, content_type, "application/json")
            return reply.status, reply.body

        floor = [run(in_process, requests, 1, capture) for _ in range(args.repeats)]
        results: dict[int, list[dict[str, Any]]] = {count: [] for count in counts}
        with ServingStack(archive, container_environment(REGION), workers=args.workers) as stack:

            def over_http(body: bytes, content_type: str) -> tuple[int, bytes]:
                status, _, data = stack.invoke(body, content_type, "application/json")
                return status, data

            run(over_http, requests[: min(50, len(requests))], max(counts), capture)  # every worker loads the model
            for _ in range(args.repeats):  # client counts interleaved
                for count in counts:
                    results[count].append(run(over_http, requests, count, capture))
        files = capture.files
    floor_rps = statistics.median(item["rps"] for item in floor)
    print(f"capture: {files} files of at most {CAPTURE_BATCH} lines")
    print()
    print(f"{'':<28} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'/ floor':>8} {'target':>12}")
    for count, runs in results.items():
        rps = statistics.median(item["rps"] for item in runs)
        pooled = [value for item in runs for value in item["latencies"]]
        print(
            f"{f'serving stack, {count} client(s)':<28} {rps:>11.1f} {_quantile(pooled, 0.5) * 1000:>8.1f} "
            f"{_quantile(pooled, 0.99) * 1000:>8.1f} {rps / floor_rps:>8.2f} {f'>= {TARGET_RPS:g}/s':>12}"
        )
    pooled = [value for item in floor for value in item["latencies"]]
    print(
        f"{'floor: in process, 1':<28} {floor_rps:>11.1f} {_quantile(pooled, 0.5) * 1000:>8.1f} "
        f"{_quantile(pooled, 0.99) * 1000:>8.1f} {1.0:>8.2f}"
    )


if __name__ == "__main__":
    main()
