"""CodeBuild actions of the synthesized CICD template, run on this machine as CodeBuild would run them.

A build gets a folder laid out as CodeBuild's source artifact (`checkout`: the files a push carries, their
modification times kept), the environment of its project and action as the template gives it
(demo/assembly.py, `BuildAction`) plus what CodeBuild sets itself (``CODEBUILD_*``, the region) and, in
place of the container's role, the emulator's endpoint (``AWS_ENDPOINT_URL``) and fake credentials. The
buildspec's commands run in order in one bash session, as in a buildspec of version 0.2 (a variable one
command exports is seen by the next), logged as CodeBuild logs them; the first command that fails ends the
build with its exit status.

A command that cannot run here is skipped, with the reason, in the log and in the demo's output
(`LOCAL_SKIPS`); every other command runs as written. The buildspec's ``runtime-versions`` select nothing
here: the build runs on this machine's interpreters.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from demo.assembly import BuildAction

# Commands of the synthesized buildspecs that do not run locally, and why.
LOCAL_SKIPS: Final = {
    "make install": (
        "it creates .venv and node_modules from the pinned requirements, which a CodeBuild container starts "
        "without; here the build folder links the checkout's own environments (the ones the demo runs on; make demo "
        "installs them first), which are shared with the rest of this machine, so the demo never installs into "
        "them, and make -t install marks the install done so that later make targets do not run it"
    ),
}
# What `checkout` links instead of copying: the environments `make install` (skipped) would create.
ENVIRONMENTS: Final = (".venv", "node_modules")
# The folder of make's records of a finished install (the Makefile's STAMPS), which make -t install writes.
STAMPS: Final = ".make"
LOG_NAME: Final = "build.log"


class BuildError(RuntimeError):
    """A build could not be prepared or started; the message says why."""


@dataclass(frozen=True)
class Command:
    phase: str
    text: str
    skipped_because: str | None = None


def plan(action: BuildAction) -> list[Command]:
    """The buildspec's commands in the order CodeBuild runs them, each with the reason it is skipped, if it is."""
    return [
        Command(phase=phase, text=text, skipped_because=LOCAL_SKIPS.get(text.strip()))
        for phase, commands in action.phases()
        for text in commands
    ]


def _source_files(root: Path) -> list[str]:
    """The files a push of ``root`` carries: git's tracked files and the untracked ones it does not ignore."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise BuildError(f"{root} is not a git checkout the demo can list ({error})") from None
    return [name for name in listed.decode().split("\0") if name and (root / name).is_file()]


def source_version(root: Path) -> str | None:
    """The commit checked out in ``root`` (what CodeBuild sets as CODEBUILD_RESOLVED_SOURCE_VERSION), if any."""
    completed = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, check=False)
    if completed.returncode != 0:
        return None
    return completed.stdout.decode().strip() or None


def checkout(root: Path, destination: Path) -> Path:
    """``destination`` holding the source artifact of ``root``, and what the skipped ``make install`` would leave:
    the environments (links to ``root``'s) and make's records of the install (``make -t install`` touches its
    targets without running their recipes)."""
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    for name in _source_files(root):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    for name in ENVIRONMENTS:
        if (root / name).exists():
            (destination / name).symlink_to((root / name).resolve(), target_is_directory=True)
    (destination / STAMPS).mkdir()
    touched = subprocess.run(["make", "-t", "install"], cwd=destination, capture_output=True, check=False)
    if touched.returncode != 0:
        raise BuildError(f"make -t install in {destination} failed: {touched.stderr.decode().strip()}")
    return destination


def script(commands: list[Command]) -> str:
    """One bash session running the commands in order, logging as CodeBuild does, stopping at the first failure."""
    lines = ["set +e"]
    phase = ""
    for command in commands:
        if command.phase != phase:
            phase = command.phase
            lines.append(f"echo {shlex.quote(f'[Container] Entering phase {phase.upper()}')}")
        if command.skipped_because is not None:
            note = f"[Container] Skipped command {command.text} (it cannot run here: {command.skipped_because})"
            lines.append(f"echo {shlex.quote(note)}")
            continue
        failed = f"[Container] Command did not exit successfully {command.text} exit status "
        lines += [
            f"echo {shlex.quote(f'[Container] Running command {command.text}')}",
            command.text,
            "status=$?",
            f'if [ "$status" -ne 0 ]; then echo {shlex.quote(failed)}"$status"; exit "$status"; fi',
        ]
    lines.append("echo '[Container] Phase complete: all phases SUCCEEDED'")
    return "\n".join(lines) + "\n"


def codebuild_environment(action: BuildAction, folder: Path, *, region: str, commit: str | None) -> dict[str, str]:
    """What CodeBuild itself sets in a build of the project, started by the action's pipeline
    (https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-env-vars.html)."""
    build_id = f"{action.project}:{uuid.uuid4()}"
    return {
        "CODEBUILD_BUILD_ID": build_id,
        "CODEBUILD_INITIATOR": f"codepipeline/{action.pipeline}",
        "CODEBUILD_SRC_DIR": str(folder),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **({"CODEBUILD_RESOLVED_SOURCE_VERSION": commit} if commit else {}),
    }


@dataclass
class Build:
    """A started build: its commands, folder, log and process."""

    action: BuildAction
    commands: list[Command]
    folder: Path
    log: Path
    process: subprocess.Popen[Any]

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start(action: BuildAction, folder: Path, environment: Mapping[str, str]) -> Build:
    """Start the action's buildspec in ``folder`` (a `checkout`) with exactly ``environment`` (and PATH, HOME)."""
    commands = plan(action)
    variables = [value for value in environment.values() if "#{" in value]
    if variables:
        raise BuildError(f"{action.action}: unresolved CodePipeline variables in its environment: {variables}")
    log = folder / LOG_NAME
    base = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    with log.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            ["bash", "-c", script(commands)],
            cwd=folder,
            env={**base, **environment},
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Build(action=action, commands=commands, folder=folder, log=log, process=process)
