"""Every PromQL expression of the platform, as pure functions of what they are about.

One module is used by the alert rules (`observability.alerts`), the Grafana dashboards
(`observability.dashboards`) and the rollout analysis CLI, so an alert, the panel that shows it and
the promotion decision always compute the same number the same way.

Series they read
----------------
- Seldon Core v1 executor (one per predictor pod), scraped by the models PodMonitor:
  `seldon_api_executor_server_requests_seconds_{bucket,count,sum}` with labels `deployment_name`
  (the SeldonDeployment, i.e. the model), `predictor_name` (`stable`, `canary`...),
  `predictor_version` (the predictor's `version` annotation), `service`, `method`, `code` (HTTP
  status for REST, gRPC code name for gRPC), plus `namespace` and `pod` added by the scrape.
- MLflow (`mlflow server --expose-prometheus`), scraped by the MLflow ServiceMonitors with the pod
  label `app.kubernetes.io/component` copied into `role`. MLflow sets up prometheus_flask_exporter
  with `defaults_prefix="mlflow"` and `group_by=mlflow_version` (mlflow/server/prometheus_exporter.py),
  so its series are `mlflow_http_request_total{method,status}` and
  `mlflow_http_request_duration_seconds_{bucket,count,sum}{method,mlflow_version,status}`, not the
  exporter's default `flask_http_*` names.
- kube-state-metrics: `kube_pod_status_ready{namespace,pod,condition}`, `kube_pod_labels`, and the
  HPAs KEDA drives for each predictor, `kube_horizontalpodautoscaler_status_current_replicas` and
  `kube_horizontalpodautoscaler_spec_{min,max}_replicas` with `namespace` and `horizontalpodautoscaler`
  (`keda-hpa-<SeldonDeployment>-<predictor>-0-model`, see `rollout/autoscaling.py`).
- Declared traffic: recording rules written from what the program declares
  (`observability.alerts.declared_traffic_rules`) produce `DECLARED_TRAFFIC_METRIC` with the
  executor's label names, so declared and observed shares can be divided label for label.

Conventions
-----------
- A `Target` selects executor series: a model (SeldonDeployment), optionally one predictor, and
  optionally a namespace. Values are matched exactly, or as regular expressions when
  `regex=True` (Grafana template variables such as `$model`).
- `window` is a PromQL duration (`5m`, `1h`, `30s`), validated.
- Ratios are in [0, 1], latencies in seconds, rates per second, counts are totals over the window.
- Every function returns one expression; aggregated results keep `GROUP_LABELS` (model and
  predictor), so a result row is always one predictor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

EXECUTOR_METRIC: Final = "seldon_api_executor_server_requests_seconds"
DEPLOYMENT_LABEL: Final = "deployment_name"
PREDICTOR_LABEL: Final = "predictor_name"
VERSION_LABEL: Final = "predictor_version"
GROUP_LABELS: Final = (DEPLOYMENT_LABEL, PREDICTOR_LABEL)

# REST answers with HTTP status codes, gRPC with code names; these mean "the server failed".
ERROR_CODE_REGEX: Final = "5..|Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded"
SERVICE_LABEL: Final = "service"
PREDICTION_SERVICES: Final = "predictions|/seldon.protos.Seldon/Predict|/tensorflow.serving.PredictionService/Predict"
"""Executor `service` values of prediction calls (REST, gRPC Seldon and TensorFlow protocols).

