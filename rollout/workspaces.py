"""Keep each team's MLflow workspace, users and grants in step with the `teams` setting, idempotently.

`mlopsctl teams ensure` runs this as the basic-auth admin, as `webhook ensure` does for the
webhook: each step reads what MLflow has and changes only what differs, so a second run reports
`unchanged` everywhere and writes nothing. The MLflow calls go through the `TeamsAdmin` protocol
(implemented over MLflow's REST API in `mlopsctl.teams_cli`), which keeps this module free of I/O.

Per team `<t>` (grants checked against MLflow 3.17.2 with workspaces and basic auth, see
tests/test_teams_mlflow.py):

- workspace `<t>` (creating it seeds MLflow's `admin` and `user` roles, left alone here);
- role `platform-automation` in `<t>`: USE on the workspace (create experiments and models),
  EDIT on every experiment and registered model in it (log runs, register versions, set aliases
  and tags on models others created). The seeded `user` role is not enough: with it a user lists
  a model created by someone else but `get` and `set-tag` answer 403;
- role `platform-reader` in `<t>`: READ on every experiment and registered model (what the models
  Stack's registry reader calls); no workspace USE, so it can create nothing;
- users `<t>-automation` and `<t>-reader` with the passwords the caller passes (from Key Vault):
  created, or reset when a login with the given password fails; each holds its one platform role,
  and any other platform role (e.g. another team's) is removed. Other roles are left alone: MLflow
  keeps a creator's MANAGE on what it created in a synthetic per-user role (removing it, as a first
  version of this did, took the automation user's ownership of its own experiments away).

A team removed from the list keeps its workspace, models, experiments and artifacts (deleting data
is never a side effect of configuration). Its two platform users are deleted (`retired`): the
credentials the platform issued stop working at once, and adding the team back recreates them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from settings.teams import AUTOMATION_SUFFIX, READER_SUFFIX

Action = Literal["created", "updated", "unchanged", "retired", "disabled"]
Grant = tuple[str, str, str]
"""(resource type, resource pattern, permission) as MLflow's `add_role_permission` takes them."""

AUTOMATION_ROLE: Final = "platform-automation"
READER_ROLE: Final = "platform-reader"
ROLE_GRANTS: Final[Mapping[str, frozenset[Grant]]] = {
    AUTOMATION_ROLE: frozenset(
        {("workspace", "*", "USE"), ("experiment", "*", "EDIT"), ("registered_model", "*", "EDIT")}
    ),
    READER_ROLE: frozenset({("experiment", "*", "READ"), ("registered_model", "*", "READ")}),
}
DEFAULT_WORKSPACE: Final = "default"


@dataclass(frozen=True)
class RoleRef:
    id: int
    name: str
    workspace: str


@dataclass(frozen=True)
class PermissionRef:
    id: int
    grant: Grant


class TeamsAdmin(Protocol):
    """The MLflow admin calls the ensure needs (all as the basic-auth admin)."""

    def list_workspaces(self) -> list[str]: ...
    def create_workspace(self, name: str) -> None: ...
    def list_roles(self, workspace: str) -> list[RoleRef]: ...
    def create_role(self, workspace: str, name: str) -> RoleRef: ...
    def list_role_permissions(self, role_id: int) -> list[PermissionRef]: ...
    def add_role_permission(self, role_id: int, grant: Grant) -> None: ...
    def remove_role_permission(self, permission_id: int) -> None: ...
    def user_exists(self, username: str) -> bool: ...
    def create_user(self, username: str, password: str) -> None: ...
    def password_valid(self, username: str, password: str) -> bool: ...
    def update_user_password(self, username: str, password: str) -> None: ...
    def delete_user(self, username: str) -> None: ...
    def list_user_roles(self, username: str) -> list[RoleRef]: ...
    def assign_role(self, username: str, role_id: int) -> None: ...
    def unassign_role(self, username: str, role_id: int) -> None: ...


@dataclass(frozen=True)
class TeamCredentials:
    """A team and the passwords of its two platform users (read from Key Vault files by the caller)."""

    team: str
    automation_password: str
    reader_password: str

    @property
    def automation_user(self) -> str:
        return self.team + AUTOMATION_SUFFIX

    @property
    def reader_user(self) -> str:
        return self.team + READER_SUFFIX


