"""Shared fixtures: the real program evaluated per committed stack under the mock engine."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings

from harness.mock_engine import MODELS_DIR, Evaluation, evaluate, stack_config
from layout import cluster_layout
from observability import alerts
from settings import SettingsError
from tests.services import SYNTHETIC_MODEL
from tests.services.exporter import SyntheticExporter, TrafficControl
from tests.services.prometheus import PrometheusServer, PrometheusUnavailableError

if TYPE_CHECKING:
    from mlflow import MlflowClient

# Real services on 127.0.0.1 (PostgreSQL, Azurite, MLflow, nginx) as session fixtures.
pytest_plugins = ("tests.services.plugin",)

STACKS = ("dev", "prod")

# Property tests judge correctness, not speed (performance is shown by benchmarks/). Hypothesis's
# default 200 ms wall-clock deadline per example fails a microsecond test that the loaded 2-core
# machine merely descheduled; without a deadline its slow-input-generation health check also
# allows 30 s instead of 1 s. Examples, strategies and shrinking stay as they are.
settings.register_profile("mlops-platform", deadline=None)
settings.load_profile("mlops-platform")


@pytest.fixture(scope="session")
def evaluations() -> dict[str, Evaluation]:
    """Each committed stack evaluated once per session; tests must not mutate the result."""
    results = {stack: evaluate(stack) for stack in STACKS}
    for stack, result in results.items():
        if result.error is not None:
            raise AssertionError(f"stack {stack} failed to evaluate: {result.error!r}")
    return results


@pytest.fixture(scope="session")
def dev(evaluations: dict[str, Evaluation]) -> Evaluation:
    return evaluations["dev"]


@pytest.fixture(scope="session")
def prod(evaluations: dict[str, Evaluation]) -> Evaluation:
    return evaluations["prod"]


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, evaluations: dict[str, Evaluation]) -> Evaluation:
    """Parametrises a test over every committed stack."""
    return evaluations[request.param]


@pytest.fixture(scope="session")
def models_evaluations() -> dict[str, Evaluation]:
    """The models project (`models/`) per committed stack, from the example snapshot and the
    example platform outputs (`examples/platform-outputs.<stack>.json`)."""
    results = {stack: evaluate(stack, project_dir=MODELS_DIR) for stack in STACKS}
    for stack, result in results.items():
        if result.error is not None:
            raise AssertionError(f"models stack {stack} failed to evaluate: {result.error!r}")
    return results


@pytest.fixture(params=STACKS)
def models_stack(request: pytest.FixtureRequest, models_evaluations: dict[str, Evaluation]) -> Evaluation:
    """Parametrises a test over every committed models stack."""
    return models_evaluations[request.param]


def evaluate_with(stack: str, change: Callable[[dict[str, str]], None]) -> Evaluation:
    """Evaluate `stack` with its committed configuration changed by `change` (engine text values)."""
    config, secret_keys = stack_config(stack)
    change(config)
    return evaluate(stack, config, secret_keys)


def assert_refused(evaluation: Evaluation, keys: list[str], explanation: str) -> None:
    """Bad config: the program stopped with a `SettingsError` before declaring any resource, naming
    exactly `keys` (each as `mlops-platform:<key>:` in the message) and saying `explanation`."""
    assert isinstance(evaluation.error, SettingsError), evaluation.error
    assert evaluation.resources == []
    assert evaluation.error.keys == keys
    message = str(evaluation.error)
    for key in keys:
        assert f"mlops-platform:{key}:" in message
    assert explanation in message


# --- real services: a synthetic exporter scraped by a real Prometheus (tests/services) ---------


@pytest.fixture(scope="session")
def synthetic_exporter() -> Iterator[SyntheticExporter]:
    """Seldon-executor, MLflow and kube-state-metrics shaped series, steerable through `.control`.

    Tests that change traffic should use their own model names (`control.set_predictor(...)`) so
    the session's other tests keep their expectations.
    """
    exporter = SyntheticExporter().start()
    exporter.control.set_predictor(
        SYNTHETIC_MODEL, "stable", rps=18, error_ratio=0.01, latency_seconds=0.02, version="3", replicas=2
    )
    exporter.control.set_predictor(
        SYNTHETIC_MODEL,
        "canary",
        rps=2,
        error_ratio=0.02,
        latency_seconds=0.04,
        version="4",
        feedback_rps=10,
        replicas=1,
    )
    for role in cluster_layout.MLFLOW_ROLES:
        exporter.control.set_mlflow_role(role, rps=5, error_ratio=0.02, latency_seconds=0.05)
    yield exporter
    exporter.stop()


@pytest.fixture(scope="session")
def live_prometheus(synthetic_exporter: SyntheticExporter) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping the exporter every second, with the platform's rules loaded
    (plus declared-traffic rules for `SYNTHETIC_MODEL`). Skips when the binary is missing."""
    declared = [
        alerts.DeclaredPredictor("models", SYNTHETIC_MODEL, "stable", 90, "3"),
        alerts.DeclaredPredictor("models", SYNTHETIC_MODEL, "canary", 10, "4"),
    ]
    groups = alerts.rule_groups(alerts.AlertThresholds(), "mlflow", cluster_layout.MLFLOW_ROLES, declared)
    try:
        server = PrometheusServer([f"127.0.0.1:{synthetic_exporter.port}"], groups).start()
    except PrometheusUnavailableError as error:
        pytest.skip(str(error))
    try:
        yield server
    finally:
        server.stop()


# --- rollout decisions against a real Prometheus and a real MLflow registry --------------------


@pytest.fixture(scope="module")
def traffic() -> Iterator[tuple[TrafficControl, PrometheusServer]]:
    """A steerable synthetic exporter scraped every second by a real Prometheus, per test module."""
    control = TrafficControl()
    exporter = SyntheticExporter(control).start()
    prometheus = PrometheusServer([f"127.0.0.1:{exporter.port}"], scrape_interval="1s").start()
    try:
        yield control, prometheus
    finally:
        prometheus.stop()
        exporter.stop()


@pytest.fixture(scope="module")
def registry(mlflow_stack: Any) -> MlflowClient:
    """An MLflow client on the real MLflow stack, logged in as its admin (the rollout CLI's user)."""
    from mlflow import MlflowClient  # noqa: PLC0415 - only the modules that use a registry pay for the import

    os.environ["MLFLOW_TRACKING_USERNAME"] = mlflow_stack.admin_username
    os.environ["MLFLOW_TRACKING_PASSWORD"] = mlflow_stack.admin_password
    return MlflowClient(tracking_uri=mlflow_stack.tracking_uri, registry_uri=mlflow_stack.tracking_uri)