Feedback, status and metadata calls are instrumented too (`feedback`, `status`, `metadata`) but
are not model traffic; probes (`/ready`, `/live`) are not instrumented at all.
"""

DECLARED_TRAFFIC_METRIC: Final = "mlops:seldon_predictor_declared_traffic:ratio"
"""Recorded from the declared SeldonDeployments: the traffic share (0..1) each predictor should get."""

MLFLOW_REQUESTS_METRIC: Final = "mlflow_http_request_total"
MLFLOW_DURATION_METRIC: Final = "mlflow_http_request_duration_seconds"
MLFLOW_ROLE_LABEL: Final = "role"

_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def duration(window: str) -> str:
    """`window` if it is a PromQL duration (`5m`, `1h30m`), else ValueError. `$__rate_interval` passes."""
    if window == "$__rate_interval" or _DURATION.match(window):
        return window
    raise ValueError(f"not a PromQL duration: {window!r} (e.g. '5m', '1h')")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def matchers(labels: dict[str, str | None], *, regex: bool = False, extra: Sequence[str] = ()) -> str:
    """`{a="x",b=~"y"}` from the labels with a value; `extra` are raw matchers appended as given."""
    operator = "=~" if regex else "="
    parts = [f"{name}{operator}{_quote(value)}" for name, value in labels.items() if value is not None]
    return "{" + ",".join([*parts, *extra]) + "}"


@dataclass(frozen=True)
class Target:
    """Which executor series: a model (`deployment_name`), optionally one predictor and namespace.

    `Target("fraud-detector", "canary")` is the canary of the fraud-detector model;
    `Target()` is every model; `Target("$model", regex=True)` is a Grafana variable.
    """

    deployment: str | None = None
    predictor: str | None = None
    namespace: str | None = None
    regex: bool = False
    services: str | None = PREDICTION_SERVICES
    """Regex of executor `service` values counted; None counts every instrumented call."""

    def selector(self, *extra: str) -> str:
        services = () if self.services is None else (f"{SERVICE_LABEL}=~{_quote(self.services)}",)
        return matchers(
            {DEPLOYMENT_LABEL: self.deployment, PREDICTOR_LABEL: self.predictor, "namespace": self.namespace},
            regex=self.regex,
            extra=(*services, *extra),
        )


def _by(labels: Sequence[str]) -> str:
    return "by (" + ", ".join(labels) + ")"


def _sum_rate(metric: str, selector: str, window: str, by: Sequence[str] = GROUP_LABELS) -> str:
    return f"sum {_by(by)} (rate({metric}{selector}[{duration(window)}]))"


# --- models (Seldon executor) -----------------------------------------------------------------


def request_rate(target: Target, window: str) -> str:
    """Requests per second per predictor, over `window`."""
    return _sum_rate(f"{EXECUTOR_METRIC}_count", target.selector(), window)


def _or_zero(errors: str, everything: str) -> str:
    """`errors`, or 0 for every group of `everything` that has no error series.

    The executor creates a `code="500"` series at the first failure only: without this, a
    predictor that never failed would have no error rate at all instead of 0.
    """
    return f"({errors} or (0 * {everything}))"


def error_rate_per_second(target: Target, window: str) -> str:
    """Failed requests per second per predictor (5xx or failing gRPC codes); 0 when none failed."""
    errors = _sum_rate(f"{EXECUTOR_METRIC}_count", target.selector(f'code=~"{ERROR_CODE_REGEX}"'), window)
    return _or_zero(errors, request_rate(target, window))


def error_ratio(target: Target, window: str) -> str:
    """Share of failed requests per predictor, 0..1. No result when the predictor had no traffic."""
    return f"{error_rate_per_second(target, window)} / ({request_rate(target, window)})"


def latency_quantile(target: Target, quantile: float, window: str) -> str:
    """The `quantile` (0.95 = p95) of request latency per predictor, in seconds, from the histogram."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), not {quantile}")
    buckets = _sum_rate(f"{EXECUTOR_METRIC}_bucket", target.selector(), window, by=(*GROUP_LABELS, "le"))
    return f"histogram_quantile({quantile:g}, {buckets})"


def request_count(target: Target, window: str) -> str:
    """Requests per predictor over the whole `window` (a total, for minimum-sample checks)."""
    selector = target.selector()
    return f"sum {_by(GROUP_LABELS)} (increase({EXECUTOR_METRIC}_count{selector}[{duration(window)}]))"


def error_count(target: Target, window: str) -> str:
    """Failed requests per predictor over the whole `window`; 0 when none failed."""
    selector = target.selector(f'code=~"{ERROR_CODE_REGEX}"')
    errors = f"sum {_by(GROUP_LABELS)} (increase({EXECUTOR_METRIC}_count{selector}[{duration(window)}]))"
    return _or_zero(errors, request_count(target, window))


def traffic_share(target: Target, window: str) -> str:
    """Observed share of the model's requests each predictor got over `window`, 0..1.

    `target.predictor` narrows the numerator only: the denominator is always the whole model.
    """
    whole_model = Target(target.deployment, None, target.namespace, target.regex, target.services)
    total = _sum_rate(f"{EXECUTOR_METRIC}_count", whole_model.selector(), window, by=(DEPLOYMENT_LABEL,))
    return f"{request_rate(target, window)} / on ({DEPLOYMENT_LABEL}) group_left () ({total})"


