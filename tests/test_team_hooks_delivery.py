"""Team webhooks end to end: real MLflow 3.17.2 (workspaces, basic auth, PostgreSQL, Azurite) delivers
each team's events to the real receiver, which reconciles that team's Stack and no other.

Two teams, `team-a` and `team-b`, made by `mlopsctl teams ensure` run as a process as the platform's
Job runs it, with `--webhook-base-url` pointing at the running receiver (`mlopsctl webhook serve
--team team-a=team-a-dev --team team-b=team-b-dev` on 127.0.0.1, each team's secret a file as in
the Key Vault mount, each team's managed models from its `Pulumi.<team>-dev.yaml`). The servers run
as the platform runs them with teams (`MLFLOW_WEBHOOK_CACHE_TTL=0`, see tests/test_teams_mlflow.py
for why). The one stand-in is the Kubernetes API server: no cluster is reachable here, so a local
HTTP endpoint (`tests.services.webhooks.StandInApiServer`) receives the receiver's PATCHes of the
Stacks and records them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from layout import cluster_layout
from mlopsctl.kube_api import RECONCILE_REQUEST_ANNOTATION, stack_path
from mlopsctl.teams_cli import TEAM_WEBHOOK_NAME
from mlopsctl.webhook_cli import find_webhook
from rollout.webhooks import ALIAS_CREATED, sign
from tests.services.processes import temporary_directory
from tests.services.stack import MlflowDeployment, mlflow_deployment
from tests.services.teams import RestAs, mlflow_as, teams_input
from tests.services.webhooks import PatchRequest, Receiver, StandInApiServer, TeamHookSpec, post_delivery, receiver
from tests.test_teams_mlflow import ADMINS, MODEL, _ensure, _register, _steps

TEAMS = ("team-a", "team-b")
ENVIRONMENT = "dev"
SINGLE_SECRET = "single-tenant-signing-secret-0123456789"


def _stack(team: str) -> str:
    return f"{team}-{ENVIRONMENT}"


def _models_file(team: str) -> str:
    """A team's models stack file as a team writes it (like models/Pulumi.fraud-dev.yaml)."""
    return (
        "config:\n"
        f"  mlops-models:platformStack: organization/mlops-platform/{ENVIRONMENT}\n"
        f"  mlops-models:team: {team}\n"
        "  mlops-models:rollout:\n"
        "    models:\n"
        f"      - name: {MODEL}\n"
        "        strategy: canary\n"
        "        steps: [10, 50, 100]\n"
        "        replicas: 1\n"
    )


@dataclass(frozen=True)
class TeamHooks:
    deployment: MlflowDeployment
    receiver: Receiver
    api_server: StandInApiServer
    teams_file: Path
    secrets_dir: Path
    passwords: dict[str, str]
    hook_secrets: dict[str, str]
    versions: dict[str, str]
    """Team → the version of its `churn` its automation user registered."""

    def ensure(self) -> list[dict[str, str]]:
        return _steps(_ensure(self.deployment, self.teams_file, self.secrets_dir, self.receiver.base))

    def automation(self, team: str) -> RestAs:
        user = f"{team}-automation"
        return RestAs(self.deployment.tracking_uri, user, self.passwords[user], team)


@pytest.fixture(scope="module")
def hooks() -> Iterator[TeamHooks]:
    api_server = StandInApiServer().start()
    with (
        temporary_directory("mlops-team-hooks-") as workdir,
        mlflow_deployment(workdir, ENVIRONMENT, workspaces=True) as deployment,
    ):
        given = teams_input(workdir, TEAMS, ADMINS, lambda team: f"{team}-hook-secret-{uuid.uuid4()}")
        secrets, teams_file = given.secrets_dir, given.teams_file
        passwords, hook_secrets = given.passwords, given.hook_secrets
        models_dir = workdir / "models"  # the image's models/ directory
        models_dir.mkdir()
        for team in TEAMS:
            (models_dir / f"Pulumi.{_stack(team)}.yaml").write_text(_models_file(team))
        specs = {team: TeamHookSpec(_stack(team), hook_secrets[team]) for team in TEAMS}
        kubeconfig = api_server.kubeconfig(workdir / "kubeconfig")
        with receiver(
            workdir, SINGLE_SECRET, ["unused-model=champion"], kubeconfig, teams=specs, models_dir=models_dir
        ) as running:
            result = _ensure(deployment, teams_file, secrets, running.base)
            steps = _steps(result)
            hooks_made = [s for s in steps if s["what"].startswith("webhook ")]
            assert sorted((s["team"], s["action"]) for s in hooks_made) == [(t, "created") for t in TEAMS], steps
            admin = (deployment.admin_username, deployment.admin_password)
            versions = {
                team: _register(deployment.tracking_uri, team, passwords[f"{team}-automation"], admin)["version"]
                for team in TEAMS
            }
            yield TeamHooks(deployment, running, api_server, teams_file, secrets, passwords, hook_secrets, versions)
    api_server.stop()


