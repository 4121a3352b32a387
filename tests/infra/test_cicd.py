"""What the CICD stack promises: stages in order, the V2 variable, the triggers, Makefile buildspecs, scoped roles."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from moto.events.models import EventPattern

from resolver import naming
from resolver.config import PlatformConfig
from stacks.nag import flatten_reference
from tests.conftest import Synthesized

STAGES = ["dev", "staging", "prod"]


def _resources(synthesized: Synthesized, stage: str) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = synthesized.template(stage, "cicd").to_json()["Resources"]
    return resources


def _pipeline(resources: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    (pipeline,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CodePipeline::Pipeline" and r["Properties"]["Name"] == name
    ]
    return pipeline


def _stages(pipeline: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(stage["Name"], [action["Name"] for action in stage["Actions"]]) for stage in pipeline["Stages"]]


def _project(resources: dict[str, dict[str, Any]], logical_prefix: str) -> tuple[str, dict[str, Any]]:
    (item,) = [
        (name, r["Properties"])
        for name, r in resources.items()
        if r["Type"] == "AWS::CodeBuild::Project" and name.startswith(logical_prefix)
    ]
    return item


def _statements(resources: dict[str, dict[str, Any]], role: Any) -> list[dict[str, Any]]:
    return [
        statement
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and role in r["Properties"]["Roles"]
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("stage", STAGES)
def test_a_push_tests_then_trains(synthesized: Synthesized, platform_config: PlatformConfig, stage: str) -> None:
    config = platform_config.stage(stage)
    resources = _resources(synthesized, stage)
    pipeline = _pipeline(resources, naming.build_ci_pipeline(config))
    assert pipeline["PipelineType"] == "V2"
    assert _stages(pipeline) == [("Source", ["Source"]), ("Test", ["Test"]), ("Train", ["Train"])]
    (source,) = pipeline["Stages"][0]["Actions"]
    if config.source.provider == "codeconnections":
        assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
        assert source["Configuration"]["ConnectionArn"] == config.source.connection_arn
        assert source["Configuration"]["FullRepositoryId"] == config.source.repository
        assert source["Configuration"]["BranchName"] == config.source.branch
        (trigger,) = pipeline["Triggers"]
        push = trigger["GitConfiguration"]["Push"]
        assert push == [{"Branches": {"Includes": [config.source.branch]}}]
    else:
        assert config.source.provider == "s3"
        assert source["ActionTypeId"]["Provider"] == "S3"
        assert source["Configuration"]["S3ObjectKey"] == naming.source_object(config)
        assert source["Configuration"]["PollForSourceChanges"] is False
        (rule,) = [
            r["Properties"]
            for name, r in resources.items()
            if r["Type"] == "AWS::Events::Rule" and name.startswith("SourceUploaded")
        ]
        pattern = json.dumps(rule["EventPattern"])
        delivery = json.dumps(rule["EventPattern"]["detail"]["bucket"]["name"][0])
        matcher = EventPattern.load(pattern.replace(delivery, '"delivery"'))

        def created(key: str) -> dict[str, Any]:
            detail = {"bucket": {"name": "delivery"}, "object": {"key": key}}
            return {"source": "aws.s3", "detail-type": "Object Created", "detail": detail}

        assert matcher.matches_event(created(naming.source_object(config)))
        assert not matcher.matches_event(created("pipelines/ModelBuild/Source/abc.zip"))


@pytest.mark.parametrize("stage", STAGES)
def test_an_approval_goes_staging_smoke_test_gate_production(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    resources = _resources(synthesized, stage)
    pipeline = _pipeline(resources, naming.deploy_pipeline(config))
    assert pipeline["PipelineType"] == "V2"
    assert [variable["Name"] for variable in pipeline["Variables"]] == ["ModelPackageArn"]
    assert _stages(pipeline) == [
        ("Source", ["ReleaseTool", "Source"]),
        ("DeployStaging", ["Deploy-staging"]),
        ("SmokeTest", ["SmokeTest"]),
        ("Approve", ["Approve"]),
        ("DeployProduction", ["Deploy-production"]),
    ]
    # Started only by the registry-approval function: no push trigger, no change detection.
    assert "Triggers" not in pipeline
    for source in pipeline["Stages"][0]["Actions"]:
        assert source["Configuration"].get("DetectChanges", False) is False
        assert source["Configuration"].get("PollForSourceChanges", False) is False
    release_tool, repository = pipeline["Stages"][0]["Actions"]
    for stage_name in ("DeployStaging", "DeployProduction"):
        (action,) = next(s for s in pipeline["Stages"] if s["Name"] == stage_name)["Actions"]
        variables = json.loads(action["Configuration"]["EnvironmentVariables"])
        assert {"name": "MODEL_PACKAGE_ARN", "type": "PLAINTEXT", "value": "#{variables.ModelPackageArn}"} in variables
        # The deploy builds read the release tool the platform published, never the repository.
        assert [artifact["Name"] for artifact in action["InputArtifacts"]] == [
            artifact["Name"] for artifact in release_tool["OutputArtifacts"]
        ]
    (smoke_action,) = next(s for s in pipeline["Stages"] if s["Name"] == "SmokeTest")["Actions"]
    assert [a["Name"] for a in smoke_action["InputArtifacts"]] == [a["Name"] for a in repository["OutputArtifacts"]]
    (approve,) = next(s for s in pipeline["Stages"] if s["Name"] == "Approve")["Actions"]
    assert approve["ActionTypeId"]["Provider"] == "Manual"
    # The notification names the version, carries its metrics (exported by the smoke test) and where to look.
    assert "#{variables.ModelPackageArn}" in approve["Configuration"]["CustomData"]
    assert "#{SmokeTest.MODEL_METRICS}" in approve["Configuration"]["CustomData"]
    assert "ExternalEntityLink" in approve["Configuration"]
    (smoke,) = next(s for s in pipeline["Stages"] if s["Name"] == "SmokeTest")["Actions"]
    assert smoke["Namespace"] == "SmokeTest"
    assert "NotificationArn" in approve["Configuration"]


def _release_tool_object(resources: dict[str, dict[str, Any]], pipeline: dict[str, Any]) -> tuple[str, str]:
    (action,) = [a for a in pipeline["Stages"][0]["Actions"] if a["Name"] == "ReleaseTool"]
    configuration = action["Configuration"]
    return flatten_reference(configuration["S3Bucket"]), flatten_reference(configuration["S3ObjectKey"])


@pytest.mark.parametrize("stage", STAGES)
def test_deploy_builds_run_only_the_platforms_release_tool_and_install_nothing(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    """No code of the pushed branch runs with the right to change an endpoint; nothing is fetched in that build."""
    config = platform_config.stage(stage)
    resources = _resources(synthesized, stage)
    bucket, key = _release_tool_object(resources, _pipeline(resources, naming.deploy_pipeline(config)))
    # The asset cdk deploy publishes from the platform's checkout: the bootstrap bucket, a content-addressed key.
    assert "cdk-hnb659fds-assets" in bucket and re.fullmatch(r"[0-9a-f]{64}\.zip", key), (bucket, key)
    for target in ("staging", "production"):
        _, project = _project(resources, f"Deploy{target}")
        spec = json.loads(project["Source"]["BuildSpec"])
        assert spec["phases"]["install"] == {"runtime-versions": {"python": "3.11"}}
        assert spec["phases"]["build"]["commands"] == [
            'python3 -m endpoint_release --model-package-arn "$MODEL_PACKAGE_ARN"'
        ]


@pytest.mark.parametrize("stage", STAGES)
def test_every_repository_buildspec_installs_and_builds_through_the_makefile(
    synthesized: Synthesized, stage: str
) -> None:
    projects = [
        (name, r["Properties"])
        for name, r in _resources(synthesized, stage).items()
        if r["Type"] == "AWS::CodeBuild::Project" and not name.startswith("Deploy")
    ]
    assert len(projects) == 3
    for _, project in projects:
        spec = json.loads(project["Source"]["BuildSpec"])
        assert spec["phases"]["install"]["commands"] == ["make install"]
        for command in spec["phases"]["build"]["commands"]:
            # A Makefile target, a Makefile target's output kept for a later stage, or the version check.
            assert (
                command.startswith("make ")
                or re.fullmatch(r'export [A-Z_]+="\$\(make [^)]*\)"', command)
                or command.startswith(".venv/bin/python -m stacks.release --check-only ")
            ), command
        assert project["EncryptionKey"], "artifacts and logs encrypted with the lake key"
        assert project["Environment"]["PrivilegedMode"] is False


@pytest.mark.parametrize("stage", STAGES)
def test_a_version_reaches_make_only_quoted_and_after_the_release_check(synthesized: Synthesized, stage: str) -> None:
    handed_a_version = {}
    for name, resource in _resources(synthesized, stage).items():
        if resource["Type"] != "AWS::CodeBuild::Project":
            continue
        spec = json.loads(resource["Properties"]["Source"]["BuildSpec"])
        commands = [*spec["phases"]["install"].get("commands", []), *spec["phases"]["build"]["commands"]]
        using = [index for index, command in enumerate(commands) if "MODEL_PACKAGE_ARN" in command]
        if not using:
            continue
        handed_a_version[name] = commands
        if name.startswith("Deploy"):  # the release tool checks the version before anything else
            assert commands == ['python3 -m endpoint_release --model-package-arn "$MODEL_PACKAGE_ARN"']
            continue
        for index in using:
            command = commands[index]
            # every expansion is double-quoted, and every make variable is given the quoted expansion
            assert command.count("$MODEL_PACKAGE_ARN") == command.count('"$MODEL_PACKAGE_ARN"'), command
            assert "${MODEL_PACKAGE_ARN" not in command, command
            assert command.count("MODEL_PACKAGE_ARN=") == command.count('MODEL_PACKAGE_ARN="$MODEL_PACKAGE_ARN"')
        # the first command that uses it is the fixed check, before any make target could
        check = commands[using[0]]
        assert check.startswith(f".venv/bin/python -m stacks.release --check-only --stage {stage} --target ")
        assert check.endswith(' --model-package-arn "$MODEL_PACKAGE_ARN"')
        assert not any(command.startswith("make ") and command != "make install" for command in commands[: using[0]])
    assert {name.rstrip("0123456789ABCDEF") for name in handed_a_version} == {
        "Deploystaging",
        "Deployproduction",
        "SmokeTest",
    }, sorted(handed_a_version)


def test_tests_report_as_junit_and_training_keeps_its_summary(synthesized: Synthesized) -> None:
    resources = _resources(synthesized, "dev")
    _, test = _project(resources, "Test")
    spec = json.loads(test["Source"]["BuildSpec"])
    assert spec["phases"]["build"]["commands"] == ["make test JUNIT_DIR=reports"]
    assert spec["reports"]["pytest"]["file-format"] == "JUNITXML"
    _, train = _project(resources, "Train")
    spec = json.loads(train["Source"]["BuildSpec"])
    assert spec["phases"]["build"]["commands"] == ["make ci-train"]
    assert spec["artifacts"]["files"] == ["reports/train-summary.json"]


def _role(project: dict[str, Any]) -> Any:
    return {"Ref": project["ServiceRole"]["Fn::GetAtt"][0]}


@pytest.mark.parametrize("stage", STAGES)
def test_each_build_role_can_do_only_what_its_stage_needs(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    resources = _resources(synthesized, stage)

    def privileged(statements: list[dict[str, Any]]) -> set[str]:
        """Actions beyond a build's own logs, reports, artifacts and key."""
        everyday = ("logs:", "codebuild:", "s3:Get", "s3:List", "s3:Put", "s3:Abort", "s3:DeleteObject", "kms:")
        return {action for s in statements for action in _list(s["Action"]) if not action.startswith(everyday)}

    _, test = _project(resources, "Test")
    assert privileged(_statements(resources, _role(test))) == set()

    _, train = _project(resources, "Train")
    statements = _statements(resources, _role(train))
    # Read the deployed definition and the published values, run the pipeline; never write or pass a role.
    assert privileged(statements) == {
        "sagemaker:DescribePipeline",
        "sagemaker:StartPipelineExecution",
        "sagemaker:DescribePipelineExecution",
        "sagemaker:ListPipelineExecutionSteps",
        # the published values, and resolving each run's champion (lambdas/shared/champion.py)
        "ssm:GetParameter",
        "sagemaker:DescribeModelPackage",
    }
    group = naming.model_package_group(config)
    readable: set[str] = set()
    for statement in statements:
        if "sagemaker:DescribeModelPackage" in _list(statement["Action"]):
            assert _list(statement["Action"]) == ["sagemaker:DescribeModelPackage"]
            assert flatten_reference(statement["Resource"]).endswith(f":model-package/{group}/*")
            continue
        if "ssm:GetParameter" in _list(statement["Action"]):
            assert _list(statement["Action"]) == ["ssm:GetParameter"]
            readable.update(flatten_reference(r).split(":parameter", 1)[1] for r in _list(statement["Resource"]))
            continue
        if any(action.startswith("sagemaker:") for action in _list(statement["Action"])):
            targets = {flatten_reference(r) for r in _list(statement["Resource"])}
            assert all(f":pipeline/{naming.build_pipeline(config)}" in t for t in targets), targets
    # Exactly the published values and the production record (the champion), nothing else of SSM.
    assert readable == {
        naming.platform_values_parameter(config),
        naming.deployed_version_parameter(config, "production"),
    }

    for target in ("staging", "production"):
        _, deploy = _project(resources, f"Deploy{target}")
        statements = _statements(resources, _role(deploy))
        expected = {
            "cloudformation:UpdateStack",
            "cloudformation:DescribeStacks",
            "cloudformation:DescribeStackEvents",
            "iam:PassRole",
            "ssm:GetParameter",
            "ssm:PutParameter",
            "sagemaker:DescribeModelPackage",
        }
        assert privileged(statements) == expected
        (describe,) = [s for s in statements if "sagemaker:DescribeModelPackage" in _list(s["Action"])]
        assert flatten_reference(describe["Resource"]).endswith(
            f":model-package/{naming.model_package_group(config)}/*"
        )
        (record,) = [s for s in statements if "ssm:PutParameter" in _list(s["Action"])]
        parameter = naming.deployed_version_parameter(config, target)
        assert flatten_reference(record["Resource"]).endswith(f":parameter{parameter}")
        # The target's Endpoint stack only, and only under its release role (CloudFormation would otherwise take
        # the role the stack last ran under, e.g. the CDK deploy role).
        (update,) = [s for s in statements if "cloudformation:UpdateStack" in _list(s["Action"])]
        assert flatten_reference(update["Resource"]).endswith(f":stack/{naming.endpoint_stack(config, target)}/*")
        ((operator, condition),) = update["Condition"].items()
        assert operator == "StringEquals" and list(condition) == ["cloudformation:RoleArn"]
        assert flatten_reference(condition["cloudformation:RoleArn"]).endswith(
            f":role/{naming.release_role(config, target)}"
        )
        (passing,) = [s for s in statements if "iam:PassRole" in _list(s["Action"])]
        assert flatten_reference(passing["Resource"]).endswith(f":role/{naming.release_role(config, target)}")
        assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
        assert not any("sts:AssumeRole" in _list(s["Action"]) for s in statements)

    _, smoke = _project(resources, "SmokeTest")
    statements = _statements(resources, _role(smoke))
    assert privileged(statements) == {"sagemaker:InvokeEndpoint", "sagemaker:DescribeModelPackage"}
    (invoke,) = [s for s in statements if "sagemaker:InvokeEndpoint" in _list(s["Action"])]
    assert flatten_reference(invoke["Resource"]).endswith(f":endpoint/{naming.endpoint(config, 'staging')}")


