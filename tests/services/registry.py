"""Model versions on the real MLflow registry, registered the way a training run would.

Tests and benchmarks that exercise the registry (reader, rollout CLI, webhooks) need a registered
model whose versions come from runs holding a model directory. One function makes them, so every
caller registers the same shape of version.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlflow import MlflowClient

MINIMAL_MLMODEL = "artifact_path: model\nflavors: {}\n"
"""The smallest `MLmodel` that makes `model/` a model directory."""


def register_run_versions(
    client: MlflowClient,
    model: str,
    count: int = 2,
    *,
    run_tags: Mapping[str, str] | None = None,
    mlmodel: str = MINIMAL_MLMODEL,
) -> list[str]:
    """Create `model` with `count` versions, each from its own terminated run in the Default
    experiment (`runs:/<run>/model`); returns the version numbers in creation order."""
    client.create_registered_model(model)
    experiment = client.get_experiment_by_name("Default")
    assert experiment is not None
    versions = []
    for _ in range(count):
        run = client.create_run(experiment.experiment_id, tags=dict(run_tags or {}))
        client.log_text(run.info.run_id, mlmodel, "model/MLmodel")
        client.set_terminated(run.info.run_id)
        version = client.create_model_version(model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        versions.append(str(version.version))
    return versions
