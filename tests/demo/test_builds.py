"""CodeBuild actions from the synthesized CICD template, run locally: the buildspec's commands in order in one
session, a command that cannot run here skipped with its reason, the first failure ending the build."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from demo import builds, run
from demo.assembly import Assembly, BuildAction, Resolver
from demo.emulation import ACCOUNT
from resolver import naming
from resolver.config import load_config
from tests.conftest import cdk_json_context

ROOT = Path(__file__).resolve().parents[2]


def action(commands: list[str], *, environment: dict[str, str] | None = None) -> BuildAction:
    return BuildAction(
        pipeline="p",
        stage="Train",
        action="Train",
        project="project",
        buildspec={
            "version": "0.2",
            "phases": {"install": {"commands": ["make install"]}, "build": {"commands": commands}},
        },
        environment=environment or {},
    )


def test_commands_run_in_order_in_one_session_and_the_install_is_skipped_with_its_reason(tmp_path: Path) -> None:
    build = builds.start(
        action(['export SEEN="$STAGE"', 'echo "$SEEN" > seen.txt'], environment={"STAGE": "qa"}),
        tmp_path,
        {"STAGE": "qa"},
    )
    assert build.wait(60) == 0
    assert (tmp_path / "seen.txt").read_text() == "qa\n"
    log = build.output()
    assert f"[Container] Skipped command make install (it cannot run here: {builds.LOCAL_SKIPS['make install']})" in log
    assert log.index("Entering phase INSTALL") < log.index("Entering phase BUILD") < log.index("Running command export")
    assert [(item.text, item.skipped_because is not None) for item in build.commands] == [
        ("make install", True),
        ('export SEEN="$STAGE"', False),
        ('echo "$SEEN" > seen.txt', False),
    ]


def test_the_first_failing_command_ends_the_build_with_its_status(tmp_path: Path) -> None:
    build = builds.start(action(["sh -c 'exit 3'", "touch never"]), tmp_path, {})
    assert build.wait(60) == 3
    assert "[Container] Command did not exit successfully sh -c 'exit 3' exit status 3" in build.output()
    assert not (tmp_path / "never").exists()


def test_the_build_sees_only_its_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_SHOULD_NOT_LEAK", "1")
    build = builds.start(action(["env > env.txt"]), tmp_path, {"STAGE": "dev"})
    assert build.wait(60) == 0
    names = {line.split("=", 1)[0] for line in (tmp_path / "env.txt").read_text().splitlines() if "=" in line}
    assert "STAGE" in names and "MLOPS_SHOULD_NOT_LEAK" not in names


def test_an_unresolved_pipeline_variable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(builds.BuildError, match="unresolved CodePipeline variables"):
        builds.start(action(["true"]), tmp_path, {"MODEL_PACKAGE_ARN": "#{variables.ModelPackageArn}"})


def test_the_checkout_has_the_sources_and_make_does_not_reinstall(tmp_path: Path) -> None:
    folder = builds.checkout(ROOT, tmp_path / "checkout")
    assert (folder / "Makefile").read_bytes() == (ROOT / "Makefile").read_bytes()
    assert (folder / ".venv").resolve() == (ROOT / ".venv").resolve()
    assert not (folder / "cdk.out").exists()
    # make ci-train's prerequisite install is up to date: only the train command would run
    dry = builds.subprocess.run(["make", "-n", "ci-train"], cwd=folder, capture_output=True, check=True, text=True)
    assert "pip install" not in dry.stdout and "pipelines_src.cicd run" in dry.stdout


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from demo.assembly import synthesize

    return synthesize(cdk_json_context(), "dev", tmp_path_factory.mktemp("cdk") / "cdk.out").directory


def train_action(directory: Path) -> BuildAction:
    config = load_config(cdk_json_context()).stage("dev")
    resolver = Resolver(Assembly.read(directory), account=ACCOUNT, region=config.region)
    return resolver.build_action(naming.build_ci_pipeline(config), run.TRAIN_ACTION)


def test_the_train_action_is_the_templates_project(assembly: Path) -> None:
    train = train_action(assembly)
    assert train.environment == {"STAGE": "dev"}
    assert [(phase, commands) for phase, commands in train.phases()] == [
        ("install", ["make install"]),
        ("build", ["make ci-train"]),
    ]
    assert [item.skipped_because is None for item in builds.plan(train)] == [False, True]


def test_an_edited_buildspec_is_what_runs(assembly: Path, tmp_path: Path) -> None:
    """The demo runs what the template holds: change the Train project's buildspec and environment in the cloud
    assembly, and the build runs the new commands with the new variables."""
    edited = tmp_path / "cdk.out"
    shutil.copytree(assembly, edited)
    config = load_config(cdk_json_context()).stage("dev")
    name = naming.build_ci_pipeline(config)
    for path in edited.rglob("*.template.json"):
        template: dict[str, Any] = json.loads(path.read_text())
        pipelines = [
            item
            for item in template.get("Resources", {}).values()
            if item["Type"] == "AWS::CodePipeline::Pipeline" and item["Properties"].get("Name") == name
        ]
        if pipelines:
            break
    (pipeline,) = pipelines
    (reference,) = [
        item["Configuration"]["ProjectName"]["Ref"]
        for stage in pipeline["Properties"]["Stages"]
        for item in stage["Actions"]
        if item["Name"] == run.TRAIN_ACTION
    ]
    project = template["Resources"][reference]
    spec = json.loads(project["Properties"]["Source"]["BuildSpec"])
    spec["phases"]["build"]["commands"] = ['echo "trained on $STAGE with $EXTRA" > ran.txt']
    project["Properties"]["Source"]["BuildSpec"] = json.dumps(spec)
    variables = copy.deepcopy(project["Properties"]["Environment"]["EnvironmentVariables"])
    project["Properties"]["Environment"]["EnvironmentVariables"] = [
        *variables,
        {"Name": "EXTRA", "Type": "PLAINTEXT", "Value": "an added variable"},
    ]
    path.write_text(json.dumps(template))
    changed = train_action(edited)
    build = builds.start(changed, tmp_path, changed.environment)
    assert build.wait(60) == 0
    assert (tmp_path / "ran.txt").read_text() == "trained on dev with an added variable\n"
