"""The PromQL module on its own: the expressions' shape, selectors and argument checks."""

from __future__ import annotations

import pytest

from observability import dashboards, promql
from observability.promql import Target


def test_target_selectors_match_exactly_or_by_regex() -> None:
    predictions = f'service=~"{promql.PREDICTION_SERVICES}"'
    assert Target().selector() == "{" + predictions + "}"
    assert Target(services=None).selector() == "{}"
    assert Target("fraud-detector", "canary").selector() == (
        '{deployment_name="fraud-detector",predictor_name="canary",' + predictions + "}"
    )
    assert Target("$model", regex=True, namespace="models", services=None).selector() == (
        '{deployment_name=~"$model",namespace=~"models"}'
    )
    assert Target("a", services=None).selector('code=~"5.."') == '{deployment_name="a",code=~"5.."}'


def test_declared_traffic_is_not_filtered_by_service() -> None:
    assert "service" not in promql.declared_traffic_share(Target("fraud-detector"))
    assert "service" not in promql.declared_versions(Target("fraud-detector"))


def test_label_values_are_escaped() -> None:
    assert promql.matchers({"deployment_name": 'we"ird\\name'}) == '{deployment_name="we\\"ird\\\\name"}'


def test_windows_must_be_promql_durations() -> None:
    assert promql.duration("5m") == "5m" and promql.duration("1h30m") == "1h30m"
    assert promql.duration("$__rate_interval") == "$__rate_interval"
    for bad in ("5 minutes", "", "5", "m5", "5m; drop"):
        with pytest.raises(ValueError, match="not a PromQL duration"):
            promql.request_rate(Target(), bad)


def test_quantiles_must_be_between_zero_and_one() -> None:
    for bad in (0, 1, 95):
        with pytest.raises(ValueError, match="quantile"):
            promql.latency_quantile(Target(), bad, "5m")


def test_predictor_expressions_aggregate_per_model_and_predictor() -> None:
    canary = Target("fraud-detector", "canary", services=None)
    assert promql.request_rate(canary, "5m") == (
        "sum by (deployment_name, predictor_name) (rate(seldon_api_executor_server_requests_seconds_count"
        '{deployment_name="fraud-detector",predictor_name="canary"}[5m]))'
    )
    assert promql.error_ratio(canary, "5m").startswith("(sum by (deployment_name, predictor_name) (rate(")
    assert f'code=~"{promql.ERROR_CODE_REGEX}"' in promql.error_ratio(canary, "5m")
    assert promql.latency_quantile(canary, 0.95, "5m").startswith("histogram_quantile(0.95, sum by (")
    assert "increase(" in promql.request_count(canary, "1h") and "[1h]" in promql.request_count(canary, "1h")


def test_traffic_share_divides_by_the_whole_model() -> None:
    share = promql.traffic_share(Target("fraud-detector", "canary"), "5m")
    numerator, denominator = share.split(" / on (deployment_name) group_left () ")
    assert 'predictor_name="canary"' in numerator and "predictor_name" not in denominator.split("rate(")[1]


def test_dashboard_variables_are_substituted_and_promql_dollars_kept() -> None:
    expr = (
        promql.mlflow_pods_ready("mlflow", ("tracking",))
        + " + "
        + promql.request_rate(Target("$model", regex=True), "$__rate_interval")
    )
    substituted = dashboards.substitute_variables(expr, {"model": ".*", "__rate_interval": "1m"})
    assert '"$1"' in substituted and "$model" not in substituted and "[1m]" in substituted
    with pytest.raises(KeyError, match=r"\$predictor"):
        dashboards.substitute_variables('x{p=~"$predictor"}', {})


def test_dashboards_have_every_required_panel() -> None:
    rollouts = dashboards.model_rollouts()
    assert [p["title"] for p in rollouts["panels"]] == [
        "Request rate",
        "Traffic share: declared vs observed",
        "Error ratio",
        "Latency p50 / p95 / p99",
        "Current versions",
        "Requests in the last 10m (the rollout analysis' sample)",
        "Replicas vs. bounds (autoscaled predictors)",
        "Requests per replica (compare with the target)",
    ]
    assert {v["name"] for v in rollouts["templating"]["list"]} == {"model", "predictor"}
    mlflow = dashboards.mlflow("mlflow", ("tracking", "registry", "artifacts"))
    assert [p["title"] for p in mlflow["panels"]] == ["Requests", "Latency p50 / p95 / p99", "5xx ratio", "Pods"]
    ids = [p["id"] for d in (rollouts, mlflow) for p in d["panels"]]
    assert all(ids)
