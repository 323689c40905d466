"""The models program (`models/`): SeldonDeployments from the registry snapshot and the platform's
outputs, and safety (nothing declared when the registry, the snapshot or the platform fails)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from harness.mock_engine import EXAMPLE_REGISTRY_SNAPSHOT, MODELS_DIR, Evaluation, evaluate, platform_outputs_example
from harness.schema_validation import schema_problems
from layout import lineage, resource_types
from layout.platform_outputs import PlatformOutputsError
from rollout.planner import PlanError
from rollout.registry_reader import RegistryError

SDEP = resource_types.SELDON_DEPLOYMENT


def _deployments(evaluation: Evaluation) -> dict[str, dict[str, object]]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in evaluation.of_type(SDEP)}


def test_one_valid_seldon_deployment_per_configured_model(models_stack: Evaluation) -> None:
    deployments = _deployments(models_stack)
    assert set(deployments) == {"fraud-detector", "churn-predictor", "recommender"}
    assert schema_problems(models_stack, "1.34.2") == []
    for manifest in deployments.values():
        assert manifest["metadata"]["namespace"] == "models"  # type: ignore[index]


def test_weights_and_versions_follow_the_snapshot(models_stack: Evaluation) -> None:
    def traffic(model: str) -> dict[str, tuple[int, str, bool]]:
        predictors = _deployments(models_stack)[model]["spec"]["predictors"]  # type: ignore[index]
        return {
            p["name"]: (p["traffic"], p["annotations"][lineage.MODEL_VERSION], p.get("shadow", False))
            for p in predictors
        }

    assert traffic("fraud-detector") == {"stable": (75, "3", False), "canary": (25, "4", False)}
    assert traffic("churn-predictor") == {"stable": (80, "7", False), "canary": (20, "8", False)}
    assert traffic("recommender") == {"stable": (100, "12", False), "shadow": (0, "13", True)}
    served = models_stack.outputs["models"].value
    assert served["fraud-detector"]["weights"] == {"stable": 75, "canary": 25}
    assert served["fraud-detector"]["endpoint"].endswith("/seldon/models/fraud-detector/v2/models/model/infer")


def test_model_uris_are_physical_blob_locations_with_lineage(models_stack: Evaluation) -> None:
    platform = json.loads(platform_outputs_example(models_stack.stack).read_text())
    destination = platform["artifactsDestination"]
    snapshot = json.loads(EXAMPLE_REGISTRY_SNAPSHOT.read_text())
    for model, manifest in _deployments(models_stack).items():
        for predictor in manifest["spec"]["predictors"]:  # type: ignore[index]
            annotations = predictor["annotations"]
            version = snapshot["models"][model]["versions"][annotations[lineage.MODEL_VERSION]]
            path = version["downloadUri"].removeprefix("mlflow-artifacts:/")
            assert annotations[lineage.ARTIFACT_URI] == destination + path
            assert predictor["graph"]["modelUri"] == f"azureblob:mlflow-artifacts/{path}"
            assert annotations[lineage.RUN_ID] == version["runId"]
            assert annotations.get(lineage.GIT_COMMIT) == version["gitCommit"]
            spec = predictor["componentSpecs"][0]["spec"]
            assert spec["serviceAccountName"] == "model-storage-reader"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_registry_fails_the_program_before_any_resource() -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    evaluation = evaluate("dev", project_dir=MODELS_DIR, registry_snapshot=None, environ={"MLFLOW_TRACKING_URI": uri})
    assert isinstance(evaluation.error, RegistryError)
    assert evaluation.resources == []
    message = str(evaluation.error)
    assert uri in message
    for model in ("fraud-detector", "churn-predictor", "recommender"):
        assert model in message


def test_inconsistent_snapshot_fails_naming_the_model(tmp_path: Path) -> None:
    snapshot = json.loads(EXAMPLE_REGISTRY_SNAPSHOT.read_text())
    del snapshot["models"]["churn-predictor"]["aliases"]["champion"]
    snapshot["models"]["recommender"]["aliases"]["challenger"] = "99"
    broken = tmp_path / "snapshot.json"
    broken.write_text(json.dumps(snapshot))
    evaluation = evaluate("prod", project_dir=MODELS_DIR, registry_snapshot=broken)
    assert isinstance(evaluation.error, PlanError)
    assert evaluation.resources == []
    assert "model 'churn-predictor': alias 'champion' is not set" in str(evaluation.error)
    assert "model 'recommender': alias 'challenger' points to version 99" in str(evaluation.error)


@pytest.mark.parametrize("content", ["not json", '{"format": "other"}'])
def test_unreadable_snapshot_file_fails_the_program(tmp_path: Path, content: str) -> None:
    broken = tmp_path / "snapshot.json"
    broken.write_text(content)
    evaluation = evaluate("dev", project_dir=MODELS_DIR, registry_snapshot=broken)
    assert evaluation.error is not None and str(broken) in str(evaluation.error)
    assert evaluation.resources == []


def test_platform_without_the_outputs_contract_fails_before_any_resource() -> None:
    """Before the platform's first `up` (or from an older platform) the models program stops, naming keys."""
    outputs = json.loads(platform_outputs_example("dev").read_text())
    del outputs["modelsNamespace"], outputs["modelReaderClientId"]
    evaluation = evaluate("dev", project_dir=MODELS_DIR, platform_outputs=outputs)
    assert isinstance(evaluation.error, PlatformOutputsError)
    assert evaluation.resources == []
    message = str(evaluation.error)
    assert "organization/mlops-platform/dev" in message
    assert "modelsNamespace" in message and "modelReaderClientId" in message


def test_the_registry_read_defaults_to_the_platforms_in_cluster_mlflow() -> None:
    """No trackingUri in the models stack: the program reads the registry the platform exports."""
    outputs = json.loads(platform_outputs_example("dev").read_text())
    uri = f"http://127.0.0.1:{_closed_port()}"
    outputs["mlflowInClusterUri"] = uri
    evaluation = evaluate(
        "dev",
        project_dir=MODELS_DIR,
        registry_snapshot=None,
        platform_outputs=outputs,
        environ={"MLFLOW_TRACKING_URI": ""},  # unset for the run: the platform's URL applies
    )
    assert isinstance(evaluation.error, RegistryError)
    assert uri in str(evaluation.error) and evaluation.resources == []


def test_the_platform_previews_with_mlflow_unreachable() -> None:
    """The platform's first `up` does not depend on the registry: it never reads it."""
    uri = f"http://127.0.0.1:{_closed_port()}"
    evaluation = evaluate("dev", registry_snapshot=None, environ={"MLFLOW_TRACKING_URI": uri})
    assert evaluation.error is None, evaluation.error
    assert not evaluation.of_type(SDEP)
    assert evaluation.of_type("kubernetes:apps/v1:Deployment")  # MLflow itself is declared
