"""Teams on real MLflow 3.17.2 with workspaces and basic auth, PostgreSQL and Azurite.

The servers run with the platform's command lines (`layout.mlflow_server.server_command` with
`workspaces=True`, after the migration Job's `mlflow db upgrade`); the teams, users, grants and
webhooks are made by `mlopsctl teams ensure` run as a process, as the platform's Job would. The
only stand-in is the webhook receiver: a local HTTP endpoint recording where MLflow POSTs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from mlflow import MlflowClient

from layout.mlflow_server import gc_command
from rollout.registry_reader import WORKSPACE_ENV, RegistryError
from rollout.source import registry_snapshot
from rollout.team_hooks import TeamRoute, team_verdict
from rollout.webhooks import ALIAS_CREATED, ReplayGuard, Watch, WatchedModel, signature_valid
from settings.rollout import RolloutSettings
from tests.services import processes
from tests.services.processes import base_env, run_to_completion, temporary_directory
from tests.services.stack import MlflowDeployment, mlflow_deployment
from tests.services.teams import Delivery, HookRecorder, RestAs, mlflow_as, teams_input

TEAMS = ("team-a", "team-b")
ADMINS = "0b6f7a52-3c1d-4e8f-9a21-5d4c3b2a1f00"
MODEL = "churn"
MLMODEL = "artifact_path: model\nflavors: {}\n"


@dataclass(frozen=True)
class Teams:
    deployment: MlflowDeployment
    recorder: HookRecorder
    teams_file: Path
    secrets_dir: Path
    passwords: dict[str, str]
    """User name → password (as in Key Vault)."""
    hook_secrets: dict[str, str]
    versions: dict[str, dict[str, Any]]
    """Team → {experiment, run, version} of its `churn` version 1, registered by its automation user."""

    def rest(self, user: str, workspace: str) -> RestAs:
        return RestAs(self.deployment.tracking_uri, user, self.passwords[user], workspace)

    def ensure(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return _ensure(self.deployment, self.teams_file, self.secrets_dir, self.recorder.base_url, *extra)


def _ensure(
    deployment: MlflowDeployment, teams_file: Path, secrets_dir: Path, hooks: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **base_env(),
        "PYTHONPATH": str(processes.REPO_ROOT),
        "MLFLOW_TRACKING_URI": deployment.tracking_uri,
        "MLFLOW_TRACKING_USERNAME": deployment.admin_username,
        "MLFLOW_TRACKING_PASSWORD": deployment.admin_password,
    }
    args = [sys.executable, "-m", "mlopsctl", "teams", "ensure", "--teams-file", str(teams_file)]
    args += ["--secrets-dir", str(secrets_dir), "--webhook-base-url", hooks, "--wait-seconds", "30", *extra]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)


def _steps(result: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _register(tracking_uri: str, team: str, password: str, _admin: tuple[str, str]) -> dict[str, Any]:
    """A run holding a model directory and version 1 of `churn` from it, in `team`'s workspace, made
    by the team's automation user, the model file uploaded through the platform's routing (with teams the
    tracking role proxies artifacts, `test_a_team_user_moves_artifacts_through_the_tracking_role`)."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with mlflow_as(f"{team}-automation", password, team):
        experiment = client.create_experiment("training")
        run = client.create_run(experiment)
        client.log_text(run.info.run_id, MLMODEL, "model/MLmodel")
        client.set_terminated(run.info.run_id)
        client.create_registered_model(MODEL)
        version = client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return {"experiment": experiment, "run": run.info.run_id, "version": str(version.version)}


@pytest.fixture(scope="module")
def teams() -> Iterator[Teams]:
    recorder = HookRecorder().start()
    with temporary_directory("mlops-teams-") as workdir, mlflow_deployment(workdir, "dev", workspaces=True) as dep:
        given = teams_input(workdir, TEAMS, ADMINS, lambda team: f"{team}-signing-secret-0123456789")
        secrets, teams_file = given.secrets_dir, given.teams_file
        passwords, hook_secrets = given.passwords, given.hook_secrets
        result = _ensure(dep, teams_file, secrets, recorder.base_url)
        assert {step["action"] for step in _steps(result)} == {"created"}, result.stdout
        versions = {}
        admin = (dep.admin_username, dep.admin_password)
        for team in TEAMS:
            versions[team] = _register(dep.tracking_uri, team, passwords[f"{team}-automation"], admin)
        yield Teams(dep, recorder, teams_file, secrets, passwords, hook_secrets, versions)
    recorder.stop()


