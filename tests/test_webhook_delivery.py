"""Registry webhooks end to end: a real MLflow server delivers to the real receiver on 127.0.0.1.

MLflow (the dev stack's servers, PostgreSQL, Azurite, `tests/services`) has the webhook registered
by `mlopsctl webhook ensure`; the receiver is `mlopsctl webhook serve` in its own process. The
Kubernetes API server is the one part stood in for: no cluster is reachable here, so a local HTTP
endpoint (`tests.services.webhooks.StandInApiServer`) receives the receiver's PATCH of the models
Stack and records it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from layout import cluster_layout
from mlopsctl.cli import main
from mlopsctl.kube_api import RECONCILE_REQUEST_ANNOTATION, stack_path
from mlopsctl.webhook_cli import ensure_webhook
from rollout.planner import PLAN_TAGS, STARTED_TAG, STATUS_TAG, WEIGHT_TAG
from rollout.webhooks import ALIAS_CREATED, EVENTS, TAG_SET, reconcile_request_value, sign
from tests.services.registry import register_run_versions
from tests.services.stack import MlflowDeployment
from tests.services.webhooks import STAND_IN_TOKEN, Receiver, StandInApiServer, post_delivery, receiver

MANAGED = "webhook-fraud"
UNMANAGED = "webhook-unmanaged"
SECRET = "local-webhook-signing-secret-0123456789"
NAME = "platform-reconcile-test"


@pytest.fixture(scope="module")
def client(registry: MlflowClient) -> MlflowClient:
    for model in (MANAGED, UNMANAGED):
        register_run_versions(registry, model)
    return registry


@pytest.fixture(scope="module")
def api_server() -> Iterator[StandInApiServer]:
    server = StandInApiServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_receiver(
    mlflow_stack: MlflowDeployment, client: MlflowClient, api_server: StandInApiServer, tmp_path_factory: Any
) -> Iterator[Receiver]:
    workdir = tmp_path_factory.mktemp("webhooks")
    kubeconfig = api_server.kubeconfig(workdir / "kubeconfig")
    with receiver(workdir, SECRET, [f"{MANAGED}=champion,challenger"], kubeconfig) as running:
        assert ensure_webhook(client, NAME, running.url, SECRET) == "created"
        # Each MLflow worker caches the webhook list per event for MLFLOW_WEBHOOK_CACHE_TTL; an
        # event fired just before creation would leave a stale empty entry (UPSTREAM-FACTS).
        time.sleep(mlflow_stack.settings.webhook_cache_ttl_seconds + 1)
        yield running
        for hook in client.list_webhooks():
            if hook.name == NAME:
                client.delete_webhook(hook.webhook_id)


def _settle(api_server: StandInApiServer, seconds: float = 1.5) -> int:
    """Give stray deliveries time to arrive, then count PATCHes."""
    time.sleep(seconds)
    return api_server.count()


def test_alias_change_is_one_verified_delivery_and_one_reconcile_request(
    client: MlflowClient, live_receiver: Receiver, api_server: StandInApiServer
) -> None:
    before = api_server.count()
    client.set_registered_model_alias(MANAGED, "champion", "1")
    requests = api_server.wait_for(before + 1)
    assert _settle(api_server) == before + 1
    patch = requests[before]
    assert patch.path == stack_path(cluster_layout.MODELS_STACK_CR_NAMESPACE, cluster_layout.MODELS_STACK_CR_NAME)
    assert patch.content_type == "application/merge-patch+json"
    assert patch.authorization == f"Bearer {STAND_IN_TOKEN}"
    value = patch.body["metadata"]["annotations"][RECONCILE_REQUEST_ANNOTATION]
    deliveries = [r for r in live_receiver.records() if r["model"] == MANAGED and r["status"] == 200]
    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert delivery["event"] == ALIAS_CREATED
    assert value == delivery["reconcileRequest"] == f"mlflow-webhook-{delivery['delivery']}"
    uuid.UUID(delivery["delivery"])  # MLflow's delivery id, verified by the receiver


def test_every_alias_and_plan_tag_change_gets_its_own_request(
    client: MlflowClient, live_receiver: Receiver, api_server: StandInApiServer
) -> None:
    """Every tag the plan reads (`PLAN_TAGS`: the weight, and `started_at` a gated A/B, shadow or
    mirror start writes) reaches the operator at once, by the receiver's default."""
    before = api_server.count()
    client.set_registered_model_alias(MANAGED, "challenger", "2")
    client.set_model_version_tag(MANAGED, "2", WEIGHT_TAG, "25")
    client.set_model_version_tag(MANAGED, "2", STARTED_TAG, "2026-11-27T00:00:00+00:00")
    client.delete_registered_model_alias(MANAGED, "challenger")
    requests = api_server.wait_for(before + 4)
    assert _settle(api_server) == before + 4
    values = {r.body["metadata"]["annotations"][RECONCILE_REQUEST_ANNOTATION] for r in requests[before:]}
    assert len(values) == 4  # unique per delivery
    tags = [r["event"] for r in live_receiver.records() if r["status"] == 200][-4:]
    assert tags.count(TAG_SET) == len(PLAN_TAGS)


