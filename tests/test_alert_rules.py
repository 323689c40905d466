"""The PrometheusRule the program declares, checked and unit-tested with the real `promtool`.

Each alert gets a synthetic series that must make it fire and a neighbour that must leave it
silent (promtool compares the exact set of firing alerts, so a silent case that fires fails).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.mock_engine import Evaluation
from layout import resource_types
from observability import alerts, promql, stack_metrics

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: scripts/setup.sh all installs `prometheus`")

COUNT = "seldon_api_executor_server_requests_seconds_count"
BUCKET = "seldon_api_executor_server_requests_seconds_bucket"


def _program_rule_groups(evaluation: Evaluation) -> list[dict[str, Any]]:
    rule = evaluation.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    groups: list[dict[str, Any]] = rule.inputs["spec"]["groups"]
    return groups


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False)


def test_rendered_rules_pass_promtool_check(stack: Evaluation, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": _program_rule_groups(stack)}))
    result = _promtool("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    names = {r["alert"] for g in _program_rule_groups(stack) for r in g["rules"] if "alert" in r}
    assert names == set(alerts.ALERT_NAMES)


def test_stack_conditions_the_rules_read_are_exported_for_the_stacks_the_program_declares(stack: Evaluation) -> None:
    """kube-state-metrics names a custom-resource metric `kube_customresource_<name>`: the rule's metric
    is the one the chart values configure, for the Stack kind the program declares, with list/watch on it."""
    stacks = [r for r in stack.resources if r.inputs.get("kind") == "Stack"]
    assert {r.inputs["apiVersion"] for r in stacks} == {"pulumi.com/v1"}
    namespaces = {r.inputs["metadata"]["namespace"] for r in stacks}
    values = stack.one(resource_types.HELM_RELEASE, "monitoring-kube-prometheus-stack").inputs["values"]
    ksm = values["kube-state-metrics"]
    (resource,) = ksm["customResourceState"]["config"]["spec"]["resources"]
    assert resource["groupVersionKind"] == {"group": "pulumi.com", "version": "v1", "kind": "Stack"}
    (metric,) = resource["metrics"]
    assert f"kube_customresource_{metric['name']}" == stack_metrics.STACK_CONDITION_METRIC
    assert {"apiGroups": ["pulumi.com"], "resources": ["stacks"], "verbs": ["list", "watch"]} in ksm["rbac"][
        "extraRules"
    ]
    rules = {r["alert"]: r["expr"] for g in _program_rule_groups(stack) for r in g["rules"] if "alert" in r}
    # Every Stack (the single one and each team's) lives in the namespace the rules watch.
    assert len(namespaces) == 1 and f'namespace="{namespaces.pop()}"' in rules["ModelsStackStalled"]
    assert stack_metrics.STACK_CONDITION_METRIC in rules["ModelsStackStalled"]


def test_declared_traffic_rules_pass_promtool_check(tmp_path: Path) -> None:
    declared = [
        alerts.DeclaredPredictor("models", "fraud-detector", "stable", 90, "3"),
        alerts.DeclaredPredictor("models", "fraud-detector", "canary", 10, "4"),
    ]
    groups = alerts.rule_groups(alerts.AlertThresholds(), "mlflow", ("tracking",), declared)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    result = _promtool("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{rendered}}}", "values": values}


def _requests(model: str, predictor: str, ok_per_minute: int, errors_per_minute: int) -> list[dict[str, str]]:
    base = {"namespace": "models", "deployment_name": model, "predictor_name": predictor, "service": "predictions"}
    return [
        _series(COUNT, {**base, "code": "200"}, f"0+{ok_per_minute}x40"),
        _series(COUNT, {**base, "code": "500"}, f"0+{errors_per_minute}x40"),
        # Feedback calls failing do not make the model fail.
        _series(COUNT, {**base, "service": "feedback", "code": "500"}, "0+100x40"),
    ]


def _successes_only(model: str, predictor: str, per_minute: int) -> list[dict[str, str]]:
    """A predictor that never failed: like the executor, it has no `code="500"` series at all."""
    labels = {"deployment_name": model, "predictor_name": predictor, "service": "predictions", "code": "200"}
    return [_series(COUNT, labels, f"0+{per_minute}x40")]


def _idle(model: str, predictor: str) -> list[dict[str, str]]:
    """A predictor whose counter exists but does not move (declared, receiving nothing)."""
    labels = {"deployment_name": model, "predictor_name": predictor, "service": "predictions", "code": "200"}
    return [_series(COUNT, labels, "5x40")]


def _latency(model: str, bucket_le: str) -> list[dict[str, str]]:
    """Ten requests a minute, all in the bucket `bucket_le` (and every bucket above it)."""
    base = {"deployment_name": model, "predictor_name": "stable", "service": "predictions", "code": "200"}
    les = ["0.25", "0.5", "1", "+Inf"]
    position = les.index(bucket_le)
    return [
        _series(BUCKET, {**base, "le": le}, "0+10x40" if index >= position else "0+0x40")
        for index, le in enumerate(les)
    ]


def _hpa(model: str, predictor: str, *, current: int, maximum: int) -> list[dict[str, str]]:
    """kube-state-metrics gauges of the HPA KEDA drives for a predictor (`keda-hpa-<model>-<predictor>-0-model`)."""
    labels = {"namespace": "models", promql.HPA_LABEL: f"keda-hpa-{model}-{predictor}-0-model"}
    return [
        _series(promql.HPA_CURRENT_METRIC, labels, f"{current}x40"),
        _series(promql.HPA_MAX_METRIC, labels, f"{maximum}x40"),
    ]


def _alert(model: str, predictor: str, severity: str) -> dict[str, Any]:
    return {"exp_labels": {"deployment_name": model, "predictor_name": predictor, "severity": severity}}


AUTOMATION = "mlops-system"
STACK = {"namespace": AUTOMATION, "name": "mlops-models"}
"""The single models Stack; team Stacks are `<team>-dev` beside it (the rules come from the dev stack)."""


def _team_stack(team: str) -> dict[str, str]:
    return {"namespace": AUTOMATION, "name": f"{team}-dev"}


def _failing(stack: dict[str, str], values: str) -> dict[str, str]:
    return _series(stack_metrics.STACK_FAILING_METRIC, stack, values)


def _condition(stack: dict[str, str], condition: str, reason: str, values: str) -> dict[str, str]:
    """kube-state-metrics' series of one Stack condition (its custom-resource labels included)."""
    labels = {
        **stack,
        "customresource_group": "pulumi.com",
        "customresource_kind": "Stack",
        "customresource_version": "v1",
        "condition": condition,
        "reason": reason,
    }
    return _series(stack_metrics.STACK_CONDITION_METRIC, labels, values)


