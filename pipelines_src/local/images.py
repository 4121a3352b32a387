"""The Python environments of the SageMaker images the pipelines run in, rebuilt on this machine.

Each file ``pipelines_src/images/<repository>-<version>.txt`` pins every package of one image's
Python environment (from the image's public sources), with a header that names the image and its
Python, and what the image's Dockerfile changes after installing::

    # image: sagemaker-xgboost:3.0-5
    # python: 3.10
    # uninstall: typing
    # patch: sagemaker_containers/_mapping.py: collections.Mapping -> collections.abc.Mapping

``build`` makes one virtual environment per file under ``.venv-images/<repository>-<version>``
with the matching CPython, found through ``PYTHON39``/``PYTHON310`` (the digits of the version),
pyenv, or ``python3.9`` on PATH. ``for_image`` maps an image URI of a definition
(``<account>.dkr.ecr.<region>.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3``) to its
environment, so the local runner runs each step on the interpreter its image has.

    python -m pipelines_src.local.images build [--require]   # build (or keep) every environment
    python -m pipelines_src.local.images python IMAGE_URI     # the interpreter for an image
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS_DIR = ROOT / "pipelines_src" / "images"
ENVS_DIR = ROOT / ".venv-images"
STAMP = ".requirements.sha256"
# pip and setuptools, with their hashes: the same lock as the project's environment (Makefile, install).
# The environments' own pip and setuptools (its header says why this pip, not the project's tools/pip.lock).
PIP_LOCK = ROOT / "tools" / "image-pip.lock"
_IMAGE_URI = re.compile(r"^(?:[^/]+/)?(?P<repository>[a-z0-9._-]+):(?P<tag>[A-Za-z0-9._-]+)$")


class ImageEnvironmentError(RuntimeError):
    """An image environment is unknown, not built, or cannot be built; the message says how to fix it."""


@dataclass(frozen=True)
class Patch:
    """A text replacement the image applies to an installed file (a path under site-packages)."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class ImageRuntime:
    """One image's Python environment as its requirements file describes it."""

    repository: str
    version: str
    python: str
    requirements: Path
    uninstall: tuple[str, ...] = ()
    patches: tuple[Patch, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.repository}-{self.version}"

    @property
    def env_dir(self) -> Path:
        return ENVS_DIR / self.name

    @property
    def interpreter(self) -> Path:
        return self.env_dir / "bin" / "python"

    @property
    def python_variable(self) -> str:
        """``PYTHON39`` for Python 3.9: the variable that names an interpreter for this environment."""
        return "PYTHON" + self.python.replace(".", "")

    def matches(self, repository: str, tag: str) -> bool:
        return repository == self.repository and (tag == self.version or tag.startswith(f"{self.version}-"))

    def digest(self) -> str:
        """Of the requirements and of the pip that installs them: a change of either rebuilds."""
        return hashlib.sha256(self.requirements.read_bytes() + PIP_LOCK.read_bytes()).hexdigest()

    def is_built(self) -> bool:
        stamp = self.env_dir / STAMP
        return self.interpreter.exists() and stamp.is_file() and stamp.read_text().strip() == self.digest()


def parse_requirements(path: Path) -> ImageRuntime:
    """The runtime a requirements file describes; ImageEnvironmentError names the file and the missing key."""
    headers: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        found = re.match(r"^#\s*(image|python|uninstall|patch):\s*(.+?)\s*$", line)
        if found:
            headers.setdefault(found.group(1), []).append(found.group(2))
    for key in ("image", "python"):
        if len(headers.get(key, [])) != 1:
            raise ImageEnvironmentError(f"{path}: needs exactly one '# {key}:' header line")
    repository, _, version = headers["image"][0].partition(":")
    if not repository or not version:
        raise ImageEnvironmentError(f"{path}: '# image:' must be <repository>:<version>, not {headers['image'][0]!r}")
    patches = []
    for spec in headers.get("patch", []):
        found = re.match(r"^(?P<path>[^:]+):\s*(?P<old>.+?)\s*->\s*(?P<new>.+)$", spec)
        if not found:
            raise ImageEnvironmentError(f"{path}: '# patch: {spec}' must be '<file>: <old> -> <new>'")
        patches.append(Patch(found.group("path"), found.group("old"), found.group("new")))
    uninstall = tuple(name for spec in headers.get("uninstall", []) for name in spec.split())
    return ImageRuntime(repository, version, headers["python"][0], path, uninstall, tuple(patches))


