"""What installs the project's environment installs only files whose sha256 the lock names."""

from __future__ import annotations

import io
import json
import re
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tools import lock_hashes

LOCKS = [ROOT / "requirements.lock", ROOT / "tools" / "pip.lock"]


def _requirements(path: Path) -> dict[str, list[str]]:
    """name==version -> its hashes, from a lock written with backslash continuations."""
    joined = path.read_text().replace("\\\n", " ")
    requirements = {}
    for line in joined.splitlines():
        if line.strip():
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