def test_unmanaged_models_other_aliases_and_tags_are_ignored(
    client: MlflowClient, live_receiver: Receiver, api_server: StandInApiServer
) -> None:
    before, records = api_server.count(), len(live_receiver.records())
    client.set_registered_model_alias(UNMANAGED, "champion", "1")
    client.set_registered_model_alias(MANAGED, "experiment-42", "1")
    client.set_model_version_tag(MANAGED, "1", "owner", "data-science")
    client.set_model_version_tag(MANAGED, "1", STATUS_TAG, "holding")  # a hold changes nothing served
    deadline = time.monotonic() + 15
    while len(live_receiver.records()) < records + 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    new = live_receiver.records()[records:]
    assert sorted((r["model"], r["status"]) for r in new) == sorted([(UNMANAGED, 204)] + [(MANAGED, 204)] * 3)
    assert _settle(api_server, 0.5) == before


def _delivery(event: str, data: dict[str, str], secret: str = SECRET, age: int = 0) -> tuple[bytes, dict[str, str]]:
    entity, action = event.split(".")
    body = json.dumps({"entity": entity, "action": action, "timestamp": "2026-01-01T00:00:00+00:00", "data": data})
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time()) - age)
    signature = sign(secret, delivery_id, timestamp, body.encode())
    headers = {"X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": timestamp, "X-MLflow-Signature": signature}
    return body.encode(), headers


def test_bad_signature_stale_timestamp_unknown_event_and_replay(
    live_receiver: Receiver, api_server: StandInApiServer
) -> None:
    alias = {"name": MANAGED, "alias": "champion", "version": "2"}
    before = api_server.count()
    body, headers = _delivery(ALIAS_CREATED, alias, secret="not-the-secret")
    assert post_delivery(live_receiver.url, body, headers) == 401
    body, headers = _delivery(ALIAS_CREATED, alias)
    assert (
        post_delivery(live_receiver.url, body, {k: v for k, v in headers.items() if k != "X-MLflow-Signature"}) == 401
    )
    assert post_delivery(live_receiver.url, body.replace(b'"2"', b'"1"'), headers) == 401  # body altered after signing
    body, headers = _delivery(ALIAS_CREATED, alias, age=301)
    assert post_delivery(live_receiver.url, body, headers) == 401  # correctly signed, but outside the window
    body, headers = _delivery("registered_model.created", {"name": MANAGED})
    assert post_delivery(live_receiver.url, body, headers) == 204
    assert _settle(api_server, 0.2) == before
    body, headers = _delivery(ALIAS_CREATED, alias)
    assert post_delivery(live_receiver.url, body, headers) == 200
    assert post_delivery(live_receiver.url, body, headers) == 200  # replayed inside the window: acknowledged only
    assert _settle(api_server, 0.5) == before + 1


