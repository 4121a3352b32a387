"""The synth's definition cache: a hit returns what a build returns, without the SDK; any changed input rebuilds."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines_src import definition
from pipelines_src.definition import build_definition, cached_build, definition_key
from tests.pipelines.test_definition import placeholder_settings

ROOT = Path(__file__).resolve().parents[2]
BUILDS: list[object] = []


def sdk_modules() -> list[str]:
    """The SageMaker SDK's modules this process has imported."""
    return sorted(name for name in sys.modules if name == "sagemaker" or name.startswith("sagemaker."))


def fake_build(settings: object) -> str:
    BUILDS.append(settings)
    return f'{{"built": "{getattr(settings, "pipeline_name", "")}"}}'


def other_build(settings: object) -> str:
    return fake_build(settings)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(definition.CACHE_VARIABLE, str(folder))
    BUILDS.clear()
    return folder


def test_a_second_build_of_the_same_inputs_is_read_back(cache: Path) -> None:
    settings = placeholder_settings()

    first = cached_build(settings, fake_build)
    second = cached_build(settings, fake_build)

    assert first == second == '{"built": "mlops-dev-delivery-time"}'
    assert len(BUILDS) == 1
    assert [path.name for path in cache.iterdir()] == [f"{definition_key(settings, fake_build)}.json"]


def test_a_changed_setting_rebuilds(cache: Path) -> None:
    settings = placeholder_settings()
    cached_build(settings, fake_build)

    renamed = cached_build(dataclasses.replace(settings, pipeline_name="mlops-dev-other"), fake_build)
    cached_build(dataclasses.replace(settings, threshold=7.5), fake_build)

    assert renamed == '{"built": "mlops-dev-other"}'
    assert len(BUILDS) == 3


def test_every_input_is_in_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = placeholder_settings()
    base = definition_key(settings, fake_build)
    keys = {
        "setting": definition_key(dataclasses.replace(settings, threshold=7.25), fake_build),
        "build function": definition_key(settings, other_build),
    }
    sources = tmp_path / "pipelines_src"
    shutil.copytree(definition._SOURCE_ROOT, sources, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(definition, "_SOURCE_ROOT", sources)
    assert definition_key(settings, fake_build) == base  # a copy of the same sources is the same input
    step = sources / "steps" / "train.py"
    step.write_text(step.read_text() + "\n# changed\n")
    keys["step source"] = definition_key(settings, fake_build)
    (sources / "steps" / "new_module.py").write_text("")
    keys["new source file"] = definition_key(settings, fake_build)
    monkeypatch.setattr(definition, "_SOURCE_ROOT", definition._SOURCE_ROOT.__class__(definition.__file__).parent)
    installed = definition._installed()
    upgraded = [line if not line.startswith("sagemaker-core==") else "sagemaker-core==99.0" for line in installed]
    monkeypatch.setattr(definition, "_installed", lambda: upgraded)
    keys["package version"] = definition_key(settings, fake_build)
    monkeypatch.setattr(definition, "_installed", lambda: installed)
    monkeypatch.setattr(sys, "version", sys.version + " other")
    keys["python"] = definition_key(settings, fake_build)

    assert any(line.startswith("sagemaker-core==") for line in installed)
    assert base not in keys.values()
    assert len(set(keys.values())) == len(keys)


def test_off_builds_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(definition.CACHE_VARIABLE, "off")
    BUILDS.clear()

    cached_build(placeholder_settings(), fake_build)
    cached_build(placeholder_settings(), fake_build)

    assert len(BUILDS) == 2


def test_a_hit_imports_no_sagemaker_sdk_and_gives_the_built_bytes(cache: Path, placeholder_definition: str) -> None:
    # The miss is built here, with the SDK; the hit is read in a fresh process, which shows what it imports.
    settings = placeholder_settings()
    built = cached_build(settings, build_definition)
    assert [path.name for path in cache.iterdir()] == [f"{definition_key(settings, build_definition)}.json"]
    assert sdk_modules(), "the miss built it with the SDK"
    script = textwrap.dedent(
        """
        import sys
        from pipelines_src.definition import build_definition, cached_build
        from tests.pipelines.test_definition import placeholder_settings
        from tests.pipelines.test_definition_cache import sdk_modules
        text = cached_build(placeholder_settings(), build_definition)
        print(len(sdk_modules()), len(text))
        sys.stdout.write(text)
        """
    )
    environment = {"MLOPS_DEFINITION_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    )
    read_head, _, read = done.stdout.partition("\n")

    assert read_head.split()[0] == "0"
    assert read == built == placeholder_definition
