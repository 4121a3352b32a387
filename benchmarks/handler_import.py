"""Cold import time of each Lambda handler module, as Lambda imports it (target 300 ms).

Usage: python benchmarks/handler_import.py [--runs 5] [--top 12]

Each measurement is a fresh interpreter with ``lambdas/`` as the working directory and
first on ``sys.path`` (the asset root: ``registry_approval/handler.py`` is the module
``registry_approval.handler``, ``shared`` a top-level package), the environment a
deployed function gets (region, credentials, Powertools settings, the function's own
variables; placeholder values, no network) and ``import <module>`` timed with
``time.perf_counter`` around it, so the module-level configuration parsing counts. The
median of ``--runs`` runs is printed, then the largest cumulative entries of one
``python -X importtime`` run per handler.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

from resolver.naming import DRIFT_ARTIFACTS_PREFIX  # noqa: E402

LAMBDAS = ROOT / "lambdas"
HANDLERS = ("registry_approval.handler", "drift_alert.handler", "drift_metrics.handler")
TARGET_MS = 300.0
ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "POWERTOOLS_SERVICE_NAME": "mlops-bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "MODEL_PACKAGE_GROUP": "bench-models",
    "MODEL_PACKAGE_PARTITION": "aws",
    "MODEL_PACKAGE_REGION": "us-east-1",
    "MODEL_PACKAGE_ACCOUNT": "123456789012",
    "DEPLOY_PIPELINE_NAME": "bench-deploy",
    "MODEL_BUILD_PIPELINE_NAME": "bench-model-build",
    "ALARM_PREFIX": "mlops-drift-",
    "COOLDOWN_MINUTES": "60",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench",
    "IDEMPOTENCY_TABLE": "bench-idempotency",
    "PIPELINE_ARN": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/bench-drift-check",
    "STEP_NAME": "DetectDrift",
    "METRICS_BUCKET": "bench-artifacts",
    "METRICS_PREFIX": f"{DRIFT_ARTIFACTS_PREFIX}/bench-drift-check/",
    "METRICS_KEY_SUFFIX": "DetectDrift/report/drift_metrics.json",
    "METRIC_NAMESPACE": "MLOps/Drift",
    "METRIC_DIMENSIONS": '{"Model": "bench", "Stage": "dev"}',
}
TIMER = (
    "import sys, time; sys.path.insert(0, {root!r}); started = time.perf_counter(); "
    "import {module}; print((time.perf_counter() - started) * 1000)"
)


def _environment() -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**kept, **ENVIRONMENT}


def import_ms(module: str) -> float:
    """Milliseconds of ``import module`` in a fresh interpreter laid out as the Lambda asset."""
    code = TIMER.format(root=str(LAMBDAS), module=module)
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=LAMBDAS, env=_environment(), capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"importing {module} failed:\n{completed.stderr[-3000:]}")
    return float(completed.stdout.strip().splitlines()[-1])


def top_imports(module: str, count: int) -> list[tuple[int, int, str]]:
    """The ``count`` largest (cumulative us, self us, name) entries of ``-X importtime`` for ``module``."""
    code = f"import sys; sys.path.insert(0, {str(LAMBDAS)!r}); import {module}"
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=LAMBDAS,
        env=_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    entries = []
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = (part.strip() for part in line[len("import time:") :].split("|"))
        entries.append((int(cumulative_us), int(self_us), name))
    return sorted(entries, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per handler (default 5)")
    parser.add_argument("--top", type=int, default=12, help="-X importtime entries to list per handler (default 12)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for module in HANDLERS:
        import_ms(module)  # warm-up: bytecode caches and the OS file cache, as after a Lambda's first cold start
    print(f"{'handler':<28} {'median':>9} {'min':>9} {'max':>9} {'target':>9}   runs={args.runs}")
    for module in HANDLERS:
        samples = [import_ms(module) for _ in range(args.runs)]
        median = statistics.median(samples)
        verdict = "ok" if median <= TARGET_MS else "OVER"
        print(
            f"{module:<28} {median:7.0f}ms {min(samples):7.0f}ms {max(samples):7.0f}ms {TARGET_MS:7.0f}ms   {verdict}"
        )
    for module in HANDLERS:
        print(f"\n-X importtime, {module}: largest cumulative (ms)")
        print(f"{'cumulative':>11} {'self':>7}  module")
        for cumulative, own, name in top_imports(module, args.top):
            print(f"{cumulative / 1000:11.1f} {own / 1000:7.1f}  {name}")


if __name__ == "__main__":
    main()
