"""ModelRollout in the real program: SeldonDeployments from the registry snapshot, and safety."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from layout import lineage
from mlopsctl.mock_engine import EXAMPLE_REGISTRY_SNAPSHOT, Evaluation, evaluate
from mlopsctl.schema_validation import schema_problems
from rollout.planner import PlanError
from rollout.registry_reader import RegistryError

SDEP = "kubernetes:machinelearning.seldon.io/v1:SeldonDeployment"


def _deployments(evaluation: Evaluation) -> dict[str, dict[str, object]]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in evaluation.of_type(SDEP)}


def test_one_valid_seldon_deployment_per_configured_model(stack: Evaluation) -> None:
    deployments = _deployments(stack)
    assert set(deployments) == {"fraud-detector", "churn-predictor", "recommender"}
    assert schema_problems(stack, "1.34.2") == []
    for manifest in deployments.values():
        assert manifest["metadata"]["namespace"] == "models"  # type: ignore[index]


def test_weights_and_versions_follow_the_snapshot(stack: Evaluation) -> None:
    def traffic(model: str) -> dict[str, tuple[int, str, bool]]:
        predictors = _deployments(stack)[model]["spec"]["predictors"]  # type: ignore[index]
        return {
            p["name"]: (p["traffic"], p["annotations"][lineage.MODEL_VERSION], p.get("shadow", False))
            for p in predictors
        }

    assert traffic("fraud-detector") == {"stable": (75, "3", False), "canary": (25, "4", False)}
    assert traffic("churn-predictor") == {"stable": (80, "7", False), "canary": (20, "8", False)}
    assert traffic("recommender") == {"stable": (100, "12", False), "shadow": (0, "13", True)}
    served = stack.outputs["models"].value
    assert served["fraud-detector"]["weights"] == {"stable": 75, "canary": 25}
    assert served["fraud-detector"]["endpoint"].endswith("/seldon/models/fraud-detector/v2/models/model/infer")


def test_model_uris_are_physical_blob_locations_with_lineage(stack: Evaluation) -> None:
    destination = stack.outputs["artifactsDestination"].value
    snapshot = json.loads(EXAMPLE_REGISTRY_SNAPSHOT.read_text())
    for model, manifest in _deployments(stack).items():
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
    evaluation = evaluate("dev", registry_snapshot=None, environ={"MLFLOW_TRACKING_URI": uri})
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
    evaluation = evaluate("prod", registry_snapshot=broken)
    assert isinstance(evaluation.error, PlanError)
    assert evaluation.resources == []
    assert "model 'churn-predictor': alias 'champion' is not set" in str(evaluation.error)
    assert "model 'recommender': alias 'challenger' points to version 99" in str(evaluation.error)


@pytest.mark.parametrize("content", ["not json", '{"format": "other"}'])
def test_unreadable_snapshot_file_fails_the_program(tmp_path: Path, content: str) -> None:
    broken = tmp_path / "snapshot.json"
    broken.write_text(content)
    evaluation = evaluate("dev", registry_snapshot=broken)
    assert evaluation.error is not None and str(broken) in str(evaluation.error)
    assert evaluation.resources == []
