"""`mlopsctl rollout` against a real MLflow (PostgreSQL, Azurite) and a real Prometheus.

Prometheus scrapes the synthetic exporter, which serves Seldon-executor-shaped series for a
stable and a candidate predictor per model with controlled error ratios, latencies and volumes.
Each scenario uses its own registered model, so they share one MLflow and one Prometheus.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from mlopsctl import rollout_context, rollout_decisions
from observability import alerts, dashboards, promql
from rollout.planner import REASON_TAG, STATUS_TAG, STEP_AT_TAG, WEIGHT_TAG, deployment_name
from tests.services.exporter import TrafficControl
from tests.services.pacing import RunPacer
from tests.services.prometheus import PrometheusServer
from tests.services.registry import register_run_versions

ROOT = Path(__file__).resolve().parent.parent
WINDOW = "30s"
MIN_REQUESTS = 40
STEPS = [10, 50, 100]
STEP_INTERVAL_SECONDS = 1


MODELS = ("walks-healthy", "errors", "slow", "idle", "overlap", "dry-run", "dwells")
DWELLING = "dwells"
"""Its canary steps wait `stepInterval: 1h`; the others' 1 s lets consecutive runs advance."""


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory: pytest.TempPathFactory, mlflow_stack: Any, traffic: Any) -> Path:
    _, prometheus = traffic
    document = yaml.safe_load((ROOT / "models" / "Pulumi.dev.yaml").read_text())
    analysis: dict[str, Any] = {
        "window": WINDOW,
        "minRequests": MIN_REQUESTS,
        "maxErrorRate": 0.05,
        "maxP95LatencySeconds": 0.5,
        "maxP95RatioToStable": 4,
    }
    models: list[dict[str, Any]] = [
        {
            "name": name,
            "strategy": "canary",
            "steps": STEPS,
            "analysis": {**analysis, "stepInterval": "1h" if name == DWELLING else f"{STEP_INTERVAL_SECONDS}s"},
        }
        for name in MODELS
    ]
    document["config"]["mlops-models:rollout"] = {
        "trackingUri": mlflow_stack.tracking_uri,
        "prometheusUrl": prometheus.url,
        "models": models,
    }
    path = tmp_path_factory.mktemp("stack") / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _register(client: MlflowClient, model: str) -> None:
    """Versions 1 (champion) and 2 (challenger), each from a run with a model directory."""
    assert register_run_versions(client, model) == ["1", "2"]
    client.set_registered_model_alias(model, "champion", "1")
    client.set_registered_model_alias(model, "challenger", "2")


def _serve(traffic: tuple[TrafficControl, PrometheusServer], model: str, **canary: Any) -> None:
    control, prometheus = traffic
    deployment = deployment_name(model)
    control.set_predictor(deployment, "stable", rps=30.0, error_ratio=0.0, latency_seconds=0.02, version="1")
    control.set_predictor(
        deployment, "canary", **{"rps": 30.0, "error_ratio": 0.0, "latency_seconds": 0.02, "version": "2", **canary}
    )
    if canary.get("rps", 30.0) > 0:
        expression = promql.request_count(promql.Target(deployment, "canary", "models"), WINDOW)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            values = prometheus.values(expression)
            if values and max(values.values()) >= MIN_REQUESTS * 1.5:
                return
            time.sleep(1)
        raise AssertionError(f"Prometheus never saw {MIN_REQUESTS} requests for {model}")


def _advance_command(stack_file: Path, model: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mlopsctl", "rollout", "advance", "--stack", "dev", "--stack-file",
            str(stack_file), "--model", model, "--json", *extra]  # fmt: skip


PACER = RunPacer(STEP_INTERVAL_SECONDS)