def _stack_alert(stack: dict[str, str], severity: str, **labels: str) -> dict[str, Any]:
    return {"exp_labels": {**stack, **labels, "severity": severity}}


def _stack_tests() -> list[dict[str, Any]]:
    """The operator's own gauge `stacks_failing` and the Stacks' conditions as kube-state-metrics exports them."""
    fraud, churn, credit = _team_stack("fraud"), _team_stack("churn"), _team_stack("credit-risk")
    return [
        {
            "name": "single models Stack failing while the operator still retries: failing fires, stalled does not",
            "interval": "1m",
            "input_series": [
                _failing(STACK, "1x60"),
                _condition(STACK, "Reconciling", "RetryingAfterFailure", "1x60"),
                _condition(STACK, "Stalled", "UpdateFailed", "0x60"),
                # A Stack outside the platform's automation namespace: not alerted on.
                _failing({"namespace": "team-a", "name": "other"}, "1x60"),
                _condition({"namespace": "team-a", "name": "other"}, "Stalled", "UpdateFailed", "1x60"),
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "ModelsStackUpdateFailing", "exp_alerts": []},  # pending
                # The single Stack has no team: it routes to the platform team.
                {
                    "eval_time": "50m",
                    "alertname": "ModelsStackUpdateFailing",
                    "exp_alerts": [_stack_alert(STACK, "warning")],
                },
                {"eval_time": "50m", "alertname": "ModelsStackStalled", "exp_alerts": []},
            ],
        },
        {
            "name": "team Stack failing then stalled: both fire with the team label; healthy Stacks do not hide it",
            "interval": "1m",
            "input_series": [
                _failing(fraud, "0x5 1x60"),
                _condition(fraud, "Stalled", "UpdateFailed", "0x10 1x55"),
                # Another team's Stack succeeds and resyncs all along, and so does the single one.
                _failing(churn, "0x60"),
                _condition(churn, "Ready", "ProcessingCompleted", "1x60"),
                _failing(STACK, "0x60"),
                # A team whose name has a dash: the team is everything before `-<env>`.
                _failing(credit, "1x60"),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "25m",
                    "alertname": "ModelsStackUpdateFailing",
                    "exp_alerts": [
                        _stack_alert(fraud, "warning", team="fraud"),
                        _stack_alert(credit, "warning", team="credit-risk"),
                    ],
                },
                {"eval_time": "13m", "alertname": "ModelsStackStalled", "exp_alerts": []},  # pending
                {
                    "eval_time": "25m",
                    "alertname": "ModelsStackStalled",
                    "exp_alerts": [_stack_alert(fraud, "critical", team="fraud", reason="UpdateFailed")],
                },
            ],
        },
        {
            "name": "a Stack stalled before any update (its source unavailable): stalled fires, failing does not",
            "interval": "1m",
            "input_series": [_condition(STACK, "Stalled", "SourceUnavailable", "1x60")],
            "alert_rule_test": [
                {"eval_time": "30m", "alertname": "ModelsStackUpdateFailing", "exp_alerts": []},
                {
                    "eval_time": "30m",
                    "alertname": "ModelsStackStalled",
                    "exp_alerts": [_stack_alert(STACK, "critical", reason="SourceUnavailable")],
                },
            ],
        },
        {
            "name": "every Stack succeeded, operator idle between resyncs: nothing fires",
            "interval": "1m",
            "input_series": [
                _failing(STACK, "0x60"),
                _failing(fraud, "0x60"),
                _condition(STACK, "Stalled", "UpdateFailed", "0x60"),
                _condition(fraud, "Ready", "ProcessingCompleted", "1x60"),
            ],
            "alert_rule_test": [
                {"eval_time": "55m", "alertname": "ModelsStackUpdateFailing", "exp_alerts": []},
                {"eval_time": "55m", "alertname": "ModelsStackStalled", "exp_alerts": []},
            ],
        },
    ]


