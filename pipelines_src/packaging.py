"""The source tarball of the step scripts: a reproducible tar.gz of pipelines_src/steps and the serving entry point.

The scripts sit at the root of the archive (``train.py``, ``validate.py``, ...), and so does
``serving/inference.py``, next to the step modules it imports (``SERVING_CODE``): SageMaker's training
script mode (``sagemaker_submit_directory``) extracts it and runs ``sagemaker_program`` from there,
and run_step.sh extracts it and runs the script it is given. train.py copies ``SERVING_CODE`` from
beside itself into the model's ``code/``, which the endpoint serves (``MODEL_CODE_DIR``); the
endpoint never reads the tarball. ``code_sha256`` is the digest of such a code folder. The same
files give the same bytes whatever their timestamps, owners or the order the file system lists them
in, so the archive's hash (what CDK asset hashing and pipeline step caching see) changes only when
a file does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

PIPELINES_SRC: Final = Path(__file__).resolve().parent
STEPS_DIR: Final = PIPELINES_SRC / "steps"
SERVING_DIR: Final = PIPELINES_SRC / "serving"
# The endpoint's script-mode program (SAGEMAKER_PROGRAM), added at the root of every tarball by default.
SERVING_PROGRAM: Final = "inference.py"
SERVING_FILES: Final = (SERVING_DIR / SERVING_PROGRAM,)
# What every model carries under code/ (train.py copies them): the serving program and the step modules it
# imports, at the root of the folder as the tarball holds them. SAGEMAKER_SUBMIT_DIRECTORY of a model package.
SERVING_CODE: Final = ("capture.py", "contract.py", "features.py", SERVING_PROGRAM)
MODEL_CODE_DIR: Final = "/opt/ml/model/code"
RUNNER_PATH: Final = PIPELINES_SRC / "run_step.sh"
# The conventional object names of the tarball and of the runner in S3 (see definition.py).
SOURCE_TARBALL_NAME: Final = "sourcedir.tar.gz"
RUNNER_NAME: Final = "run_step.sh"

# 1980-01-01T00:00:00Z for every entry: old enough to be obviously fixed, and no tool warns about it.
ENTRY_MTIME: Final = 315532800
_EXCLUDED_DIRS: Final = frozenset({"__pycache__"})
_EXCLUDED_SUFFIXES: Final = (".pyc", ".pyo")


def _excluded(name: str) -> bool:
    return name.startswith(".") or name in _EXCLUDED_DIRS or name.endswith(_EXCLUDED_SUFFIXES)


def source_files(steps_dir: Path) -> list[Path]:
    """The files that go into the tarball, relative to steps_dir, in archive order (sorted)."""
    if not steps_dir.is_dir():
        raise FileNotFoundError(f"steps folder {steps_dir} does not exist or is not a folder")
    files: list[Path] = []
    for folder, dirs, names in os.walk(steps_dir):
        dirs[:] = sorted(name for name in dirs if not _excluded(name))
        for name in names:
            path = Path(folder) / name
            if _excluded(name):
                continue
            if path.is_symlink() or not path.is_file():
                raise ValueError(f"{path}: only regular files can be packaged (not links or special files)")
            files.append(path.relative_to(steps_dir))
    return sorted(files, key=lambda path: path.as_posix())


def _tar_entry(path: Path, arcname: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.size = path.stat().st_size
    info.mtime = ENTRY_MTIME
    info.mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def build_source_tarball(steps_dir: Path, out_path: Path, *, extra_files: Sequence[Path] = SERVING_FILES) -> Path:
    """Write the reproducible tar.gz of steps_dir and ``extra_files`` to out_path and return out_path.

    Entries: the regular files under steps_dir (sub-folders kept) and each of ``extra_files`` by its
    name, sorted, at the archive root, mode 0644 (0755 if executable), mtime `ENTRY_MTIME`, owner 0:0
    without user names. Excluded: __pycache__ folders, *.pyc and *.pyo files, and hidden files and
    folders (name starting with '.'). The gzip header has mtime 0 and no file name. An extra file that
    is missing, not a regular file, or named like a file of steps_dir (or another extra file) is refused.
    """
    steps_dir = Path(steps_dir)
    out_path = Path(out_path)
    files = source_files(steps_dir)
    if not files:
        raise ValueError(f"steps folder {steps_dir} has no files to package")
    entries = {relative.as_posix(): steps_dir / relative for relative in files}
    for extra in map(Path, extra_files):
        if extra.is_symlink() or not extra.is_file():
            raise ValueError(f"{extra}: extra files must be existing regular files (not links or folders)")
        if extra.name in entries:
            raise ValueError(f"{extra}: the tarball already has an entry {extra.name} (from {entries[extra.name]})")
        entries[extra.name] = extra
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(entries):
            path = entries[name]
            if path.resolve() == out_path.resolve():
                continue
            with path.open("rb") as content:
                archive.addfile(_tar_entry(path, name), content)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.name}.partial")
    with partial.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(tar_bytes.getvalue())
    partial.replace(out_path)
    return out_path


def serving_code(steps_dir: Path = STEPS_DIR, serving_dir: Path = SERVING_DIR) -> dict[str, bytes]:
    """The contents of ``SERVING_CODE`` by name, as the tarball (and so every model's code/) holds them."""
    folders = {name: serving_dir if name == SERVING_PROGRAM else steps_dir for name in SERVING_CODE}
    return {name: (folders[name] / name).read_bytes() for name in SERVING_CODE}


def code_sha256(files: Mapping[str, bytes]) -> str:
    """The sha256 of a code folder: of the lines ``<sha256 of the file>  <name>`` in name order, which is
    what ``sha256sum`` prints for the files (``cd code && sha256sum capture.py contract.py features.py
    inference.py | sha256sum`` gives the same)."""
    lines = "".join(f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n" for name in sorted(files))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def folder_sha256(folder: Path) -> str:
    """``code_sha256`` of the regular files directly in ``folder`` (a model's code/)."""
    return code_sha256({path.name: path.read_bytes() for path in Path(folder).iterdir() if path.is_file()})