def test_ensure_twice_changes_nothing_and_a_rotated_password_is_reset(teams: Teams) -> None:
    # After the automation users created experiments and models (their synthetic owner roles).
    steps = _steps(teams.ensure())
    assert len(steps) == 2 * 6 and [s for s in steps if s["action"] != "unchanged"] == []

    reader = "team-a-reader"
    rotated = "team-a-reader-Rotated-0123456789"
    (teams.secrets_dir / f"{reader}-password").write_text(rotated)
    try:
        changed = [s for s in _steps(teams.ensure()) if s["action"] != "unchanged"]
        assert changed == [{"team": "team-a", "what": f"user {reader}", "action": "updated"}]
        answer = RestAs(teams.deployment.tracking_uri, reader, rotated, "team-a").call(
            "GET", "/api/2.0/mlflow/registered-models/get", params={"name": MODEL}
        )
        assert answer.status_code == 200
    finally:
        (teams.secrets_dir / f"{reader}-password").write_text(teams.passwords[reader])
        assert [s["action"] for s in _steps(teams.ensure()) if s["action"] != "unchanged"] == ["updated"]


def test_bad_teams_file_exits_2_with_one_line_naming_the_key(teams: Teams, tmp_path: Path) -> None:
    bad = tmp_path / "teams.json"
    bad.write_text(json.dumps([{"name": "default", "adminGroups": [ADMINS]}]))
    result = _ensure(teams.deployment, bad, teams.secrets_dir, teams.recorder.base_url)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "teams[0] (default).name" in line and "reserved" in line


def test_automation_user_works_in_its_own_workspace_only(teams: Teams) -> None:
    version = teams.versions["team-a"]["version"]
    own = teams.rest("team-a-automation", "team-a")
    listed = own.call("GET", "/api/2.0/mlflow/registered-models/search").json()
    assert [m["name"] for m in listed["registered_models"]] == [MODEL]
    assert own.call("GET", "/api/2.0/mlflow/registered-models/get", params={"name": MODEL}).status_code == 200
    alias = {"name": MODEL, "alias": "champion", "version": version}
    assert own.call("POST", "/api/2.0/mlflow/registered-models/alias", json=alias).status_code == 200
    tag = {"name": MODEL, "version": version, "key": "validated", "value": "true"}
    assert own.call("POST", "/api/2.0/mlflow/model-versions/set-tag", json=tag).status_code == 200

    other = own.in_workspace("team-b")
    assert other.call("GET", "/api/2.0/mlflow/registered-models/search").json().get("registered_models", []) == []
    assert other.call("GET", "/api/2.0/mlflow/registered-models/get", params={"name": MODEL}).status_code == 403
    read = other.call("GET", "/api/2.0/mlflow/model-versions/get", params={"name": MODEL, "version": "1"})
    assert read.status_code == 403
    assert other.call("POST", "/api/2.0/mlflow/registered-models/alias", json=alias).status_code == 403
    assert other.call("POST", "/api/2.0/mlflow/model-versions/set-tag", json=tag).status_code == 403
    b_model = teams.rest("team-b-reader", "team-b").call(
        "GET", "/api/2.0/mlflow/registered-models/get", params={"name": MODEL}
    )
    assert "aliases" not in b_model.json()["registered_model"]  # nothing of team-a's reached team-b's churn


def test_reader_reads_its_team_and_writes_nothing(teams: Teams) -> None:
    reader = teams.rest("team-b-reader", "team-b")
    assert reader.call("GET", "/api/2.0/mlflow/registered-models/get", params={"name": MODEL}).status_code == 200
    versions = reader.call("GET", "/api/2.0/mlflow/model-versions/search", params={"filter": f"name='{MODEL}'"})
    assert [v["version"] for v in versions.json()["model_versions"]] == ["1"]
    experiments = reader.call("POST", "/api/2.0/mlflow/experiments/search", json={"max_results": 10}).json()
    assert [e["name"] for e in experiments["experiments"]] == ["training"]
    alias = {"name": MODEL, "alias": "champion", "version": "1"}
    assert reader.call("POST", "/api/2.0/mlflow/registered-models/alias", json=alias).status_code == 403
    tag = {"name": MODEL, "version": "1", "key": "k", "value": "v"}
    assert reader.call("POST", "/api/2.0/mlflow/model-versions/set-tag", json=tag).status_code == 403
    assert reader.call("POST", "/api/2.0/mlflow/registered-models/create", json={"name": "x"}).status_code == 403
    other = reader.in_workspace("team-a")
    assert other.call("GET", "/api/2.0/mlflow/registered-models/get", params={"name": MODEL}).status_code == 403
    assert reader.in_workspace("default").call(
        "GET", "/api/2.0/mlflow/registered-models/get", params={"name": MODEL}
    ).status_code in (403, 404)


