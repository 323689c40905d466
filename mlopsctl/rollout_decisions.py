"""From a model's registry state and its metrics to a rollout decision, and the hooks after it.

`analyse` applies `rollout.analysis` to what Prometheus measured (the same PromQL as the
dashboards, `observability.promql`): the pre-rollout hooks, mirror phase and first-step gate
before a rollout starts, then the canary steps, the A/B comparison or the shadow verdict, and the
promotion gate. `notify` delivers the event hooks of a written decision (signed with
`MLOPS_HOOK_SECRET`, or the file `MLOPS_HOOK_SECRET_FILE` names).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlopsctl.rollout_context import Context, UsageError, candidate_of
from observability import promql
from rollout import hooks
from rollout.actions import Outcome
from rollout.analysis import (
    AbObservation,
    CanaryMetrics,
    Decision,
    compare_to_stable,
    decide,
    decide_ab,
    dwell,
    gate,
    mirrored_summary,
)
from rollout.planner import STARTED_TAG, STEP_AT_TAG, approved, canary_weight, deployment_name, started
from rollout.snapshot import ModelState, VersionInfo
from settings.rollout import HookEvent, ModelRolloutSettings


def candidate_predictor(model: ModelRolloutSettings) -> str:
    return "shadow" if model.strategy == "shadow" else "canary"


def _targets(context: Context, model: ModelRolloutSettings) -> tuple[promql.Target, promql.Target]:
    deployment, namespace = deployment_name(model.name), context.models_namespace
    return (
        promql.Target(deployment, candidate_predictor(model), namespace),
        promql.Target(deployment, "stable", namespace),
    )


def measure(context: Context, model: ModelRolloutSettings) -> CanaryMetrics:
    """The candidate's traffic, errors and latency over the analysis window (same PromQL as the dashboards)."""
    assert context.prometheus is not None
    candidate, stable = _targets(context, model)
    window = model.analysis.window
    query = context.prometheus.scalar
    return CanaryMetrics(
        requests=query(promql.request_count(candidate, window)) or 0.0,
        error_rate=query(promql.error_ratio(candidate, window)),
        p95_seconds=query(promql.latency_quantile(candidate, 0.95, window)),
        stable_p95_seconds=query(promql.latency_quantile(stable, 0.95, window)),
        stable_error_rate=query(promql.error_ratio(stable, window)),
    )


AB_QUANTILES = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}


def ab_expression(metric: str, target: promql.Target, window: str) -> str:
    """The A/B decision metric, from `observability.promql` (what the dashboards plot)."""
    if metric == "error_ratio":
        return promql.error_ratio(target, window)
    return promql.latency_quantile(target, AB_QUANTILES[metric], window)


def measure_ab(context: Context, model: ModelRolloutSettings) -> AbObservation:
    assert context.prometheus is not None
    candidate, stable = _targets(context, model)
    window = model.ab.duration
    query = context.prometheus.scalar
    return AbObservation(
        requests=query(promql.request_count(candidate, window)) or 0.0,
        candidate=query(ab_expression(model.ab.metric, candidate, window)),
        stable=query(ab_expression(model.ab.metric, stable, window)),
    )


def hook_payload(
    model: ModelRolloutSettings, state: ModelState, candidate: VersionInfo, **extra: Any
) -> dict[str, Any]:
    stable = state.aliased(model.stable_alias)
    return {
        "model": model.name,
        "deployment": deployment_name(model.name),
        "strategy": model.strategy,
        "candidateVersion": candidate.version,
        "stableVersion": stable.version if stable else None,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


def _pre_rollout(
    context: Context, model: ModelRolloutSettings, state: ModelState, candidate: VersionInfo
) -> Decision | None:
    """Before a rollout starts: pre-rollout hooks, the mirror analysis, the first-step gate."""
    if any("pre-rollout" in hook.events for hook in model.hooks) and not context.dry_run:  # dry run: not called
        payload = hook_payload(model, state, candidate)
        results = hooks.deliver(model.hooks, "pre-rollout", payload, _hook_secret(context))
        failed = [r for r in results if not r.ok]
        if failed:
            return Decision("hold", None, "pre-rollout hook " + "; ".join(f"{r.url}: {r.detail}" for r in failed))
    mirrored = ""
    if model.mirror is not None and model.strategy != "shadow":
        metrics = measure(context, model)
        verdict = compare_to_stable(metrics, model.analysis)
        if verdict is not None:
            return Decision(verdict.action, None, f"mirror phase: {verdict.reason}")
        mirrored = f"mirror phase healthy: {mirrored_summary(metrics)}"
    weight = model.steps[0] if model.strategy == "canary" else None
    start = Decision("start", weight, mirrored or "pre-rollout checks passed")
    return gate(start, model.approval.before_first_step, approved(candidate, "first-step"), "the first step")


def _seconds_since(candidate: VersionInfo, tag: str) -> float | None:
    """Seconds since the time in `tag` on the candidate; None when it is absent or not a time."""
    try:
        since = datetime.fromisoformat(candidate.tags.get(tag, ""))
    except ValueError:
        return None
    return (datetime.now(UTC) - since).total_seconds()


def _elapsed_seconds(candidate: VersionInfo) -> float:
    return _seconds_since(candidate, STARTED_TAG) or 0.0


def analyse(context: Context, model: ModelRolloutSettings, state: ModelState) -> Decision | None:
    candidate = candidate_of(model, state)
    if candidate is None:
        return None
    if model.strategy == "single":
        return Decision("hold", None, "strategy single: the candidate is not served")
    if not started(candidate) and (model.holds_before_traffic or model.strategy == "ab"):
        # ab without pre-rollout checks starts at once: its duration counts from here.
        return _pre_rollout(context, model, state, candidate)
    if model.strategy == "shadow":
        metrics = measure(context, model)
        verdict = compare_to_stable(metrics, model.analysis)
        decision = verdict or Decision("promote", None, f"shadow healthy: {mirrored_summary(metrics)}")
    elif model.strategy == "ab":
        observation = measure_ab(context, model)
        decision = decide_ab(observation, model.ab, model.analysis.min_requests, _elapsed_seconds(candidate))
    else:
        weight = canary_weight(model.name, candidate, model.steps)
        decision = decide(measure(context, model), model.analysis, model.steps, weight)
        decision = dwell(decision, _seconds_since(candidate, STEP_AT_TAG), model.analysis.step_interval, weight)
    if decision.action != "promote":
        return decision
    return gate(decision, model.approval.before_promotion, approved(candidate, "promotion"), "promotion")


def _hook_secret(context: Context) -> str | None:
    try:
        return hooks.secret_from(context.environ)
    except OSError as error:
        raise UsageError(f"cannot read {hooks.SECRET_FILE_ENV}: {error}") from error


HOOK_EVENT_BY_ACTION: dict[str, HookEvent] = {
    "start": "step",
    "advance": "step",
    "promote": "promotion",
    "rollback": "rollback",
}


def notify(
    context: Context, model: ModelRolloutSettings, state: ModelState, decision: Decision, outcome: Outcome
) -> list[hooks.HookResult]:
    """Event hooks after a written decision (best effort: failures are reported, nothing else)."""
    event = HOOK_EVENT_BY_ACTION.get(decision.action)
    candidate = candidate_of(model, state)
    if event is None or not outcome.written or candidate is None:
        return []
    if event == "step" and decision.weight is None:
        return []  # an A/B or shadow start shifts no step
    payload = hook_payload(
        model, state, candidate, action=decision.action, weight=decision.weight, reason=decision.reason
    )
    return hooks.deliver(model.hooks, event, payload, _hook_secret(context))
