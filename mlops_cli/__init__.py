"""``mlops``: the operator's command line for one stage (versions, approvals, runs, drift, deployment)."""

from __future__ import annotations

from mlops_cli.cli import main

__all__ = ["main"]
