"""Put a model-quality check's metrics to CloudWatch when its CheckQuality step has succeeded.

The quality job (pipelines_src/steps/quality.py) runs network-isolated in the VPC, like the drift job, and
writes its metrics the same way: one PutMetricData request (``quality_metrics.json``, namespace
``MLOps/ModelQuality``) next to its report. Publishing such a file is the same task for both checks, so
this function runs drift_metrics' publisher (lambdas/drift_metrics/handler.py: the step's "SageMaker Model
Building Pipeline Execution Step Status Change" event, the execution's file read and checked, one call)
with its own environment and its own role. The environment names this check's pipeline, step, files,
namespace and dimensions; the role may read only this check's metrics files and put metrics only to its
namespace (stacks/operations_stack.py).

So the same guarantees hold: one effect per step execution (a duplicated event is answered from the
idempotency table), malformed events and unusable files logged and rejected without a retry, AWS errors
raised (EventBridge and Lambda retry, then the dead-letter queue).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lambdas.drift_metrics.handler import CONFIG, Clients, Config, handle_event, lambda_handler, load_config
else:
    # drift_metrics parses this function's environment at import: CONFIG is this check's configuration.
    from drift_metrics.handler import CONFIG, Clients, Config, handle_event, lambda_handler, load_config

__all__ = ["CONFIG", "Clients", "Config", "handle_event", "lambda_handler", "load_config"]
