"""Validate step: check the raw data against the data contract; write validation_report.json.

The report lists every violation (rule, column, count of offending rows, a message and
up to five sample rows naming their file and row), the row and file counts and the
contract's name and version; ``violation_count`` is the number of violations and
``passed`` is true when there are none. Bad data never makes this step fail: the
pipeline's condition on ``violation_count`` stops the run, after the report has been
uploaded. The step exits non-zero only when its arguments are unusable (no contract
file, a malformed contract), with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

try:
    from . import contract as contracts
except ImportError:  # run as a script inside a SageMaker container
    import contract as contracts  # type: ignore[no-redef, import-not-found]

DATA_DIR = "/opt/ml/processing/input/data"
CONTRACT_PATH = "/opt/ml/processing/input/contract/contract.json"
OUTPUT_DIR = "/opt/ml/processing/output/report"
REPORT_FILE = "validation_report.json"
# The report lists this many file names at most (file_count has them all).
LISTED_FILES = 100


def validate(data_dir: str | Path, contract_path: str | Path, output_dir: str | Path) -> dict[str, Any]:
    """Check the data under ``data_dir`` against the contract; write and return the report.

    Raises ContractError (a ValueError) only when the contract itself is unusable.
    """
    started = time.perf_counter()
    contract = contracts.load_contract(contract_path)
    dataset = contracts.read_dataset(data_dir, contract)
    violations = contracts.check(dataset, contract)
    report: dict[str, Any] = {
        "passed": not violations,
        "violation_count": len(violations),
        "violations": [violation.to_dict() for violation in violations],
        "rows": dataset.rows,
        "file_count": len(dataset.files),
        "files": dataset.files[:LISTED_FILES],
        "data_dir": str(data_dir),
        "contract": {"dataset": contract.dataset, "version": contract.version, "source": str(contract_path)},
        "rules": list(contracts.RULES),
        "seconds": round(time.perf_counter() - started, 3),
    }
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / REPORT_FILE).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    """``python validate.py [--data-dir ...] [--contract ...] [--output-dir ...]`` with SageMaker's defaults."""
    parser = argparse.ArgumentParser(description="Check raw data against its data contract.")
    parser.add_argument("--data-dir", default=DATA_DIR, help=f"raw data folder (default {DATA_DIR})")
    parser.add_argument("--contract", default=CONTRACT_PATH, help=f"data contract JSON (default {CONTRACT_PATH})")
    parser.add_argument("--output-dir", default=OUTPUT_DIR, help=f"where the report goes (default {OUTPUT_DIR})")
    args = parser.parse_args(argv)
    try:
        report = validate(args.data_dir, args.contract, args.output_dir)
    except contracts.ContractError as error:
        print(f"validate: {error}", file=sys.stderr)
        return 2
    verdict = "passed" if report["passed"] else f"{report['violation_count']} violation(s)"
    print(f"validate: {report['rows']} rows in {report['file_count']} files: {verdict} ({report['seconds']} s)")
    for violation in report["violations"]:
        print(f"  {violation['rule']}: {violation['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