@pytest.mark.parametrize("stage", STAGES)
def test_a_failed_run_of_either_pipeline_is_notified(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    config = platform_config.stage(stage)
    resources = _resources(synthesized, stage)
    rules = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        and r["Properties"]["EventPattern"].get("detail-type") == ["CodePipeline Pipeline Execution State Change"]
    ]
    pipelines = {
        json.dumps({"Ref": name}): r["Properties"]["Name"]
        for name, r in resources.items()
        if r["Type"] == "AWS::CodePipeline::Pipeline"
    }
    watched = set()
    for rule in rules:
        assert rule["EventPattern"]["detail"]["state"] == ["FAILED"]
        (pipeline,) = rule["EventPattern"]["detail"]["pipeline"]
        watched.add(pipelines[json.dumps(pipeline)])
        (target,) = rule["Targets"]
        assert "InputTransformer" in target
    assert watched == {naming.build_ci_pipeline(config), naming.deploy_pipeline(config)}


@pytest.mark.slow
def test_codecommit_is_there_for_accounts_that_have_it() -> None:
    """A stage with provider codecommit gets a repository and a source action that reacts to pushes."""
    import copy

    from aws_cdk.assertions import Template

    from resolver.config import load_config
    from stacks.app import build
    from tests.conftest import cdk_json_context, new_app

    context = copy.deepcopy(cdk_json_context())
    context["mlops"]["stages"]["dev"]["source"] = {"provider": "codecommit"}
    app = new_app()
    (stage,) = build(app, load_config(context), ["dev"])
    template = Template.from_stack(stage.cicd).to_json()["Resources"]
    (repository,) = [r["Properties"] for r in template.values() if r["Type"] == "AWS::CodeCommit::Repository"]
    assert repository["RepositoryName"] == "example-org-delivery-time-model"
    rules = [r["Properties"] for r in template.values() if r["Type"] == "AWS::Events::Rule"]
    assert any(rule["EventPattern"].get("source") == ["aws.codecommit"] for rule in rules)