def _declared(target: Target) -> Target:
    """The declared-traffic series have no `service` label."""
    return replace(target, services=None)


def declared_traffic_share(target: Target) -> str:
    """Share (0..1) the program declared for each predictor (from the declared-traffic recording rules)."""
    return f"max {_by(GROUP_LABELS)} ({DECLARED_TRAFFIC_METRIC}{_declared(target).selector()})"


def predictor_versions(target: Target, window: str) -> str:
    """One series per (model, predictor, version) that served requests within `window`; value = req/s."""
    return _sum_rate(f"{EXECUTOR_METRIC}_count", target.selector(), window, by=(*GROUP_LABELS, VERSION_LABEL))


def declared_versions(target: Target) -> str:
    """One series per (model, predictor, version) as declared; value = declared share (0..1)."""
    return f"max {_by((*GROUP_LABELS, VERSION_LABEL))} ({DECLARED_TRAFFIC_METRIC}{_declared(target).selector()})"


def ratio_worse_than(candidate: str, baseline: str, margin: float) -> str:
    """Rows where `candidate` exceeds `baseline` by more than `margin` (absolute), joined on the model.

    Both sides must be per-predictor ratios (e.g. `error_ratio`); predictor labels are ignored.
    """
    return f"({candidate}) > on ({DEPLOYMENT_LABEL}) group_left () (({baseline}) + {margin:g})"


def canary_error_ratio_excess(deployment: str | None, canary: str, stable: str, window: str) -> str:
    """Canary error ratio minus stable error ratio per model (positive: the canary is worse)."""
    canary_ratio = error_ratio(Target(deployment, canary), window)
    stable_ratio = error_ratio(Target(deployment, stable), window)
    return f"({canary_ratio}) - on ({DEPLOYMENT_LABEL}) group_left () ({stable_ratio})"


# --- autoscaling (KEDA's HPA per predictor, kube-state-metrics) ------------------------------------

HPA_CURRENT_METRIC: Final = "kube_horizontalpodautoscaler_status_current_replicas"
HPA_MAX_METRIC: Final = "kube_horizontalpodautoscaler_spec_max_replicas"
HPA_MIN_METRIC: Final = "kube_horizontalpodautoscaler_spec_min_replicas"
HPA_LABEL: Final = "horizontalpodautoscaler"
HPA_NAME_PATTERN: Final = "keda-hpa-(.+)-([a-z0-9]+)-0-model"
"""KEDA's HPA of a predictor's Deployment; predictor names have no dash, so the split is unambiguous."""


def scaling_request_rate(target: Target, window: str) -> str:
    """What a predictor's KEDA trigger reads: one number, its requests per second (the whole
    model's when `target.predictor` is None); 0, not an empty result, when it had no request."""
    return f"sum(rate({EXECUTOR_METRIC}_count{target.selector()}[{duration(window)}])) or vector(0)"


def _hpa_selector(target: Target) -> str:
    deployment = target.deployment if target.regex else (re.escape(target.deployment) if target.deployment else None)
    predictor = target.predictor if target.regex else (re.escape(target.predictor) if target.predictor else None)
    name = f"keda-hpa-({deployment or '.+'})-({predictor or '[a-z0-9]+'})-0-model"
    namespace: dict[str, str | None] = {"namespace": target.namespace}
    return matchers(namespace, regex=target.regex, extra=(f"{HPA_LABEL}=~{_quote(name)}",))


def _per_predictor(metric: str, target: Target) -> str:
    """`metric` of the predictors' HPAs with `deployment_name` and `predictor_name` from the HPA's name."""
    series = f"{metric}{_hpa_selector(target)}"
    with_model = f'label_replace({series}, "{DEPLOYMENT_LABEL}", "$1", "{HPA_LABEL}", "{HPA_NAME_PATTERN}")'
    both = f'label_replace({with_model}, "{PREDICTOR_LABEL}", "$2", "{HPA_LABEL}", "{HPA_NAME_PATTERN}")'
    return f"max {_by(GROUP_LABELS)} ({both})"


def predictor_replicas(target: Target) -> str:
    """Replicas each predictor runs now (its HPA's current replicas)."""
    return _per_predictor(HPA_CURRENT_METRIC, target)