def test_the_same_model_name_in_two_workspaces_is_two_models(teams: Teams) -> None:
    a = teams.rest("team-a-automation", "team-a")
    b = teams.rest("team-b-automation", "team-b")
    for rest, value in ((a, "from-a"), (b, "from-b")):
        body = {"name": MODEL, "key": "owner", "value": value}
        assert rest.call("POST", "/api/2.0/mlflow/registered-models/set-tag", json=body).status_code == 200
    got_a = a.call("GET", "/api/2.0/mlflow/registered-models/get", params={"name": MODEL}).json()["registered_model"]
    got_b = b.call("GET", "/api/2.0/mlflow/registered-models/get", params={"name": MODEL}).json()["registered_model"]
    assert {t["key"]: t["value"] for t in got_a["tags"]}["owner"] == "from-a"
    assert {t["key"]: t["value"] for t in got_b["tags"]}["owner"] == "from-b"


def _blobs(deployment: MlflowDeployment) -> list[str]:
    service = BlobServiceClient.from_connection_string(deployment.azurite_connection_string)
    return [b.name for b in service.get_container_client(deployment.artifact_container).list_blobs()]


def test_proxied_artifacts_land_under_the_team_prefix_and_cross_paths_are_refused(teams: Teams) -> None:
    """Azurite cannot evaluate Azure ABAC conditions (it authorizes by account key only), so the
    per-team Storage Blob Data Reader condition (`layout.storage_abac`) is tested as text; what is
    shown here is MLflow's own isolation of the proxied paths in the one container."""
    blobs = _blobs(teams.deployment)
    for team, info in teams.versions.items():
        assert f"workspaces/{team}/{info['experiment']}/{info['run']}/artifacts/model/MLmodel" in blobs
    assert all(name.startswith(("workspaces/team-a/", "workspaces/team-b/")) for name in blobs), blobs

    b = teams.versions["team-b"]
    b_path = f"workspaces/team-b/{b['experiment']}/{b['run']}/artifacts/model/MLmodel"
    admin = (teams.deployment.admin_username, teams.deployment.admin_password)
    in_b = RestAs(teams.deployment.tracking_uri, *admin, "team-b").call(
        "GET", f"/api/2.0/mlflow-artifacts/artifacts/{b_path}"
    )
    assert in_b.status_code == 200 and in_b.text == MLMODEL
    # Even the admin, in team-a, cannot name team-b's prefix (400), and team-b's relative path
    # resolves inside team-a's own prefix, where it does not exist (404).
    in_a = RestAs(teams.deployment.tracking_uri, *admin, "team-a")
    refused = in_a.call("GET", f"/api/2.0/mlflow-artifacts/artifacts/{b_path}")
    assert refused.status_code == 400 and "targets workspace 'team-b'" in refused.text
    relative = b_path.removeprefix("workspaces/team-b/")
    assert in_a.call("GET", f"/api/2.0/mlflow-artifacts/artifacts/{relative}").status_code == 404
    # team-a's automation user is refused outright, in either workspace.
    a_user = teams.rest("team-a-automation", "team-a")
    assert a_user.call("GET", f"/api/2.0/mlflow-artifacts/artifacts/{b_path}").status_code in (400, 403)
    assert a_user.in_workspace("team-b").call("GET", f"/api/2.0/mlflow-artifacts/artifacts/{b_path}").status_code == 403


