"""End to end, nothing mocked on the serving path: registry → models program → initializer → MLServer → V2.

Real MLflow (PostgreSQL, artifacts in Azurite) holds scikit-learn models registered by a training
run; the models program (models/) reads that registry (the real registry reader) and declares SeldonDeployments
under the mock engine (it stands in for Kubernetes only). For each declared predictor the test
does what its pod would: the storage initializer's exact `rclone copy <modelUri> /mnt/models`
with the declared remote env (only authentication swapped for Azurite's key and endpoint), then
the model server image's `mlserver start /mnt/models` with the operator's MLSERVER_* env, and a
V2 inference request. rclone and MLServer come from `.venv-serving`, installed from the images'
own requirement files (tests/services/serving.py says what differs from a pod: auth, paths, ports).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import mlflow
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
import sklearn  # type: ignore[import-untyped]
from mlflow.models import infer_signature
from sklearn.linear_model import LinearRegression  # type: ignore[import-untyped]

from harness.mock_engine import MODELS_DIR, Evaluation, evaluate, stack_config
from layout import model_serving, resource_types
from rollout.planner import CANARY, STABLE
from tests.services import serving
from tests.services.stack import MlflowDeployment

pytestmark = pytest.mark.slow

SDEP = resource_types.SELDON_DEPLOYMENT
SINGLE, PAIR = "serving-e2e-single", "serving-e2e-pair"
COLUMNS = ("tenure", "spend", "visits")
COEFFICIENTS = {1: (1.5, -2.0, 0.5, 3.0), 2: (-1.0, 0.25, 2.0, -1.0)}
"""Per version (the canary pair's v1 and v2): column weights and intercept of what it learns."""


def _frame(rows: int, seed: int) -> pd.DataFrame:
    values = np.random.default_rng(seed).normal(size=(rows, len(COLUMNS)))
    return pd.DataFrame(values, columns=list(COLUMNS))


@dataclass(frozen=True)
class Served:
    """The live registry's models and what the program declared from it."""

    evaluation: Evaluation
    deployments: dict[str, dict[str, Any]]
    test_rows: pd.DataFrame
    local: dict[tuple[str, str], list[float]]
    """(model, version) → predictions of the registered model loaded locally with MLflow."""


@pytest.fixture(scope="module")
def served(mlflow_stack: MlflowDeployment) -> Iterator[Served]:
    credentials = {
        "MLFLOW_TRACKING_URI": mlflow_stack.tracking_uri,
        "MLFLOW_TRACKING_USERNAME": mlflow_stack.admin_username,
        "MLFLOW_TRACKING_PASSWORD": mlflow_stack.admin_password,
    }
    train, test_rows = _frame(200, seed=7), _frame(12, seed=11)
    with mock.patch.dict(os.environ, credentials):
        client = mlflow.MlflowClient()
        experiment = client.create_experiment("serving-e2e")
        versions = {SINGLE: (1,), PAIR: (1, 2)}
        for model, kinds in versions.items():
            for kind in kinds:
                *weights, intercept = COEFFICIENTS[kind]
                target = train.to_numpy() @ np.array(weights) + intercept
                regression = LinearRegression().fit(train, target)
                with mlflow.start_run(experiment_id=experiment):
                    mlflow.sklearn.log_model(
                        regression,
                        name="model",
                        registered_model_name=model,
                        signature=infer_signature(train, regression.predict(train)),
                        # Stated, not inferred (inference loads the model in a subprocess: ~10 s).
                        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
                    )
            client.set_registered_model_alias(model, "champion", "1")
        client.set_registered_model_alias(PAIR, "challenger", "2")
        local = {
            (model, str(version)): [
                float(v) for v in mlflow.pyfunc.load_model(f"models:/{model}/{version}").predict(test_rows)
            ]
            for model, kinds in versions.items()
            for version in range(1, len(kinds) + 1)
        }

    # The models program (models/), as the in-cluster operator runs it, against the live registry;
    # the platform's outputs come from the committed example (its StackReference in a cluster).
    config, secret_keys = stack_config("dev", MODELS_DIR)
    config["mlops-models:rollout"] = json.dumps(
        {
            "trackingUri": mlflow_stack.tracking_uri,
            "models": [
                {"name": SINGLE, "strategy": "canary"},
                {"name": PAIR, "strategy": "canary", "steps": [10, 50, 100]},
            ],
        }
    )
    environ = {key: value for key, value in credentials.items() if key != "MLFLOW_TRACKING_URI"}
    evaluation = evaluate("dev", config, secret_keys, project_dir=MODELS_DIR, registry_snapshot=None, environ=environ)
    assert evaluation.error is None, evaluation.error
    deployments = {r.inputs["metadata"]["name"]: r.inputs for r in evaluation.of_type(SDEP)}
    yield Served(evaluation, deployments, test_rows, local)


def _predictor(served: Served, model: str, name: str) -> dict[str, Any]:
    manifest = served.deployments[model]
    assert manifest["spec"]["protocol"] == model_serving.PROTOCOL
    predictor: dict[str, Any]
    (predictor,) = (p for p in manifest["spec"]["predictors"] if p["name"] == name)
    assert predictor["graph"]["implementation"] == model_serving.IMPLEMENTATION
    return predictor


def _declared_remote_env(served: Served, namespace: str, secret_name: str) -> dict[str, str]:
    """The env the init container gets from the graph node's `envSecretRefName`: the declared Secret."""
    (secret,) = (
        s.inputs
        for s in served.evaluation.of_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"] == {"name": secret_name, "namespace": namespace}
    )
    return dict(secret["stringData"])


def _initialize(served: Served, mlflow_stack: MlflowDeployment, model: str, name: str, target: Path) -> str:
    """Run the storage initializer of one declared predictor into `target`; its graph node's name."""
    predictor = _predictor(served, model, name)
    graph = predictor["graph"]
    namespace = served.deployments[model]["metadata"]["namespace"]
    remote_env = _declared_remote_env(served, namespace, graph["envSecretRefName"])
    serving.run_storage_initializer(graph["modelUri"], remote_env, mlflow_stack.azurite, target)
    return str(graph["name"])


def _version(served: Served, model: str, name: str) -> str:
    return str(_predictor(served, model, name)["labels"]["version"])


def _equal(expected: list[float]) -> Any:
    """The same predictions, up to the last bit or so: MLServer rebuilds the frame from one
    [N, 1] tensor per column, and the matrix product may round differently (seen: 1 ulp)."""
    return pytest.approx(expected, rel=1e-12, abs=1e-12)


def _columns(rows: pd.DataFrame) -> dict[str, list[float]]:
    return {column: [float(v) for v in rows[column]] for column in rows.columns}


def test_the_champion_serves_what_it_predicts_locally(
    served: Served, mlflow_stack: MlflowDeployment, tmp_path: Path
) -> None:
    models = tmp_path / "mnt-models"
    node = _initialize(served, mlflow_stack, SINGLE, STABLE, models)
    assert (models / "MLmodel").is_file() and (models / "model.skops").is_file()
    namespace = served.deployments[SINGLE]["metadata"]["namespace"]
    with serving.model_server(models, node, namespace, tmp_path / "server") as server:
        predictions = server.infer(_columns(served.test_rows))
    assert predictions == _equal(served.local[(SINGLE, _version(served, SINGLE, STABLE))])


def test_a_canary_pair_serves_two_versions_with_their_own_predictions(
    served: Served, mlflow_stack: MlflowDeployment, tmp_path: Path
) -> None:
    namespace = served.deployments[PAIR]["metadata"]["namespace"]
    assert {p["name"]: p["traffic"] for p in served.deployments[PAIR]["spec"]["predictors"]} == {STABLE: 90, CANARY: 10}
    answers: dict[str, list[float]] = {}
    with contextlib.ExitStack() as stack:
        servers = {}
        for name in (STABLE, CANARY):
            models = tmp_path / name / "mnt-models"
            node = _initialize(served, mlflow_stack, PAIR, name, models)
            servers[name] = stack.enter_context(serving.model_server(models, node, namespace, tmp_path / name))
        for name, server in servers.items():
            answers[name] = server.infer(_columns(served.test_rows))
    assert (_version(served, PAIR, STABLE), _version(served, PAIR, CANARY)) == ("1", "2")
    assert answers[STABLE] == _equal(served.local[(PAIR, "1")])
    assert answers[CANARY] == _equal(served.local[(PAIR, "2")])
    assert not np.allclose(answers[STABLE], answers[CANARY])


def test_health_ready_lies_so_the_pod_waits_for_the_model_itself(
    served: Served, mlflow_stack: MlflowDeployment, tmp_path: Path
) -> None:
    """One level above the model folder (what a wrong modelUri copies): MLServer's /v2/health/ready
    answers 200 although the model never loads; only /v2/models/<node>/ready tells the truth.
    That is why predictors carry a startup probe on the latter (the operator overwrites readiness)."""
    predictor = _predictor(served, SINGLE, STABLE)
    graph = predictor["graph"]
    assert graph["modelUri"].endswith("/artifacts")
    namespace = served.deployments[SINGLE]["metadata"]["namespace"]
    remote_env = _declared_remote_env(served, namespace, graph["envSecretRefName"])
    models = tmp_path / "mnt-models"
    one_level_up = graph["modelUri"].removesuffix("/artifacts")
    serving.run_storage_initializer(one_level_up, remote_env, mlflow_stack.azurite, models)
    assert not (models / "MLmodel").exists() and (models / "artifacts" / "MLmodel").is_file()

    (container,) = predictor["componentSpecs"][0]["spec"]["containers"]
    probe_path = container["startupProbe"]["httpGet"]["path"]
    assert probe_path == model_serving.model_ready_path(graph["name"])
    with serving.model_server(models, graph["name"], namespace, tmp_path / "server", wait_for_model=False) as server:
        # /v2/health/ready answered 200 (model_server waited for it): the load attempt is over.
        deadline = time.monotonic() + 60
        while "Couldn't load model" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "Couldn't load model" in server.log.read_text()
        assert server.status("/v2/health/ready") == 200
        assert server.status(probe_path) != 200