def _alias(hooks: TeamHooks, team: str, alias: str = "champion") -> None:
    body = {"name": MODEL, "alias": alias, "version": hooks.versions[team]}
    answer = hooks.automation(team).call("POST", "/api/2.0/mlflow/registered-models/alias", json=body)
    assert answer.status_code == 200, answer.text


def _settle(hooks: TeamHooks, seconds: float = 1.5) -> int:
    time.sleep(seconds)
    return hooks.api_server.count()


def _patched_stacks(patches: list[PatchRequest]) -> list[str]:
    namespace = cluster_layout.AUTOMATION_NAMESPACE
    names = {stack_path(namespace, _stack(team)): _stack(team) for team in TEAMS}
    return [names.get(p.path, p.path) for p in patches]


def _team_records(hooks: TeamHooks, start: int) -> list[dict[str, Any]]:
    return [r for r in hooks.receiver.records()[start:] if "team" in r]


def test_each_teams_alias_change_reconciles_its_own_stack_only(hooks: TeamHooks) -> None:
    for team in TEAMS:
        before, records = hooks.api_server.count(), len(hooks.receiver.records())
        _alias(hooks, team)
        patches = hooks.api_server.wait_for(before + 1)
        assert _settle(hooks) == before + 1  # one event, one PATCH
        assert _patched_stacks(patches[before:]) == [_stack(team)]
        [record] = [r for r in _team_records(hooks, records) if r["status"] == 200]
        assert (record["team"], record["stack"], record["event"], record["model"]) == (
            team,
            _stack(team),
            ALIAS_CREATED,
            MODEL,
        )
        value = patches[before].body["metadata"]["annotations"][RECONCILE_REQUEST_ANNOTATION]
        assert value == record["reconcileRequest"] == f"mlflow-webhook-{record['delivery']}"


def test_two_teams_changes_a_moment_apart_each_reach_their_own_stack(hooks: TeamHooks) -> None:
    before = hooks.api_server.count()
    for team in TEAMS:
        _alias(hooks, team, "challenger")
    patches = hooks.api_server.wait_for(before + 2)
    assert _settle(hooks) == before + 2
    assert sorted(_patched_stacks(patches[before:])) == [_stack(t) for t in TEAMS]


def _delivery(workspace: str, secret: str, version: str = "1") -> tuple[bytes, dict[str, str]]:
    """A delivery in MLflow's format (rollout/webhooks.py) for `churn`'s champion alias, labelled `workspace`."""
    payload = {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2026-12-03T00:00:00+00:00",
        "data": {"name": MODEL, "alias": "champion", "version": version},
        "workspace": workspace,
    }
    body = json.dumps(payload).encode()
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time()))
    headers = {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": sign(secret, delivery_id, timestamp, body),
    }
    return body, headers


def _hook(hooks: TeamHooks, team: str) -> str:
    return f"{hooks.receiver.base}/hooks/{team}"


def test_a_delivery_forged_for_the_other_teams_hook_is_refused(hooks: TeamHooks) -> None:
    """team-a's secret (all team-a's registrar or webhook could leak) cannot move team-b's Stack."""
    before = hooks.api_server.count()
    a_secret = hooks.hook_secrets["team-a"]
    for workspace in ("team-b", "team-a"):
        body, headers = _delivery(workspace, a_secret)
        assert post_delivery(_hook(hooks, "team-b"), body, headers) == 401
    body, headers = _delivery("team-b", hooks.hook_secrets["team-b"])
    assert post_delivery(_hook(hooks, "team-c"), body, headers) == 404  # no such team
    assert post_delivery(hooks.receiver.url, body, headers) == 401  # nor the single-tenant hook's secret
    assert _settle(hooks, 0.5) == before


def test_a_mislabelled_workspace_is_409_and_patches_nothing(hooks: TeamHooks) -> None:
    """Signed with team-b's own secret, at team-b's hook, but labelled team-a (what MLflow's delivery
    cache produced with the URL and label the other way round): refused, nothing reconciled."""
    before = hooks.api_server.count()
    body, headers = _delivery("team-a", hooks.hook_secrets["team-b"])
    assert post_delivery(_hook(hooks, "team-b"), body, headers) == 409
    assert _settle(hooks, 0.5) == before
    # The same event correctly labelled is acted on, on team-b's Stack.
    body, headers = _delivery("team-b", hooks.hook_secrets["team-b"])
    assert post_delivery(_hook(hooks, "team-b"), body, headers) == 200
    patches = hooks.api_server.wait_for(before + 1)
    assert _patched_stacks(patches[before:]) == [_stack("team-b")]


