"""Progressive delivery beyond canary steps, against a real MLflow (PostgreSQL, Azurite), a real
Prometheus scraping the steerable synthetic exporter, and a real HTTP receiver for event hooks on
127.0.0.1: the mirror phase, shadow and A/B analysis, manual gates and signed hooks.

Each scenario uses its own registered model; `mlopsctl rollout advance|approve` runs as a
subprocess exactly as the CronJob runs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from observability import promql
from rollout.planner import APPROVAL_TAG_PREFIX, REASON_TAG, STARTED_TAG, STATUS_TAG, WEIGHT_TAG, deployment_name
from tests.services.pacing import RunPacer
from tests.test_rollout_cli import _register

ROOT = Path(__file__).resolve().parent.parent
WINDOW = "20s"
STEP_INTERVAL_SECONDS = 1
MIN_REQUESTS = 30
AB_DURATION = "15s"
HOOK_SECRET = "hook-signing-secret-for-tests"


class HookReceiver:
    """A real HTTP endpoint recording every delivery; answers `status` (changeable)."""

    def __init__(self) -> None:
        self.status = 200
        self.deliveries: list[tuple[dict[str, str], str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                receiver.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def events(self, model: str) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.deliveries if json.loads(body)["model"] == model]


@pytest.fixture(scope="module")
def receiver() -> Iterator[HookReceiver]:
    hook = HookReceiver()
    hook.thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


ANALYSIS = {"window": WINDOW, "minRequests": MIN_REQUESTS, "maxErrorRate": 0.05, "maxP95LatencySeconds": 0.5,
            "maxP95RatioToStable": 4, "maxErrorRateAboveStable": 0.01,
            "stepInterval": f"{STEP_INTERVAL_SECONDS}s"}  # fmt: skip


def _models(hook_url: str) -> list[dict[str, Any]]:
    canary = {"strategy": "canary", "steps": [50, 100], "analysis": ANALYSIS}
    hook = {"url": hook_url, "timeoutSeconds": 5, "retries": 1, "retryBackoffSeconds": 0.1}
    return [
        {"name": "mirror-healthy", **canary, "mirror": {"percent": 50}, "hooks": [hook]},
        {"name": "mirror-errors", **canary, "mirror": {"percent": 50}},
        {"name": "gated", **canary, "approval": {"beforeFirstStep": True, "beforePromotion": True}},
        {"name": "hooked", **canary, "hooks": [hook]},
        {"name": "hooked-rollback", **canary, "hooks": [{**hook, "events": ["rollback"]}]},
        {"name": "no-gates", **canary},
        {"name": "shadow-ok", "strategy": "shadow", "analysis": ANALYSIS},
        {"name": "shadow-errors", "strategy": "shadow", "analysis": ANALYSIS},
        {
            "name": "ab-wins",
            "strategy": "ab",
            "match": [{"header": "x-group", "exact": "beta"}],
            "analysis": ANALYSIS,
            "ab": {"duration": AB_DURATION, "metric": "error_ratio", "maxRatioToStable": 1.0},
        },
        {
            "name": "ab-slower",
            "strategy": "ab",
            "analysis": ANALYSIS,
            "ab": {"duration": AB_DURATION, "metric": "latency_p95", "maxRatioToStable": 1.2},
        },
    ]


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory: pytest.TempPathFactory, mlflow_stack: Any, traffic: Any, receiver: Any) -> Path:
    _, prometheus = traffic
    document = yaml.safe_load((ROOT / "models" / "Pulumi.dev.yaml").read_text())
    document["config"]["mlops-models:rollout"] = {
        "trackingUri": mlflow_stack.tracking_uri,
        "prometheusUrl": prometheus.url,
        "models": _models(receiver.url),
    }
    path = tmp_path_factory.mktemp("stack") / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _env(mlflow_stack: Any) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_USERNAME": mlflow_stack.admin_username,
            "MLFLOW_TRACKING_PASSWORD": mlflow_stack.admin_password, "MLOPS_HOOK_SECRET": HOOK_SECRET}  # fmt: skip


def _cli(mlflow_stack: Any, stack_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mlopsctl", "rollout", *args, "--stack", "dev", "--stack-file", str(stack_file)]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env=_env(mlflow_stack)
    )


PACER = RunPacer(STEP_INTERVAL_SECONDS)


def _advance(mlflow_stack: Any, stack_file: Path, model: str) -> dict[str, Any]:
    PACER.wait(model)
    result = _cli(mlflow_stack, stack_file, "advance", "--model", model, "--json")
    PACER.ended(model)
    assert result.returncode in (0, 1), result.stderr
    [outcome] = json.loads(result.stdout)
    assert outcome["action"] == "none" or outcome["written"], outcome
    return dict(outcome)


def _serve(traffic: Any, model: str, candidate: str = "canary", **fields: Any) -> None:
    """Stable and candidate series for `model`; waits until Prometheus has enough candidate requests."""
    control, prometheus = traffic
    deployment = deployment_name(model)
    control.set_predictor(deployment, "stable", rps=30.0, error_ratio=0.0, latency_seconds=0.02, version="1")
    spec = {"rps": 30.0, "error_ratio": 0.0, "latency_seconds": 0.02, "version": "2", **fields}
    control.set_predictor(deployment, candidate, **spec)
    target = promql.Target(deployment, candidate, "models")
    requests, errors = promql.request_count(target, WINDOW), promql.error_count(target, WINDOW)
    # A status code's series appears with its first request, so the errors' increase shows a scrape
    # or two after the requests' (sooner on an idle machine): wait for both, or the analysis sees 0%.
    wants_errors = float(spec["error_ratio"]) > 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        values = prometheus.values(requests)
        enough = bool(values) and max(values.values()) >= MIN_REQUESTS * 1.5
        if enough and (not wants_errors or any(v > 0 for v in prometheus.values(errors).values())):
            return
        time.sleep(1)
    raise AssertionError(f"Prometheus never saw {MIN_REQUESTS} requests (and their errors) for {model}")


def _tags(client: MlflowClient, model: str, version: str = "2") -> dict[str, str]:
    return dict(client.get_model_version(model, version).tags)


def _aliases(client: MlflowClient, model: str) -> dict[str, str]:
    return dict(client.get_registered_model(model).aliases)


def _verify_signature(headers: dict[str, str], body: str) -> bool:
    """Independent of rollout.hooks: MLflow's webhook signature scheme, recomputed here."""
    message = f"{headers['x-mlops-delivery-id']}.{headers['x-mlops-timestamp']}.{body}".encode()
    expected = "v1," + base64.b64encode(hmac.new(HOOK_SECRET.encode(), message, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, headers["x-mlops-signature"])


def test_mirror_phase_is_analysed_before_user_traffic_shifts(
    registry: MlflowClient, traffic: Any, stack_file: Path, mlflow_stack: Any, receiver: HookReceiver
) -> None:
    _register(registry, "mirror-healthy")
    _serve(traffic, "mirror-healthy")
    outcome = _advance(mlflow_stack, stack_file, "mirror-healthy")
    assert (outcome["action"], outcome["weight"]) == ("start", 50), outcome
    assert "mirror phase healthy" in outcome["detail"]
    tags = _tags(registry, "mirror-healthy")
    assert tags[WEIGHT_TAG] == "50" and STARTED_TAG in tags
    assert receiver.events("mirror-healthy") == ["pre-rollout", "step"]
    # ... then the canary steps as usual
    assert _advance(mlflow_stack, stack_file, "mirror-healthy")["action"] == "advance"


def test_mirror_phase_rolls_back_a_candidate_worse_than_stable(
    registry: MlflowClient, traffic: Any, stack_file: Path, mlflow_stack: Any
) -> None:
    _register(registry, "mirror-errors")
    _serve(traffic, "mirror-errors", error_ratio=0.04)  # under maxErrorRate, 4 points above the stable
    outcome = _advance(mlflow_stack, stack_file, "mirror-errors")
    assert outcome["action"] == "rollback", outcome
    assert "mirror phase" in outcome["detail"] and "above the stable's" in outcome["detail"]
    assert _aliases(registry, "mirror-errors") == {"champion": "1"}
    assert WEIGHT_TAG not in _tags(registry, "mirror-errors")  # no user traffic ever shifted


def test_manual_gates_hold_until_approved_in_the_registry(
    registry: MlflowClient, traffic: Any, stack_file: Path, mlflow_stack: Any
) -> None:
    model = "gated"
    _register(registry, model)
    _serve(traffic, model)
    held = _advance(mlflow_stack, stack_file, model)
    assert held["action"] == "hold" and "waiting for approval before the first step" in held["detail"]
    assert WEIGHT_TAG not in _tags(registry, model)
    approve = _cli(mlflow_stack, stack_file, "approve", model, "--json")
    assert approve.returncode == 0, approve.stderr
    assert json.loads(approve.stdout)["gate"] == "first-step"
    assert _tags(registry, model)[APPROVAL_TAG_PREFIX + "first-step"].startswith(mlflow_stack.admin_username)
    assert (_advance(mlflow_stack, stack_file, model)["action"], _tags(registry, model)[WEIGHT_TAG]) == ("start", "50")
    assert _advance(mlflow_stack, stack_file, model)["weight"] == 100
    waiting = _advance(mlflow_stack, stack_file, model)
    assert waiting["action"] == "hold" and "waiting for approval before promotion" in waiting["detail"]
    assert _aliases(registry, model) == {"champion": "1", "challenger": "2"}
    assert _cli(mlflow_stack, stack_file, "approve", model).returncode == 0  # the promotion gate now
    assert _advance(mlflow_stack, stack_file, model)["action"] == "promote"
    assert _aliases(registry, model) == {"champion": "2"}


def test_approve_without_a_gate_is_a_usage_error(stack_file: Path, mlflow_stack: Any, registry: MlflowClient) -> None:
    _register(registry, "no-gates")
    result = _cli(mlflow_stack, stack_file, "approve", "no-gates", "--gate", "promotion")
    assert result.returncode == 2 and "no 'promotion' gate configured" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_failing_pre_rollout_hook_holds_and_every_event_is_signed(
    registry: MlflowClient, traffic: Any, stack_file: Path, mlflow_stack: Any, receiver: HookReceiver
) -> None:
    model = "hooked"
    _register(registry, model)
    _serve(traffic, model)
    receiver.status = 503
    try:
        held = _advance(mlflow_stack, stack_file, model)
    finally:
        receiver.status = 200
    assert held["action"] == "hold" and "pre-rollout hook" in held["detail"]
    assert "HTTP 503 (after 2 attempts)" in held["detail"]  # still failing after its retry: held
    assert WEIGHT_TAG not in _tags(registry, model)
    assert _advance(mlflow_stack, stack_file, model)["action"] == "start"
    assert _advance(mlflow_stack, stack_file, model)["action"] == "advance"
    assert _advance(mlflow_stack, stack_file, model)["action"] == "promote"
    assert receiver.events(model) == ["pre-rollout"] * 3 + ["step", "step", "promotion"]
    mine = [(h, b) for h, b in receiver.deliveries if json.loads(b)["model"] == model]
    first, retry = mine[0][0], mine[1][0]  # the held delivery and its retry: one delivery id
    assert first["x-mlops-delivery-id"] == retry["x-mlops-delivery-id"] != mine[2][0]["x-mlops-delivery-id"]
    assert all(_verify_signature(headers, body) for headers, body in mine)
    promotion = json.loads(mine[-1][1])
    assert promotion["candidateVersion"] == "2" and promotion["stableVersion"] == "1"


def test_rollback_hook(
    registry: MlflowClient, traffic: Any, stack_file: Path, mlflow_stack: Any, receiver: Any
) -> None:
    model = "hooked-rollback"
    _register(registry, model)
    _serve(traffic, model, error_ratio=0.3)
    assert _advance(mlflow_stack, stack_file, model)["action"] == "rollback"
    assert receiver.events(model) == ["rollback"]


def test_shadow_is_compared_to_stable_then_promoted_or_rolled_back(
    registry: MlflowClient, traffic: Any, stack_file: Path, mlflow_stack: Any
) -> None:
    _register(registry, "shadow-ok")
    _register(registry, "shadow-errors")
    _serve(traffic, "shadow-ok", candidate="shadow", latency_seconds=0.03)
    _serve(traffic, "shadow-errors", candidate="shadow", error_ratio=0.03)
    ok = _advance(mlflow_stack, stack_file, "shadow-ok")
    assert ok["action"] == "promote" and "shadow healthy" in ok["detail"], ok
    assert _aliases(registry, "shadow-ok") == {"champion": "2"}
    bad = _advance(mlflow_stack, stack_file, "shadow-errors")
    assert bad["action"] == "rollback" and "above the stable's" in bad["detail"], bad
    assert "challenger" not in _aliases(registry, "shadow-errors")


def test_ab_runs_its_duration_then_decides_on_its_metric(
    registry: MlflowClient, traffic: Any, stack_file: Path, mlflow_stack: Any
) -> None:
    for model in ("ab-wins", "ab-slower"):
        _register(registry, model)
    _serve(traffic, "ab-wins")  # same error ratio as stable (0): not worse
    _serve(traffic, "ab-slower", latency_seconds=0.06)  # p95 3x the stable's, limit 1.2x
    for model in ("ab-wins", "ab-slower"):
        assert _advance(mlflow_stack, stack_file, model)["action"] == "start"
        running = _advance(mlflow_stack, stack_file, model)
        assert running["action"] == "hold" and "A/B running" in running["detail"], running
    time.sleep(16)
    wins = _advance(mlflow_stack, stack_file, "ab-wins")
    assert wins["action"] == "promote" and "A/B won: error_ratio" in wins["detail"], wins
    assert _aliases(registry, "ab-wins") == {"champion": "2"}
    slower = _advance(mlflow_stack, stack_file, "ab-slower")
    assert slower["action"] == "rollback" and "A/B lost: latency_p95" in slower["detail"], slower
    tags = _tags(registry, "ab-slower")
    assert tags[STATUS_TAG] == "rolled_back" and "latency_p95" in tags[REASON_TAG]
