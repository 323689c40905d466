"""Model autoscaling: settings, the per-predictor plan, the declared objects, the HPA algorithm
over synthetic load, and every scaling query against a real Prometheus."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from observability import promql
from observability.promql import Target
from rollout import autoscaling, hpa
from rollout.planner import WEIGHT_TAG, plan_model, seldon_deployment
from rollout.snapshot import ModelState, VersionInfo
from settings.rollout import AutoscalingSettings, ModelRolloutSettings, RolloutSettings
from tests.services.exporter import TrafficControl
from tests.services.prometheus import PrometheusServer

DEST = "wasbs://mlflow-artifacts@acct.blob.core.windows.net/artifacts"
PROMETHEUS = "http://prometheus.monitoring:9090"


def _version(number: str, **tags: str) -> VersionInfo:
    return VersionInfo(
        version=number,
        status="READY",
        source=f"models:/m-{number}",
        run_id="r",
        download_uri=f"mlflow-artifacts:/1/models/m-{number}/artifacts",
        tags=tags,
    )


def _state(candidate_tags: dict[str, str] | None = None) -> ModelState:
    return ModelState(
        name="fraud-detector",
        versions={"3": _version("3"), "4": _version("4", **(candidate_tags or {}))},
        aliases={"champion": "3", "challenger": "4"},
    )


def _model(**fields: Any) -> ModelRolloutSettings:
    autoscale = {"minReplicas": 4, "maxReplicas": 12, "targetRequestsPerSecond": 50, "targetCpuPercent": 70}
    return ModelRolloutSettings.model_validate({"name": "fraud-detector", "autoscaling": autoscale, **fields})


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("autoscale", "message"),
    [
        ({"minReplicas": 5, "maxReplicas": 2, "targetCpuPercent": 70}, "minReplicas (5) is above maxReplicas (2)"),
        ({"minReplicas": 1, "maxReplicas": 2}, "set a target"),
        ({"maxReplicas": 2, "targetCpuPercent": 5}, "greater than or equal to 10"),
        ({"maxReplicas": 2, "targetRequestsPerSecond": 0}, "greater than 0"),
    ],
)
def test_bad_autoscaling_is_refused_with_the_reason(autoscale: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AutoscalingSettings.model_validate(autoscale)


def test_replicas_and_autoscaling_exclude_each_other() -> None:
    with pytest.raises(ValidationError, match="set one of them"):
        _model(replicas=2)
    assert _model().autoscaling is not None


def test_max_replicas_must_fit_the_ceiling() -> None:
    settings: dict[str, Any] = {
        "models": [_model().model_dump(by_alias=True, exclude_unset=True)],
        "maxReplicasPerModel": 8,
    }
    with pytest.raises(ValidationError, match=r"above maxReplicasPerModel \(8\): fraud-detector \(12\)"):
        RolloutSettings.model_validate(settings)
    settings["maxReplicasPerModel"] = 12
    assert RolloutSettings.model_validate(settings).max_replicas_per_model == 12


# --- the plan: canary-aware scalers ----------------------------------------------------------------


def _scaling(settings: ModelRolloutSettings, tags: dict[str, str] | None = None) -> dict[str, Any]:
    plan = plan_model(_state(tags), settings, "fraud-detector")
    return {p.name: p.scaling for p in plan.predictors}


def test_a_canary_holds_pods_in_proportion_to_its_share() -> None:
    at_10 = _scaling(_model(steps=[10, 50, 100]), {WEIGHT_TAG: "10"})
    assert at_10["stable"].min_replicas == 4 and at_10["canary"].min_replicas == 1  # ceil(4 x 10 %)
    at_50 = _scaling(_model(steps=[10, 50, 100]), {WEIGHT_TAG: "50"})
    assert at_50["canary"].min_replicas == 2 and at_50["stable"].min_replicas == 4
    assert {s.load for s in (*at_10.values(), *at_50.values())} == {"predictor"}
    assert all(s.max_replicas == 12 for s in at_10.values())


def test_the_stable_is_pre_scaled_on_the_whole_model_at_the_last_step() -> None:
    at_100 = _scaling(_model(steps=[10, 50, 100]), {WEIGHT_TAG: "100"})
    assert at_100["stable"].load == "model" and at_100["canary"].load == "predictor"
    assert at_100["canary"].min_replicas == 4
    query = autoscaling.trigger_query("models", "fraud-detector", "stable", at_100["stable"].load)
    assert 'deployment_name="fraud-detector"' in query and "predictor_name" not in query


def test_a_shadow_scales_on_the_mirrored_share() -> None:
    shadow = _scaling(_model(strategy="shadow", mirror={"percent": 50}))
    assert shadow["shadow"].min_replicas == 2 and shadow["stable"].min_replicas == 4
    full_mirror = _scaling(_model(strategy="shadow"))
    assert full_mirror["shadow"].min_replicas == 4


def test_a_candidate_waiting_for_a_gate_keeps_one_warm_replica() -> None:
    held = _scaling(_model(approval={"beforeFirstStep": True}))
    assert held["canary"].min_replicas == 1


def test_autoscaled_predictors_have_a_keda_spec_and_no_fixed_replicas() -> None:
    plan = plan_model(_state({WEIGHT_TAG: "10"}), _model(steps=[10, 100]), "fraud-detector")
    manifest = seldon_deployment(
        plan,
        namespace="models",
        artifacts_destination=DEST,
        storage_secret="s",
        service_account="sa",
        prometheus_url=PROMETHEUS,
    )
    for predictor in manifest["spec"]["predictors"]:
        assert "replicas" not in predictor
        keda = predictor["componentSpecs"][0]["kedaSpec"]
        prometheus, cpu = keda["triggers"]
        assert prometheus["metadata"]["serverAddress"] == PROMETHEUS and prometheus["metadata"]["threshold"] == "50"
        assert f'predictor_name="{predictor["name"]}"' in prometheus["metadata"]["query"]
        assert cpu == {
            "type": "cpu",
            "name": "cpu",
            "metricType": "Utilization",
            "metadata": {"value": "70", "containerName": "model"},
        }
        behavior = keda["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    fixed = plan_model(_state(), ModelRolloutSettings(name="fraud-detector", replicas=3), "fraud-detector")
    fixed_manifest = seldon_deployment(
        fixed, namespace="models", artifacts_destination=DEST, storage_secret="s", service_account="sa"
    )
    assert all(
        p["replicas"] == 3 and "kedaSpec" not in p["componentSpecs"][0] for p in fixed_manifest["spec"]["predictors"]
    )


def test_a_request_rate_target_needs_prometheus() -> None:
    plan = plan_model(_state(), _model(), "fraud-detector")
    with pytest.raises(ValueError, match="needs the Prometheus address"):
        seldon_deployment(
            plan, namespace="models", artifacts_destination=DEST, storage_secret="s", service_account="sa"
        )


def test_each_predictor_has_its_own_disruption_budget_that_never_blocks_a_drain() -> None:
    budgets = [
        autoscaling.disruption_budget(
            "models", "fraud-detector", autoscaling.predictor_deployment_name("fraud-detector", p, "model")
        )
        for p in ("stable", "canary")
    ]
    assert all(b["spec"]["maxUnavailable"] == 1 and "minAvailable" not in b["spec"] for b in budgets)
    stable, canary = (b["spec"]["selector"]["matchLabels"] for b in budgets)
    # Disjoint: a pod covered by two PDBs cannot be evicted at all (the eviction API refuses it).
    assert stable["app"] == "fraud-detector-stable-0-model" and canary["app"] == "fraud-detector-canary-0-model"
    assert stable["seldon-deployment-id"] == canary["seldon-deployment-id"] == "fraud-detector"


def test_the_models_stacks_declare_scalers_and_budgets_after_their_deployments(models_stack: Any) -> None:
    deployments = models_stack.of_type("kubernetes:machinelearning.seldon.io/v1:SeldonDeployment")
    budgets = models_stack.of_type("kubernetes:policy/v1:PodDisruptionBudget")
    predictors = [p for d in deployments for p in d.inputs["spec"]["predictors"]]
    assert len(budgets) == len(predictors)
    assert any("kedaSpec" in p["componentSpecs"][0] for p in predictors)
    urns = {d.urn for d in deployments}
    assert all(urns & set(b.dependencies) for b in budgets)


# --- the HPA algorithm over synthetic load -------------------------------------------------------


def _scaler(min_replicas: int = 1, max_replicas: int = 12, window: int = 300) -> hpa.Scaler:
    settings = AutoscalingSettings(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_requests_per_second=50,
        scale_down_stabilization_seconds=window,
    )
    scaling = autoscaling.predictor_scaling(settings, role="stable", share_percent=100)
    spec = autoscaling.keda_spec(
        scaling, prometheus_url=PROMETHEUS, namespace="m", deployment="d", predictor="stable", container="model"
    )
    return hpa.from_keda_spec(spec)


def _rps(profile: Callable[[float], float]) -> Callable[[float], hpa.Load]:
    return lambda t: hpa.Load(profile(t))


def test_the_simulator_follows_the_documented_formula_and_tolerance() -> None:
    simulator = hpa.HpaSimulator(_scaler(), replicas=4)
    assert simulator.sync(hpa.Load(215), 0) == 4  # 215 / (50 x 4) = 1.075: within the 0.1 tolerance
    assert simulator.sync(hpa.Load(230), 15) == 5  # 1.15: ceil(230 / 50)


def test_a_step_is_followed_within_two_syncs_and_then_holds() -> None:
    samples = hpa.simulate(_scaler(), _rps(lambda t: 40 if t < 300 else 400), 1200)
    after = [s for s in samples if s.at >= 300]
    assert after[0].replicas == 5  # double or +4 per 15 s: 1 → 5
    assert after[1].replicas == 8 and all(s.replicas == 8 for s in after[1:])
    assert all(s.per_replica <= 50 * 1.1 for s in after[1:])
    assert hpa.direction_changes(samples) == 0


def test_a_dip_shorter_than_the_window_keeps_the_pods() -> None:
    samples = hpa.simulate(_scaler(), _rps(lambda t: 50 if 600 <= t < 840 else 400), 1800, start_replicas=8)
    assert {s.replicas for s in samples} == {8}


def test_a_spike_scales_up_at_once_and_down_slowly_without_flapping() -> None:
    samples = hpa.simulate(_scaler(), _rps(lambda t: 550 if 300 <= t < 420 else 50), 2400)
    peak = max(s.replicas for s in samples)
    assert peak == 11  # ceil(550 / 50)
    first_peak = next(s.at for s in samples if s.replicas == peak)
    assert first_peak <= 345  # 1 → 5 → 10 → 11 within three syncs
    back = next(s.at for s in samples if s.at > 420 and s.replicas == 1)
    assert back >= 420 + 300  # not before the stabilisation window
    assert hpa.direction_changes(samples) == 1  # up once, down once


def test_canary_steps_scale_each_predictor_on_its_own_share() -> None:
    settings = _model(steps=[10, 50, 100]).autoscaling
    assert settings is not None
    total = 600.0
    steps = [(0, 10), (900, 50), (1800, 100)]

    def share(t: float) -> int:
        return [weight for start, weight in steps if t >= start][-1]

    def scaler(role: str) -> Callable[[float], hpa.Scaler]:
        def at(t: float) -> hpa.Scaler:
            scaling = autoscaling.predictor_scaling(
                settings, role=role, share_percent=share(t) if role == "canary" else 100 - share(t)
            )
            spec = autoscaling.keda_spec(
                scaling, prometheus_url=PROMETHEUS, namespace="m", deployment="d", predictor=role, container="model"
            )
            return hpa.from_keda_spec(spec)

        return at

    canary = hpa.simulate(scaler("canary"), _rps(lambda t: total * share(t) / 100), 2700)
    stable = hpa.simulate(scaler("stable"), _rps(lambda t: total * (100 - share(t)) / 100), 2700, start_replicas=12)
    at = {s.at: s.replicas for s in canary}
    stable_at = {s.at: s.replicas for s in stable}
    assert at[885] == 2 and stable_at[885] >= 11  # 10 %: the canary holds 2 pods, not the stable's 11-12
    assert at[1785] == 6  # 50 %: ceil(300 / 50)
    assert at[2685] == 12  # 100 %: ceil(600 / 50)
    assert stable_at[2685] == 4  # the stable falls back to its minimum, one step at a time
    assert hpa.direction_changes(canary) == 0


# --- every scaling query against a real Prometheus -------------------------------------------------


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def _one_nonzero_series(prometheus: PrometheusServer, query: str) -> bool:
    rows = prometheus.query(query)
    return len(rows) == 1 and float(rows[0]["value"][1]) > 0


def _value_near(prometheus: PrometheusServer, query: str, expected: float) -> bool:
    rows = prometheus.query(query)
    return len(rows) == 1 and math.isclose(float(rows[0]["value"][1]), expected, rel_tol=0.2)


def _series_count_is(prometheus: PrometheusServer, query: str, count: int) -> bool:
    return len(prometheus.query(query)) == count


def test_every_trigger_and_replica_query_returns_one_series_per_predictor(
    traffic: tuple[TrafficControl, PrometheusServer],
) -> None:
    control, prometheus = traffic
    model = "autoscaled"
    loads = {"stable": 30.0, "canary": 4.0, "shadow": 12.0}
    for predictor, rps in loads.items():
        control.set_predictor(model, predictor, rps=rps, replicas=3, max_replicas=3 if predictor == "stable" else 6)
    for predictor, rps in loads.items():
        declared = autoscaling.trigger_query("models", model, predictor, "predictor")
        assert _eventually(functools.partial(_one_nonzero_series, prometheus, declared))
        # The value, over a window the 1 s scrape fills at once (the declared 2m one would need 2 minutes).
        query = autoscaling.trigger_query("models", model, predictor, "predictor", window="10s")
        assert _eventually(functools.partial(_value_near, prometheus, query, rps), 60), prometheus.query(query)
    whole = autoscaling.trigger_query("models", model, "stable", "model", window="10s")
    assert _eventually(functools.partial(_value_near, prometheus, whole, 46), 60)
    silent = autoscaling.trigger_query("models", model, "nobody", "predictor")
    assert [float(r["value"][1]) for r in prometheus.query(silent)] == [0.0]

    target = Target(model, namespace="models")
    for expr in (
        promql.predictor_replicas(target),
        promql.predictor_min_replicas(target),
        promql.predictor_max_replicas(target),
        promql.requests_per_replica(target, "30s"),
    ):
        assert _eventually(functools.partial(_series_count_is, prometheus, expr, 3)), expr
        labels = {(r["metric"]["deployment_name"], r["metric"]["predictor_name"]) for r in prometheus.query(expr)}
        assert labels == {(model, p) for p in loads}
    at_max = {r["metric"]["predictor_name"] for r in prometheus.query(promql.at_max_replicas(target))}
    assert at_max == {"stable"}

    def per_replica() -> dict[str, float]:
        rows = prometheus.query(promql.requests_per_replica(target, "10s"))
        return {r["metric"]["predictor_name"]: float(r["value"][1]) for r in rows}

    assert _eventually(lambda: math.isclose(per_replica().get("stable", 0), 10, rel_tol=0.2)), per_replica()
