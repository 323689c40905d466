"""The MLflow deployment run for real: the command lines the cluster runs, PostgreSQL, Azurite, nginx.

Everything goes through the single proxied URL, routed by `layout.mlflow_routing.ROUTES`,
exactly as clients reach `https://mlflow.<domain>` through the Istio gateway.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import pytest
from azure.storage.blob import BlobServiceClient
from mlflow import MlflowClient
from mlflow.pyfunc.model import PythonModel

from layout import mlflow_routing
from layout.mlflow_server import ROLES
from tests.services import processes
from tests.services.stack import MlflowDeployment


class Doubler(PythonModel):
    def predict(self, context: Any, model_input: list[int], params: Any = None) -> list[int]:
        return [2 * x for x in model_input]


def call(
    deployment: MlflowDeployment,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    auth: tuple[str, str] | None = None,
) -> tuple[int, str]:
    request = urllib.request.Request(
        deployment.tracking_uri + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def _point_fluent_api_at(mlflow_stack: MlflowDeployment, patch: pytest.MonkeyPatch) -> None:
    """The fluent API's URIs through the environment, undone with `patch`: `mlflow.set_registry_uri`
    would outlive the test (a module global plus an exported `MLFLOW_REGISTRY_URI`) and point every
    later `MlflowClient(tracking_uri)` of the session at this stack's registry."""
    patch.setenv("MLFLOW_TRACKING_URI", mlflow_stack.tracking_uri)
    patch.setenv("MLFLOW_REGISTRY_URI", mlflow_stack.registry_uri)


@pytest.fixture
def as_admin(mlflow_stack: MlflowDeployment, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_stack.admin_username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_stack.admin_password)
    _point_fluent_api_at(mlflow_stack, monkeypatch)
    return MlflowClient(mlflow_stack.tracking_uri, mlflow_stack.registry_uri)


