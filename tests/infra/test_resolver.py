"""The resolver is usable without the CDK: CI's builds, the CLI and the demo read names from it alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_resolver_resolves_a_stage_without_importing_the_cdk() -> None:
    program = (
        "import json, sys\n"
        "from resolver import naming, published\n"
        "from resolver.config import load_config\n"
        "context = json.load(open('cdk.json'))['context']\n"
        "config = load_config(context).stages['dev']\n"
        "names = {'group': naming.model_package_group(config), 'database': naming.lake_database(config)}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in {'aws_cdk', 'constructs', 'jsii', 'stacks'})\n"
        "print(json.dumps({'names': names, 'loaded': loaded}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    answer = json.loads(result.stdout)
    assert answer["loaded"] == [], f"the resolver pulled in {answer['loaded']}"
    assert all(answer["names"].values())