def predictor_max_replicas(target: Target) -> str:
    """Each predictor's ceiling (`maxReplicaCount`)."""
    return _per_predictor(HPA_MAX_METRIC, target)


def predictor_min_replicas(target: Target) -> str:
    """Each predictor's floor (`minReplicaCount`, following its traffic share)."""
    return _per_predictor(HPA_MIN_METRIC, target)


def requests_per_replica(target: Target, window: str) -> str:
    """Load per replica: each predictor's request rate over its current replicas (compare with the target)."""
    return f"{request_rate(target, window)} / on ({', '.join(GROUP_LABELS)}) ({predictor_replicas(target)})"


def at_max_replicas(target: Target) -> str:
    """Predictors whose HPA runs at its ceiling (value: the replicas)."""
    on = f"on ({', '.join(GROUP_LABELS)})"
    return f"{predictor_replicas(target)} >= {on} ({predictor_max_replicas(target)})"


# --- MLflow (prometheus_flask_exporter, prefix `mlflow`) ----------------------------------------


def _role_selector(role: str | None, regex: bool, *extra: str) -> str:
    return matchers({MLFLOW_ROLE_LABEL: role}, regex=regex, extra=extra)


def mlflow_request_rate(window: str, role: str | None = None, *, regex: bool = False) -> str:
    """Requests per second per MLflow role."""
    return _sum_rate(MLFLOW_REQUESTS_METRIC, _role_selector(role, regex), window, by=(MLFLOW_ROLE_LABEL,))


def mlflow_5xx_ratio(window: str, role: str | None = None, *, regex: bool = False) -> str:
    """Share of MLflow requests answered with a 5xx status per role, 0..1."""
    errors = _sum_rate(
        MLFLOW_REQUESTS_METRIC, _role_selector(role, regex, 'status=~"5.."'), window, by=(MLFLOW_ROLE_LABEL,)
    )
    everything = mlflow_request_rate(window, role, regex=regex)
    return f"{_or_zero(errors, everything)} / ({everything})"


def mlflow_latency_quantile(quantile: float, window: str, role: str | None = None, *, regex: bool = False) -> str:
    """Latency quantile per MLflow role, in seconds."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), not {quantile}")
    buckets = _sum_rate(
        f"{MLFLOW_DURATION_METRIC}_bucket", _role_selector(role, regex), window, by=(MLFLOW_ROLE_LABEL, "le")
    )
    return f"histogram_quantile({quantile:g}, {buckets})"


def _role_pattern(roles: Sequence[str]) -> str:
    return "(?:.*-)?(" + "|".join(re.escape(role) for role in roles) + ")"


def _deployment_gauge(metric: str, namespace: str, roles: Sequence[str]) -> str:
    """`metric` of the Deployments whose name ends with a role, nothing else."""
    return f'{metric}{{namespace="{namespace}",deployment=~"{_role_pattern(roles)}"}}'


def _by_role(expression: str, roles: Sequence[str]) -> str:
    """Add `role` from the Deployment name (`mlflow-tracking` → `tracking`)."""
    return f'label_replace({expression}, "{MLFLOW_ROLE_LABEL}", "$1", "deployment", "{_role_pattern(roles)}")'


def mlflow_pods_not_ready(namespace: str, roles: Sequence[str]) -> str:
    """Pods each MLflow role wants but does not have Ready, per role (kube-state-metrics).

    The role is read from the Deployment name, which ends with the role (`mlflow-tracking`):
    kube-state-metrics exports no pod labels unless allow-listed, but always the Deployment name.
    Deployments of other names in the namespace are left out.
    """
    wanted = _deployment_gauge("kube_deployment_spec_replicas", namespace, roles)
    available = _deployment_gauge("kube_deployment_status_replicas_available", namespace, roles)
    missing = f"{wanted} - on (namespace, deployment) {available}"
    return f"max by ({MLFLOW_ROLE_LABEL}) ({_by_role(missing, roles)})"


def mlflow_pods_ready(namespace: str, roles: Sequence[str]) -> str:
    """Ready (available) pods per MLflow role."""
    available = _deployment_gauge("kube_deployment_status_replicas_available", namespace, roles)
    return f"max by ({MLFLOW_ROLE_LABEL}) ({_by_role(available, roles)})"