def test_a_team_user_moves_artifacts_through_the_tracking_role(teams: Teams) -> None:
    """MLflow 3.17.2's `--artifacts-only` role cannot authorize a non-admin with workspaces on (it has
    no tracking store to find the experiment's workspace in: 403 for everyone but the admin), so with
    teams the platform routes `mlflow-artifacts` to the tracking role, which serves them
    (`layout.mlflow_server.ARTIFACTS_ROLE_WITH_WORKSPACES`): through the same routing, the team's users
    read and write their own artifacts and not another team's."""
    b = teams.versions["team-b"]
    path = f"workspaces/team-b/{b['experiment']}/{b['run']}/artifacts/model/MLmodel"
    reader = teams.rest("team-b-reader", "team-b")
    assert reader.call("GET", f"/api/2.0/mlflow-artifacts/artifacts/{path}").status_code == 200
    assert teams.rest("team-a-reader", "team-a").call(
        "GET", f"/api/2.0/mlflow-artifacts/artifacts/{path}"
    ).status_code in (400, 403)
    client = MlflowClient(teams.deployment.tracking_uri)
    with mlflow_as("team-b-automation", teams.passwords["team-b-automation"], "team-b"):
        run = client.create_run(b["experiment"])
        client.log_text(run.info.run_id, "written by the team", "notes/by-team.txt")
        assert client.download_artifacts(run.info.run_id, "notes/by-team.txt", str(teams.deployment.workdir))


def test_gc_with_workspace_collects_only_that_team(teams: Teams, tmp_path: Path) -> None:
    runs = {}
    client = MlflowClient(teams.deployment.tracking_uri)
    for team in TEAMS:
        with mlflow_as(teams.deployment.admin_username, teams.deployment.admin_password, team):
            run = client.create_run(teams.versions[team]["experiment"])
            client.log_text(run.info.run_id, "bytes", "junk/file.txt")
            client.delete_run(run.info.run_id)
            runs[team] = (teams.versions[team]["experiment"], run.info.run_id)
    time.sleep(3)
    settings = replace(teams.deployment.settings, passfile=str(tmp_path / "gc-pgpass"))
    command = gc_command(settings, "1s", teams.deployment.servers["artifacts"].url, workspace="team-a")
    assert command.program[-2:] == ("--workspace", "team-a")
    log = tmp_path / "gc.log"
    assert run_to_completion(command.args, {**base_env(), **command.env}, log, timeout=300) == 0, log.read_text()

    blobs = _blobs(teams.deployment)
    a_exp, a_run = runs["team-a"]
    b_exp, b_run = runs["team-b"]
    assert not [n for n in blobs if n.startswith(f"workspaces/team-a/{a_exp}/{a_run}/")], log.read_text()
    assert f"workspaces/team-b/{b_exp}/{b_run}/artifacts/junk/file.txt" in blobs
    b_run_answer = teams.rest("team-b-automation", "team-b").call(
        "GET", "/api/2.0/mlflow/runs/get", params={"run_id": b_run}
    )
    assert b_run_answer.json()["run"]["info"]["lifecycle_stage"] == "deleted"
    admin = (teams.deployment.admin_username, teams.deployment.admin_password)
    a_run_answer = RestAs(teams.deployment.tracking_uri, *admin, "team-a").call(
        "GET", "/api/2.0/mlflow/runs/get", params={"run_id": a_run}
    )
    assert a_run_answer.status_code == 404  # gone from the database, not just hidden


def _alias_in_each_team(teams: Teams, base: str, alias: str) -> None:
    """team-a's automation user moves an alias, then team-b's, within a second."""
    for team in TEAMS:
        rest = RestAs(base, f"{team}-automation", teams.passwords[f"{team}-automation"], team)
        body = {"name": MODEL, "alias": alias, "version": teams.versions[team]["version"]}
        assert rest.call("POST", "/api/2.0/mlflow/registered-models/alias", json=body).status_code == 200


def _alias_deliveries(deliveries: list[Delivery], alias: str) -> list[Delivery]:
    return [d for d in deliveries if d.payload.get("data", {}).get("alias") == alias]


def _routes() -> dict[str, TeamRoute]:
    watch = Watch(
        {MODEL: WatchedModel(MODEL, frozenset({"champion", "challenger", "guarded", "unguarded"}))}, frozenset()
    )
    return {t: TeamRoute(t, f"{t}-signing-secret-0123456789", watch, f"{t}-dev") for t in TEAMS}


