"""The restore drill, run for real: PostgreSQL with WAL archiving, a base backup, MLflow on it;
register versions and aliases, note T, damage the registry, restore a copy of the backup replayed
to T, start MLflow on it with the platform's command lines, and require the registry to be exactly
as it was at T. Artifacts live in Azurite, which has no blob versioning or point-in-time restore:
the drill proves the other half as consistency (`mlopsctl registry verify`): every restored
version's artifacts are there, and the blobs written after T are reported as orphans.

Prints its timings (base backup, WAL replay to T, MLflow start): the figures in docs/recovery.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg2  # type: ignore[import-untyped]
import pytest
from azure.storage.blob import BlobServiceClient
from cryptography.fernet import Fernet
from mlflow import MlflowClient

from mlopsctl.cli import main
from tests.services import processes
from tests.services.pitr import (
    archive_directory,
    archiving_options,
    base_backup,
    restored_cluster,
    switch_wal,
    wait_archived,
)
from tests.services.registry_state import fill_registry, log_model_version, registry_state
from tests.services.stack import ADMIN_PASSWORD, MlflowDeployment, committed_settings, mlflow_servers


def _client(deployment: MlflowDeployment, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", deployment.admin_username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", deployment.tracking_uri)
    return MlflowClient(deployment.tracking_uri)


def _damage(client: MlflowClient) -> None:
    """What an operator or a broken job does after T: delete a version, move an alias, add a version."""
    client.delete_model_version("fraud-detector", "3")
    client.set_registered_model_alias("churn", "champion", "2")
    client.set_registered_model_tag("fraud-detector", "team", "someone-else")
    experiment = client.get_experiment_by_name("drill")
    assert experiment is not None
    log_model_version(client, "fraud-detector", experiment.experiment_id, "written after T")


def _verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["registry", "verify", "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def workdir() -> Iterator[Path]:
    with processes.temporary_directory("mlops-restore-drill-") as path:
        path.chmod(0o755)  # the postgres user reaches its data and the WAL archive below it
        yield path


def test_point_in_time_restore_brings_the_registry_back_exactly_as_at_t(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = archive_directory(workdir)
    container = committed_settings("dev").artifact_container
    webhook_key = Fernet.generate_key().decode()
    with (
        processes.azurite(workdir, (container,)) as blob,
        processes.postgres(workdir / "primary", options=archiving_options(archive)) as primary,
    ):
        processes.run_migrations(primary.server(), primary.password, workdir / "migrations.log")
        backup = workdir / "backup" / "base"
        backup_seconds = base_backup(primary, backup)

        with mlflow_servers(primary, blob, workdir / "before", webhook_key=webhook_key) as before:
            client = _client(before, monkeypatch)
            fill_registry(client)
            at_t = registry_state(client)
            time.sleep(1.0)  # T strictly after the last commit of the state above, before the next
            target = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
            time.sleep(1.0)
            _damage(client)
            damaged = registry_state(client)
            assert damaged != at_t
            wait_archived(archive, switch_wal(primary))

        with restored_cluster(backup, archive, target, workdir / "restored", primary) as restored:
            log = restored.log.read_text()
            assert "recovery stopping before commit of transaction" in log
            assert "archive recovery complete" in log
            started = time.monotonic()
            with mlflow_servers(restored.database, blob, workdir / "after", webhook_key=webhook_key) as after:
                mlflow_seconds = time.monotonic() - started
                client = _client(after, monkeypatch)
                assert registry_state(client) == at_t

                # Blobs: every restored version's artifacts are there; the one written after T is an orphan.
                code, report = _verify(capsys)
                assert code == 1, report
                assert report["missing"] == [] and report["dangling_aliases"] == []
                orphan_ids = [o["id"] for o in report["orphans"]]  # type: ignore[attr-defined]
                damaged_v4 = damaged["fraud-detector"]["versions"]["4"]["source"].removeprefix("models:/")
                assert orphan_ids == [damaged_v4]
                assert report["versions"] == 5

                _check_verify_finds_store_damage(after, restored.database, capsys)

    print(
        f"\nrestore drill: base backup {backup_seconds:.2f} s, WAL replay to T {restored.replay_seconds:.2f} s, "
        f"MLflow start on the restored database {mlflow_seconds:.2f} s"
    )


def _check_verify_finds_store_damage(
    deployment: MlflowDeployment, database: processes.Postgres, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same command finds deleted artifacts and an alias naming a version that does not exist."""
    client = MlflowClient(deployment.tracking_uri)
    version = client.get_model_version("fraud-detector", "1")
    logged = client.get_logged_model(str(version.source).removeprefix("models:/"))
    prefix = logged.artifact_location.removeprefix("mlflow-artifacts:/").strip("/")
    blobs = BlobServiceClient.from_connection_string(deployment.azurite_connection_string).get_container_client(
        deployment.artifact_container
    )
    for item in list(blobs.list_blobs(name_starts_with=prefix + "/")):
        blobs.delete_blob(item.name)
    connection = psycopg2.connect(
        host=database.host, port=database.port, user=database.user, password=database.password, dbname="mlflow_registry"
    )
    with connection, connection.cursor() as cursor:
        cursor.execute("INSERT INTO registered_model_aliases (name, alias, version) VALUES ('churn', 'ghost', 9)")
    connection.close()
    code, report = _verify(capsys)
    assert code == 1
    assert [(m["model"], m["version"]) for m in report["missing"]] == [("fraud-detector", "1")]  # type: ignore[attr-defined]
    assert report["dangling_aliases"] == [{"model": "churn", "alias": "ghost", "version": "9"}]
    capsys.readouterr()
    assert main(["registry", "verify"]) == 1
    text = capsys.readouterr().out
    assert "MISSING  fraud-detector version 1" in text
    assert "DANGLING churn@ghost -> version 9" in text
    assert text.rstrip().splitlines()[-1] == "inconsistent: 1 missing, 1 dangling aliases, 1 orphans"
