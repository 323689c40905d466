"""The registry reader and the program against a real MLflow (PostgreSQL, artifacts in Azurite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from mlflow import MlflowClient

from harness.mock_engine import MODELS_DIR, evaluate, platform_outputs_example, stack_config
from harness.schema_validation import schema_problems
from layout import lineage, resource_types
from rollout.planner import WEIGHT_TAG, physical_artifact_uri
from rollout.registry_reader import RegistryError, read_snapshot
from tests.services.registry import register_run_versions

GIT_COMMIT = "3f2c9a1b7d4e5f60718293a4b5c6d7e8f9a0b1c2"
P = "mlops-models:"
SDEP = resource_types.SELDON_DEPLOYMENT


@pytest.fixture(scope="module")
def registered(registry: MlflowClient) -> MlflowClient:
    """Two models with real artifacts: `reader-canary` (v1 champion, v2 challenger at 25%), `reader-single`."""
    client = registry
    for model, versions in (("reader-canary", 2), ("reader-single", 1)):
        register_run_versions(
            client,
            model,
            versions,
            run_tags={"mlflow.source.git.commit": GIT_COMMIT},
            mlmodel="artifact_path: model\nflavors:\n  python_function: {}\n",
        )
        client.set_registered_model_alias(model, "champion", "1")
    client.set_registered_model_alias("reader-canary", "challenger", "2")
    client.set_model_version_tag("reader-canary", "2", WEIGHT_TAG, "25")
    return client


def test_snapshot_has_what_serving_and_lineage_need(mlflow_stack: Any, registered: MlflowClient) -> None:
    snapshot, requests = read_snapshot(
        mlflow_stack.tracking_uri,
        {"reader-canary": ("champion", "challenger"), "reader-single": ("champion", "challenger")},
        username=mlflow_stack.admin_username,
        password=mlflow_stack.admin_password,
    )
    canary = snapshot.models["reader-canary"]
    assert canary.aliases == {"champion": "1", "challenger": "2"}
    candidate = canary.versions["2"]
    assert candidate.tags[WEIGHT_TAG] == "25"
    assert candidate.git_commit == GIT_COMMIT
    assert candidate.download_uri.startswith("mlflow-artifacts:/")
    assert candidate.run_id == registered.get_model_version("reader-canary", "2").run_id
    assert snapshot.models["reader-single"].aliases == {"champion": "1"}
    assert requests <= 3 * 2  # batched: at most three requests per model


def test_physical_locations_hold_the_model(mlflow_stack: Any, registered: MlflowClient) -> None:
    snapshot, _ = read_snapshot(
        mlflow_stack.tracking_uri,
        {"reader-canary": ("champion", "challenger")},
        username=mlflow_stack.admin_username,
        password=mlflow_stack.admin_password,
    )
    blobs = BlobServiceClient.from_connection_string(mlflow_stack.azurite_connection_string)
    container = blobs.get_container_client(mlflow_stack.artifact_container)
    for version in snapshot.models["reader-canary"].versions.values():
        physical = physical_artifact_uri(version.download_uri, mlflow_stack.artifacts_destination)
        prefix = physical.removeprefix(mlflow_stack.artifacts_destination)
        names = {blob.name for blob in container.list_blobs(name_starts_with=prefix)}
        assert f"{prefix}/MLmodel" in names, (prefix, names)


def test_wrong_credentials_fail_naming_the_registry(mlflow_stack: Any, registered: MlflowClient) -> None:
    with pytest.raises(RegistryError, match="refused the credentials"):
        read_snapshot(mlflow_stack.tracking_uri, {"reader-canary": ("champion",)}, username="admin", password="wrong")


def test_the_program_serves_what_the_live_registry_says(mlflow_stack: Any, registered: MlflowClient) -> None:
    config, secret_keys = stack_config("dev", MODELS_DIR)
    config[P + "rollout"] = json.dumps(
        {
            "trackingUri": mlflow_stack.tracking_uri,
            "models": [
                {"name": "reader-canary", "strategy": "canary", "steps": [10, 25, 50, 100]},
                {"name": "reader-single", "strategy": "canary"},
            ],
        }
    )
    environ = {
        "MLFLOW_TRACKING_USERNAME": mlflow_stack.admin_username,
        "MLFLOW_TRACKING_PASSWORD": mlflow_stack.admin_password,
    }
    evaluation = evaluate("dev", config, secret_keys, project_dir=MODELS_DIR, registry_snapshot=None, environ=environ)
    assert evaluation.error is None, evaluation.error
    deployments = {
        r.inputs["metadata"]["name"]: r.inputs
        for r in evaluation.of_type("kubernetes:machinelearning.seldon.io/v1:SeldonDeployment")
    }
    weights = {p["name"]: p["traffic"] for p in deployments["reader-canary"]["spec"]["predictors"]}
    assert weights == {"stable": 75, "canary": 25}
    assert [p["name"] for p in deployments["reader-single"]["spec"]["predictors"]] == ["stable"]
    assert schema_problems(evaluation, "1.34.2") == []

    # Every declared model location holds the model: the stack's artifact root is the storage
    # account in Azure; the same paths live under the local deployment's root in Azurite.
    stack_root = json.loads(platform_outputs_example("dev").read_text())["artifactsDestination"]
    container = BlobServiceClient.from_connection_string(mlflow_stack.azurite_connection_string).get_container_client(
        mlflow_stack.artifact_container
    )
    for manifest in deployments.values():
        for predictor in manifest["spec"]["predictors"]:
            physical = predictor["annotations"][lineage.ARTIFACT_URI]
            path = physical.removeprefix(stack_root)
            assert predictor["graph"]["modelUri"] == f"azureblob:{mlflow_stack.artifact_container}/{path}"
            assert container.get_blob_client(f"{path}/MLmodel").exists(), physical

    bad = {**environ, "MLFLOW_TRACKING_PASSWORD": "wrong"}
    refused = evaluate("dev", config, secret_keys, project_dir=MODELS_DIR, registry_snapshot=None, environ=bad)
    assert isinstance(refused.error, RegistryError) and refused.resources == []
    assert mlflow_stack.tracking_uri in str(refused.error) and "reader-canary" in str(refused.error)


def test_the_program_reads_the_password_from_the_file_the_workspace_mounts(
    mlflow_stack: Any, registered: MlflowClient, tmp_path: Path
) -> None:
    """As the operator's workspace runs the program: the password from the Key Vault file that
    `MLFLOW_TRACKING_PASSWORD_FILE` names (a literal envRef), which wins over the variable."""
    config, secret_keys = stack_config("dev", MODELS_DIR)
    config[P + "rollout"] = json.dumps(
        {"trackingUri": mlflow_stack.tracking_uri, "models": [{"name": "reader-single", "strategy": "canary"}]}
    )
    mounted = tmp_path / "mlflow-admin-password"
    mounted.write_text(mlflow_stack.admin_password)  # as the CSI driver writes it: no newline
    environ = {
        "MLFLOW_TRACKING_USERNAME": mlflow_stack.admin_username,
        "MLFLOW_TRACKING_PASSWORD": "wrong",
        "MLFLOW_TRACKING_PASSWORD_FILE": str(mounted),
    }
    evaluation = evaluate("dev", config, secret_keys, project_dir=MODELS_DIR, registry_snapshot=None, environ=environ)
    assert evaluation.error is None, evaluation.error
    assert [r.inputs["metadata"]["name"] for r in evaluation.of_type(SDEP)] == ["reader-single"]

    absent = {**environ, "MLFLOW_TRACKING_PASSWORD_FILE": str(tmp_path / "absent")}
    failed = evaluate("dev", config, secret_keys, project_dir=MODELS_DIR, registry_snapshot=None, environ=absent)
    assert isinstance(failed.error, RegistryError) and failed.resources == []
    assert "cannot read MLFLOW_TRACKING_PASSWORD_FILE" in str(failed.error)