def test_each_teams_alias_event_reaches_its_own_teams_hook_only(teams: Teams) -> None:
    """As the platform runs the servers (workspaces on → MLFLOW_WEBHOOK_CACHE_TTL=0), two teams'
    alias events a moment apart each reach their own team's URL, labelled with their workspace,
    signed with their team's secret, and the receiver's routing reconciles `<team>-dev` only."""
    assert teams.deployment.servers["registry"].command.env["MLFLOW_WEBHOOK_CACHE_TTL"] == "0"
    start = teams.recorder.count()
    _alias_in_each_team(teams, teams.deployment.tracking_uri, "guarded")
    deliveries = _alias_deliveries(teams.recorder.wait_for(start, 2), "guarded")
    assert sorted((d.path, d.payload["workspace"]) for d in deliveries) == [
        ("/hooks/team-a", "team-a"),
        ("/hooks/team-b", "team-b"),
    ]
    routes, guard = _routes(), ReplayGuard()
    for delivery in deliveries:
        team = delivery.path.rsplit("/", 1)[1]
        headers = delivery.headers
        assert signature_valid(
            teams.hook_secrets[team],
            headers["x-mlflow-delivery-id"],
            headers["x-mlflow-timestamp"],
            delivery.body,
            headers["x-mlflow-signature"],
        )
        decision = team_verdict(team, headers, delivery.body, routes=routes, guard=guard, now=time.time())
        assert decision.verdict.reconcile and decision.stack_name == f"{team}-dev"
        assert f"{delivery.payload['entity']}.{delivery.payload['action']}" == ALIAS_CREATED


@pytest.fixture(scope="module")
def unguarded_registry(teams: Teams, tmp_path_factory: Any) -> Iterator[str]:
    """A second registry server on the same databases with MLflow's default webhook cache (60 s) and
    one worker: the platform's command line with the guard overridden through `extra_env`."""
    workdir = tmp_path_factory.mktemp("unguarded")
    settings = replace(
        teams.deployment.settings,
        workers=1,
        extra_env={**teams.deployment.settings.extra_env, "MLFLOW_WEBHOOK_CACHE_TTL": "60"},
    )
    secrets = {p.name: p.read_text() for p in Path(settings.secrets_dir).iterdir()}
    with processes.mlflow_roles(
        replace(settings, secrets_dir=str(workdir / "secrets")), secrets, workdir, roles=("registry",)
    ) as servers:
        assert servers["registry"].command.env["MLFLOW_WEBHOOK_CACHE_TTL"] == "60"
        yield servers["registry"].url


def test_without_the_guard_mlflow_misroutes_team_b_events_to_team_a(teams: Teams, unguarded_registry: str) -> None:
    """Why the guard exists (upstream defect in MLflow 3.17.2, `mlflow/webhooks/delivery.py`: the
    webhook cache is keyed by event type, not workspace). With the default TTL, team-b's alias event
    fired within the TTL of team-a's is POSTed to team-a's URL, labelled `"workspace": "team-a"`.
    If this test starts failing after an MLflow upgrade, the defect is fixed and the guard in
    `layout.mlflow_server.webhook_env` may go. The receiver still refuses to act on it for team-b's
    Stack: the delivery names team-a, so at worst team-a's Stack re-plans (idempotent)."""
    start = teams.recorder.count()
    _alias_in_each_team(teams, unguarded_registry, "unguarded")
    deliveries = _alias_deliveries(teams.recorder.wait_for(start, 2), "unguarded")
    paths = sorted((d.path, d.payload["workspace"]) for d in deliveries)
    assert paths == [("/hooks/team-a", "team-a"), ("/hooks/team-a", "team-a")], paths
    decisions = [
        team_verdict("team-a", d.headers, d.body, routes=_routes(), guard=ReplayGuard(), now=time.time())
        for d in deliveries
    ]
    assert {d.stack_name for d in decisions} == {"team-a-dev"}  # never team-b's Stack


def test_the_models_stack_reader_reads_its_own_workspace_only(teams: Teams) -> None:
    """What a team's models Stack runs: `rollout.source.registry_snapshot` as `<t>-reader` with
    `MLFLOW_WORKSPACE=<t>` (the Stack's envRefs) reads the team's model; the same user in the other
    team's workspace, or without a workspace (MLflow's `default`), reads nothing."""
    password = teams.passwords["team-b-reader"]
    environ = {
        "MLFLOW_TRACKING_URI": teams.deployment.tracking_uri,
        "MLFLOW_TRACKING_USERNAME": "team-b-reader",
        "MLFLOW_TRACKING_PASSWORD": password,
    }
    settings = RolloutSettings.model_validate({"models": [{"name": MODEL}]})
    snapshot = registry_snapshot(settings, environ={**environ, WORKSPACE_ENV: "team-b"})
    assert MODEL in snapshot.models, snapshot
    for workspace in ("team-a", ""):
        with pytest.raises(RegistryError):
            registry_snapshot(settings, environ={**environ, WORKSPACE_ENV: workspace})