def _unit_tests() -> list[dict[str, Any]]:
    mlflow = [
        _series(promql.MLFLOW_REQUESTS_METRIC, {"role": "tracking", "method": "GET", "status": "200"}, "0+90x40"),
        _series(promql.MLFLOW_REQUESTS_METRIC, {"role": "tracking", "method": "GET", "status": "500"}, "0+10x40"),
        _series(promql.MLFLOW_REQUESTS_METRIC, {"role": "registry", "method": "GET", "status": "200"}, "0+99x40"),
        _series(promql.MLFLOW_REQUESTS_METRIC, {"role": "registry", "method": "GET", "status": "503"}, "0+1x40"),
    ]
    replicas = [
        _series("kube_deployment_spec_replicas", {"namespace": "mlflow", "deployment": "mlflow-tracking"}, "2x40"),
        _series(
            "kube_deployment_status_replicas_available",
            {"namespace": "mlflow", "deployment": "mlflow-tracking"},
            "2x5 1x35",
        ),
        _series("kube_deployment_spec_replicas", {"namespace": "mlflow", "deployment": "mlflow-registry"}, "2x40"),
        _series(
            "kube_deployment_status_replicas_available",
            {"namespace": "mlflow", "deployment": "mlflow-registry"},
            "2x40",
        ),
        # Not an MLflow role: ignored even though it is short of pods.
        _series("kube_deployment_spec_replicas", {"namespace": "mlflow", "deployment": "postgres-proxy"}, "1x40"),
        _series(
            "kube_deployment_status_replicas_available", {"namespace": "mlflow", "deployment": "postgres-proxy"}, "0x40"
        ),
    ]
    return [
        {
            "name": "model error ratio: 10% fires; 1%, or 50% of two requests a minute, does not",
            "interval": "1m",
            "input_series": [
                *_requests("bad-model", "stable", 90, 10),
                *_requests("good-model", "stable", 99, 1),
                *_requests("quiet-model", "stable", 1, 1),
            ],
            "alert_rule_test": [
                {"eval_time": "3m", "alertname": "ModelHighErrorRate", "exp_alerts": []},  # still pending
                {
                    "eval_time": "20m",
                    "alertname": "ModelHighErrorRate",
                    "exp_alerts": [_alert("bad-model", "stable", "critical")],
                },
            ],
        },
        {
            "name": "model p95 latency: requests between 0.5s and 1s fire, under 0.25s do not",
            "interval": "1m",
            "input_series": _latency("slow-model", "1") + _latency("fast-model", "0.25"),
            "alert_rule_test": [
                {
                    "eval_time": "25m",
                    "alertname": "ModelHighLatencyP95",
                    "exp_alerts": [_alert("slow-model", "stable", "warning")],
                }
            ],
        },
        {
            "name": "canary 10% errors vs stable 1% fires; canary 2% vs stable 1% does not",
            "interval": "1m",
            "input_series": [
                *_requests("risky", "stable", 99, 1),
                *_requests("risky", "canary", 9, 1),
                *_requests("fine", "stable", 99, 1),
                *_requests("fine", "canary", 98, 2),
                # A stable predictor that never failed has no error series; its ratio is 0, not absent.
                *_successes_only("spotless", "stable", 100),
                *_requests("spotless", "canary", 45, 5),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "20m",
                    "alertname": "CanaryErrorRateAboveStable",
                    "exp_alerts": [_alert("risky", "canary", "warning"), _alert("spotless", "canary", "warning")],
                }
            ],
        },
        {
            "name": "declared canary without requests fires; stable with requests does not",
            "interval": "1m",
            "input_series": [*_requests("fraud-detector", "stable", 100, 0), *_idle("fraud-detector", "canary")],
            "alert_rule_test": [
                {
                    "eval_time": "30m",
                    "alertname": "DeclaredPredictorWithoutTraffic",
                    # `ghost` is declared but its executor never served a request: no series at all.
                    "exp_alerts": [_alert("fraud-detector", "canary", "warning"), _alert("ghost", "stable", "warning")],
                }
            ],
        },
        {
            "name": "MLflow 5xx: tracking at 10% fires, registry at 1% does not",
            "interval": "1m",
            "input_series": mlflow,
            "alert_rule_test": [
                {
                    "eval_time": "20m",
                    "alertname": "MLflowHigh5xxRate",
                    "exp_alerts": [{"exp_labels": {"role": "tracking", "severity": "critical"}}],
                }
            ],
        },
        {
            "name": "MLflow pods: tracking one short for 30m fires, registry complete does not",
            "interval": "1m",
            "input_series": replicas,
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "MLflowPodsNotReady", "exp_alerts": []},  # short for 5m only
                {
                    "eval_time": "30m",
                    "alertname": "MLflowPodsNotReady",
                    "exp_alerts": [{"exp_labels": {"role": "tracking", "severity": "critical"}}],
                },
            ],
        },
        {
            "name": "at max replicas and slow fires; at max but fast, or slow with room to scale, does not",
            "interval": "1m",
            "input_series": [
                *_latency("saturated", "1"),
                *_hpa("saturated", "stable", current=8, maximum=8),
                *_latency("busy-but-fast", "0.25"),
                *_hpa("busy-but-fast", "stable", current=8, maximum=8),
                *_latency("scaling", "1"),
                *_hpa("scaling", "stable", current=3, maximum=8),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "25m",
                    "alertname": "ModelAtMaxReplicasWhileSlow",
                    "exp_alerts": [_alert("saturated", "stable", "critical")],
                }
            ],
        },
        *_stack_tests(),
    ]


def test_every_alert_fires_on_bad_series_and_stays_silent_on_good_ones(dev: Evaluation, tmp_path: Path) -> None:
    groups = copy.deepcopy(_program_rule_groups(dev))
    for group in groups:
        # The test declares its own predictors below, instead of the stack's.
        group["rules"] = [r for r in group["rules"] if r.get("record") != promql.DECLARED_TRAFFIC_METRIC]
        for rule in group["rules"]:
            # promtool compares annotations too; their templates are covered by `promtool check rules`.
            rule.pop("annotations", None)
    groups = [group for group in groups if group["rules"]]
    declared = [
        alerts.DeclaredPredictor("models", "fraud-detector", "stable", 90, "3"),
        alerts.DeclaredPredictor("models", "fraud-detector", "canary", 10, "4"),
        alerts.DeclaredPredictor("models", "ghost", "stable", 100, "1"),
    ]
    groups.append({"name": "declared-for-test", "rules": alerts.declared_traffic_rules(declared)})
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    tests = _unit_tests()
    covered = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert covered == set(alerts.ALERT_NAMES)
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False)
    )
    result = _promtool("test", "rules", str(tmp_path / "tests.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