def runtimes(directory: Path = REQUIREMENTS_DIR) -> list[ImageRuntime]:
    """Every image environment the repository describes, one per requirements file."""
    return [parse_requirements(path) for path in sorted(directory.glob("*.txt"))]


def for_image(image_uri: str, known: Sequence[ImageRuntime] | None = None) -> ImageRuntime:
    """The environment of the image an ECR image URI names; ImageEnvironmentError if none is described."""
    found = _IMAGE_URI.match(image_uri.strip())
    if not found:
        raise ImageEnvironmentError(f"{image_uri!r} is not an image URI (<registry>/<repository>:<tag>)")
    candidates = runtimes() if known is None else known
    for runtime in candidates:
        if runtime.matches(found.group("repository"), found.group("tag")):
            return runtime
    described = ", ".join(f"{item.repository}:{item.version}" for item in candidates) or "none"
    raise ImageEnvironmentError(
        f"no environment for the image {image_uri}: add pipelines_src/images/<repository>-<version>.txt "
        f"(described: {described})"
    )


def find_python(version: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """A CPython ``version`` (e.g. "3.9") interpreter: $PYTHON39, then pyenv's versions, then PATH."""
    env = os.environ if environ is None else environ
    variable = env.get("PYTHON" + version.replace(".", ""))
    if variable:
        return Path(variable) if _is_version(Path(variable), version) else None
    candidates: list[Path] = []
    pyenv_root = env.get("PYENV_ROOT") or _pyenv_root()
    if pyenv_root:
        versions = Path(pyenv_root) / "versions"
        candidates += sorted(versions.glob(f"{version}.*/bin/python{version}"), reverse=True)
    on_path = shutil.which(f"python{version}", path=env.get("PATH"))
    if on_path:
        candidates.append(Path(on_path))
    return next((candidate for candidate in candidates if _is_version(candidate, version)), None)


def _pyenv_root() -> str | None:
    if not shutil.which("pyenv"):
        return None
    completed = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
    return completed.stdout.strip() or None


def _is_version(interpreter: Path, version: str) -> bool:
    if not interpreter.exists():
        return False
    completed = subprocess.run(
        [str(interpreter), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.returncode == 0 and completed.stdout.strip() == version


def missing_python_message(runtime: ImageRuntime) -> str:
    return (
        f"{runtime.name}: no CPython {runtime.python} found: install it (e.g. `pyenv install {runtime.python}`) "
        f"or set {runtime.python_variable}=/path/to/python{runtime.python}"
    )


def build(runtime: ImageRuntime, *, log: TextIO | None = None) -> Path:
    """Create (or keep, when its stamp matches the requirements) the runtime's environment; its interpreter."""
    if runtime.is_built():
        return runtime.interpreter
    python = find_python(runtime.python)
    if python is None:
        raise ImageEnvironmentError(missing_python_message(runtime))
    print(f"building {_short(runtime.env_dir)} with {python}", file=log or sys.stdout, flush=True)
    if runtime.env_dir.exists():
        shutil.rmtree(runtime.env_dir)
    _run([str(python), "-m", "venv", str(runtime.env_dir)])
    pip = [str(runtime.interpreter), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    # Every file is checked against the sha256 the lock names (tools/lock_hashes.py), and so is what builds the
    # releases that publish only a source archive: the environment's own setuptools from its pip lock, not
    # build requirements fetched unchecked into an isolated build environment.
    _run([*pip, "install", "--require-hashes", "-r", str(PIP_LOCK)])
    _run([*pip, "install", "--require-hashes", "--no-build-isolation", "-r", str(runtime.requirements)])
    if runtime.uninstall:
        _run([*pip, "uninstall", "--yes", *runtime.uninstall])
    site_packages = Path(
        subprocess.run(
            [str(runtime.interpreter), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for patch in runtime.patches:
        apply_patch(site_packages, patch)
    (runtime.env_dir / STAMP).write_text(runtime.digest() + "\n")
    return runtime.interpreter


def apply_patch(site_packages: Path, patch: Patch) -> None:
    """Replace ``old`` by ``new`` in one installed file, as the image's Dockerfile does (idempotent)."""
    target = site_packages / patch.path
    if not target.is_file():
        raise ImageEnvironmentError(f"patch target {target} does not exist")
    text = target.read_text()
    patched = re.sub(rf"{re.escape(patch.old)}(?![A-Za-z0-9_.])", patch.new, text)
    if patched == text and patch.new not in text:
        raise ImageEnvironmentError(f"patch target {target} does not contain {patch.old!r}")
    target.write_text(patched)


def _run(command: list[str]) -> None:
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise ImageEnvironmentError(f"failed ({completed.returncode}): {' '.join(command)}")


IMAGE = "image"
AUTO = "auto"
PROJECT = "project"
MODES = (IMAGE, AUTO, PROJECT)


@dataclass(frozen=True)
class Interpreter:
    """The Python a step runs on: its image's environment, or the project's (``fallback`` says why)."""

    python: Path
    image_uri: str
    runtime: ImageRuntime | None
    fallback: str = ""

    @property
    def is_image(self) -> bool:
        return self.runtime is not None

    def describe(self) -> str:
        where = f"{self.runtime.name} environment" if self.runtime else "project venv"
        text = f"{where}, Python {python_version(self.python)} ({_short(self.python)})"
        return text + (f"; {self.fallback}" if self.fallback else "")


def choose(image_uri: str, mode: str, *, project_python: Path | None = None) -> Interpreter:
    """The interpreter a step of ``image_uri`` runs on.

    ``image``: the image's environment, ImageEnvironmentError when it is not built (parity runs);
    ``auto``: the image's environment when built, else the project venv, saying why;
    ``project``: the project venv (fast runs).
    """
    if mode not in MODES:
        raise ValueError(f"interpreter mode {mode!r} is not one of {', '.join(MODES)}")
    project = project_python or Path(sys.executable)
    if mode == PROJECT:
        return Interpreter(project, image_uri, None)
    try:
        runtime = for_image(image_uri)
    except ImageEnvironmentError as error:
        if mode == IMAGE:
            raise
        return Interpreter(project, image_uri, None, fallback=f"fell back to the project venv: {error}")
    if runtime.is_built():
        return Interpreter(runtime.interpreter, image_uri, runtime)
    reason = f"{runtime.name} is not built (make image-envs)"
    if find_python(runtime.python) is None:
        reason = missing_python_message(runtime)
    if mode == IMAGE:
        raise ImageEnvironmentError(reason)
    return Interpreter(project, image_uri, None, fallback=f"fell back to the project venv: {reason}")


def add_interpreter_option(parser: argparse.ArgumentParser) -> None:
    """``--python image|auto|project`` (dest ``interpreters``): where the pipeline steps run."""
    parser.add_argument(
        "--python",
        dest="interpreters",
        choices=MODES,
        default=AUTO,
        help="interpreter of each pipeline step: its image's environment (image), that or the project venv "
        "when it is not built (auto, the default), or the project venv (project, fastest)",
    )


_VERSIONS: dict[Path, str] = {}


def python_version(python: Path) -> str:
    """``3.9.18``: the full version of an interpreter (asked once per process)."""
    if python not in _VERSIONS:
        completed = subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        )
        _VERSIONS[python] = completed.stdout.strip() or "unknown"
    return _VERSIONS[python]


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build every image environment that is missing or stale")
    build_parser.add_argument(
        "--require", action="store_true", help="fail when an image's Python is missing (CI); default: say so, go on"
    )
    python_parser = commands.add_parser("python", help="print the interpreter of an image's environment")
    python_parser.add_argument("image_uri")
    args = parser.parse_args(argv)
    if args.command == "python":
        try:
            runtime = for_image(args.image_uri)
        except ImageEnvironmentError as error:
            print(error, file=sys.stderr)
            return 2
        print(runtime.interpreter)
        return 0 if runtime.is_built() else 1
    failed = False
    for runtime in runtimes():
        try:
            build(runtime)
        except ImageEnvironmentError as error:
            missing = find_python(runtime.python) is None
            print(
                f"image environment {runtime.name} not built: {error}"
                + ("" if args.require or not missing else " (its parity tests will be skipped)"),
                file=sys.stderr,
            )
            failed = failed or args.require or not missing
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
