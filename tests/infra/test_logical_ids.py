"""Stateful resources keep their logical ids: a change would make CloudFormation replace them (and lose data)."""

from __future__ import annotations

import pytest

from tests.conftest import Synthesized

# A refactor that changes any of these must come with a migration plan, not an update of this table.
STATEFUL_LOGICAL_IDS = {
    "AWS::KMS::Key": {"LakeKey7B6C155C"},
    "AWS::S3::Bucket": {
        "LakeAccessLogs4431AB8D",
        "LakeRaw8A880B75",
        "LakeCurated8ED8635F",
        "LakeArtifacts2DD6A05E",
        "LakeDeliveryA9881219",
    },
    "AWS::Glue::Database": {"CatalogDatabase44483CA3"},
}
# What only stages with an audit trail and lake backups hold (prod): the trail's key and bucket, the vault and its key.
PROTECTION_LOGICAL_IDS = {
    "AWS::KMS::Key": {"AuditKey2ED08D30", "BackupVaultKeyE450C7BA"},
    "AWS::S3::Bucket": {"AuditLogsA35F3E1F"},
    "AWS::Backup::BackupVault": {"BackupVaultADF21B19"},
}


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_stateful_logical_ids_are_stable(synthesized: Synthesized, stage: str) -> None:
    template = synthesized.template(stage, "data_lake")
    protected = stage == "prod"
    for kind in STATEFUL_LOGICAL_IDS.keys() | PROTECTION_LOGICAL_IDS.keys():
        expected = STATEFUL_LOGICAL_IDS.get(kind, set()) | (
            PROTECTION_LOGICAL_IDS.get(kind, set()) if protected else set()
        )
        assert set(template.find_resources(kind)) == expected, kind


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_model_registry_logical_id_is_stable(synthesized: Synthesized, stage: str) -> None:
    # The model package group holds every registered version: replacing it would orphan them.
    groups = synthesized.template(stage, "ml_platform").find_resources("AWS::SageMaker::ModelPackageGroup")
    assert set(groups) == {"RegistryGroupF9A457C4"}


def test_stack_names_are_stable(synthesized: Synthesized) -> None:
    names = sorted(
        stack.stack_name for stage in synthesized.stages.values() for stack in (stage.network, stage.data_lake)
    )
    assert names == [
        "mlops-dev-DataLake",
        "mlops-dev-Network",
        "mlops-prod-DataLake",
        "mlops-prod-Network",
        "mlops-staging-DataLake",
        "mlops-staging-Network",
    ]
