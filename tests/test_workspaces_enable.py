"""Turning MLflow workspaces on over an existing registry, for real: what declaring a stack's first
team does (docs/teams.md#migrating-a-single-tenant-platform), and a one-way step once experiments
exist outside `default`, so it is proven before anyone takes it.

The platform's servers run without workspaces on a migrated PostgreSQL and Azurite and the registry
is filled; then the same database and container are served as a stack with teams serves them
(`ServerSettings.workspaces`). Everything that existed is in the `default` workspace, unchanged,
and a new team workspace sees none of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from mlflow import MlflowClient

from mlopsctl.teams_cli import RestTeamsAdmin
from tests.services import processes
from tests.services.registry_state import fill_registry, registry_state, runs_state
from tests.services.stack import ADMIN_PASSWORD, MlflowDeployment, committed_settings, mlflow_servers
from tests.services.teams import mlflow_as


@pytest.fixture
def workdir() -> Iterator[Path]:
    with processes.temporary_directory("mlops-workspaces-") as path:
        yield path


def _state(deployment: MlflowDeployment) -> dict[str, object]:
    client = MlflowClient(deployment.tracking_uri, deployment.tracking_uri)
    return {"registry": registry_state(client), "runs": runs_state(client, "drill")}


def test_turning_workspaces_on_keeps_the_registry_in_default(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    container = committed_settings("dev").artifact_container
    webhook_key = Fernet.generate_key().decode()
    with processes.postgres(workdir) as database, processes.azurite(workdir, (container,)) as blob:
        processes.run_migrations(database.server(), database.password, workdir / "migrations.log")
        with mlflow_servers(database, blob, workdir / "single", webhook_key=webhook_key) as single:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", single.admin_username)
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
            fill_registry(MlflowClient(single.tracking_uri, single.tracking_uri))
            before = _state(single)
        assert before["registry"], "nothing was filled"

        with mlflow_servers(database, blob, workdir / "teams", webhook_key=webhook_key, workspaces=True) as teams:
            assert teams.servers["tracking"].command.args.count("--enable-workspaces") == 1
            # The admin without a workspace is in `default`: everything that was there, unchanged.
            assert _state(teams) == before
            admin = RestTeamsAdmin(teams.tracking_uri, teams.admin_username, ADMIN_PASSWORD)
            assert "default" in admin.list_workspaces()
            admin.create_workspace("team-a")
            # A team's new workspace starts empty: the single-tenant models stay out of it.
            with mlflow_as(teams.admin_username, ADMIN_PASSWORD, "team-a"):
                client = MlflowClient(teams.tracking_uri, teams.tracking_uri)
                assert client.search_registered_models() == []
                assert client.get_experiment_by_name("drill") is None
            # And `default` still has it after a team exists.
            assert _state(teams) == before
