"""The `teams` setting: typed teams from a valid list, every bad key named otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from settings.teams import Team, validate_teams

ADMINS = "0b6f7a52-3c1d-4e8f-9a21-5d4c3b2a1f00"
MEMBERS = "7e2d9c41-8b3a-4f6e-a1d2-c3b4a5968778"


def _team(name: str = "team-a", **extra: Any) -> dict[str, Any]:
    return {"name": name, "adminGroups": [ADMINS], "memberGroups": [MEMBERS], **extra}


def test_a_valid_list_becomes_typed_teams_with_derived_names() -> None:
    teams, problems = validate_teams(
        [_team("fraud"), _team("churn", quota={"cpu": "4", "maxReplicas": 3}, overrides={"namespace": "ml-churn"})]
    )
    assert problems == []
    fraud, churn = teams
    assert isinstance(fraud, Team)
    assert (fraud.workspace, fraud.namespace, fraud.automation_user, fraud.reader_user) == (
        "fraud",
        "fraud",
        "fraud-automation",
        "fraud-reader",
    )
    assert fraud.stack_name("prod") == "fraud-prod"
    assert (churn.quota.cpu, churn.quota.max_replicas, churn.quota.memory) == ("4", 3, "32Gi")
    assert churn.namespace == "ml-churn"


def test_no_teams_is_the_single_tenant_layout() -> None:
    assert validate_teams(None) == ([], [])
    assert validate_teams([]) == ([], [])


@pytest.mark.parametrize(
    ("entry", "key", "reason"),
    [
        pytest.param(_team("default"), "teams[0] (default).name", "reserved", id="mlflow-default-workspace"),
        pytest.param(_team("api"), "teams[0] (api).name", "reserved", id="mlflow-reserved-name"),
        pytest.param(_team("kube-ml"), "teams[0] (kube-ml).name", "kube-", id="kubernetes-system-prefix"),
        pytest.param(_team("Team_A"), "teams[0] (Team_A).name", "DNS label", id="not-a-dns-label"),
        pytest.param(_team("a"), "teams[0] (a).name", "at least 2", id="too-short"),
        pytest.param(_team("x" * 60), f"teams[0] ({'x' * 60}).name", "at most 52", id="too-long-for-user-names"),
        pytest.param(
            _team(adminGroups=["ml-admins"]),
            "teams[0] (team-a).adminGroups[0]",
            "Entra group object id",
            id="group-not-a-guid",
        ),
        pytest.param(_team(adminGroups=[]), "teams[0] (team-a).adminGroups", "at least 1", id="no-admin-group"),
        pytest.param(
            _team(quota={"cpu": "lots"}), "teams[0] (team-a).quota.cpu", "Kubernetes quantity", id="bad-quantity"
        ),
        pytest.param(_team(quota={"pods": 0}), "teams[0] (team-a).quota.pods", "greater than", id="no-pods"),
        pytest.param(_team(quotas={}), "teams[0] (team-a).quotas", "an unknown key", id="typo-key"),
        pytest.param({"adminGroups": [ADMINS]}, "teams[0].name", "required", id="no-name"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_key(entry: dict[str, Any], key: str, reason: str) -> None:
    teams, problems = validate_teams([entry])
    assert teams == []
    assert [p.key for p in problems] == [key], problems
    assert reason in problems[0].found + problems[0].allowed, problems[0].render()
    assert problems[0].render().startswith(f"mlops-platform:{key}: found ")


def test_two_teams_may_share_neither_a_name_nor_a_namespace() -> None:
    _, problems = validate_teams([_team("fraud"), _team("fraud")])
    assert [p.key for p in problems] == ["teams[1] (fraud).name"]
    _, problems = validate_teams([_team("fraud"), _team("churn", overrides={"namespace": "fraud"})])
    assert [p.key for p in problems] == ["teams[1] (churn).overrides.namespace"]
    assert "teams[0]" in problems[0].allowed


def test_not_a_list_is_one_problem() -> None:
    _, problems = validate_teams({"name": "fraud"})
    assert [p.key for p in problems] == ["teams"]
