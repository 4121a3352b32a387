"""The source tarball: reproducible bytes, only the scripts, at the root; run_step.sh runs from it."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from pipelines_src.packaging import (
    ENTRY_MTIME,
    RUNNER_PATH,
    SERVING_DIR,
    SERVING_FILES,
    SERVING_PROGRAM,
    SOURCE_TARBALL_NAME,
    STEPS_DIR,
    build_source_tarball,
    source_files,
)

SCRIPTS = {
    "validate.py": "print('validate')\n",
    "preprocess.py": "print('preprocess')\n",
    "train.py": "print('train')\n",
    "evaluate.py": "print('evaluate')\n",
    "contract.py": "RULES = ()\n",
    "common/__init__.py": "",
    "common/io.py": "def read():\n    return 1\n",
}
EXCLUDED = {
    "__pycache__/train.cpython-311.pyc": "compiled",
    "common/__pycache__/io.cpython-311.pyc": "compiled",
    "stale.pyc": "compiled",
    ".hidden": "secret",
    ".git/config": "[core]",
    "common/.DS_Store": "finder",
}


def make_steps(root: Path, files: dict[str, str], *, reverse: bool = False) -> Path:
    for name in sorted(files, reverse=reverse):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[name])
    return root


@pytest.fixture
def steps_dir(tmp_path: Path) -> Path:
    return make_steps(tmp_path / "steps", {**SCRIPTS, **EXCLUDED})


def members(tarball: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(tarball, "r:gz") as archive:
        return archive.getmembers()


def test_same_files_give_the_same_bytes_whatever_their_timestamps(steps_dir: Path, tmp_path: Path) -> None:
    first = build_source_tarball(steps_dir, tmp_path / "a" / "sourcedir.tar.gz").read_bytes()
    for index, path in enumerate(sorted(steps_dir.rglob("*"))):
        os.utime(path, (1_000_000_000 + index, 1_700_000_000 + 37 * index))
    second = build_source_tarball(steps_dir, tmp_path / "b" / "other-name.tar.gz").read_bytes()
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


def test_same_files_created_in_another_order_give_the_same_bytes(tmp_path: Path) -> None:
    forward = make_steps(tmp_path / "forward", SCRIPTS)
    backward = make_steps(tmp_path / "backward", SCRIPTS, reverse=True)
    assert (
        build_source_tarball(forward, tmp_path / "1.tar.gz").read_bytes()
        == build_source_tarball(backward, tmp_path / "2.tar.gz").read_bytes()
    )


def test_a_changed_file_changes_the_bytes(steps_dir: Path, tmp_path: Path) -> None:
    before = build_source_tarball(steps_dir, tmp_path / "before.tar.gz").read_bytes()
    (steps_dir / "train.py").write_text("print('train v2')\n")
    assert build_source_tarball(steps_dir, tmp_path / "after.tar.gz").read_bytes() != before


def test_only_the_scripts_sorted_at_the_archive_root(steps_dir: Path, tmp_path: Path) -> None:
    tarball = build_source_tarball(steps_dir, tmp_path / "sourcedir.tar.gz", extra_files=())
    names = [member.name for member in members(tarball)]
    assert names == sorted(SCRIPTS)
    assert {"train.py", "validate.py", "preprocess.py", "evaluate.py"} <= set(names)
    assert not any(name.startswith(("/", "./", "steps/")) for name in names)
    assert [path.as_posix() for path in source_files(steps_dir)] == names


def test_the_serving_entry_point_joins_the_scripts_at_the_root_by_default(steps_dir: Path, tmp_path: Path) -> None:
    tarball = build_source_tarball(steps_dir, tmp_path / "sourcedir.tar.gz")
    names = [member.name for member in members(tarball)]
    assert names == sorted([*SCRIPTS, SERVING_PROGRAM])
    with tarfile.open(tarball, "r:gz") as archive:
        extracted = archive.extractfile(SERVING_PROGRAM)
        assert extracted is not None
        assert extracted.read() == (SERVING_DIR / SERVING_PROGRAM).read_bytes()
    assert SERVING_FILES == (SERVING_DIR / SERVING_PROGRAM,)


def test_extra_files_go_to_the_root_by_name_sorted_and_never_replace_a_script(steps_dir: Path, tmp_path: Path) -> None:
    extra = make_steps(tmp_path / "elsewhere", {"deep/aaa.py": "A = 1\n", "zzz.py": "Z = 1\n"})
    tarball = build_source_tarball(
        steps_dir, tmp_path / "out.tar.gz", extra_files=[extra / "zzz.py", extra / "deep" / "aaa.py"]
    )
    assert [member.name for member in members(tarball)] == sorted([*SCRIPTS, "aaa.py", "zzz.py"])
    (extra / "train.py").write_text("print('another train')\n")
    with pytest.raises(ValueError, match=r"already has an entry train\.py"):
        build_source_tarball(steps_dir, tmp_path / "clash.tar.gz", extra_files=[extra / "train.py"])
    with pytest.raises(ValueError, match=r"already has an entry zzz\.py"):
        build_source_tarball(steps_dir, tmp_path / "twice.tar.gz", extra_files=[extra / "zzz.py"] * 2)
    with pytest.raises(ValueError, match="must be existing regular files"):
        build_source_tarball(steps_dir, tmp_path / "missing.tar.gz", extra_files=[extra / "missing.py"])


def test_entries_carry_no_owner_time_or_host_details(steps_dir: Path, tmp_path: Path) -> None:
    (steps_dir / "train.py").chmod(0o700)
    (steps_dir / "validate.py").chmod(0o600)
    tarball = build_source_tarball(steps_dir, tmp_path / "sourcedir.tar.gz")
    for member in members(tarball):
        assert member.isfile()
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == ENTRY_MTIME
        assert not member.pax_headers
    modes = {member.name: member.mode for member in members(tarball)}
    assert modes["train.py"] == 0o755
    assert modes["validate.py"] == 0o644
    header = tarball.read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] & 0x08 == 0, "no file name in the gzip header"
    assert header[4:8] == b"\0\0\0\0", "gzip header mtime is 0"


def test_contents_round_trip(steps_dir: Path, tmp_path: Path) -> None:
    tarball = build_source_tarball(steps_dir, tmp_path / "sourcedir.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tarball.read_bytes()))) as archive:
        for name, text in SCRIPTS.items():
            extracted = archive.extractfile(name)
            assert extracted is not None
            assert extracted.read().decode() == text


def test_the_steps_folder_packages_its_scripts_at_the_root(tmp_path: Path) -> None:
    tarball = build_source_tarball(STEPS_DIR, tmp_path / SOURCE_TARBALL_NAME)
    names = {member.name for member in members(tarball)}
    scripts = {path.name for path in STEPS_DIR.glob("*.py")}
    assert scripts, "pipelines_src/steps has scripts"
    assert scripts <= names
    # the endpoint's program sits next to the step modules it imports
    assert {SERVING_PROGRAM, "features.py", "capture.py", "contract.py"} <= names
    assert not any("__pycache__" in name or name.endswith(".pyc") or name.startswith(".") for name in names)
    assert build_source_tarball(STEPS_DIR, tmp_path / "again.tar.gz").read_bytes() == tarball.read_bytes()


def test_bad_steps_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_source_tarball(tmp_path / "missing", tmp_path / "out.tar.gz")
    empty = make_steps(tmp_path / "empty", {"__pycache__/x.pyc": ""})
    with pytest.raises(ValueError, match="no files to package"):
        build_source_tarball(empty, tmp_path / "out.tar.gz")
    linked = make_steps(tmp_path / "linked", {"train.py": ""})
    (linked / "link.py").symlink_to(linked / "train.py")
    with pytest.raises(ValueError, match="only regular files"):
        build_source_tarball(linked, tmp_path / "out.tar.gz")


# --- run_step.sh -------------------------------------------------------------------------------

ECHO_SCRIPT = """\
import sys
from pathlib import Path

