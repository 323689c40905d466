"""The whole state of an MLflow registry as plain data: what a restore must bring back exactly.

Registered models (description, tags, aliases, timestamps) and every version (source, run, logged
model, status, description, tags, aliases, timestamps), read through the MLflow client. Two states
compare equal only if nothing of the registry differs.
"""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient

from rollout.registry_reader import filter_literal


def registry_state(client: MlflowClient) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for registered in client.search_registered_models(max_results=1000):
        model = client.get_registered_model(registered.name)
        versions = {}
        for found in client.search_model_versions(f"name={filter_literal(model.name)}", max_results=1000):
            version = client.get_model_version(model.name, found.version)
            versions[str(version.version)] = {
                "source": version.source,
                "run_id": version.run_id,
                "model_id": getattr(version, "model_id", None),
                "status": version.status,
                "description": version.description,
                "tags": dict(version.tags),
                "aliases": sorted(version.aliases),
                "created": version.creation_timestamp,
                "updated": version.last_updated_timestamp,
            }
        state[model.name] = {
            "description": model.description,
            "tags": dict(model.tags),
            "aliases": dict(model.aliases),
            "created": model.creation_timestamp,
            "updated": model.last_updated_timestamp,
            "versions": versions,
        }
    return state


def runs_state(client: MlflowClient, experiment_name: str) -> dict[str, Any]:
    """Every run of an experiment: status, params, latest metrics, tags, artifact root."""
    experiment = client.get_experiment_by_name(experiment_name)
    assert experiment is not None
    return {
        run.info.run_id: {
            "status": run.info.status,
            "artifact_uri": run.info.artifact_uri,
            "params": dict(run.data.params),
            "metrics": dict(run.data.metrics),
            "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
        }
        for run in client.search_runs([experiment.experiment_id], max_results=1000)
    }


def fill_registry(client: MlflowClient) -> None:
    """Two models as a team would have them: logged-model versions and run versions (runs with
    params and metrics), aliases, tags, descriptions, in the experiment `drill`."""
    from tests.services.registry import register_run_versions  # noqa: PLC0415

    experiment = client.create_experiment("drill")
    client.create_registered_model("fraud-detector", tags={"team": "risk"}, description="card fraud")
    for index in range(3):
        version = log_model_version(client, "fraud-detector", experiment, f"weights {index}")
        client.set_model_version_tag("fraud-detector", version, "validated", "true")
    client.set_registered_model_alias("fraud-detector", "champion", "2")
    client.set_registered_model_alias("fraud-detector", "challenger", "3")
    run = client.create_run(experiment, tags={"purpose": "training"})
    client.log_param(run.info.run_id, "learning_rate", "0.1")
    client.log_metric(run.info.run_id, "auc", 0.91)
    client.set_terminated(run.info.run_id)
    register_run_versions(client, "churn", 2)
    client.set_registered_model_alias("churn", "champion", "1")
    client.update_model_version("churn", "2", description="candidate")


def log_model_version(client: MlflowClient, model: str, experiment_id: str, payload: str) -> str:
    """A logged model with files (`MLmodel`, `model.txt`) uploaded through the artifacts role, registered
    as a new version of `model` (`models:/m-<id>` source); returns the version number."""
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    logged = client.create_logged_model(experiment_id, name="model")
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
        Path(directory, "model.txt").write_text(payload)
        client.log_model_artifacts(logged.model_id, directory)
    client.finalize_logged_model(logged.model_id, "READY")
    version = client.create_model_version(model, f"models:/{logged.model_id}", model_id=logged.model_id)
    return str(version.version)
