"""The per-team ABAC condition text (Azure evaluates it; no local emulator can, Azurite included)."""

from __future__ import annotations

import pytest

from layout.storage_abac import team_artifact_prefix, team_blob_read_condition

READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"


def test_the_condition_confines_reads_and_lists_to_the_team_prefix_of_one_container() -> None:
    condition = team_blob_read_condition("mlflow-artifacts", "team-a")
    assert condition == (
        f"((!(ActionMatches{{'{READ}'}} AND NOT SubOperationMatches{{'Blob.List'}}))"
        " OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'mlflow-artifacts'"
        " AND @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path]"
        " StringStartsWith 'workspaces/team-a/'))"
        f" AND ((!(ActionMatches{{'{READ}'}} AND SubOperationMatches{{'Blob.List'}}))"
        " OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'mlflow-artifacts'"
        " AND @Request[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:prefix]"
        " StringStartsWith 'workspaces/team-a/'))"
    )
    assert condition.count("(") == condition.count(")")


def test_the_prefix_ends_with_a_slash_so_team_a_never_matches_team_ab() -> None:
    assert team_artifact_prefix("team-a") == "workspaces/team-a/"
    assert not "workspaces/team-ab/1/model".startswith(team_artifact_prefix("team-a"))
    assert team_artifact_prefix("team-a", "/mlflow/") == "mlflow/workspaces/team-a/"
    assert "'mlflow/workspaces/team-a/'" in team_blob_read_condition("c", "team-a", "mlflow")


@pytest.mark.parametrize("container", ["it's", "a b", ""])
def test_a_value_that_would_break_the_quoting_is_refused(container: str) -> None:
    with pytest.raises(ValueError, match="not a plain container name"):
        team_blob_read_condition(container, "team-a")
