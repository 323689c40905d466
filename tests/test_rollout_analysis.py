"""The pure canary analysis: every gate, in order of precedence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.analysis import CanaryMetrics, Decision, decide, dwell, next_step
from settings.rollout import AnalysisSettings

GATES = AnalysisSettings(
    window="10m", min_requests=100, max_error_rate=0.01, max_p95_latency_seconds=0.5, max_p95_ratio_to_stable=1.5
)
STEPS = [10, 25, 50, 100]


def _metrics(
    requests: float = 1000, errors: float | None = 0.001, p95: float | None = 0.1, stable_p95: float | None = 0.1
) -> CanaryMetrics:
    return CanaryMetrics(requests, errors, p95, stable_p95)


def test_healthy_canary_advances_step_by_step_then_promotes() -> None:
    weights, decision = [], decide(_metrics(), GATES, STEPS, 10)
    while decision.action == "advance":
        assert decision.weight is not None
        weights.append(decision.weight)
        decision = decide(_metrics(), GATES, STEPS, decision.weight)
    assert weights == [25, 50, 100]
    assert decision.action == "promote" and "last step (100%)" in decision.reason


@pytest.mark.parametrize(
    ("metrics", "action", "reason"),
    [
        (_metrics(requests=99), "hold", "too little traffic: 99 requests in 10m (need 100)"),
        (_metrics(requests=99, errors=0.5), "hold", "too little traffic"),
        (_metrics(errors=0.02), "rollback", "error rate 2.00% above 1.00%"),
        (_metrics(p95=0.6), "rollback", "p95 latency 600 ms above 500 ms"),
        (_metrics(p95=0.4, stable_p95=0.2), "rollback", "p95 latency 2.00x the stable's"),
        (_metrics(p95=0.14, stable_p95=0.1), "advance", "healthy"),
        (_metrics(errors=None, p95=None, stable_p95=None), "advance", "healthy"),
    ],
)
def test_gates(metrics: CanaryMetrics, action: str, reason: str) -> None:
    decision = decide(metrics, GATES, STEPS, 25)
    assert decision.action == action
    assert reason in decision.reason


def test_next_step() -> None:
    assert next_step(STEPS, 10) == 25
    assert next_step(STEPS, 100) is None
    assert next_step(STEPS, 30) == 50


@given(st.floats(0, 1e6), st.floats(0, 1), st.floats(0.001, 10), st.sampled_from(STEPS))
def test_a_decision_always_names_a_valid_next_state(requests: float, errors: float, p95: float, weight: int) -> None:
    decision = decide(CanaryMetrics(requests, errors, p95, 0.1), GATES, STEPS, weight)
    if decision.action in ("hold", "advance"):
        assert decision.weight in STEPS and decision.weight >= weight
    else:
        assert decision.weight is None
    assert decision.reason


@pytest.mark.parametrize(
    ("decision", "at_step", "expected"),
    [
        (Decision("advance", 25, "healthy"), 10.0, "hold"),  # too soon at this step
        (Decision("advance", 25, "healthy"), 299.0, "hold"),
        (Decision("advance", 25, "healthy"), 300.0, "advance"),
        (Decision("promote", None, "healthy"), 60.0, "hold"),
        (Decision("promote", None, "healthy"), 301.0, "promote"),
        (Decision("advance", 25, "healthy"), None, "hold"),  # a first step no decision set: recorded now
        (Decision("rollback", None, "error rate 5%"), 1.0, "rollback"),  # a bad canary leaves at once
        (Decision("hold", None, "too little traffic"), 1.0, "hold"),
    ],
)
def test_a_canary_dwells_at_each_step_for_its_step_interval(
    decision: Decision, at_step: float | None, expected: str
) -> None:
    result = dwell(decision, at_step, "5m", 10)
    assert result.action == expected
    assert result.marks_step == (at_step is None and decision.action in ("advance", "promote"))
    if expected == "hold" and decision.action != "hold":
        assert result.weight is None
        if at_step is None:
            assert result.reason.startswith(f"at step 10% from now: stepInterval 5m, then {decision.action}")
        else:
            assert result.reason.startswith(
                f"at step 10% for {at_step:.0f} s of stepInterval 5m, then {decision.action}"
            )


@given(st.floats(0, 10_000), st.sampled_from(["30s", "1m", "5m", "1h"]))
def test_dwell_never_delays_past_the_interval_nor_lets_through_before_it(at_step: float, interval: str) -> None:
    result = dwell(Decision("advance", 50, "healthy"), at_step, interval, 25)
    seconds = {"30s": 30, "1m": 60, "5m": 300, "1h": 3600}[interval]
    assert (result.action == "advance") == (at_step >= seconds)