def test_an_unmanaged_model_of_a_team_is_acknowledged_and_ignored(hooks: TeamHooks) -> None:
    rest = hooks.automation("team-b")
    assert rest.call("POST", "/api/2.0/mlflow/registered-models/create", json={"name": "scratch"}).status_code == 200
    source = f"models:/{MODEL}/{hooks.versions['team-b']}"
    version = rest.call("POST", "/api/2.0/mlflow/model-versions/create", json={"name": "scratch", "source": source})
    assert version.status_code == 200, version.text
    before, records = hooks.api_server.count(), len(hooks.receiver.records())
    body = {"name": "scratch", "alias": "champion", "version": version.json()["model_version"]["version"]}
    assert rest.call("POST", "/api/2.0/mlflow/registered-models/alias", json=body).status_code == 200
    deadline = time.monotonic() + 15
    while not _team_records(hooks, records) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [(r["team"], r["model"], r["status"]) for r in _team_records(hooks, records)] == [("team-b", "scratch", 204)]
    assert _settle(hooks, 0.5) == before


def test_a_rotated_team_secret_is_read_again_by_the_receiver(hooks: TeamHooks) -> None:
    """The Key Vault value changes (the CSI driver rewrites the mounted files of both pods), `teams
    ensure` re-registers team-a's webhook with it; the running receiver verifies with the new secret
    without a restart, and team-b's hook is untouched."""
    rotated = f"team-a-hook-secret-rotated-{uuid.uuid4()}"
    assert hooks.receiver.team_secrets is not None
    (hooks.secrets_dir / "team-a-webhook-secret").write_text(rotated)
    (hooks.receiver.team_secrets / "team-a-webhook-secret").write_text(rotated)
    changed = [s for s in hooks.ensure() if s["action"] != "unchanged"]
    assert changed == [{"team": "team-a", "what": "webhook mlops-platform-team-reconcile", "action": "updated"}]
    before = hooks.api_server.count()
    _alias(hooks, "team-a")
    patches = hooks.api_server.wait_for(before + 1)
    assert _settle(hooks) == before + 1
    assert _patched_stacks(patches[before:]) == [_stack("team-a")]
    body, headers = _delivery("team-a", hooks.hook_secrets["team-a"])
    assert post_delivery(_hook(hooks, "team-a"), body, headers) == 401  # the old secret no longer verifies


def _webhook_status(hooks: TeamHooks, team: str) -> str | None:
    with mlflow_as(hooks.deployment.admin_username, hooks.deployment.admin_password, team):
        client = MlflowClient(hooks.deployment.tracking_uri, hooks.deployment.tracking_uri)
        webhook = find_webhook(client, TEAM_WEBHOOK_NAME)
    return None if webhook is None else str(webhook.status.value)


def test_a_team_whose_webhook_is_turned_off_gets_it_disabled_and_back(hooks: TeamHooks) -> None:
    """`overrides.webhook: false`: the platform stops serving the team's hook, so `teams ensure` disables
    the team's MLflow webhook (kept, not deleted) and MLflow stops delivering; turned on again, it is
    re-enabled. The other team's webhook is untouched both ways."""
    entries = json.loads(hooks.teams_file.read_text())
    off = [{**e, "overrides": {"webhook": False}} if e["name"] == "team-b" else e for e in entries]
    try:
        hooks.teams_file.write_text(json.dumps(off))
        changed = [s for s in hooks.ensure() if s["action"] != "unchanged"]
        assert changed == [{"team": "team-b", "what": f"webhook {TEAM_WEBHOOK_NAME}", "action": "disabled"}]
        assert (_webhook_status(hooks, "team-b"), _webhook_status(hooks, "team-a")) == ("DISABLED", "ACTIVE")
        assert [s for s in hooks.ensure() if s["action"] != "unchanged"] == []  # idempotent
        before = hooks.api_server.count()
        _alias(hooks, "team-b")
        assert _settle(hooks, 3.0) == before  # no delivery, nothing patched
    finally:
        hooks.teams_file.write_text(json.dumps(entries))
    changed = [s for s in hooks.ensure() if s["action"] != "unchanged"]
    assert changed == [{"team": "team-b", "what": f"webhook {TEAM_WEBHOOK_NAME}", "action": "updated"}]
    assert _webhook_status(hooks, "team-b") == "ACTIVE"
