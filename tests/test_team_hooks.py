"""Per-team webhook routing: an event only ever reconciles its own team's Stack."""

from __future__ import annotations

import json

from rollout.team_hooks import TeamRoute, team_url, team_verdict
from rollout.webhooks import ReplayGuard, Watch, WatchedModel, sign

NOW = 1_800_000_000.0
WATCH = Watch({"churn": WatchedModel("churn", frozenset({"champion"}))}, frozenset())
ROUTES = {t: TeamRoute(t, f"{t}-secret", WATCH, f"{t}-prod") for t in ("team-a", "team-b")}


def _delivery(workspace: str | None, secret: str, delivery_id: str = "d-1") -> tuple[dict[str, str], bytes]:
    payload: dict[str, object] = {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2027-01-01T00:00:00+00:00",
        "data": {"name": "churn", "alias": "champion", "version": "3"},
    }
    if workspace is not None:
        payload["workspace"] = workspace
    body = json.dumps(payload).encode()
    timestamp = str(int(NOW))
    headers = {
        "x-mlflow-delivery-id": delivery_id,
        "x-mlflow-timestamp": timestamp,
        "x-mlflow-signature": sign(secret, delivery_id, timestamp, body),
    }
    return headers, body


def test_an_event_of_the_team_of_the_url_reconciles_that_teams_stack_only() -> None:
    headers, body = _delivery("team-b", "team-b-secret")
    result = team_verdict("team-b", headers, body, routes=ROUTES, guard=ReplayGuard(), now=NOW)
    assert result.verdict.reconcile and result.stack_name == "team-b-prod"


def test_another_workspace_at_a_teams_url_is_refused_even_when_signed() -> None:
    headers, body = _delivery("team-b", "team-a-secret")
    result = team_verdict("team-a", headers, body, routes=ROUTES, guard=ReplayGuard(), now=NOW)
    assert result.verdict.status == 409 and result.stack_name is None
    assert "'team-b' delivered to team 'team-a'" in result.verdict.reason


def test_a_payload_without_workspace_is_refused() -> None:
    headers, body = _delivery(None, "team-a-secret")
    result = team_verdict("team-a", headers, body, routes=ROUTES, guard=ReplayGuard(), now=NOW)
    assert result.verdict.status == 409 and result.stack_name is None


def test_one_teams_secret_cannot_sign_for_another_team() -> None:
    headers, body = _delivery("team-b", "team-a-secret")
    result = team_verdict("team-b", headers, body, routes=ROUTES, guard=ReplayGuard(), now=NOW)
    assert result.verdict.status == 401 and result.stack_name is None


def test_an_unknown_team_is_404() -> None:
    headers, body = _delivery("team-c", "team-c-secret")
    result = team_verdict("team-c", headers, body, routes=ROUTES, guard=ReplayGuard(), now=NOW)
    assert result.verdict.status == 404 and result.stack_name is None


def test_an_unmanaged_model_of_the_team_is_ignored() -> None:
    headers, body = _delivery("team-a", "team-a-secret")
    body = body.replace(b'"churn"', b'"other"')
    headers["x-mlflow-signature"] = sign("team-a-secret", "d-1", headers["x-mlflow-timestamp"], body)
    result = team_verdict("team-a", headers, body, routes=ROUTES, guard=ReplayGuard(), now=NOW)
    assert result.verdict.status == 204 and result.stack_name is None


def test_team_url() -> None:
    assert (
        team_url("http://webhook-receiver.mlops-system/", "team-a")
        == "http://webhook-receiver.mlops-system/hooks/team-a"
    )