@dataclass(frozen=True)
class Step:
    """One thing ensured and what had to be done to it."""

    team: str
    what: str
    action: Action

    def as_dict(self) -> dict[str, str]:
        return {"team": self.team, "what": self.what, "action": self.action}


def _merge(actions: Sequence[Action]) -> Action:
    """`created` wins over `updated` wins over `unchanged`."""
    for candidate in ("created", "updated", "retired"):
        if candidate in actions:
            return candidate
    return "unchanged"


def ensure_workspace(admin: TeamsAdmin, name: str, existing: Sequence[str]) -> Action:
    if name in existing:
        return "unchanged"
    admin.create_workspace(name)
    return "created"


def ensure_role(admin: TeamsAdmin, workspace: str, name: str, grants: frozenset[Grant]) -> tuple[RoleRef, Action]:
    """The role exists in `workspace` with exactly `grants` (missing added, extra removed)."""
    role = next((r for r in admin.list_roles(workspace) if r.name == name), None)
    created = role is None
    if role is None:
        role = admin.create_role(workspace, name)
    have = admin.list_role_permissions(role.id)
    changed = False
    for permission in have:
        if permission.grant not in grants:
            admin.remove_role_permission(permission.id)
            changed = True
    for grant in sorted(grants - {p.grant for p in have}):
        admin.add_role_permission(role.id, grant)
        changed = True
    return role, "created" if created else ("updated" if changed else "unchanged")


def ensure_user(admin: TeamsAdmin, username: str, password: str, role: RoleRef) -> Action:
    """The user exists, logs in with `password`, and holds exactly `role`."""
    actions: list[Action] = []
    if not admin.user_exists(username):
        admin.create_user(username, password)
        actions.append("created")
    elif not admin.password_valid(username, password):
        admin.update_user_password(username, password)
        actions.append("updated")
    held = admin.list_user_roles(username)
    for other in held:
        # Only the platform's roles are the platform's to take away: MLflow records what a user
        # creates as MANAGE grants on a synthetic per-user role, which must stay.
        if other.id != role.id and other.name in ROLE_GRANTS:
            admin.unassign_role(username, other.id)
            actions.append("updated")
    if all(r.id != role.id for r in held):
        admin.assign_role(username, role.id)
        actions.append("updated")
    return _merge(actions)


def ensure_team(admin: TeamsAdmin, team: TeamCredentials, workspaces: Sequence[str]) -> list[Step]:
    steps = [Step(team.team, "workspace", ensure_workspace(admin, team.team, workspaces))]
    roles = {}
    for name in (AUTOMATION_ROLE, READER_ROLE):
        roles[name], action = ensure_role(admin, team.team, name, ROLE_GRANTS[name])
        steps.append(Step(team.team, f"role {name}", action))
    users = (
        (team.automation_user, team.automation_password, AUTOMATION_ROLE),
        (team.reader_user, team.reader_password, READER_ROLE),
    )
    for username, password, role in users:
        steps.append(Step(team.team, f"user {username}", ensure_user(admin, username, password, roles[role])))
    return steps


def retire_team(admin: TeamsAdmin, workspace: str) -> list[Step]:
    """A workspace no team declares any more: its data stays, its platform users are deleted."""
    steps = []
    for username in (workspace + AUTOMATION_SUFFIX, workspace + READER_SUFFIX):
        if admin.user_exists(username):
            admin.delete_user(username)
            steps.append(Step(workspace, f"user {username}", "retired"))
    return steps


def ensure_teams(admin: TeamsAdmin, teams: Sequence[TeamCredentials]) -> list[Step]:
    """Every team ensured, in order; then the workspaces of removed teams retired."""
    existing = admin.list_workspaces()
    steps = [step for team in teams for step in ensure_team(admin, team, existing)]
    declared = {team.team for team in teams}
    for workspace in sorted(set(existing) - declared - {DEFAULT_WORKSPACE}):
        steps += retire_team(admin, workspace)
    return steps
