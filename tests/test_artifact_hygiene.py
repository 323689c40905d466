"""Artifact hygiene: `mlflow gc` as the CronJob runs it, for real against MLflow on PostgreSQL and
Azurite; the CronJob and the storage lifecycle policy as declared.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from harness.mock_engine import Evaluation
from layout import cluster_layout
from layout.mlflow_server import gc_command
from tests.conftest import evaluate_with
from tests.services.processes import base_env, run_to_completion


def _blobs(mlflow_stack: Any, prefix: str) -> list[str]:
    service = BlobServiceClient.from_connection_string(mlflow_stack.azurite_connection_string)
    container = service.get_container_client(mlflow_stack.artifact_container)
    return [blob.name for blob in container.list_blobs(name_starts_with=prefix)]


def test_mlflow_gc_removes_what_was_deleted_longer_ago_than_older_than(
    mlflow_stack: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_stack.admin_username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_stack.admin_password)
    client = MlflowClient(mlflow_stack.tracking_uri)
    experiment = client.create_experiment("gc-test")
    runs = {}
    for name in ("old", "recent", "kept"):
        run = client.create_run(experiment, run_name=name)
        client.log_text(run.info.run_id, f"{name} model bytes", "model/model.bin")
        runs[name] = run.info.run_id
    model = client.create_logged_model(experiment, name="old-model")
    (tmp_path / "weights.bin").write_text("logged model bytes")
    client.log_model_artifact(model.model_id, str(tmp_path / "weights.bin"))

    def prefix(run: str) -> str:
        return f"{experiment}/{runs[run]}/"

    model_prefix = f"{experiment}/models/{model.model_id}/"
    assert all(_blobs(mlflow_stack, prefix(run)) for run in runs) and _blobs(mlflow_stack, model_prefix)

    client.delete_run(runs["old"])
    client.delete_logged_model(model.model_id)
    time.sleep(40)  # > older_than below, which stays above gc's own start-up time (imports: seconds)
    client.delete_run(runs["recent"])

    # As the CronJob runs it: the launcher reads the database and admin passwords from the mounted
    # files of the deployment (its own password file); nothing secret in the environment.
    settings = replace(mlflow_stack.settings, passfile=str(tmp_path / "gc-pgpass"))
    command = gc_command(settings, "30s", mlflow_stack.servers["artifacts"].url)
    env = {**base_env(), **command.env}
    assert not {"PGPASSWORD", "MLFLOW_TRACKING_PASSWORD"} & set(env)
    log = tmp_path / "gc.log"
    assert run_to_completion(command.args, env, log, timeout=300) == 0, log.read_text()

    assert _blobs(mlflow_stack, prefix("old")) == []  # deleted 40 s ago: gone, blobs and all
    assert _blobs(mlflow_stack, model_prefix) == []
    with pytest.raises(MlflowException):
        client.get_run(runs["old"])
    assert _blobs(mlflow_stack, prefix("recent"))  # deleted just now: kept until it is older
    assert client.get_run(runs["recent"]).info.lifecycle_stage == "deleted"
    assert _blobs(mlflow_stack, prefix("kept"))  # never deleted


def test_the_gc_cronjob_runs_that_command_on_the_schedule(dev: Evaluation) -> None:
    cronjob = dev.one("kubernetes:batch/v1:CronJob", "mlflow-gc")
    spec = cronjob.inputs["spec"]
    assert spec["schedule"] == "30 3 * * *" and spec["concurrencyPolicy"] == "Forbid"
    [container] = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    # The launcher, then `mlflow gc`: the passwords come from the mounted Key Vault files.
    assert command[:2] == ["/bin/sh", "-c"] and command[3:6] == ["mlflow-launcher", "mlflow", "gc"]
    assert command[command.index("--older-than") + 1] == "30d"
    assert command[command.index("--tracking-uri") + 1] == "http://mlflow-artifacts.mlflow.svc.cluster.local:5000"
    assert f"/mnt/secrets-store/{cluster_layout.POSTGRES_ADMIN_PASSWORD}" in command[2]
    assert f'MLFLOW_TRACKING_PASSWORD="$(cat /mnt/secrets-store/{cluster_layout.MLFLOW_ADMIN_PASSWORD})"' in command[2]
    env = {e["name"]: e for e in container["env"]}
    assert not any("valueFrom" in e for e in env.values())
    assert env["PGPASSFILE"]["value"] == "/tmp/pgpass" and "PGPASSWORD" not in env
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/mnt/secrets-store", "/tmp"}
    assert not any("PASSWORD" in part for part in command[3:])


def test_gc_settings_reach_the_cronjob_and_bad_values_are_refused() -> None:
    def change(config: dict[str, str]) -> None:
        config["mlops-platform:mlflowGcOlderThan"] = "7d12h"
        config["mlops-platform:mlflowGcSchedule"] = "0 1 * * 0"

    cronjob = evaluate_with("dev", change).one("kubernetes:batch/v1:CronJob", "mlflow-gc")
    spec = cronjob.inputs["spec"]
    command = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert spec["schedule"] == "0 1 * * 0" and command[command.index("--older-than") + 1] == "7d12h"

    def bad(config: dict[str, str]) -> None:
        config["mlops-platform:mlflowGcOlderThan"] = "30 days"

    failed = evaluate_with("dev", bad)
    assert failed.error is not None and "mlflowGcOlderThan" in str(failed.error)


def test_storage_lifecycle_policy_expires_previous_versions_and_snapshots(stack: Evaluation) -> None:
    [policy] = stack.of_type("azure-native:storage:ManagementPolicy")
    [rule] = policy.inputs["policy"]["rules"]
    assert rule["enabled"] and rule["type"] == "Lifecycle"
    actions = rule["definition"]["actions"]
    assert actions["version"]["delete"]["daysAfterCreationGreaterThan"] == 30
    assert actions["snapshot"]["delete"]["daysAfterCreationGreaterThan"] == 30
    assert rule["definition"]["filters"]["prefixMatch"] == ["mlflow-artifacts/"]
    assert "baseBlob" not in actions  # current versions (live artifacts) are never expired by age
