"""What installs the project's environment installs only files whose sha256 the lock names."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from pipelines_src.local import images
from tests.conftest import ROOT
from tools import lock_hashes

IMAGE_ENVIRONMENTS = sorted((ROOT / "pipelines_src" / "images").glob("*.txt"))
TOOLS = ROOT / "tools"
LOCKS = [
    ROOT / "requirements.lock",
    TOOLS / "pip.lock",
    TOOLS / "image-pip.lock",
    TOOLS / "mlflow.lock",
    *IMAGE_ENVIRONMENTS,
]


def _requirements(path: Path) -> dict[str, list[str]]:
    """name==version -> its hashes, from a lock written with backslash continuations (comment lines skipped)."""
    joined = path.read_text().replace("\\\n", " ")
    requirements = {}
    for line in joined.splitlines():
        if line.strip() and not line.startswith("#"):
            pin, *options = line.split()
            requirements[pin] = [option.removeprefix("--hash=sha256:") for option in options]
            assert all(option.startswith("--hash=sha256:") for option in options), line
    return requirements


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: path.name)
def test_every_locked_release_is_pinned_with_the_hashes_of_its_files(lock: Path) -> None:
    requirements = _requirements(lock)
    assert requirements
    for pin, hashes in requirements.items():
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[^=\s]+", pin), pin
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in hashes), pin


def test_make_install_requires_the_hashes_and_builds_nothing_from_the_index() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [line.strip() for line in makefile.splitlines() if "pip install" in line and "lock-venv" not in line]
    assert installs
    for install in installs:
        assert "--require-hashes -r " in install or "--no-deps --no-build-isolation -e ." in install, install


class _Index:
    """A JSON simple API (PEP 691) answer for one project."""

    def __init__(self, files: list[dict[str, Any]]) -> None:
        self.files = files
        self.asked: list[str] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> Any:
        self.asked.append(request.full_url)
        assert request.get_header("Accept") == lock_hashes.ACCEPT
        body = io.BytesIO(json.dumps({"files": self.files}).encode())
        body.headers = Message()  # type: ignore[attr-defined]
        return body


def test_the_lock_takes_every_file_of_the_pinned_release_and_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    index = _Index(
        [
            {"filename": "Demo_Pkg-1.2.0-py3-none-any.whl", "hashes": {"sha256": "a" * 64}},
            {"filename": "demo_pkg-1.2.0-cp311-cp311-manylinux_2_28_x86_64.whl", "hashes": {"sha256": "b" * 64}},
            {"filename": "demo_pkg-1.2.0.tar.gz", "hashes": {"sha256": "c" * 64}},
            {"filename": "demo_pkg-1.2.1-py3-none-any.whl", "hashes": {"sha256": "d" * 64}},
            {"filename": "demo_pkg-1.2.0rc1.tar.gz", "hashes": {"sha256": "e" * 64}},
        ]
    )
    monkeypatch.setattr(urllib.request, "urlopen", index)
    locked = lock_hashes.hash_lock("Demo.Pkg==1.2.0\n", index="https://index.example/simple")
    assert locked == (
        "Demo.Pkg==1.2.0 \\\n"
        f"    --hash=sha256:{'a' * 64} \\\n"
        f"    --hash=sha256:{'b' * 64} \\\n"
        f"    --hash=sha256:{'c' * 64}\n"
    )
    assert index.asked == ["https://index.example/simple/demo-pkg/"]
    # Hashing a hashed lock again gives the same lock.
    assert lock_hashes.hash_lock(locked, index="https://index.example/simple") == locked


def test_a_release_the_index_does_not_have_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", _Index([]))
    with pytest.raises(lock_hashes.LockError, match=r"^demo==9: the index lists no file of this release$"):
        lock_hashes.hash_lock("demo==9\n", index="https://index.example/simple")
    with pytest.raises(lock_hashes.LockError, match=r"^line 1: 'demo>=9' is not a name==version pin$"):
        lock_hashes.hash_lock("demo>=9\n", index="https://index.example/simple")


def test_hashing_keeps_the_comments_and_the_header_of_an_image_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        urllib.request, "urlopen", _Index([{"filename": "demo-1.0-py3-none-any.whl", "hashes": {"sha256": "a" * 64}}])
    )
    text = "# The image's environment\n#\n# image: sagemaker-x:1.0-1\n# python: 3.9\n\ndemo==1.0  # why\n\n"
    locked = lock_hashes.hash_lock(text, index="https://index.example/simple")
    assert locked == (
        "# The image's environment\n#\n# image: sagemaker-x:1.0-1\n# python: 3.9\n\n"
        f"demo==1.0 \\\n    --hash=sha256:{'a' * 64}\n"
    )
    assert lock_hashes.hash_lock(locked, index="https://index.example/simple") == locked


def test_image_environments_are_built_with_the_hashes_from_the_pip_lock_up() -> None:
    """The build installs pip and setuptools from the hashed pip lock, then the image's requirements with
    --require-hashes, building source archives with that setuptools (no unchecked build requirements)."""
    source = (ROOT / "pipelines_src" / "local" / "images.py").read_text()
    installs = [line.strip() for line in source.splitlines() if '"install"' in line]
    assert installs == [
        '_run([*pip, "install", "--require-hashes", "-r", str(PIP_LOCK)])',
        '_run([*pip, "install", "--require-hashes", "--no-build-isolation", "-r", str(runtime.requirements)])',
    ]
    assert images.PIP_LOCK == ROOT / "tools" / "image-pip.lock"
    # The training toolkit pip-installs its generated setup.py in a network-isolated job: only a pip that still
    # builds setup.py projects without an isolated build environment (before 25.3) can, with no index.
    (pip,) = [line for line in images.PIP_LOCK.read_text().splitlines() if line.startswith("pip==")]
    assert Version(pip.split("==")[1].split()[0]) < Version("25.3")
    assert {runtime.requirements for runtime in images.runtimes()} == set(IMAGE_ENVIRONMENTS)


def _environment(tmp_path: Path, pins: str) -> images.ImageRuntime:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    tmp_path.mkdir()
    path = tmp_path / "sagemaker-demo-1.0-1.txt"
    path.write_text(f"# image: sagemaker-demo:1.0-1\n# python: {python}\n{pins}")
    return images.parse_requirements(path)


@pytest.mark.slow  # a virtual environment, pip from the index
def test_an_image_environment_installs_only_files_with_the_locked_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "ENVS_DIR", tmp_path / "envs")
    monkeypatch.setenv(f"PYTHON{sys.version_info.major}{sys.version_info.minor}", sys.executable)
    (xgboost,) = [path for path in IMAGE_ENVIRONMENTS if "xgboost" in path.name]
    pin = "six==1.17.0"
    hashes = _requirements(xgboost)[pin]
    locked = f"{pin} " + " ".join(f"--hash=sha256:{digest}" for digest in hashes) + "\n"
    built = images.build(_environment(tmp_path / "good", locked))
    assert subprocess.run([str(built), "-c", "import six"], check=False).returncode == 0
    # A file whose content is not what the lock names, or a pin without hashes, is refused.
    tampered = locked.replace(hashes[0], "0" * 64).replace(hashes[-1], "0" * 64)
    # (The failure is the requirements' install, after pip and setuptools installed from their lock.)
    at_the_requirements = r"--require-hashes --no-build-isolation -r \S*/sagemaker-demo-1\.0-1\.txt$"
    with pytest.raises(images.ImageEnvironmentError, match=at_the_requirements):
        images.build(_environment(tmp_path / "tampered", tampered))
    with pytest.raises(images.ImageEnvironmentError, match=at_the_requirements):
        images.build(_environment(tmp_path / "unhashed", f"{pin}\n"))
