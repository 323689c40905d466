"""The receiver's pure logic: signature, replay window, event filter; and the Kubernetes client configuration."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from mlflow.webhooks.delivery import _generate_hmac_signature

from harness.mock_engine import MODELS_DIR
from mlopsctl.cli import build_parser
from mlopsctl.kube_api import KubeConfigError, from_kubeconfig, in_cluster, load_connection, reconcile_patch
from mlopsctl.webhook_cli import UsageError, _watch
from rollout.planner import APPROVAL_TAG_PREFIX, PLAN_TAGS, STARTED_TAG, STATUS_TAG, WEIGHT_TAG
from rollout.webhooks import (
    ALIAS_CREATED,
    ALIAS_DELETED,
    TAG_SET,
    ReplayGuard,
    Watch,
    WatchedModel,
    classify,
    parse_watch_spec,
    reconcile_request_value,
    sign,
    signature_valid,
    timestamp_fresh,
    verdict,
    watch_spec,
)
from settings.stack_file import models_settings_from_stack_file

SECRET = "s3cret-value"
WATCH = Watch({"fraud": WatchedModel("fraud", frozenset({"champion", "challenger"}))}, frozenset(PLAN_TAGS))
NOW = 1_800_000_000.0


@given(st.text(min_size=1), st.text(min_size=1), st.text())
def test_signature_is_mlflows(secret: str, delivery_id: str, payload: str) -> None:
    timestamp = "1800000000"
    ours = sign(secret, delivery_id, timestamp, payload.encode())
    assert ours == _generate_hmac_signature(secret, delivery_id, timestamp, payload)
    assert signature_valid(secret, delivery_id, timestamp, payload.encode(), ours)


def test_signature_rejects_other_secret_body_id_timestamp_and_version() -> None:
    body = b'{"a": 1}'
    good = sign(SECRET, "id", "100", body)
    assert signature_valid(SECRET, "id", "100", body, good)
    assert signature_valid(SECRET, "id", "100", body, f"v1,AAAA {good}")  # one of several
    assert not signature_valid("other", "id", "100", body, good)
    assert not signature_valid(SECRET, "id", "100", b'{"a": 2}', good)
    assert not signature_valid(SECRET, "id2", "100", body, good)
    assert not signature_valid(SECRET, "id", "101", body, good)
    assert not signature_valid(SECRET, "id", "100", body, "v2" + good[2:])
    assert not signature_valid(SECRET, "id", "100", body, "")


def test_replay_window_is_symmetric_and_rejects_garbage() -> None:
    assert timestamp_fresh(str(int(NOW)), NOW, 300)
    assert timestamp_fresh(str(int(NOW) - 300), NOW, 300)
    assert not timestamp_fresh(str(int(NOW) - 301), NOW, 300)
    assert not timestamp_fresh(str(int(NOW) + 301), NOW, 300)
    for bad in ("", "-5", "1.5", "abc", "1e9"):
        assert not timestamp_fresh(bad, NOW, 300)


def _payload(event: str, **data: str) -> dict[str, object]:
    entity, action = event.split(".")
    return {"entity": entity, "action": action, "timestamp": "2026-11-27T00:00:00+00:00", "data": data}


@pytest.mark.parametrize(
    ("payload", "action"),
    [
        (_payload(ALIAS_CREATED, name="fraud", alias="challenger", version="2"), "reconcile"),
        (_payload(ALIAS_DELETED, name="fraud", alias="challenger"), "reconcile"),
        (_payload(TAG_SET, name="fraud", version="2", key=WEIGHT_TAG, value="25"), "reconcile"),
        (_payload("model_version_tag.deleted", name="fraud", version="2", key=WEIGHT_TAG), "reconcile"),
        (_payload(TAG_SET, name="fraud", version="2", key=STARTED_TAG, value="2026-11-27T00:00:00+00:00"), "reconcile"),
        (_payload("model_version_tag.deleted", name="fraud", version="2", key=STARTED_TAG), "reconcile"),
        (_payload(TAG_SET, name="fraud", version="2", key=STATUS_TAG, value="holding"), "ignore"),
        (_payload(TAG_SET, name="fraud", version="2", key=APPROVAL_TAG_PREFIX + "promotion", value="x"), "ignore"),
        (_payload(ALIAS_CREATED, name="other", alias="champion", version="1"), "ignore"),
        (_payload(ALIAS_CREATED, name="fraud", alias="staging", version="1"), "ignore"),
        (_payload(TAG_SET, name="fraud", version="1", key="owner", value="x"), "ignore"),
        (_payload("registered_model.created", name="fraud"), "ignore"),
        (_payload("prompt_alias.created", name="fraud", alias="champion", version="1"), "ignore"),
        ({"entity": "model_version_alias"}, "ignore"),
        ({"entity": "model_version_alias", "action": "created", "data": "x"}, "ignore"),
    ],
)
def test_classify(payload: dict[str, object], action: str) -> None:
    assert classify(payload, WATCH).action == action


def _headers(body: bytes, secret: str = SECRET, timestamp: float = NOW, delivery: str | None = None) -> dict[str, str]:
    delivery = delivery or str(uuid.uuid4())
    ts = str(int(timestamp))
    return {
        "x-mlflow-delivery-id": delivery,
        "x-mlflow-timestamp": ts,
        "x-mlflow-signature": sign(secret, delivery, ts, body),
    }


def test_verdicts() -> None:
    guard = ReplayGuard(300)
    alias = json.dumps(_payload(ALIAS_CREATED, name="fraud", alias="champion", version="3")).encode()
    headers = _headers(alias)
    assert verdict(headers, alias, secret=SECRET, watch=WATCH, guard=guard, now=NOW).reconcile
    # Not recorded (the reconcile request failed, 5xx): MLflow's retry is accepted again.
    assert verdict(headers, alias, secret=SECRET, watch=WATCH, guard=guard, now=NOW + 7).reconcile
    guard.record(headers["x-mlflow-delivery-id"], headers["x-mlflow-timestamp"], NOW + 7)
    replay = verdict(headers, alias, secret=SECRET, watch=WATCH, guard=guard, now=NOW + 8)
    assert (replay.status, replay.reconcile) == (200, False)
    assert (
        verdict(_headers(alias, secret="wrong"), alias, secret=SECRET, watch=WATCH, guard=guard, now=NOW).status == 401
    )
    assert (
        verdict(_headers(alias, timestamp=NOW - 301), alias, secret=SECRET, watch=WATCH, guard=guard, now=NOW).status
        == 401
    )
    assert verdict({}, alias, secret=SECRET, watch=WATCH, guard=guard, now=NOW).status == 401
    unknown = json.dumps(_payload("registered_model.created", name="fraud")).encode()
    assert verdict(_headers(unknown), unknown, secret=SECRET, watch=WATCH, guard=guard, now=NOW).status == 204
    assert verdict(_headers(b"[1]"), b"[1]", secret=SECRET, watch=WATCH, guard=guard, now=NOW).status == 400


def test_replay_guard_forgets_deliveries_outside_twice_the_window() -> None:
    guard = ReplayGuard(300)
    guard.record("old", str(int(NOW)), NOW)
    guard.record("new", str(int(NOW) + 601), NOW + 601)
    assert not guard.seen("old") and guard.seen("new") and len(guard) == 1


def test_reconcile_value_is_unique_per_delivery_and_stable_for_retries() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert reconcile_request_value(a) == reconcile_request_value(a) != reconcile_request_value(b)
    assert reconcile_patch("x") == {"metadata": {"annotations": {"pulumi.com/reconciliation-request": "x"}}}


def test_watch_spec_round_trip_and_errors() -> None:
    model = parse_watch_spec("fraud-detector=champion, challenger")
    assert model == WatchedModel("fraud-detector", frozenset({"champion", "challenger"}))
    assert parse_watch_spec(watch_spec(model)) == model
    for bad in ("fraud", "=champion", "fraud=", "fraud=,"):
        with pytest.raises(ValueError, match=r"expected|alias"):
            parse_watch_spec(bad)


# --- Kubernetes client configuration -------------------------------------------------------


def test_in_cluster_configuration(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("token-1\n")
    (tmp_path / "ca.crt").write_text("ca")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    connection = in_cluster(env, tmp_path)
    assert connection is not None
    assert connection.server == "https://10.0.0.1:443" and connection.verify == str(tmp_path / "ca.crt")
    assert connection.bearer() == "token-1"
    (tmp_path / "token").write_text("token-2")  # kubelet rotated the projected token
    assert connection.bearer() == "token-2"
    assert in_cluster({}, tmp_path) is None
    assert in_cluster(env, tmp_path / "missing") is None


def test_kubeconfig_configuration(tmp_path: Path) -> None:
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    document = {
        "current-context": "b",
        "clusters": [
            {"name": "one", "cluster": {"server": "https://one:6443", "insecure-skip-tls-verify": True}},
            {"name": "two", "cluster": {"server": "https://two:6443/", "certificate-authority-data": ca}},
        ],
        "users": [{"name": "u", "user": {"token": "abc"}}],
        "contexts": [
            {"name": "a", "context": {"cluster": "one", "user": "u"}},
            {"name": "b", "context": {"cluster": "two", "user": "u"}},
        ],
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(document))
    connection = load_connection({"KUBECONFIG": f"{path}:/nonexistent"})
    assert connection.server == "https://two:6443" and connection.bearer() == "abc"
    assert (
        isinstance(connection.verify, str) and Path(connection.verify).read_bytes() == b"-----BEGIN CERTIFICATE-----\n"
    )
    document["current-context"] = "a"
    path.write_text(yaml.safe_dump(document))
    assert from_kubeconfig(path).verify is False
    document["current-context"] = "missing"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(KubeConfigError, match="no context named 'missing'"):
        from_kubeconfig(path)
    with pytest.raises(KubeConfigError, match="no kubeconfig"):
        load_connection({"KUBECONFIG": str(tmp_path / "absent")})


def test_serve_watches_the_models_stacks_served_models_and_their_aliases() -> None:
    parser = build_parser()
    args = parser.parse_args(["webhook", "serve", "--stack", "dev", "--model", "extra=champion"])
    watch = _watch(args)
    settings = models_settings_from_stack_file(MODELS_DIR / "Pulumi.dev.yaml")
    assert set(watch.models) == {m.name for m in settings.rollout.models} | {"extra"}
    for model in settings.rollout.models:
        assert watch.models[model.name].aliases == {model.stable_alias, model.canary_alias}
    assert watch.tag_keys == set(PLAN_TAGS) == {WEIGHT_TAG, STARTED_TAG}  # the planner's, not a copy
    with pytest.raises(UsageError, match="no models stack file"):
        _watch(parser.parse_args(["webhook", "serve", "--stack", "nope"]))
    with pytest.raises(UsageError, match="no managed models"):
        _watch(parser.parse_args(["webhook", "serve"]))