import helper

print(helper.GREETING, Path(__file__).name, *sys.argv[1:])
"""


def run_step(source_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUN_STEP_SOURCE_DIR": str(source_dir), "RUN_STEP_PYTHON": "python3"}
    return subprocess.run(
        ["bash", str(RUNNER_PATH), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    steps = make_steps(tmp_path / "steps", {"echo.py": ECHO_SCRIPT, "helper.py": "GREETING = 'hello'\n"})
    source = tmp_path / "source"
    build_source_tarball(steps, source / "0123abcd.tar.gz")  # any object name: the runner looks for *.gz / *.tgz
    return source


def test_run_step_runs_the_script_from_the_tarball_with_its_arguments(source_dir: Path) -> None:
    result = run_step(source_dir, "echo.py", "--data-dir", "/opt/ml/processing/input/data", "two words")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello echo.py --data-dir /opt/ml/processing/input/data two words"


@pytest.mark.parametrize("name", ["sourcedir.tar.gz", "5f1e0c.gz", "steps.tgz"])
def test_run_step_finds_the_tarball_under_any_gzip_name(tmp_path: Path, name: str) -> None:
    # A CDK file asset is stored as <content hash>.gz: that is the name the processing job downloads.
    steps = make_steps(tmp_path / "steps", {"echo.py": ECHO_SCRIPT, "helper.py": "GREETING = 'hi'\n"})
    build_source_tarball(steps, tmp_path / "source" / name)
    result = run_step(tmp_path / "source", "echo.py", "x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hi echo.py x"


def test_run_step_names_a_missing_script(source_dir: Path) -> None:
    result = run_step(source_dir, "train.py")
    assert result.returncode != 0
    assert "train.py is not in" in result.stderr
    assert "echo.py" in result.stderr


@pytest.mark.parametrize("args", [(), ("../echo.py",), ("echo.sh",)])
def test_run_step_refuses_bad_usage(source_dir: Path, args: tuple[str, ...]) -> None:
    result = run_step(source_dir, *args)
    assert result.returncode == 64
    assert "run_step.sh" in result.stderr


def test_run_step_needs_exactly_one_tarball(source_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert "found 0" in run_step(empty, "echo.py").stderr
    (source_dir / "second.tar.gz").write_bytes((source_dir / "0123abcd.tar.gz").read_bytes())
    result = run_step(source_dir, "echo.py")
    assert result.returncode == 66
    assert "found 2" in result.stderr
