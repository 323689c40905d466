"""A read-only MLflow user for a registry reader (the models stack's workspace), kept in step idempotently.

`ensure_reader` runs with admin credentials (as `mlopsctl webhook ensure` does): it creates the
user when missing, resets its password when the wanted one does not log in, and makes the user's
explicit grants exactly `reader_grants(models)`: READ on each managed registered model, and READ
on every experiment (`experiment` `*`). Grants are explicit whatever basic-auth's
`default_permission` is, so the reader works the same on a `READ` default (dev) and a
`NO_PERMISSIONS` default (prod), and keeps working if the default changes.

Why every experiment: `rollout.registry_reader` resolves each aliased version's lineage and
artifact location through `experiments/search`, `runs/search` and `logged-models/search`. Under
`NO_PERMISSIONS` those answer only what the user may read, and READ on a registered model does not
extend to the runs and logged models its versions come from (MLflow 3.17.2, seen on a real server:
"source run ... not found"). The experiments holding new versions are not known when this runs,
so the grant is the wildcard. READ on an experiment lets the user read its runs, metrics and
artifacts; it does not let it log, tag or delete anything.

Grants on a model that does not exist yet are accepted by MLflow and hold once it is created.
MLflow never returns a password, so whether it is current is checked by logging in with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import requests

READ: Final = "READ"
REGISTERED_MODEL: Final = "registered_model"
"""`mlflow.server.auth.permissions.RESOURCE_TYPE_REGISTERED_MODEL` (MLflow 3.17.2)."""
EXPERIMENT: Final = "experiment"
EVERY: Final = "*"

Action = Literal["created", "updated", "unchanged", "removed"]
Grant = tuple[str, str, str]
"""(resource type, resource id or `*`, permission)."""


def reader_grants(models: Iterable[str]) -> set[Grant]:
    """What the reader may do, and nothing else: READ on each managed model and on every experiment."""
    return {(REGISTERED_MODEL, model, READ) for model in models} | {(EXPERIMENT, EVERY, READ)}


def grant_item(resource_type: str, resource_id: str) -> str:
    """The printed name of a grant: `model:<name>`, `experiments:*`, else `<type>:<id>`."""
    if resource_type == REGISTERED_MODEL:
        return f"model:{resource_id}"
    if resource_type == EXPERIMENT and resource_id == EVERY:
        return "experiments:*"
    return f"{resource_type}:{resource_id}"


class ReaderAdmin(Protocol):
    """The admin calls `ensure_reader` makes (`RestReaderAdmin` over MLflow's REST API)."""

    def user_exists(self, username: str) -> bool: ...
    def create_user(self, username: str, password: str) -> None: ...
    def password_valid(self, username: str, password: str) -> bool: ...
    def update_user_password(self, username: str, password: str) -> None: ...
    def list_grants(self, username: str) -> list[Grant]: ...
    def grant(self, username: str, grant: Grant) -> None: ...
    def revoke(self, username: str, resource_type: str, resource_id: str) -> None: ...


def ensure_reader(admin: ReaderAdmin, username: str, password: str, models: Sequence[str]) -> dict[str, Action]:
    """Returns the action per item (`user`, `password`, `model:<name>`, `experiments:*`, and any
    stale grant removed): all `unchanged` on a second run."""
    actions: dict[str, Action] = {}
    if admin.user_exists(username):
        actions["user"] = "unchanged"
        actions["password"] = "unchanged" if admin.password_valid(username, password) else "updated"
        if actions["password"] == "updated":
            admin.update_user_password(username, password)
    else:
        admin.create_user(username, password)
        actions["user"] = "created"
        actions["password"] = "unchanged"
    wanted = reader_grants(models)
    current = {(kind, resource): permission for kind, resource, permission in admin.list_grants(username)}
    for kind, resource, permission in sorted(wanted):
        item = grant_item(kind, resource)
        held = current.get((kind, resource))
        if held == permission:
            actions[item] = "unchanged"
            continue
        if held is not None:  # another permission on the same resource: MLflow refuses a second grant
            admin.revoke(username, kind, resource)
        admin.grant(username, (kind, resource, permission))
        actions[item] = "created" if held is None else "updated"
    for kind, resource in sorted(set(current) - {(k, r) for k, r, _ in wanted}):
        admin.revoke(username, kind, resource)
        actions[grant_item(kind, resource)] = "removed"
    return actions


class MlflowAdminError(Exception):
    """MLflow answered an admin call with an error."""


@dataclass
class RestReaderAdmin:
    """`ReaderAdmin` over MLflow 3.17.2's auth REST API (paths from `mlflow/server/auth/routes.py`)."""

    tracking_uri: str
    username: str
    password: str
    timeout: float = 30

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method,
            self.tracking_uri.rstrip("/") + path,
            auth=(self.username, self.password),
            timeout=self.timeout,
            **kwargs,
        )
        if response.status_code >= 400:
            raise MlflowAdminError(f"{method} {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.json() if response.content else {}

    def user_exists(self, username: str) -> bool:
        try:
            self._call("GET", "/api/2.0/mlflow/users/get", params={"username": username})
        except MlflowAdminError as error:
            if "RESOURCE_DOES_NOT_EXIST" in str(error):
                return False
            raise
        return True

    def create_user(self, username: str, password: str) -> None:
        self._call("POST", "/api/2.0/mlflow/users/create", json={"username": username, "password": password})

    def password_valid(self, username: str, password: str) -> bool:
        """A login as the user: MLflow never returns a password, so this is how a change is detected."""
        url = self.tracking_uri.rstrip("/") + "/api/2.0/mlflow/users/current"
        return requests.get(url, auth=(username, password), timeout=self.timeout).status_code == 200

    def update_user_password(self, username: str, password: str) -> None:
        self._call("PATCH", "/api/2.0/mlflow/users/update-password", json={"username": username, "password": password})

    def list_grants(self, username: str) -> list[Grant]:
        """The user's explicit grants (its own `__user_<id>__` role; the default workspace without workspaces)."""
        rows = self._call("GET", "/api/3.0/mlflow/users/permissions/list", params={"username": username})
        return [(r["resource_type"], r["resource_pattern"], r["permission"]) for r in rows.get("permissions", [])]

    def grant(self, username: str, grant: Grant) -> None:
        resource_type, resource_id, permission = grant
        body = {"username": username, "resource_type": resource_type, "resource_id": resource_id}
        self._call("POST", "/api/3.0/mlflow/users/permissions/grant", json={**body, "permission": permission})

    def revoke(self, username: str, resource_type: str, resource_id: str) -> None:
        body = {"username": username, "resource_type": resource_type, "resource_id": resource_id}
        self._call("POST", "/api/3.0/mlflow/users/permissions/revoke", json=body)
