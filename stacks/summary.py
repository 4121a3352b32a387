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
    for _, name, template_file in stacks_by_stage(assembly):
        yield name, template_file


def stacks_by_stage(assembly: Path, stage: str = "") -> Iterator[tuple[str, str, Path]]:
    """(stage, stack name, template path) in manifest order; the stage is its nested assembly's display name.

    Stacks at the top of the assembly, outside any CDK Stage, get ``stage`` ("" unless given).
    """
    manifest = json.loads((assembly / "manifest.json").read_text())
    for artifact in manifest.get("artifacts", {}).values():
        kind = artifact.get("type")
        properties = artifact.get("properties", {})
        if kind == "aws:cloudformation:stack":
            name = properties.get("stackName", artifact.get("displayName"))
            yield stage, name, assembly / properties["templateFile"]
        elif kind == "cdk:cloud-assembly":
            directory = properties["directoryName"]
            yield from stacks_by_stage(assembly / directory, properties.get("displayName", directory))


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
