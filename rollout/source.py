"""Where the program's registry snapshot comes from: the live registry, or a snapshot file.

`MLOPS_REGISTRY_SNAPSHOT=<file>` makes the program plan from a snapshot file (the offline
preview's `--registry-snapshot`); otherwise it reads the registry at `MLFLOW_TRACKING_URI`, else
the stack's `rollout.trackingUri`, else the platform's in-cluster MLflow URL, with
`MLFLOW_TRACKING_USERNAME` and the password from the file `MLFLOW_TRACKING_PASSWORD_FILE` names (the
operator's workspace: a Key Vault CSI mount) or else `MLFLOW_TRACKING_PASSWORD`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from rollout.registry_reader import WORKSPACE_ENV, RegistryError, read_snapshot
from rollout.snapshot import RegistrySnapshot
from settings.rollout import RolloutSettings

SNAPSHOT_ENV = "MLOPS_REGISTRY_SNAPSHOT"
PASSWORD_FILE_ENV = "MLFLOW_TRACKING_PASSWORD_FILE"


def tracking_uri(settings: RolloutSettings, environ: Mapping[str, str], default: str | None = None) -> str | None:
    return environ.get("MLFLOW_TRACKING_URI") or settings.tracking_uri or default


def tracking_password(environ: Mapping[str, str]) -> str | None:
    """The file `MLFLOW_TRACKING_PASSWORD_FILE` names wins over `MLFLOW_TRACKING_PASSWORD`; an
    unreadable file fails the read naming it (never a silent anonymous read)."""
    path = environ.get(PASSWORD_FILE_ENV)
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise RegistryError(f"cannot read {PASSWORD_FILE_ENV} {path}: {error.strerror}") from error
    return environ.get("MLFLOW_TRACKING_PASSWORD")


def registry_snapshot(
    settings: RolloutSettings, default_uri: str | None = None, environ: Mapping[str, str] | None = None
) -> RegistrySnapshot:
    """The snapshot the rollouts are planned from. Raises RegistryError/SnapshotError, never guesses."""
    environ = os.environ if environ is None else environ
    snapshot_file = environ.get(SNAPSHOT_ENV)
    if snapshot_file:
        return RegistrySnapshot.load(Path(snapshot_file))
    uri = tracking_uri(settings, environ, default_uri)
    if not settings.models or uri is None:
        return RegistrySnapshot(tracking_uri=uri or "", taken_at="", models={})
    snapshot, _ = read_snapshot(
        uri,
        {model.name: (model.stable_alias, model.canary_alias) for model in settings.models},
        username=environ.get("MLFLOW_TRACKING_USERNAME"),
        password=tracking_password(environ),
        workspace=environ.get(WORKSPACE_ENV) or None,
    )
    return snapshot