@pytest.fixture(scope="module")
def released(mlflow_stack: MlflowDeployment) -> dict[str, Any]:
    """A run with params, metrics and a model; two registered versions with aliases."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_stack.admin_username)
        patch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_stack.admin_password)
        _point_fluent_api_at(mlflow_stack, patch)
        experiment_id = mlflow.create_experiment("integration-fraud")
        versions = []
        runs = []
        for generation in (1, 2):
            with mlflow.start_run(experiment_id=experiment_id) as run:
                mlflow.log_params({"generation": generation, "learning_rate": 0.1})
                for step in range(5):
                    mlflow.log_metric("auc", 0.8 + step / 100, step=step)
                info = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), pip_requirements=["mlflow"])
            runs.append(run.info.run_id)
            versions.append(mlflow.register_model(info.model_uri, "fraud-detector"))
        client = MlflowClient()
        client.set_registered_model_alias("fraud-detector", "champion", versions[0].version)
        client.set_registered_model_alias("fraud-detector", "challenger", versions[1].version)
        return {"experiment_id": experiment_id, "runs": runs, "versions": versions}


def test_client_logs_registers_and_downloads_through_the_proxy(
    mlflow_stack: MlflowDeployment, released: dict[str, Any], as_admin: MlflowClient, tmp_path: Path
) -> None:
    run = as_admin.get_run(released["runs"][1])
    assert run.data.params == {"generation": "2", "learning_rate": "0.1"}
    assert [m.value for m in as_admin.get_metric_history(run.info.run_id, "auc")] == pytest.approx(
        [0.8, 0.81, 0.82, 0.83, 0.84]
    )
    champion = as_admin.get_model_version_by_alias("fraud-detector", "champion")
    challenger = as_admin.get_model_version_by_alias("fraud-detector", "challenger")
    assert (champion.version, challenger.version) == ("1", "2")
    assert champion.run_id == released["runs"][0]
    download_uri = as_admin.get_model_version_download_uri("fraud-detector", champion.version)
    assert download_uri.startswith(f"mlflow-artifacts:/{released['experiment_id']}/")

    local = Path(mlflow.artifacts.download_artifacts("models:/fraud-detector@champion", dst_path=str(tmp_path)))
    assert (local / "MLmodel").is_file()
    model = mlflow.pyfunc.load_model("models:/fraud-detector@challenger")
    assert list(model.predict([1, 2, 3])) == [2, 4, 6]


def test_artifact_blobs_land_in_azurite_under_the_artifact_path(
    mlflow_stack: MlflowDeployment, released: dict[str, Any], as_admin: MlflowClient
) -> None:
    service = BlobServiceClient.from_connection_string(mlflow_stack.azurite_connection_string)
    container = service.get_container_client(mlflow_stack.artifact_container)
    names = {blob.name for blob in container.list_blobs()}
    champion = as_admin.get_model_version_by_alias("fraud-detector", "champion")
    # mlflow-artifacts:/<path> is <artifacts destination>/<path> physically.
    path = as_admin.get_model_version_download_uri("fraud-detector", champion.version).removeprefix(
        "mlflow-artifacts:/"
    )
    assert f"{path.rstrip('/')}/MLmodel" in names
    assert all(name.startswith(f"{released['experiment_id']}/") for name in names if "MLmodel" in name)


ANONYMOUS_REQUESTS = (
    ("GET", "/api/2.0/mlflow/experiments/search?max_results=1", None),
    ("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": "0"}),
    ("GET", "/api/2.0/mlflow/registered-models/search", None),
    ("GET", "/ajax-api/2.0/mlflow/registered-models/search", None),
    ("GET", "/api/2.0/mlflow/model-versions/search", None),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts", None),
    ("GET", "/api/2.0/mlflow/users/get?username=mlflow-admin", None),
)


@pytest.mark.parametrize(("method", "path", "body"), ANONYMOUS_REQUESTS)
def test_every_api_answers_401_without_credentials(
    mlflow_stack: MlflowDeployment, method: str, path: str, body: dict[str, Any] | None
) -> None:
    status, _ = call(mlflow_stack, method, path, body)
    assert status == 401, (method, path)
    wrong = (mlflow_stack.admin_username, "not-the-password")
    assert call(mlflow_stack, method, path, body, auth=wrong)[0] == 401, (method, path)


def test_read_only_user_reads_but_cannot_write(
    mlflow_stack: MlflowDeployment, released: dict[str, Any], as_admin: MlflowClient
) -> None:
    admin = (mlflow_stack.admin_username, mlflow_stack.admin_password)
    reader = ("reader", "reader-Password-123456")
    status, text = call(
        mlflow_stack, "POST", "/api/2.0/mlflow/users/create", {"username": reader[0], "password": reader[1]}, admin
    )
    assert status == 200, text
    experiment, run_id = released["experiment_id"], released["runs"][0]
    # Explicit READ grants, so the test holds whatever the stack's default permission is.
    for resource_type, resource_id in (("experiment", experiment), ("registered_model", "fraud-detector")):
        grant = {"username": reader[0], "resource_type": resource_type, "resource_id": resource_id}
        status, text = call(
            mlflow_stack, "POST", "/api/3.0/mlflow/users/permissions/grant", {**grant, "permission": "READ"}, admin
        )
        assert status == 200, text

    assert call(mlflow_stack, "GET", f"/api/2.0/mlflow/runs/get?run_id={run_id}", auth=reader)[0] == 200
    assert call(mlflow_stack, "GET", "/api/2.0/mlflow/registered-models/get?name=fraud-detector", auth=reader)[0] == 200
    writes = (
        ("/api/2.0/mlflow/runs/log-metric", {"run_id": run_id, "key": "auc", "value": 1.0, "timestamp": 0}),
        ("/api/2.0/mlflow/runs/create", {"experiment_id": experiment}),
        ("/api/2.0/mlflow/registered-models/alias", {"name": "fraud-detector", "alias": "x", "version": "1"}),
        ("/api/2.0/mlflow/model-versions/create", {"name": "fraud-detector", "source": "mlflow-artifacts:/x"}),
    )
    for path, body in writes:
        status, text = call(mlflow_stack, "POST", path, body, auth=reader)
        assert status == 403, (path, status, text)
    # The artifacts role applies the same grants (shared auth database).
    upload = f"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run_id}/artifacts/forged.txt"
    assert call(mlflow_stack, "PUT", upload, {"x": 1}, auth=reader)[0] == 403
    assert call(mlflow_stack, "GET", f"/api/2.0/mlflow-artifacts/artifacts?path={experiment}", auth=reader)[0] == 200


def test_routing_sends_each_api_to_its_role(mlflow_stack: MlflowDeployment, released: dict[str, Any]) -> None:
    """Each role's own access log proves nginx routed by the table (not just any role answering)."""
    assert set(mlflow_stack.servers) == set(ROLES)
    logs = {role: server.log.read_text() for role, server in mlflow_stack.servers.items()}
    requests = {
        role: [line.split('"')[1].split()[1] for line in text.splitlines() if ' HTTP/1.1" ' in line]
        for role, text in logs.items()
    }
    for role, paths in requests.items():
        api = [path for path in paths if path.startswith(("/api/", "/ajax-api/"))]
        assert api, role
        assert all(mlflow_routing.role_for(path.split("?")[0]) == role for path in api), (role, api)
    assert any("/registered-models/" in path for path in requests["registry"])
    assert any("/mlflow-artifacts/" in path for path in requests["artifacts"])


def test_migrations_run_twice_are_harmless(mlflow_stack: MlflowDeployment, released: dict[str, Any]) -> None:
    processes.run_migrations(
        mlflow_stack.settings.database, mlflow_stack.postgres.password, mlflow_stack.workdir / "migrations-again.log"
    )
    admin = (mlflow_stack.admin_username, mlflow_stack.admin_password)
    status, text = call(mlflow_stack, "GET", f"/api/2.0/mlflow/runs/get?run_id={released['runs'][0]}", auth=admin)
    assert status == 200, text


def test_servers_expose_prometheus_metrics_to_authenticated_scrapes(mlflow_stack: MlflowDeployment) -> None:
    token = base64.b64encode(f"{mlflow_stack.admin_username}:{mlflow_stack.admin_password}".encode()).decode()
    for role, server in mlflow_stack.servers.items():
        request = urllib.request.Request(server.url + "/metrics", headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, role
            assert b"# TYPE" in response.read(), role
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.urlopen(server.url + "/metrics", timeout=10)
        assert anonymous.value.code == 401, role
