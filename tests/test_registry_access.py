"""The models stack's own MLflow user against a real MLflow (basic-auth, PostgreSQL): it plans, it cannot write."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from mlflow import MlflowClient
from mlflow.server.auth.client import AuthServiceClient

from harness.mock_engine import MODELS_DIR, evaluate, stack_config
from mlopsctl.registry_access import ensure_reader
from tests.services.registry import register_run_versions

READER = "models-reader"
PASSWORD = "reader-Password-1234"
MODELS = ("access-managed",)


@pytest.fixture(scope="module")
def managed(registry: MlflowClient) -> MlflowClient:
    register_run_versions(registry, MODELS[0], 2, mlmodel="artifact_path: model\nflavors:\n  python_function: {}\n")
    registry.set_registered_model_alias(MODELS[0], "champion", "1")
    return registry


def _logs_in(uri: str) -> Any:
    def check(user: str, password: str) -> bool:
        answer = requests.get(f"{uri}/api/2.0/mlflow/users/current", auth=(user, password), timeout=10)
        return answer.status_code == 200

    return check


@pytest.fixture()
def as_reader(mlflow_stack: Any) -> Iterator[MlflowClient]:
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update({"MLFLOW_TRACKING_USERNAME": READER, "MLFLOW_TRACKING_PASSWORD": PASSWORD})
    yield MlflowClient(tracking_uri=mlflow_stack.tracking_uri, registry_uri=mlflow_stack.tracking_uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_ensure_creates_grants_and_then_changes_nothing(mlflow_stack: Any, managed: MlflowClient) -> None:
    auth = AuthServiceClient(mlflow_stack.tracking_uri)
    logs_in = _logs_in(mlflow_stack.tracking_uri)
    first = ensure_reader(auth, logs_in, READER, "first-Password-1234", MODELS)
    # MLflow's effective permission already READ: basic_auth.ini's `default_permission = READ` gives
    # every user READ on every model, so nothing is granted on this server (see the report).
    assert first == {"user": "created", "password": "unchanged", f"model:{MODELS[0]}": "unchanged"}
    # The Key Vault value changed (or someone changed it in MLflow): reset.
    assert ensure_reader(auth, logs_in, READER, PASSWORD, MODELS)["password"] == "updated"
    again = ensure_reader(auth, logs_in, READER, PASSWORD, MODELS)
    assert set(again.values()) == {"unchanged"}, again
    assert auth.get_user_permission(READER, "registered_model", MODELS[0]).permission == "READ"


def test_the_reader_plans(mlflow_stack: Any, managed: MlflowClient, as_reader: MlflowClient) -> None:
    ensure_reader(
        AuthServiceClient(mlflow_stack.tracking_uri), _logs_in(mlflow_stack.tracking_uri), READER, PASSWORD, MODELS
    )
    config, secret_keys = stack_config("dev", MODELS_DIR)
    config["mlops-models:rollout"] = json.dumps(
        {"trackingUri": mlflow_stack.tracking_uri, "models": [{"name": MODELS[0], "strategy": "canary"}]}
    )
    environ = {"MLFLOW_TRACKING_USERNAME": READER, "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    evaluation = evaluate("dev", config, secret_keys, project_dir=MODELS_DIR, registry_snapshot=None, environ=environ)
    assert evaluation.error is None, evaluation.error
    assert [
        r.inputs["metadata"]["name"]
        for r in evaluation.of_type("kubernetes:machinelearning.seldon.io/v1:SeldonDeployment")
    ] == [MODELS[0]]
    assert managed.get_model_version_by_alias(MODELS[0], "champion").version == "1"
