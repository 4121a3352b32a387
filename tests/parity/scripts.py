"""A script run on an image environment's interpreter, its last output line read as JSON."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from pipelines_src.local import images


def run_json(runtime: images.ImageRuntime, script: str, *arguments: str, timeout: float = 300) -> Any:
    """Run ``script`` (``python -c``) with ``arguments`` on ``runtime``; its last line of output as JSON.

    Fails the test with the end of the script's error output when it exits non-zero.
    """
    completed = subprocess.run(
        [str(runtime.interpreter), "-c", script, *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])