def test_a_replay_reaching_the_other_replica_patches_the_same_value(
    live_receiver: Receiver, api_server: StandInApiServer, tmp_path: Path
) -> None:
    """Two receiver processes (the Deployment's 2 replicas), each with its own replay guard: the same
    delivery accepted by both PATCHes the same annotation value twice. The operator starts an update
    only when the value differs from the one its last update recorded (PKO v2.9.0,
    `stack_controller.go`: `isSynced`, `ReconcileRequestedPredicate`), so the replay is a no-op."""
    kubeconfig = api_server.kubeconfig(tmp_path / "kubeconfig")
    with receiver(tmp_path, SECRET, [f"{MANAGED}=champion,challenger"], kubeconfig) as other:
        before = api_server.count()
        body, headers = _delivery(ALIAS_CREATED, {"name": MANAGED, "alias": "champion", "version": "2"})
        assert post_delivery(live_receiver.url, body, headers) == 200
        assert post_delivery(other.url, body, headers) == 200  # the other replica has not seen it: it acts
        assert post_delivery(other.url, body, headers) == 200  # now it has: acknowledged only
        requests = api_server.wait_for(before + 2)
        assert _settle(api_server, 0.5) == before + 2
        values = [r.body["metadata"]["annotations"][RECONCILE_REQUEST_ANNOTATION] for r in requests[before:]]
        assert values == [reconcile_request_value(headers["X-MLflow-Delivery-Id"])] * 2


def test_a_delivery_answered_5xx_is_retried_by_mlflow_and_accepted(
    client: MlflowClient, live_receiver: Receiver, api_server: StandInApiServer
) -> None:
    before = api_server.count()
    api_server.fail_next = 1  # the API server fails once: the receiver answers 503
    client.set_registered_model_alias(MANAGED, "champion", "2")
    requests = api_server.wait_for(before + 2, timeout=20)
    assert _settle(api_server) == before + 2
    failed, succeeded = requests[before:]
    assert (failed.status, succeeded.status) == (500, 200)
    assert failed.body == succeeded.body  # MLflow's retry: same delivery, same annotation value
    records = [r for r in live_receiver.records() if r["delivery"] and r["model"] == MANAGED][-2:]
    assert [r["status"] for r in records] == [503, 200]
    assert records[0]["delivery"] == records[1]["delivery"]


def test_ensure_is_idempotent_against_the_real_server(
    client: MlflowClient, live_receiver: Receiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    command = ["webhook", "ensure", "--url", live_receiver.url, "--name", NAME, "--secret-file", str(secret_file)]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    assert main(command) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "unchanged"
    ours = [h for h in client.list_webhooks() if h.name == NAME]
    assert len(ours) == 1
    assert sorted(f"{e.entity.value}.{e.action.value}" for e in ours[0].events) == sorted(EVENTS)
    # A rotated secret is detected through the description's fingerprint and updated, once.
    secret_file.write_text("rotated-secret-value-abcdefghijklmnop")
    assert main(command) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "updated"
    assert main(command) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "unchanged"
    # A changed URL is updated in place (same webhook id), and changing back restores it.
    assert ensure_webhook(client, NAME, live_receiver.url + "?x=1", SECRET) == "updated"
    assert ensure_webhook(client, NAME, live_receiver.url, SECRET) == "updated"
    assert ensure_webhook(client, NAME, live_receiver.url, SECRET) == "unchanged"
    assert [h.webhook_id for h in client.list_webhooks() if h.name == NAME] == [ours[0].webhook_id]


def test_ensure_reports_a_refused_url_in_one_line(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    command = [
        "webhook",
        "ensure",
        "--url",
        "ftp://127.0.0.1/x",
        "--name",
        "refused",
        "--secret-file",
        str(secret_file),
    ]
    assert main(command) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("mlopsctl webhook ensure: MLflow refused:") and "scheme" in error
    assert len(error.splitlines()) == 1
    assert not [h for h in client.list_webhooks() if h.name == "refused"]
