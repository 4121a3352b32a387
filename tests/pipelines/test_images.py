"""Image environments: one per requirements file, found from a definition's image URIs, chosen per mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipelines_src.local import images

SKLEARN_URI = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST_URI = "683313688378.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"


def _requirements(tmp_path: Path, header: str, name: str = "sagemaker-x-1.0-1.txt") -> Path:
    path = tmp_path / name
    path.write_text(header + "numpy==1.24.1\n")
    return path


def test_each_image_the_definitions_use_has_an_environment_with_its_python() -> None:
    sklearn, xgboost = images.for_image(SKLEARN_URI), images.for_image(XGBOOST_URI)
    assert (sklearn.name, sklearn.python) == ("sagemaker-scikit-learn-1.2-1", "3.9")
    assert (xgboost.name, xgboost.python) == ("sagemaker-xgboost-3.0-5", "3.10")
    assert xgboost.uninstall == ("typing",)
    assert [patch.path for patch in xgboost.patches] == ["sagemaker_containers/_mapping.py"]


def test_the_image_versions_the_definitions_pin_are_the_described_ones() -> None:
    """A version bump in definition.py without a new requirements file fails here, not in SageMaker."""
    from pipelines_src.definition import SKLEARN_VERSION, XGBOOST_VERSION

    described = {(runtime.repository, runtime.version) for runtime in images.runtimes()}
    assert ("sagemaker-scikit-learn", SKLEARN_VERSION) in described
    assert ("sagemaker-xgboost", XGBOOST_VERSION) in described


def test_an_image_without_an_environment_is_named_with_what_to_add() -> None:
    with pytest.raises(images.ImageEnvironmentError, match=r"no environment for the image .*sagemaker-xgboost:1\.7-1"):
        images.for_image("246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.7-1")
    with pytest.raises(images.ImageEnvironmentError, match="is not an image URI"):
        images.for_image("sklearn")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("# python: 3.9\n", "needs exactly one '# image:' header line"),
        ("# image: sagemaker-x:1.0-1\n", "needs exactly one '# python:' header line"),
        ("# image: sagemaker-x\n# python: 3.9\n", "must be <repository>:<version>"),
        ("# image: a:1\n# python: 3.9\n# patch: broken\n", "must be '<file>: <old> -> <new>'"),
    ],
)
def test_a_malformed_requirements_header_names_the_file_and_the_key(tmp_path: Path, header: str, message: str) -> None:
    path = _requirements(tmp_path, header)
    with pytest.raises(images.ImageEnvironmentError, match=message) as raised:
        images.parse_requirements(path)
    assert str(path) in str(raised.value)


def test_the_stamp_follows_the_requirements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "ENVS_DIR", tmp_path / "envs")
    runtime = images.parse_requirements(_requirements(tmp_path, "# image: sagemaker-x:1.0-1\n# python: 3.9\n"))
    assert not runtime.is_built()
    runtime.interpreter.parent.mkdir(parents=True)
    runtime.interpreter.symlink_to(sys.executable)
    (runtime.env_dir / images.STAMP).write_text(runtime.digest())
    assert runtime.is_built()
    runtime.requirements.write_text(runtime.requirements.read_text() + "pandas==1.1.3\n")
    assert not runtime.is_built(), "a changed requirements file makes the environment stale"


def test_an_interpreter_named_by_the_variable_must_be_that_version(tmp_path: Path) -> None:
    this = f"{sys.version_info.major}.{sys.version_info.minor}"
    variable = "PYTHON" + this.replace(".", "")
    assert images.find_python(this, {variable: sys.executable, "PATH": ""}) == Path(sys.executable)
    assert images.find_python("3.2", {"PYTHON32": sys.executable, "PATH": ""}) is None
    assert images.find_python("3.2", {"PATH": str(tmp_path), "PYENV_ROOT": str(tmp_path)}) is None


def test_modes_choose_the_image_fall_back_with_a_reason_or_use_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "ENVS_DIR", tmp_path / "nothing-built")
    project = images.choose(SKLEARN_URI, images.PROJECT)
    assert project.python == Path(sys.executable) and not project.is_image and not project.fallback
    auto = images.choose(SKLEARN_URI, images.AUTO)
    assert auto.python == Path(sys.executable) and not auto.is_image
    assert auto.fallback.startswith("fell back to the project venv: sagemaker-scikit-learn-1.2-1")
    assert "\n" not in auto.fallback
    with pytest.raises(images.ImageEnvironmentError, match=r"sagemaker-scikit-learn-1\.2-1"):
        images.choose(SKLEARN_URI, images.IMAGE)
    with pytest.raises(ValueError, match="is not one of image, auto, project"):
        images.choose(SKLEARN_URI, "fast")


def test_a_patch_is_applied_once_and_a_missing_target_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "pkg" / "_mapping.py"
    target.parent.mkdir()
    target.write_text("import collections\nclass M(collections.Mapping): pass\nx = collections.MappingView\n")
    patch = images.Patch("pkg/_mapping.py", "collections.Mapping", "collections.abc.Mapping")
    images.apply_patch(tmp_path, patch)
    images.apply_patch(tmp_path, patch)
    text = target.read_text()
    assert "class M(collections.abc.Mapping)" in text and "collections.MappingView" in text
    with pytest.raises(images.ImageEnvironmentError, match="does not exist"):
        images.apply_patch(tmp_path, images.Patch("pkg/other.py", "a", "b"))


def test_the_command_line_prints_an_images_interpreter_or_says_why_not(capsys: pytest.CaptureFixture[str]) -> None:
    assert images.main(["python", "sklearn"]) == 2
    assert "is not an image URI" in capsys.readouterr().err
    status = images.main(["python", SKLEARN_URI])
    assert capsys.readouterr().out.strip().endswith(".venv-images/sagemaker-scikit-learn-1.2-1/bin/python")
    assert status == (0 if images.for_image(SKLEARN_URI).is_built() else 1)
