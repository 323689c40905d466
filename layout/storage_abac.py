"""The ABAC condition that confines a team's serving identity to its own MLflow artifacts.

All teams' proxied artifacts live in one container, MLflow writing each workspace's under
`<prefix>workspaces/<team>/` (MLflow 3.17.2, `mlflow/server/handlers.py`,
`_get_workspace_scoped_repo_path_if_enabled`). A team's serving identity (the storage initializer
that copies the model) gets Storage Blob Data Reader on the container with this condition, so
it reads and lists only blobs under its team's prefix. One container and a condition per team,
rather than a container per team: MLflow's artifacts role proxies to one destination, and
moving a workspace's artifacts to a container of its own would bypass the proxy and its checks.

The format is Azure's condition format version 2.0, after Microsoft's example "Read or list
blobs in named containers with a path" for Storage Blob Data Reader
(learn.microsoft.com/azure/storage/blobs/storage-auth-abac-examples): reads other than List
must have the container name and a blob path starting with the prefix; List must have the
container and a request prefix starting with it. The blob path attribute is the path inside the
container, without the container name.
"""

from __future__ import annotations

import re
from typing import Final

CONDITION_VERSION: Final = "2.0"
_READ: Final = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
_CONTAINER: Final = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name]"
_PATH: Final = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path]"
_PREFIX: Final = "@Request[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:prefix]"


def team_artifact_prefix(team: str, destination_prefix: str = "") -> str:
    """`[<destination prefix>/]workspaces/<team>/`: where MLflow proxies the team's artifacts."""
    base = destination_prefix.strip("/")
    return f"{base}/workspaces/{team}/" if base else f"workspaces/{team}/"


def _literal(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", value):
        raise ValueError(f"{value!r} is not a plain container name or blob path (letters, digits, . _ / -)")
    return f"'{value}'"


def team_blob_read_condition(container: str, team: str, destination_prefix: str = "") -> str:
    """The condition (version `CONDITION_VERSION`) for a Storage Blob Data Reader assignment."""
    name, prefix = _literal(container), _literal(team_artifact_prefix(team, destination_prefix))
    read = (
        f"((!(ActionMatches{{'{_READ}'}} AND NOT SubOperationMatches{{'Blob.List'}}))"
        f" OR ({_CONTAINER} StringEquals {name} AND {_PATH} StringStartsWith {prefix}))"
    )
    listing = (
        f"((!(ActionMatches{{'{_READ}'}} AND SubOperationMatches{{'Blob.List'}}))"
        f" OR ({_CONTAINER} StringEquals {name} AND {_PREFIX} StringStartsWith {prefix}))"
    )
    return f"{read} AND {listing}"