@pytest.mark.parametrize("stage", STAGES)
def test_the_train_build_is_told_only_its_stage(synthesized: Synthesized, stage: str) -> None:
    """Nothing of the deployment is frozen into the project: CI reads the pushed cdk.json and the published values."""
    _, train = _project(_resources(synthesized, stage), "Train")
    variables = {item["Name"]: item["Value"] for item in train["Environment"]["EnvironmentVariables"]}
    assert variables == {"STAGE": stage}


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_source_roles_may_use_the_connection_under_its_arns_own_service_prefix(
    synthesized: Synthesized, platform_config: PlatformConfig, stage: str
) -> None:
    """IAM matches the action's prefix to the ARN's: a codeconnections ARN needs codeconnections:* actions."""
    arn = platform_config.stage(stage).source.connection_arn
    assert arn is not None and arn.startswith("arn:aws:codeconnections:")
    stacks = ["cicd"] + (["infra_pipeline"] if platform_config.stage(stage).source.self_update else [])
    for stack in stacks:
        resources = synthesized.template(stage, stack).to_json()["Resources"]
        granted = [
            statement
            for resource in resources.values()
            if resource["Type"] == "AWS::IAM::Policy"
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]
            if statement.get("Resource") == arn
        ]
        actions = {action for statement in granted for action in _listed(statement["Action"])}
        assert {"codeconnections:UseConnection", "codeconnections:GetConnection"} <= actions, (stack, actions)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("stage", STAGES)
def test_builds_that_install_keep_their_downloads_in_a_cache_of_their_own(synthesized: Synthesized, stage: str) -> None:
    resources = _resources(synthesized, stage)
    delivery = synthesized.stages[stage].data_lake.storage.delivery
    prefixes = set()
    for name, resource in resources.items():
        if resource["Type"] != "AWS::CodeBuild::Project":
            continue
        project = resource["Properties"]
        spec = json.loads(project["Source"]["BuildSpec"])
        if "make install" not in spec["phases"]["install"].get("commands", []):
            assert project["Cache"] == {"Type": "NO_CACHE"} or "Cache" not in project, name
            continue
        assert set(spec["cache"]["paths"]) == {"/root/.cache/pip/**/*", "/root/.npm/**/*"}, name
        cache = project["Cache"]
        assert cache["Type"] == "S3", name
        location = flatten_reference(cache["Location"])
        bucket = flatten_reference(synthesized.stages[stage].cicd.resolve(delivery.bucket_name))
        assert location.startswith(f"{bucket}/codebuild-cache/"), location
        prefixes.add(location)
    assert len(prefixes) == 3, "Test, Train and SmokeTest each have their own"