def _advance(stack_file: Path, model: str, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    PACER.wait(model)
    result = subprocess.run(
        _advance_command(stack_file, model, *extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    PACER.ended(model)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def _tags(client: MlflowClient, model: str, version: str) -> dict[str, str]:
    return dict(client.get_model_version(model, version).tags)


def _aliases(client: MlflowClient, model: str) -> dict[str, str]:
    return dict(client.get_registered_model(model).aliases)


def test_healthy_canary_walks_every_step_and_is_promoted(
    registry: MlflowClient, traffic: Any, stack_file: Path
) -> None:
    model = "walks-healthy"
    _register(registry, model)
    _serve(traffic, model)
    seen = []
    for _ in range(len(STEPS) + 1):
        code, [outcome] = _advance(stack_file, model)
        assert code == 0 and outcome["written"], outcome
        seen.append((outcome["action"], outcome["weight"]))
    # The first step (served since the alias was set) dwells from the first healthy analysis on.
    assert seen == [("hold", None), ("advance", 50), ("advance", 100), ("promote", None)]
    assert _aliases(registry, model) == {"champion": "2"}
    assert _tags(registry, model, "2")[STATUS_TAG] == "promoted"
    assert _tags(registry, model, "1")[STATUS_TAG] == "retired"


def test_a_canary_stays_at_its_step_for_the_step_interval(
    registry: MlflowClient, traffic: Any, stack_file: Path
) -> None:
    """Healthy, with `stepInterval: 1h`: the first analysis records when the first step began, later
    ones hold (however often they run) until the step has served its interval, then advance."""
    model = DWELLING
    _register(registry, model)
    _serve(traffic, model)
    _, [first] = _advance(stack_file, model)
    assert first["action"] == "hold" and first["detail"].startswith("at step 10% from now: stepInterval 1h"), first
    step_at = _tags(registry, model, "2")[STEP_AT_TAG]
    _, [held] = _advance(stack_file, model)
    assert held["action"] == "hold" and held["detail"].startswith("at step 10% for "), held
    assert "of stepInterval 1h, then advance" in held["detail"]
    tags = _tags(registry, model, "2")
    assert WEIGHT_TAG not in tags and tags[STEP_AT_TAG] == step_at  # a hold does not restart the clock
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1, seconds=5)).isoformat(timespec="seconds")
    registry.set_model_version_tag(model, "2", STEP_AT_TAG, an_hour_ago)
    _, [advanced] = _advance(stack_file, model)
    assert (advanced["action"], advanced["weight"]) == ("advance", 50)
    assert _tags(registry, model, "2")[STEP_AT_TAG] > an_hour_ago  # the new step's clock
    _, [again] = _advance(stack_file, model)
    assert again["action"] == "hold" and again["detail"].startswith("at step 50% for "), again


def test_erroring_canary_is_rolled_back_with_a_reason(registry: MlflowClient, traffic: Any, stack_file: Path) -> None:
    model = "errors"
    _register(registry, model)
    _serve(traffic, model, error_ratio=0.2)
    code, [outcome] = _advance(stack_file, model)
    assert code == 1 and outcome["action"] == "rollback" and outcome["written"]
    assert _aliases(registry, model) == {"champion": "1"}
    tags = _tags(registry, model, "2")
    assert tags[STATUS_TAG] == "rolled_back" and "error rate" in tags[REASON_TAG]


def test_slow_canary_is_rolled_back(registry: MlflowClient, traffic: Any, stack_file: Path) -> None:
    model = "slow"
    _register(registry, model)
    _serve(traffic, model, latency_seconds=0.9)
    code, [outcome] = _advance(stack_file, model)
    assert code == 1 and outcome["action"] == "rollback"
    assert "p95 latency" in _tags(registry, model, "2")[REASON_TAG]
    assert "challenger" not in _aliases(registry, model)


def test_no_traffic_holds(registry: MlflowClient, traffic: Any, stack_file: Path) -> None:
    model = "idle"
    _register(registry, model)
    _serve(traffic, model, rps=0.0)
    code, [outcome] = _advance(stack_file, model)
    assert code == 0 and outcome["action"] == "hold"
    assert "too little traffic" in outcome["detail"]
    assert _aliases(registry, model) == {"champion": "1", "challenger": "2"}
    assert WEIGHT_TAG not in _tags(registry, model, "2") or _tags(registry, model, "2")[WEIGHT_TAG] == "10"


def test_two_overlapping_runs_make_one_decision(registry: MlflowClient, traffic: Any, stack_file: Path) -> None:
    model = "overlap"
    _register(registry, model)
    _serve(traffic, model)
    _, [first] = _advance(stack_file, model)
    assert first["action"] == "hold"  # records when the first step began (stepInterval 1s)
    PACER.wait(model)  # both runs then find the first step served
    command = _advance_command(stack_file, model)
    runs = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outcomes = [json.loads(run.communicate(timeout=120)[0])[0] for run in runs]
    assert sorted(o["written"] for o in outcomes) == [False, True], outcomes
    assert _tags(registry, model, "2")[WEIGHT_TAG] == "50"  # one step, not two


def test_dry_run_writes_nothing(registry: MlflowClient, traffic: Any, stack_file: Path) -> None:
    model = "dry-run"
    _register(registry, model)
    _serve(traffic, model, error_ratio=0.5)
    before = (_aliases(registry, model), _tags(registry, model, "2"))
    code, [outcome] = _advance(stack_file, model, "--dry-run")
    assert outcome["action"] == "rollback" and not outcome["written"] and code == 1
    assert (_aliases(registry, model), _tags(registry, model, "2")) == before


def test_bad_cli_input_is_one_line_and_exit_2(stack_file: Path) -> None:
    for args in (
        ["rollout", "promote", "no-such-model", "--stack", "dev", "--stack-file", str(stack_file)],
        ["rollout", "rollback", "walks-healthy", "--stack", "dev"],
        ["rollout", "advance", "--stack", "nope"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "mlopsctl", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_unreadable_password_file_is_one_line_and_exit_2(stack_file: Path, tmp_path: Path) -> None:
    absent = tmp_path / "absent"
    result = subprocess.run(
        _advance_command(stack_file, "walks-healthy"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "MLFLOW_TRACKING_PASSWORD_FILE": str(absent)},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"mlopsctl: cannot read MLFLOW_TRACKING_PASSWORD_FILE {absent}: No such file or directory"
    )


def test_parallel_must_be_positive(stack_file: Path) -> None:
    result = subprocess.run(
        _advance_command(stack_file, "walks-healthy", "--parallel", "0"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "mlopsctl: --parallel must be at least 1, not 0"


def _shape(expression: str) -> str:
    """An expression with its label values, namespace matcher and windows abstracted away."""
    shape = re.sub(r',?namespace=~?"[^"]*"', "", expression)
    shape = re.sub(r'(deployment_name|predictor_name)=~?"[^"]*"', r"\1=V", shape)
    shape = re.sub(r"\[[^\]]+\]", "[W]", shape)
    return re.sub(r"\s+", "", shape.replace("{,", "{"))


def test_the_cli_sends_the_dashboards_promql(traffic: Any, stack_file: Path) -> None:
    """Every query of the analysis is, signal for signal, an expression of the dashboards or alerts."""
    assert traffic  # Prometheus runs: the stack file points the CLI at it
    args = argparse.Namespace(
        stack="dev", stack_file=stack_file, tracking_uri=None, prometheus_url=None, namespace=None
    )
    context = rollout_context.build_context(args, {}, need_prometheus=True)
    model = context.settings.rollout.models[0]
    rollout_decisions.measure(context, model)
    assert context.prometheus is not None and len(context.prometheus.queries) == 5
    dashboard = dashboards.model_rollouts()
    known = {_shape(expr) for _, expr in dashboards.dashboard_expressions(dashboard)}
    rules = alerts.model_alerts(alerts.AlertThresholds())
    alert_shapes = [_shape(rule["expr"]) for rule in rules]
    for query in context.prometheus.queries:
        shape = _shape(query)
        assert shape in known or any(shape in expr for expr in alert_shapes), query
