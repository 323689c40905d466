"""The pure rollout analysis: observed metrics + health gates → the next rollout decision.

Canary steps (`decide`), in order of precedence:
- too little traffic to the candidate over the window → hold (no evidence either way);
- error rate, p95 latency or p95 relative to the stable predictor over its gate → roll back;
- healthy at the last step → promote; healthy before it → advance to the next step.

Mirrored traffic (`compare_to_stable`: the mirror phase and `shadow`): the same, plus the
candidate's error rate may exceed the stable's by at most `maxErrorRateAboveStable`; healthy →
the caller starts the rollout (mirror phase) or promotes (shadow).

A/B (`decide_ab`): after `ab.duration`, the configured metric of candidate and stable over the
whole duration: candidate <= `maxRatioToStable` times stable → promote, else roll back.

Manual gates (`gate`): promotion waits for an approval when `approval.beforePromotion` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from settings.rollout import AbSettings, AnalysisSettings

Action = Literal["hold", "start", "advance", "promote", "rollback"]


@dataclass(frozen=True)
class CanaryMetrics:
    """What Prometheus says about a model's predictors over the analysis window."""

    requests: float
    """Requests the candidate served in the window."""
    error_rate: float | None
    """Share of the candidate's requests that failed (None: no requests)."""
    p95_seconds: float | None
    stable_p95_seconds: float | None
    stable_error_rate: float | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    weight: int | None
    """The candidate weight after the decision (None for promote and rollback)."""
    reason: str
    marks_step: bool = False
    """Record now as the time the current step began (a first step no decision set)."""


def next_step(steps: list[int], current: int) -> int | None:
    """The step after `current`, or None at (or beyond) the last one."""
    later = [step for step in steps if step > current]
    return later[0] if later else None


def decide(metrics: CanaryMetrics, gates: AnalysisSettings, steps: list[int], current_weight: int) -> Decision:
    if metrics.requests < gates.min_requests:
        return Decision(
            "hold",
            current_weight,
            f"too little traffic: {metrics.requests:.0f} requests in {gates.window} (need {gates.min_requests})",
        )
    if metrics.error_rate is not None and metrics.error_rate > gates.max_error_rate:
        return Decision(
            "rollback",
            None,
            f"error rate {metrics.error_rate:.2%} above {gates.max_error_rate:.2%} over {gates.window}",
        )
    if metrics.p95_seconds is not None and metrics.p95_seconds > gates.max_p95_latency_seconds:
        return Decision(
            "rollback",
            None,
            f"p95 latency {metrics.p95_seconds * 1000:.0f} ms above {gates.max_p95_latency_seconds * 1000:.0f} ms"
            f" over {gates.window}",
        )
    if metrics.p95_seconds is not None and metrics.stable_p95_seconds:
        ratio = metrics.p95_seconds / metrics.stable_p95_seconds
        if ratio > gates.max_p95_ratio_to_stable:
            return Decision(
                "rollback", None, f"p95 latency {ratio:.2f}x the stable's, above {gates.max_p95_ratio_to_stable:.2f}x"
            )
    following = next_step(steps, current_weight)
    healthy = f"healthy: {metrics.requests:.0f} requests, error rate {(metrics.error_rate or 0):.2%}"
    if following is None:
        return Decision("promote", None, f"{healthy} at the last step ({current_weight}%)")
    return Decision("advance", following, f"{healthy}; {current_weight}% → {following}%")


def compare_to_stable(metrics: CanaryMetrics, gates: AnalysisSettings) -> Decision | None:
    """None when the candidate's mirrored traffic is healthy; else hold (too little) or roll back."""
    decision = decide(metrics, gates, [100], 100)
    if decision.action != "promote":
        return decision
    if metrics.error_rate is not None and metrics.stable_error_rate is not None:
        excess = metrics.error_rate - metrics.stable_error_rate
        if excess > gates.max_error_rate_above_stable:
            return Decision(
                "rollback",
                None,
                f"error rate {metrics.error_rate:.2%} is {excess:.2%} above the stable's "
                f"{metrics.stable_error_rate:.2%} (at most {gates.max_error_rate_above_stable:.2%})"
                f" over {gates.window}",
            )
    return None


def mirrored_summary(metrics: CanaryMetrics) -> str:
    stable = "-" if metrics.stable_error_rate is None else f"{metrics.stable_error_rate:.2%}"
    p95 = "-" if metrics.p95_seconds is None else f"{metrics.p95_seconds * 1000:.0f} ms"
    return (
        f"{metrics.requests:.0f} mirrored requests, error rate {(metrics.error_rate or 0):.2%} "
        f"(stable {stable}), p95 {p95}"
    )


@dataclass(frozen=True)
class AbObservation:
    """The A/B metric of candidate and stable over the whole duration, and the candidate's requests."""

    requests: float
    candidate: float | None
    stable: float | None


def decide_ab(observed: AbObservation, ab: AbSettings, min_requests: int, elapsed_seconds: float) -> Decision:
    duration = duration_seconds(ab.duration)
    if elapsed_seconds < duration:
        return Decision("hold", None, f"A/B running: {elapsed_seconds / 60:.0f} of {duration / 60:.0f} minutes")
    if observed.requests < min_requests:
        return Decision(
            "hold", None, f"too little traffic: {observed.requests:.0f} requests in {ab.duration} (need {min_requests})"
        )
    if observed.candidate is None or observed.stable is None:
        return Decision("hold", None, f"no {ab.metric} for both predictors over {ab.duration}")
    limit = observed.stable * ab.max_ratio_to_stable
    summary = f"{ab.metric} candidate {observed.candidate:.4g} vs stable {observed.stable:.4g} over {ab.duration}"
    if observed.candidate <= limit + 1e-12:
        return Decision("promote", None, f"A/B won: {summary} (limit {ab.max_ratio_to_stable:g}x)")
    return Decision("rollback", None, f"A/B lost: {summary} (limit {ab.max_ratio_to_stable:g}x)")


def gate(decision: Decision, required: bool, approved: bool, name: str) -> Decision:
    """Turn a promotion (or start) into a hold while its manual gate is not approved."""
    if not required or approved:
        return decision
    return Decision("hold", None, f"waiting for approval before {name} ({decision.reason})")


def dwell(decision: Decision, at_step_seconds: float | None, step_interval: str, weight: int) -> Decision:
    """Hold an advance or promotion until the current step has served `step_interval`.

    `at_step_seconds` is the time since the decision that set the step. A first step that no
    decision set (a canary that does not hold before traffic is served at its first step as soon
    as the alias is set) has none: the first analysis that finds it healthy holds it and records
    the time, so the first step dwells like the others. Rollbacks and holds pass unchanged: a bad
    canary leaves at once.
    """
    if decision.action not in ("advance", "promote"):
        return decision
    if at_step_seconds is None:
        return Decision(
            "hold",
            None,
            f"at step {weight}% from now: stepInterval {step_interval}, then {decision.action} ({decision.reason})",
            marks_step=True,
        )
    needed = duration_seconds(step_interval)
    if at_step_seconds >= needed:
        return decision
    return Decision(
        "hold",
        None,
        f"at step {weight}% for {at_step_seconds:.0f} s of stepInterval {step_interval}, then {decision.action} "
        f"({decision.reason})",
    )


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(duration: str) -> float:
    """`90s`, `10m`, `1h`, `2d` → seconds."""
    return float(duration[:-1]) * _UNITS[duration[-1]]
