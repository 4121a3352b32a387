"""Print what a synth produced: each stack, its resource count and template, and the output directory.

Usage: python -m stacks.summary [cdk.out]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path


def stacks_in(assembly: Path) -> Iterator[tuple[str, Path]]:
    """(stack name, template path) for every stack of an assembly, nested stage assemblies included."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    for artifact in manifest.get("artifacts", {}).values():
        kind = artifact.get("type")
        properties = artifact.get("properties", {})
        if kind == "aws:cloudformation:stack":
            yield properties.get("stackName", artifact.get("displayName")), assembly / properties["templateFile"]
        elif kind == "cdk:cloud-assembly":
            yield from stacks_in(assembly / properties["directoryName"])


def summary(assembly: Path) -> str:
    rows = []
    for name, template_file in sorted(stacks_in(assembly)):
        resources = json.loads(template_file.read_text()).get("Resources", {})
        rows.append((name, str(len(resources)), str(template_file)))
    headers = ("stack", "resources", "template")
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    lines.append(f"{len(rows)} stacks synthesized to {assembly.resolve()}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    print(summary(Path(args[0] if args else "cdk.out")))


if __name__ == "__main__":
    main()
