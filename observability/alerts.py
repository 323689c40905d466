"""Alerting and recording rules as data: the `spec` of the platform's PrometheusRules.

Pure: `rule_groups(...)` returns the groups as plain dicts, which the monitoring component wraps
in a PrometheusRule and the tests write to a file for `promtool check rules` / `promtool test
rules`. Every expression comes from `observability.promql`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from observability import promql, stack_metrics
from observability.promql import Target

STABLE: Final = "stable"
CANARY: Final = "canary"

ALERT_NAMES: Final = (
    "ModelHighErrorRate",
    "ModelHighLatencyP95",
    "CanaryErrorRateAboveStable",
    "DeclaredPredictorWithoutTraffic",
    "ModelAtMaxReplicasWhileSlow",
    "MLflowHigh5xxRate",
    "MLflowPodsNotReady",
    "ModelsStackUpdateFailing",
    "ModelsStackStalled",
)
MODELS_STACK_RUNBOOK: Final = "docs/operations.md#models-stack-failing-or-stalled"
"""Where the unsticking procedure of a models Stack (the single one or a team's) is written."""

Rule = dict[str, Any]
Group = dict[str, Any]


@dataclass(frozen=True)
class AlertThresholds:
    """What counts as bad; defaults match the settings' defaults."""

    model_error_ratio: float = 0.05
    model_p95_latency_seconds: float = 0.5
    canary_error_margin: float = 0.02
    """The canary alerts when its error ratio exceeds the stable one by more than this (absolute)."""
    mlflow_5xx_ratio: float = 0.05
    min_requests_per_second: float = 0.1
    """Below this traffic a predictor's error ratio is noise (one failure in two requests is 50%)."""
    window: str = "5m"
    no_traffic_window: str = "15m"
    stack_failing_for: str = "15m"
    """How long a models Stack's last update may stay failed before anyone is told (retries
    with backoff 10 s, 30 s, 90 s are over well within it)."""
    stack_stalled_for: str = "5m"
    """How long the operator's `Stalled` condition must hold (it has given up; 5 min rides out a
    condition set just before a new commit or spec change restarts the updates)."""


@dataclass(frozen=True)
class DeclaredPredictor:
    """A predictor as declared in a SeldonDeployment: the traffic share it should receive."""

    namespace: str
    deployment: str
    predictor: str
    traffic_percent: int
    version: str = ""


def _alert(name: str, expr: str, duration: str, *, severity: str, summary: str, description: str) -> Rule:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def model_alerts(thresholds: AlertThresholds) -> list[Rule]:
    every = Target()
    window = thresholds.window
    return [
        _alert(
            "ModelHighErrorRate",
            f"({promql.error_ratio(every, window)} > {thresholds.model_error_ratio:g}) "
            f"and on ({', '.join(promql.GROUP_LABELS)}) "
            f"({promql.request_rate(every, window)} > {thresholds.min_requests_per_second:g})",
            "5m",
            severity="critical",
            summary="Model {{ $labels.deployment_name }}/{{ $labels.predictor_name }} fails too many requests",
            description="{{ $value | humanizePercentage }} of requests failed over "
            + window
            + f" (threshold {thresholds.model_error_ratio:.0%}).",
        ),
        _alert(
            "ModelHighLatencyP95",
            f"{promql.latency_quantile(every, 0.95, window)} > {thresholds.model_p95_latency_seconds:g}",
            "10m",
            severity="warning",
            summary="Model {{ $labels.deployment_name }}/{{ $labels.predictor_name }} is slow",
            description="p95 latency is {{ $value | humanizeDuration }} over "
            + window
            + f" (threshold {thresholds.model_p95_latency_seconds:g}s).",
        ),
        _alert(
            "CanaryErrorRateAboveStable",
            promql.ratio_worse_than(
                promql.error_ratio(Target(predictor=CANARY), window),
                promql.error_ratio(Target(predictor=STABLE), window),
                thresholds.canary_error_margin,
            ),
            "5m",
            severity="warning",
            summary="Canary of {{ $labels.deployment_name }} fails more than stable",
            description="The canary's error ratio is {{ $value | humanizePercentage }}, more than "
            + f"{thresholds.canary_error_margin:.0%} above the stable predictor's.",
        ),
        _alert(
            "DeclaredPredictorWithoutTraffic",
            f"({promql.declared_traffic_share(every)} > 0) unless on ({', '.join(promql.GROUP_LABELS)}) "
            f"({promql.request_rate(every, thresholds.no_traffic_window)} > 0)",
            "10m",
            severity="warning",
            summary="Predictor {{ $labels.deployment_name }}/{{ $labels.predictor_name }} receives no traffic",
            description="It is declared with {{ $value | humanizePercentage }} of the traffic but served no request in "
            + thresholds.no_traffic_window
            + ".",
        ),
        _alert(
            "ModelAtMaxReplicasWhileSlow",
            f"({promql.at_max_replicas(every)}) and on ({', '.join(promql.GROUP_LABELS)}) "
            f"({promql.latency_quantile(every, 0.95, window)} > {thresholds.model_p95_latency_seconds:g})",
            "10m",
            severity="critical",
            summary="Model {{ $labels.deployment_name }}/{{ $labels.predictor_name }} is at its maximum replicas "
            "and misses its latency objective",
            description="It runs {{ $value }} replicas, its autoscaling maximum, and its p95 latency is above "
            + f"{thresholds.model_p95_latency_seconds:g}s: raise `autoscaling.maxReplicas` (within the ceiling) "
            "or the model's resources.",
        ),
    ]


def mlflow_alerts(thresholds: AlertThresholds, mlflow_namespace: str, roles: Sequence[str]) -> list[Rule]:
    window = thresholds.window
    return [
        _alert(
            "MLflowHigh5xxRate",
            f"{promql.mlflow_5xx_ratio(window)} > {thresholds.mlflow_5xx_ratio:g}",
            "5m",
            severity="critical",
            summary="MLflow {{ $labels.role }} answers with server errors",
            description="{{ $value | humanizePercentage }} of requests got a 5xx over "
            + window
            + f" (threshold {thresholds.mlflow_5xx_ratio:.0%}).",
        ),
        _alert(
            "MLflowPodsNotReady",
            f"{promql.mlflow_pods_not_ready(mlflow_namespace, roles)} > 0",
            "10m",
            severity="critical",
            summary="MLflow {{ $labels.role }} is missing Ready pods",
            description="{{ $value }} pod(s) of the {{ $labels.role }} Deployment are not available.",
        ),
    ]


@dataclass(frozen=True)
class WatchedStacks:
    """The Pulumi Kubernetes Operator Stacks alerted on: every Stack of `namespace` (the single
    models Stack and each team's `<team>-<env>`), in the platform stack's `environment`."""

    namespace: str
    environment: str


def stack_alerts(thresholds: AlertThresholds, stacks: WatchedStacks) -> list[Rule]:
    """One alert per failing or stalled Stack, labelled `team` when it is a team's (routes to that team).

    The operator stops silently: after 3 failed updates in a row (PKO 2.9 `maxUpdateFailures`) it
    neither retries nor resyncs until the spec, the commit or the reconcile-request annotation
    changes, and marks the Stack `Stalled` (observability.stack_metrics)."""
    failing = stack_metrics.with_team(stack_metrics.stack_failing(stacks.namespace), stacks.environment)
    stalled = stack_metrics.with_team(stack_metrics.stack_stalled(stacks.namespace), stacks.environment)
    runbook = {"runbook_url": MODELS_STACK_RUNBOOK}
    failing_alert = _alert(
        "ModelsStackUpdateFailing",
        f"{failing} > 0",
        thresholds.stack_failing_for,
        severity="warning",
        summary="Stack {{ $labels.namespace }}/{{ $labels.name }}: the last model-delivery update failed",
        description="The operator's last update of this models stack failed "
        + f"{thresholds.stack_failing_for} ago or more; registry decisions are not becoming traffic.",
    )
    stalled_alert = _alert(
        "ModelsStackStalled",
        f"{stalled} > 0",
        thresholds.stack_stalled_for,
        severity="critical",
        summary="Stack {{ $labels.namespace }}/{{ $labels.name }} is stalled ({{ $labels.reason }}): "
        "the operator stopped trying",
        description="The operator marked the Stack Stalled: after 3 failed updates (reason UpdateFailed) "
        + "it will not retry nor resync until the spec, the commit or the pulumi.com/reconciliation-request "
        + "annotation changes.",
    )
    for rule in (failing_alert, stalled_alert):
        rule["annotations"].update(runbook)
    return [failing_alert, stalled_alert]


def declared_traffic_rules(predictors: Sequence[DeclaredPredictor]) -> list[Rule]:
    """Recording rules stating the declared traffic share of each predictor (0..1)."""
    return [
        {
            "record": promql.DECLARED_TRAFFIC_METRIC,
            "expr": f"vector({p.traffic_percent / 100:g})",
            "labels": {
                "namespace": p.namespace,
                promql.DEPLOYMENT_LABEL: p.deployment,
                promql.PREDICTOR_LABEL: p.predictor,
                promql.VERSION_LABEL: p.version,
            },
        }
        for p in predictors
    ]


def rule_groups(
    thresholds: AlertThresholds,
    mlflow_namespace: str,
    mlflow_roles: Sequence[str],
    declared: Sequence[DeclaredPredictor] = (),
    stacks: WatchedStacks | None = None,
) -> list[Group]:
    """Every group of the platform's rules (a group without rules is left out)."""
    groups = [
        {"name": "mlops-models", "rules": model_alerts(thresholds)},
        {"name": "mlops-mlflow", "rules": mlflow_alerts(thresholds, mlflow_namespace, mlflow_roles)},
        {"name": "mlops-model-delivery", "rules": stack_alerts(thresholds, stacks) if stacks else []},
        {"name": "mlops-declared-traffic", "rules": declared_traffic_rules(declared)},
    ]
    return [group for group in groups if group["rules"]]
