"""`mlopsctl teams ensure`: every team's MLflow workspace, users, grants and webhook, idempotently.

Runs as the basic-auth admin (`MLFLOW_TRACKING_USERNAME`, password from the file
`MLFLOW_TRACKING_PASSWORD_FILE` names or `MLFLOW_TRACKING_PASSWORD`), like `webhook ensure`.
`--teams-file` is the JSON of the platform's `teams` setting (validated by
`settings.teams.validate_teams`: a bad entry exits 2 naming its key). The users' passwords and
the webhook signing secrets are files in `--secrets-dir` (the Key Vault CSI mount), one per
secret: `<team>-automation-password`, `<team>-reader-password`, `<team>-webhook-secret`.

The logic is `rollout.workspaces` (workspace, roles, users) and `mlopsctl.webhook_cli.ensure_webhook`
run inside the team's workspace (`X-MLFLOW-WORKSPACE`), with the URL `rollout.team_hooks.team_url`.
Prints one JSON line per step; a second run prints `unchanged` for every step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from mlopsctl.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from mlopsctl.webhook_cli import _wait_for_registry, disable_webhook, ensure_webhook
from rollout.registry_reader import RegistryError
from rollout.source import tracking_password
from rollout.team_hooks import team_url
from rollout.workspaces import (
    Grant,
    PermissionRef,
    RoleRef,
    Step,
    TeamCredentials,
    ensure_teams,
)
from settings.teams import Team, validate_teams

WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"
TEAM_WEBHOOK_NAME = "mlops-platform-team-reconcile"


class UsageError(Exception):
    """Bad input: one line, exit 2."""


class MlflowError(Exception):
    """MLflow answered an admin call with an error."""


class RestTeamsAdmin:
    """`rollout.workspaces.TeamsAdmin` over MLflow 3.17.2's REST API (paths from `mlflow/server/auth/routes.py`
    and `mlflow/store/workspace/rest_store.py`), every call with an explicit workspace where one applies."""

    def __init__(self, tracking_uri: str, username: str, password: str, timeout: float = 30) -> None:
        self.base = tracking_uri.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (username, password)
        self.timeout = timeout

    def _call(self, method: str, path: str, *, workspace: str | None = None, **kwargs: Any) -> Any:
        headers = {WORKSPACE_HEADER: workspace} if workspace else {}
        response = self.session.request(method, self.base + path, headers=headers, timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            raise MlflowError(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response.json() if response.content else {}

    def list_workspaces(self) -> list[str]:
        return [w["name"] for w in self._call("GET", "/api/3.0/mlflow/workspaces").get("workspaces", [])]

    def create_workspace(self, name: str) -> None:
        self._call(
            "POST", "/api/3.0/mlflow/workspaces", json={"name": name, "description": "team workspace (mlopsctl)"}
        )

    @staticmethod
    def _role(document: Mapping[str, Any]) -> RoleRef:
        return RoleRef(int(document["id"]), str(document["name"]), str(document["workspace"]))

    def list_roles(self, workspace: str) -> list[RoleRef]:
        roles = self._call("GET", "/api/3.0/mlflow/roles/list", params={"workspace": workspace})["roles"]
        return [self._role(r) for r in roles]

    def create_role(self, workspace: str, name: str) -> RoleRef:
        body = {"workspace": workspace, "name": name, "description": "managed by mlopsctl teams ensure"}
        return self._role(self._call("POST", "/api/3.0/mlflow/roles/create", json=body)["role"])

    def list_role_permissions(self, role_id: int) -> list[PermissionRef]:
        answer = self._call("GET", "/api/3.0/mlflow/roles/permissions/list", params={"role_id": str(role_id)})
        return [
            PermissionRef(int(p["id"]), (p["resource_type"], p["resource_pattern"], p["permission"]))
            for p in answer["role_permissions"]
        ]

    def add_role_permission(self, role_id: int, grant: Grant) -> None:
        resource_type, pattern, permission = grant
        body = {
            "role_id": role_id,
            "resource_type": resource_type,
            "resource_pattern": pattern,
            "permission": permission,
        }
        self._call("POST", "/api/3.0/mlflow/roles/permissions/add", json=body)

    def remove_role_permission(self, permission_id: int) -> None:
        self._call("DELETE", "/api/3.0/mlflow/roles/permissions/remove", json={"role_permission_id": permission_id})

    def user_exists(self, username: str) -> bool:
        response = self.session.get(
            f"{self.base}/api/2.0/mlflow/users/get", params={"username": username}, timeout=self.timeout
        )
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise MlflowError(f"GET users/get: {response.status_code} {response.text[:200]}")
        return True

    def create_user(self, username: str, password: str) -> None:
        self._call("POST", "/api/2.0/mlflow/users/create", json={"username": username, "password": password})

    def password_valid(self, username: str, password: str) -> bool:
        """A login as the user: MLflow never returns a password, so this is how a change is detected."""
        response = requests.get(
            f"{self.base}/api/2.0/mlflow/users/current", auth=(username, password), timeout=self.timeout
        )
        return response.status_code == 200

    def update_user_password(self, username: str, password: str) -> None:
        self._call("PATCH", "/api/2.0/mlflow/users/update-password", json={"username": username, "password": password})

    def delete_user(self, username: str) -> None:
        self._call("DELETE", "/api/2.0/mlflow/users/delete", json={"username": username})

    def list_user_roles(self, username: str) -> list[RoleRef]:
        answer = self._call("GET", "/api/3.0/mlflow/users/roles/list", params={"username": username})
        return [self._role(r) for r in answer["roles"]]

    def assign_role(self, username: str, role_id: int) -> None:
        self._call("POST", "/api/3.0/mlflow/roles/assign", json={"username": username, "role_id": role_id})

    def unassign_role(self, username: str, role_id: int) -> None:
        self._call("DELETE", "/api/3.0/mlflow/roles/unassign", json={"username": username, "role_id": role_id})


def _read_secret(directory: Path, name: str) -> str:
    path = directory / name
    try:
        value = path.read_text().strip()
    except OSError as error:
        raise UsageError(f"cannot read secret file {path}: {error.strerror}") from error
    if not value:
        raise UsageError(f"secret file {path} is empty")
    return value


def load_teams(path: Path) -> list[Team]:
    try:
        raw = json.loads(path.read_text())
    except OSError as error:
        raise UsageError(f"cannot read teams file {path}: {error.strerror}") from error
    except ValueError as error:
        raise UsageError(f"teams file {path} is not JSON: {error}") from error
    teams, problems = validate_teams(raw)
    if problems:
        raise UsageError(f"teams file {path}: " + "; ".join(p.render() for p in problems))
    return teams


@contextmanager
def _in_workspace(workspace: str) -> Iterator[None]:
    """MlflowClient calls inside carry `X-MLFLOW-WORKSPACE: <workspace>`."""
    import mlflow  # noqa: PLC0415 - heavy import, only here

    mlflow.set_workspace(workspace)
    try:
        yield
    finally:
        mlflow.set_workspace(None)


def ensure_team_webhooks(tracking_uri: str, teams: list[Team], secrets: Mapping[str, str], base_url: str) -> list[Step]:
    """The team's webhook in its own workspace, URL `<base>/hooks/<team>`, signed with the team's secret;
    a team whose webhook is turned off (`overrides.webhook: false`) has it disabled, not deleted: the
    receiver no longer serves its hook, and MLflow would otherwise POST every event into a 404."""
    import mlflow  # noqa: PLC0415

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    steps = []
    for team in teams:
        with _in_workspace(team.workspace):
            if team.overrides.webhook:
                action = ensure_webhook(client, TEAM_WEBHOOK_NAME, team_url(base_url, team.name), secrets[team.name])
            else:
                action = disable_webhook(client, TEAM_WEBHOOK_NAME)
        steps.append(Step(team.name, f"webhook {TEAM_WEBHOOK_NAME}", action))
    return steps


def cmd_ensure(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    teams = load_teams(args.teams_file)
    tracking_uri = args.tracking_uri or environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        raise UsageError("no MLflow address: pass --tracking-uri or set MLFLOW_TRACKING_URI")
    try:
        password = tracking_password(environ)
    except RegistryError as error:
        raise UsageError(str(error)) from error
    username = environ.get("MLFLOW_TRACKING_USERNAME")
    if not username or not password:
        raise UsageError("no MLflow admin: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD(_FILE)")
    credentials = [
        TeamCredentials(
            team.name,
            _read_secret(args.secrets_dir, f"{team.automation_user}-password"),
            _read_secret(args.secrets_dir, f"{team.reader_user}-password"),
        )
        for team in teams
    ]
    hook_secrets = {}
    if args.webhook_base_url:
        # Only the teams whose webhook is on: the platform mounts (and grants) exactly their secrets.
        hook_secrets = {
            t.name: _read_secret(args.secrets_dir, f"{t.name}-webhook-secret") for t in teams if t.overrides.webhook
        }
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = username, password
    import mlflow  # noqa: PLC0415

    _wait_for_registry(mlflow.MlflowClient(tracking_uri=tracking_uri), args.wait_seconds)
    try:
        steps = ensure_teams(RestTeamsAdmin(tracking_uri, username, password), credentials)
        if args.webhook_base_url:
            steps += ensure_team_webhooks(tracking_uri, teams, hook_secrets, args.webhook_base_url)
    except (MlflowError, mlflow.exceptions.MlflowException, requests.RequestException) as error:
        print(f"mlopsctl teams ensure: MLflow refused: {error}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILED
    for step in steps:
        print(json.dumps(step.as_dict()))
    return EXIT_OK


def add_teams_parser(commands: argparse._SubParsersAction[Any]) -> None:
    teams = commands.add_parser("teams", help="per-team MLflow workspaces, users, grants and webhooks")
    sub = teams.add_subparsers(dest="teams_command", required=True)
    ensure = sub.add_parser("ensure", help="create or update every team's workspace, users, grants, webhook")
    ensure.add_argument("--teams-file", type=Path, required=True, help="JSON of the `teams` setting")
    ensure.add_argument("--secrets-dir", type=Path, required=True, help="Key Vault CSI mount with the users' passwords")
    ensure.add_argument(
        "--webhook-base-url", default=None, help="receiver base URL; teams' hooks at <base>/hooks/<team>"
    )
    ensure.add_argument("--tracking-uri", default=None, help="MLflow (default: env MLFLOW_TRACKING_URI)")
    ensure.add_argument("--wait-seconds", type=float, default=300, help="how long to wait for MLflow to answer")
    ensure.set_defaults(teams_handler=cmd_ensure)


def run_teams(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        return int(args.teams_handler(args, environ))
    except UsageError as error:
        print(f"mlopsctl teams: {error}", file=sys.stderr)
        return EXIT_USAGE
