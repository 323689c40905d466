"""The registry reader's request budget, counted by an HTTP proxy in front of the real MLflow.

The proxy (127.0.0.1, standard library) forwards every request to the local MLflow deployment
(PostgreSQL, Azurite, basic-auth, the platform's routing) and counts what arrives: the count is
the server's view, not the reader's own counter.
"""

from __future__ import annotations

import http.server
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from mlflow import MlflowClient

from rollout.registry_reader import ReaderOptions, RegistryError, read_snapshot

MODELS = tuple(f"batch-{index}" for index in range(6))
VERSIONS = 5
GIT_COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _CountingProxy:
    def __init__(self, upstream: str) -> None:
        self.counts: Counter[str] = Counter()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                endpoint = self.path.split("?", 1)[0].removeprefix("/api/2.0/mlflow/")
                proxy.counts[endpoint] += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(upstream + self.path, data=body, headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _forward  # noqa: N815 - http.server's handler names

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def total(self) -> int:
        return sum(self.counts.values())


@pytest.fixture(scope="module")
def batch_models(registry: MlflowClient) -> MlflowClient:
    """Six models, five versions each: three registered from runs (`runs:/`), three from logged
    models (`models:/m-<id>`, MLflow 3's default); champion on version 2, challenger on version 4."""
    client = registry
    experiment = client.create_experiment("registry-batching")
    for index, model in enumerate(MODELS):
        client.create_registered_model(model)
        for _ in range(VERSIONS):
            run = client.create_run(experiment, tags={"mlflow.source.git.commit": GIT_COMMIT})
            if index % 2:
                logged = client.create_logged_model(experiment, source_run_id=run.info.run_id, name=model)
                source, model_id = f"models:/{logged.model_id}", logged.model_id
            else:
                client.log_text(run.info.run_id, "artifact_path: model\nflavors: {}\n", "model/MLmodel")
                source, model_id = f"runs:/{run.info.run_id}/model", None
            client.set_terminated(run.info.run_id)
            client.create_model_version(model, source, run_id=run.info.run_id, model_id=model_id)
        client.set_registered_model_alias(model, "champion", "2")
        client.set_registered_model_alias(model, "challenger", "4")
    return client


@pytest.fixture
def proxy(mlflow_stack: Any) -> Iterator[_CountingProxy]:
    counting = _CountingProxy(mlflow_stack.tracking_uri)
    yield counting
    counting.server.shutdown()


def test_a_snapshot_costs_at_most_three_requests_per_model(
    mlflow_stack: Any, batch_models: MlflowClient, proxy: _CountingProxy
) -> None:
    snapshot, counted = read_snapshot(
        proxy.url,
        {model: ("champion", "challenger") for model in MODELS},
        username=mlflow_stack.admin_username,
        password=mlflow_stack.admin_password,
    )
    assert proxy.total() == counted
    assert proxy.total() <= 3 * len(MODELS), proxy.counts
    # One version search per model; everything else is batched across models.
    assert proxy.counts["model-versions/search"] == len(MODELS)
    assert proxy.counts["registered-models/search"] == 2  # aliases, then the consistency re-check
    assert proxy.counts["runs/search"] == proxy.counts["logged-models/search"] == 1
    assert not {"model-versions/get", "model-versions/get-download-uri", "runs/get"} & set(proxy.counts)
    # And the snapshot is what the per-version endpoints say.
    for model in MODELS:
        state = snapshot.models[model]
        assert state.aliases == {"champion": "2", "challenger": "4"}
        assert set(state.versions) == {"2", "4"}
        for number, version in state.versions.items():
            record = batch_models.get_model_version(model, number)
            registry_answer = batch_models.get_model_version_download_uri(model, number)
            if registry_answer.startswith("runs:/"):
                # The registry hands `runs:/` sources back unresolved; the reader resolves them.
                run = batch_models.get_run(str(record.run_id))
                registry_answer = run.info.artifact_uri + "/model"
            assert version.download_uri == registry_answer
            assert version.download_uri.startswith("mlflow-artifacts:/")
            assert version.run_id == record.run_id and version.source == record.source
            assert version.git_commit == GIT_COMMIT


def test_many_versions_between_the_aliases_stay_one_request(
    mlflow_stack: Any, batch_models: MlflowClient, proxy: _CountingProxy
) -> None:
    """Versions outside the aliased range are never read; inside it, one page holds them all."""
    batch_models.set_registered_model_alias(MODELS[0], "champion", "1")
    batch_models.set_registered_model_alias(MODELS[0], "challenger", "5")
    try:
        snapshot, _ = read_snapshot(
            proxy.url,
            {MODELS[0]: ("champion", "challenger")},
            username=mlflow_stack.admin_username,
            password=mlflow_stack.admin_password,
        )
    finally:
        batch_models.set_registered_model_alias(MODELS[0], "champion", "2")
        batch_models.set_registered_model_alias(MODELS[0], "challenger", "4")
    assert set(snapshot.models[MODELS[0]].versions) == {"1", "5"}
    assert proxy.counts["model-versions/search"] == 1


def test_a_missing_model_is_named(mlflow_stack: Any, batch_models: MlflowClient) -> None:
    with pytest.raises(RegistryError, match=r"batch-missing.*does not exist"):
        read_snapshot(
            mlflow_stack.tracking_uri,
            {"batch-missing": ("champion",), MODELS[0]: ("champion",)},
            username=mlflow_stack.admin_username,
            password=mlflow_stack.admin_password,
            options=ReaderOptions(attempts=1),
        )
