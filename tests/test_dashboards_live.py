"""Every dashboard query, run by a real Prometheus against Seldon-executor-shaped series."""

from __future__ import annotations

import json
import math
import time
import urllib.request
from collections.abc import Callable

import pytest

from layout import cluster_layout
from observability import dashboards, promql
from observability.promql import Target
from tests.services import SYNTHETIC_MODEL
from tests.services.exporter import SyntheticExporter
from tests.services.prometheus import PrometheusServer

GRAFANA_VALUES = {"model": ".*", "predictor": ".*", "role": ".*", "__rate_interval": "15s"}


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def _finite_values(prometheus: PrometheusServer, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {k: v for k, v in prometheus.values(expr).items() if math.isfinite(v)}


PLATFORM_DASHBOARDS = dashboards.platform_dashboards("mlflow", cluster_layout.MLFLOW_ROLES)
QUERIES = [
    pytest.param(expr, id=f"{dashboard['title']}: {title} #{index}")
    for dashboard in PLATFORM_DASHBOARDS.values()
    for index, (title, expr) in enumerate(dashboards.dashboard_expressions(dashboard))
]


@pytest.mark.parametrize("expr", QUERIES)
def test_dashboard_query_returns_data(live_prometheus: PrometheusServer, expr: str) -> None:
    query = dashboards.substitute_variables(expr, GRAFANA_VALUES)
    assert _eventually(lambda: bool(_finite_values(live_prometheus, query))), f"no data for {query}"


def test_model_rollouts_dashboard_shows_each_predictor(live_prometheus: PrometheusServer) -> None:
    model = Target(SYNTHETIC_MODEL)
    share = promql.traffic_share(model, "30s")
    assert _eventually(lambda: len(_finite_values(live_prometheus, share)) == 2)
    observed = {dict(k)["predictor_name"]: v for k, v in live_prometheus.values(share).items()}
    # The canary also answers 10 feedback calls a second: not model traffic, so not counted.
    assert observed["stable"] == pytest.approx(0.9, abs=0.08) and observed["canary"] == pytest.approx(0.1, abs=0.08)
    declared = {
        dict(k)["predictor_name"]: v for k, v in live_prometheus.values(promql.declared_traffic_share(model)).items()
    }
    assert declared == {"stable": 0.9, "canary": 0.1}
    versions = {
        (labels["predictor_name"], labels["predictor_version"])
        for labels in (dict(k) for k in live_prometheus.values(promql.predictor_versions(model, "1m")))
    }
    assert versions == {("stable", "3"), ("canary", "4")}
    p95 = {
        dict(k)["predictor_name"]: v
        for k, v in live_prometheus.values(promql.latency_quantile(model, 0.95, "1m")).items()
    }
    # 20 ms falls in the (10 ms, 25 ms] bucket, 40 ms in (25 ms, 50 ms].
    assert 0.01 < p95["stable"] <= 0.025 and 0.025 < p95["canary"] <= 0.05


def test_exporter_is_steerable_per_predictor(
    synthetic_exporter: SyntheticExporter, live_prometheus: PrometheusServer
) -> None:
    """What the progressive-delivery tests rely on: error ratio and volume follow the control."""
    synthetic_exporter.control.set_predictor("steered", "stable", rps=30, error_ratio=0.0)
    synthetic_exporter.control.set_predictor("steered", "canary", rps=10, error_ratio=0.5, latency_seconds=0.3)
    target = Target("steered")

    def by_predictor(expr: str) -> dict[str, float]:
        return {dict(k)["predictor_name"]: v for k, v in _finite_values(live_prometheus, expr).items()}

    def settled() -> bool:
        # Until the window is full of samples, rates of new series are under-estimated.
        ratios, rates = (
            by_predictor(promql.error_ratio(target, "10s")),
            by_predictor(promql.request_rate(target, "10s")),
        )
        return (
            ratios.get("canary", 0) == pytest.approx(0.5, abs=0.1)
            and ratios.get("stable") == 0
            and rates.get("stable", 0) == pytest.approx(30, rel=0.2)
            and rates.get("canary", 0) == pytest.approx(10, rel=0.2)
        )

    assert _eventually(settled), (
        by_predictor(promql.error_ratio(target, "10s")),
        by_predictor(promql.request_rate(target, "10s")),
    )
    excess = live_prometheus.values(promql.canary_error_ratio_excess("steered", "canary", "stable", "10s"))
    assert len(excess) == 1 and all(value == pytest.approx(0.5, abs=0.1) for value in excess.values())


def test_exporter_control_over_http(synthetic_exporter: SyntheticExporter) -> None:
    body = json.dumps(
        {"predictor": {"deployment": "http-steered", "predictor": "canary", "rps": 3, "error_ratio": 0.2}}
    )
    request = urllib.request.Request(
        f"{synthetic_exporter.url}/control", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.load(response)["error_ratio"] == 0.2
    predictors, _ = synthetic_exporter.control.snapshot()
    assert predictors[("http-steered", "canary")].rps == 3
    synthetic_exporter.control.remove_predictor("http-steered", "canary")


def test_platform_rules_evaluate_without_errors(live_prometheus: PrometheusServer) -> None:
    assert _eventually(lambda: all(rule.get("lastEvaluation", "").startswith("2") for rule in live_prometheus.rules()))
    unhealthy = [(rule["name"], rule.get("lastError")) for rule in live_prometheus.rules() if rule["health"] != "ok"]
    assert unhealthy == []
