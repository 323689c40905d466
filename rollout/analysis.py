"""The pure canary analysis: observed metrics + health gates → the next rollout decision.

Decisions, in order of precedence:
- too little traffic to the candidate over the window → hold (no evidence either way);
- error rate, p95 latency or p95 relative to the stable predictor over its gate → roll back;
- healthy at the last step → promote; healthy before it → advance to the next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from settings.rollout import AnalysisSettings

Action = Literal["hold", "advance", "promote", "rollback"]


@dataclass(frozen=True)
class CanaryMetrics:
    """What Prometheus says about a model's predictors over the analysis window."""

    requests: float
    """Requests the candidate served in the window."""
    error_rate: float | None
    """Share of the candidate's requests that failed (None: no requests)."""
    p95_seconds: float | None
    stable_p95_seconds: float | None


@dataclass(frozen=True)
class Decision:
    action: Action
    weight: int | None
    """The candidate weight after the decision (None for promote and rollback)."""
    reason: str


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
