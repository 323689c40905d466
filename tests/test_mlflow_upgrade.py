"""An MLflow minor upgrade on existing data, for real: the previous minor release (3.16.1, in
.venv-mlflow-previous from `scripts/setup.sh all`) migrates an empty database and serves it with
the platform's command lines while its own client fills it (runs, logged models, versions, aliases,
tags); then the platform's migration step runs with the pinned release (the migration Job's
commands, `layout.mlflow_server.migration_commands`), and the pinned release serves the old runs,
models and aliases unchanged (real PostgreSQL and Azurite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2  # type: ignore[import-untyped]
import pytest
from mlflow import MlflowClient

from layout.cluster_layout import POSTGRES_ADMIN_PASSWORD
from layout.mlflow_server import REGISTRY_DATABASE, TRACKING_DATABASE, migration_commands, migration_env
from tests.services import processes
from tests.services.registry_state import registry_state, runs_state
from tests.services.stack import ADMIN_PASSWORD, committed_settings, mlflow_servers

REPO_ROOT = Path(__file__).resolve().parent.parent
PREVIOUS_VENV = REPO_ROOT / ".venv-mlflow-previous"
PREVIOUS_PIN = (REPO_ROOT / "requirements-mlflow-previous.txt").read_text()

FILL = """
import json, sys
import mlflow
from mlflow import MlflowClient
from tests.services.registry_state import fill_registry, registry_state, runs_state
assert mlflow.__version__ == sys.argv[2], mlflow.__version__
client = MlflowClient(sys.argv[1])
fill_registry(client)
state = {"registry": registry_state(client), "runs": runs_state(client, "drill")}
with open(sys.argv[3], "w") as out:
    json.dump(state, out)
"""


def _pinned(requirement: str) -> str:
    """The exact version `requirement` (extras ignored) is pinned to in requirements-mlflow-previous.txt."""
    for line in PREVIOUS_PIN.splitlines():
        name, _, version = line.partition("==")
        if name.split("[")[0].strip() == requirement:
            return version.strip()
    raise LookupError(f"{requirement} not pinned in requirements-mlflow-previous.txt")


def _alembic_versions(database: processes.Postgres) -> dict[str, str]:
    versions = {}
    for name in (TRACKING_DATABASE, REGISTRY_DATABASE):
        connection = psycopg2.connect(
            host=database.host, port=database.port, user=database.user, password=database.password, dbname=name
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT version_num FROM alembic_version")
            versions[name] = cursor.fetchone()[0]
        connection.close()
    return versions


def _migrate_with(bin_dir: Path, database: processes.Postgres, log: Path) -> None:
    """The migration Job's three commands, under the launcher, with `bin_dir`'s MLflow."""
    secrets = processes.mounted_secrets(log.parent / "migration-secrets", {POSTGRES_ADMIN_PASSWORD: database.password})
    for index in range(3):
        passfile = str(log.parent / f"pgpass-{index}")
        command = migration_commands(database.server(), str(secrets), passfile)[index]
        env = {**processes.base_env(), **migration_env(passfile)}
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        code = processes.run_to_completion(command, env, log)
        assert code == 0, log.read_text()[-3000:]


@pytest.fixture
def workdir() -> Iterator[Path]:
    with processes.temporary_directory("mlops-upgrade-") as path:
        yield path


def test_a_minor_upgrade_keeps_runs_models_and_aliases(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    previous_bin = PREVIOUS_VENV / "bin"
    if not (previous_bin / "mlflow").exists():
        pytest.fail(f"{PREVIOUS_VENV} missing: run `scripts/setup.sh all`")
    old_version = _pinned("mlflow")
    container = committed_settings("dev").artifact_container
    with processes.postgres(workdir) as database, processes.azurite(workdir, (container,)) as blob:
        _migrate_with(previous_bin, database, workdir / "previous" / "migrations.log")
        old_heads = _alembic_versions(database)
        previous_path = {"PATH": f"{previous_bin}{os.pathsep}{processes.base_env()['PATH']}"}
        with mlflow_servers(database, blob, workdir / "previous", extra_env=previous_path) as old:
            # The previous release serves; its own client fills the database.
            version = subprocess.run(
                [str(previous_bin / "mlflow"), "--version"], capture_output=True, text=True, check=True
            ).stdout
            assert old_version in version
            filled = subprocess.run(
                [str(previous_bin / "python"), "-c", FILL, old.tracking_uri, old_version, str(workdir / "before.json")],
                check=False,
                capture_output=True,
                text=True,
                cwd=REPO_ROOT,
                env={
                    **processes.base_env(),
                    "PYTHONPATH": str(REPO_ROOT),
                    "MLFLOW_TRACKING_USERNAME": old.admin_username,
                    "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD,
                },
                timeout=600,
            )
            assert filled.returncode == 0, filled.stderr[-3000:]
            before = json.loads((workdir / "before.json").read_text())

        # The platform's migration step with the pinned release (what the migration Job runs).
        processes.run_migrations(database.server(), database.password, workdir / "pinned-migrations.log")
        new_heads = _alembic_versions(database)
        pinned = Path(sys.executable).parent
        with mlflow_servers(database, blob, workdir / "pinned") as new:
            assert new.servers["tracking"].command.program[0] == "mlflow"
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", new.admin_username)
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
            client = MlflowClient(new.tracking_uri)
            after = {"registry": registry_state(client), "runs": runs_state(client, "drill")}
    assert json.loads(json.dumps(after)) == before
    assert before["registry"]["fraud-detector"]["aliases"] == {"champion": "2", "challenger": "3"}
    assert len(before["runs"]) == 1 and len(before["registry"]["churn"]["versions"]) == 2
    print(f"\nMLflow upgrade {old_version} -> pinned ({pinned}): schema {old_heads} -> {new_heads}")
