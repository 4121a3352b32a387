"""`python -m resolver.naming`: the names Makefile targets read from cdk.json."""

from __future__ import annotations

import pytest

from resolver import naming


@pytest.mark.parametrize(
    ("arguments", "printed"),
    [
        (["endpoint", "prod", "staging"], "mlops-prod-delivery-time-staging"),
        (["baseline-prefix", "prod"], "deployed/mlops-prod-delivery-time/baseline/"),
        (["drift-engine", "prod"], "processing"),
        (["stack-path", "dev", "Endpoint-production"], "mlops-dev/Endpoint-production"),
    ],
)
def test_each_name_is_printed_on_one_line(
    arguments: list[str], printed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert naming.main(arguments) == 0
    assert capsys.readouterr().out == f"{printed}\n"


def test_an_unknown_question_or_stage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert naming.main(["colour", "prod"]) == 2
    assert "usage" in capsys.readouterr().err
    assert naming.main(["drift-engine", "qa"]) == 2
    assert "qa" in capsys.readouterr().err


def test_the_model_monitor_files_have_one_name_from_build_to_schedule() -> None:
    """What the build registers, what publish-baseline copies and what the schedule reads."""
    from pipelines_src import definition, promote

    assert naming.MONITOR_STATISTICS_FILE == promote.STATISTICS_FILE == definition.MONITOR_STATISTICS_FILE
    assert naming.MONITOR_CONSTRAINTS_FILE == promote.CONSTRAINTS_FILE == definition.MONITOR_CONSTRAINTS_FILE
