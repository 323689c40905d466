"""A read-only MLflow user for a registry reader (the models stack's workspace), kept in step idempotently.

`ensure_reader` runs with admin credentials (as `mlopsctl webhook ensure` does): it creates the
user when missing, resets its password when the wanted one does not log in, and grants READ on
each managed registered model whose permission is not READ already. User name and models are
parameters: the models stack today, one reader per team workspace next (issue 20). MLflow never
returns a password, so whether it is current is checked by logging in with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from mlflow.exceptions import RestException

READ: Literal["READ"] = "READ"
REGISTERED_MODEL = "registered_model"
"""`mlflow.server.auth.permissions.RESOURCE_TYPE_REGISTERED_MODEL` (MLflow 3.17.2)."""

Action = Literal["created", "updated", "unchanged"]


def ensure_reader(
    auth: Any, logs_in: Callable[[str, str], bool], username: str, password: str, models: Sequence[str]
) -> dict[str, Action]:
    """`auth` is an `mlflow.server.auth.client.AuthServiceClient` acting as admin; `logs_in(user,
    password)` tells whether those credentials are accepted. Returns the action per item
    (`user`, `password`, `model:<name>`): all `unchanged` on a second run."""
    actions: dict[str, Action] = {}
    try:
        auth.get_user(username)
        actions["user"] = "unchanged"
    except RestException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        auth.create_user(username, password)
        actions["user"] = "created"
    if actions["user"] == "created" or logs_in(username, password):
        actions["password"] = "unchanged"
    else:
        auth.update_user_password(username, password)
        actions["password"] = "updated"
    for model in models:
        current = auth.get_user_permission(username, REGISTERED_MODEL, model).permission
        if current == READ:
            actions[f"model:{model}"] = "unchanged"
            continue
        auth.grant_user_permission(username, REGISTERED_MODEL, model, READ)
        actions[f"model:{model}"] = "updated"
    return actions
