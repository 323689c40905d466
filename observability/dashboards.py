"""Grafana dashboards as code: plain JSON models built from `observability.promql`.

The monitoring component provisions each as a ConfigMap labelled for the Grafana dashboard
sidecar; the tests evaluate every panel's expression against a real Prometheus
(`dashboard_expressions` + `substitute_variables`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from observability import promql
from observability.promql import Target

DATASOURCE_UID: Final = "prometheus"
"""Uid of the Prometheus datasource kube-prometheus-stack provisions (`grafana.sidecar.datasources.uid`)."""
RATE: Final = "$__rate_interval"
SHARE_WINDOW: Final = "5m"
ANALYSIS_SAMPLE_WINDOW: Final = "10m"
"""The default `analysis.window` of model rollouts: what `mlopsctl rollout advance` counts."""
MODEL_ROLLOUTS_UID: Final = "mlops-model-rollouts"
MLFLOW_UID: Final = "mlops-mlflow"

Json = dict[str, Any]
_DATASOURCE: Json = {"type": "prometheus", "uid": DATASOURCE_UID}
_PREDICTOR_LEGEND: Final = "{{deployment_name}} / {{predictor_name}}"


def _target(expr: str, legend: str, ref: str, *, instant: bool = False) -> Json:
    target: Json = {"datasource": _DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        target |= {"instant": True, "range": False, "format": "table"}
    return target


def _panel(
    panel_id: int, title: str, targets: Sequence[Json], *, unit: str, grid: tuple[int, int, int, int], kind: str
) -> Json:
    x, y, w, h = grid
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "datasource": _DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": list(targets),
    }


def _query_variable(name: str, label: str, query: str) -> Json:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": _DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def _dashboard(uid: str, title: str, panels: Sequence[Json], variables: Sequence[Json]) -> Json:
    return {
        "uid": uid,
        "title": title,
        "tags": ["mlops-platform"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": list(variables)},
        "panels": list(panels),
    }


def model_rollouts() -> Json:
    """Per model and predictor: traffic, declared vs observed share, errors, latency, versions,
    and for autoscaled predictors their replicas against bounds and load per replica."""
    chosen = Target("$model", "$predictor", regex=True)
    whole_models = Target("$model", regex=True)
    count_metric = f"{promql.EXECUTOR_METRIC}_count"
    variables = [
        _query_variable("model", "Model", f"label_values({count_metric}, {promql.DEPLOYMENT_LABEL})"),
        _query_variable(
            "predictor",
            "Predictor",
            f'label_values({count_metric}{{{promql.DEPLOYMENT_LABEL}=~"$model"}}, {promql.PREDICTOR_LABEL})',
        ),
    ]
    panels = [
        _panel(
            1,
            "Request rate",
            [_target(promql.request_rate(chosen, RATE), _PREDICTOR_LEGEND, "A")],
            unit="reqps",
            grid=(0, 0, 12, 8),
            kind="timeseries",
        ),
        _panel(
            2,
            "Traffic share: declared vs observed",
            [
                _target(promql.traffic_share(chosen, SHARE_WINDOW), "observed " + _PREDICTOR_LEGEND, "A"),
                _target(promql.declared_traffic_share(chosen), "declared " + _PREDICTOR_LEGEND, "B"),
            ],
            unit="percentunit",
            grid=(12, 0, 12, 8),
            kind="timeseries",
        ),
        _panel(
            3,
            "Error ratio",
            [_target(promql.error_ratio(chosen, RATE), _PREDICTOR_LEGEND, "A")],
            unit="percentunit",
            grid=(0, 8, 12, 8),
            kind="timeseries",
        ),
        _panel(
            4,
            "Latency p50 / p95 / p99",
            [
                _target(promql.latency_quantile(chosen, q, RATE), f"p{round(q * 100)} " + _PREDICTOR_LEGEND, ref)
                for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
            ],
            unit="s",
            grid=(12, 8, 12, 8),
            kind="timeseries",
        ),
        _panel(
            5,
            "Current versions",
            [
                _target(promql.predictor_versions(whole_models, SHARE_WINDOW), "serving", "A", instant=True),
                _target(promql.declared_versions(whole_models), "declared", "B", instant=True),
            ],
            unit="short",
            grid=(0, 16, 12, 8),
            kind="table",
        ),
        _panel(
            6,
            "Requests in the last 10m (the rollout analysis' sample)",
            [_target(promql.request_count(chosen, ANALYSIS_SAMPLE_WINDOW), _PREDICTOR_LEGEND, "A", instant=True)],
            unit="short",
            grid=(12, 16, 12, 8),
            kind="table",
        ),
        _panel(
            7,
            "Replicas vs. bounds (autoscaled predictors)",
            [
                _target(promql.predictor_replicas(chosen), "replicas " + _PREDICTOR_LEGEND, "A"),
                _target(promql.predictor_min_replicas(chosen), "min " + _PREDICTOR_LEGEND, "B"),
                _target(promql.predictor_max_replicas(chosen), "max " + _PREDICTOR_LEGEND, "C"),
            ],
            unit="short",
            grid=(0, 24, 12, 8),
            kind="timeseries",
        ),
        _panel(
            8,
            "Requests per replica (compare with the target)",
            [_target(promql.requests_per_replica(chosen, RATE), _PREDICTOR_LEGEND, "A")],
            unit="reqps",
            grid=(12, 24, 12, 8),
            kind="timeseries",
        ),
    ]
    return _dashboard(MODEL_ROLLOUTS_UID, "Model rollouts", panels, variables)


def mlflow(namespace: str, roles: Sequence[str]) -> Json:
    """Per MLflow role: requests, latency, errors, pods."""
    role = "$role"
    variables = [
        _query_variable("role", "Role", f"label_values({promql.MLFLOW_REQUESTS_METRIC}, {promql.MLFLOW_ROLE_LABEL})")
    ]
    legend = "{{role}}"
    panels = [
        _panel(
            1,
            "Requests",
            [_target(promql.mlflow_request_rate(RATE, role, regex=True), legend, "A")],
            unit="reqps",
            grid=(0, 0, 12, 8),
            kind="timeseries",
        ),
        _panel(
            2,
            "Latency p50 / p95 / p99",
            [
                _target(promql.mlflow_latency_quantile(q, RATE, role, regex=True), f"p{round(q * 100)} {legend}", ref)
                for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
            ],
            unit="s",
            grid=(12, 0, 12, 8),
            kind="timeseries",
        ),
        _panel(
            3,
            "5xx ratio",
            [_target(promql.mlflow_5xx_ratio(RATE, role, regex=True), legend, "A")],
            unit="percentunit",
            grid=(0, 8, 12, 8),
            kind="timeseries",
        ),
        _panel(
            4,
            "Pods",
            [
                _target(promql.mlflow_pods_ready(namespace, roles), "ready " + legend, "A"),
                _target(promql.mlflow_pods_not_ready(namespace, roles), "missing " + legend, "B"),
            ],
            unit="short",
            grid=(12, 8, 12, 8),
            kind="timeseries",
        ),
    ]
    return _dashboard(MLFLOW_UID, "MLflow", panels, variables)


def platform_dashboards(mlflow_namespace: str, mlflow_roles: Sequence[str]) -> dict[str, Json]:
    """File name → dashboard, as provisioned."""
    return {
        "model-rollouts.json": model_rollouts(),
        "mlflow.json": mlflow(mlflow_namespace, mlflow_roles),
    }


def dashboard_expressions(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expression) for every query of every panel."""
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


_VARIABLE = re.compile(r"\$(__\w+|\w+)")


def substitute_variables(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables (`$model`, `$__rate_interval`) the way Grafana would before querying."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            if name.isdigit():  # `$1` in label_replace is PromQL, not Grafana
                return match.group(0)
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)
