"""`mlopsctl rollout status|advance|promote|rollback|approve`: progressive delivery driven by metrics.

Reads the models stack's rollout settings (`models/Pulumi.<stack>.yaml`), the registry (MLflow)
and Prometheus; writes decisions to the registry only (no side effects on the cluster). Addresses
come from flags, then the environment (`MLFLOW_TRACKING_URI`, `PROMETHEUS_URL`, `MODELS_NAMESPACE`;
credentials `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`), then the stack settings
(`rollout.trackingUri`, `rollout.prometheusUrl`). The platform's CronJob sets the environment
from its own outputs (in-cluster MLflow and Prometheus, the models namespace).
Event hooks are signed with `MLOPS_HOOK_SECRET` (or the file `MLOPS_HOOK_SECRET_FILE` names).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from layout.paths import MODELS_DIR
from mlopsctl.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from observability import promql
from rollout import hooks
from rollout.actions import Outcome, record_approval, write_decision
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
from rollout.planner import (
    APPROVAL_TAG_PREFIX,
    DECIDED_AT_TAG,
    GATES,
    REASON_TAG,
    STARTED_TAG,
    STATUS_TAG,
    STEP_AT_TAG,
    PlanError,
    approved,
    canary_weight,
    deployment_name,
    started,
)
from rollout.prometheus import PrometheusClient, PrometheusError
from rollout.registry_reader import ReaderOptions, RegistryClient, RegistryError, read_model
from rollout.snapshot import ModelState, VersionInfo
from rollout.source import tracking_password
from settings import SettingsError
from settings.models import ModelsSettings
from settings.rollout import HookEvent, ModelRolloutSettings
from settings.stack_file import models_settings_from_stack_file

DEFAULT_MODELS_NAMESPACE = "models"


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


@dataclass
class Context:
    settings: ModelsSettings
    registry: RegistryClient
    prometheus: PrometheusClient | None
    dry_run: bool
    models_namespace: str = DEFAULT_MODELS_NAMESPACE
    environ: Mapping[str, str] = field(default_factory=dict)


def _stack_settings(args: argparse.Namespace) -> ModelsSettings:
    path = args.stack_file or MODELS_DIR / f"Pulumi.{args.stack}.yaml"
    if not path.is_file():
        raise UsageError(f"no stack file {path}")
    try:
        return models_settings_from_stack_file(path)
    except SettingsError as error:
        raise UsageError(
            f"stack {args.stack}: {len(error.problems)} bad setting(s): "
            + "; ".join(p.render() for p in error.problems)
        ) from error


def _password(environ: Mapping[str, str]) -> str | None:
    """`rollout.source.tracking_password` (the CSI-mounted file wins), an unreadable file a usage error."""
    try:
        return tracking_password(environ)
    except RegistryError as error:
        raise UsageError(str(error)) from error


def _context(args: argparse.Namespace, environ: Mapping[str, str], need_prometheus: bool) -> Context:
    settings = _stack_settings(args)
    tracking_uri = args.tracking_uri or environ.get("MLFLOW_TRACKING_URI") or settings.rollout.tracking_uri
    if not tracking_uri:
        raise UsageError("no MLflow registry: pass --tracking-uri, set MLFLOW_TRACKING_URI or rollout.trackingUri")
    registry = RegistryClient(
        tracking_uri, environ.get("MLFLOW_TRACKING_USERNAME"), _password(environ), ReaderOptions()
    )
    prometheus_url = args.prometheus_url or environ.get("PROMETHEUS_URL") or settings.rollout.prometheus_url
    if need_prometheus and not prometheus_url:
        raise UsageError("no Prometheus: pass --prometheus-url, set PROMETHEUS_URL or rollout.prometheusUrl")
    prometheus = PrometheusClient(prometheus_url) if prometheus_url else None
    namespace = args.namespace or environ.get("MODELS_NAMESPACE") or DEFAULT_MODELS_NAMESPACE
    return Context(settings, registry, prometheus, getattr(args, "dry_run", False), namespace, environ)


def _model(context: Context, name: str) -> ModelRolloutSettings:
    for model in context.settings.rollout.models:
        if model.name == name:
            return model
    configured = ", ".join(m.name for m in context.settings.rollout.models) or "none"
    raise UsageError(f"model {name!r} is not in the stack's rollout.models (configured: {configured})")


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


def _state(context: Context, model: ModelRolloutSettings) -> ModelState:
    return read_model(context.registry, model.name, (model.stable_alias, model.canary_alias))


def _candidate(model: ModelRolloutSettings, state: ModelState) -> VersionInfo | None:
    candidate, stable = state.aliased(model.canary_alias), state.aliased(model.stable_alias)
    if candidate is None or (stable is not None and candidate.version == stable.version):
        return None
    return candidate


def _payload(model: ModelRolloutSettings, state: ModelState, candidate: VersionInfo, **extra: Any) -> dict[str, Any]:
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
        payload = _payload(model, state, candidate)
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


def _analyse(context: Context, model: ModelRolloutSettings, state: ModelState) -> Decision | None:
    candidate = _candidate(model, state)
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


def _notify(
    context: Context, model: ModelRolloutSettings, state: ModelState, decision: Decision, outcome: Outcome
) -> list[hooks.HookResult]:
    """Event hooks after a written decision (best effort: failures are reported, nothing else)."""
    event = HOOK_EVENT_BY_ACTION.get(decision.action)
    candidate = _candidate(model, state)
    if event is None or not outcome.written or candidate is None:
        return []
    if event == "step" and decision.weight is None:
        return []  # an A/B or shadow start shifts no step
    payload = _payload(model, state, candidate, action=decision.action, weight=decision.weight, reason=decision.reason)
    return hooks.deliver(model.hooks, event, payload, _hook_secret(context))


# --- commands ------------------------------------------------------------------------------------


def _status_row(context: Context, model: ModelRolloutSettings) -> dict[str, Any]:
    state = _state(context, model)
    stable, candidate = state.aliased(model.stable_alias), state.aliased(model.canary_alias)
    row: dict[str, Any] = {
        "model": model.name,
        "strategy": model.strategy,
        "stable": stable.version if stable else None,
        "candidate": candidate.version if _candidate(model, state) is not None and candidate else None,
        "declaredWeight": None,
        "observedShare": None,
        "errorRate": None,
        "p95Seconds": None,
        "lastDecision": None,
        "decidedAt": None,
    }
    if row["candidate"] is not None and candidate is not None:
        if model.holds_before_traffic and not started(candidate) and model.strategy != "shadow":
            row["declaredWeight"] = 0
        elif model.strategy == "canary":
            row["declaredWeight"] = canary_weight(model.name, candidate, model.steps)
        elif model.strategy == "ab":
            row["declaredWeight"] = 0 if model.match else model.ab_weight
        else:
            row["declaredWeight"] = 0
        row["approvals"] = ",".join(g for g in GATES if approved(candidate, g)) or None
        row["lastDecision"] = candidate.tags.get(STATUS_TAG)
        row["reason"] = candidate.tags.get(REASON_TAG)
        row["decidedAt"] = candidate.tags.get(DECIDED_AT_TAG)
        if context.prometheus is not None:
            target = promql.Target(deployment_name(model.name), candidate_predictor(model), context.models_namespace)
            metrics = measure(context, model)
            row["observedShare"] = context.prometheus.scalar(promql.traffic_share(target, model.analysis.window))
            row["errorRate"], row["p95Seconds"] = metrics.error_rate, metrics.p95_seconds
    return row


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace, context: Context) -> int:
    rows = [_status_row(context, model) for model in context.settings.rollout.models]
    columns = [
        "model",
        "strategy",
        "stable",
        "candidate",
        "declaredWeight",
        "observedShare",
        "errorRate",
        "p95Seconds",
        "lastDecision",
        "decidedAt",
    ]
    print(json.dumps(rows, indent=2) if args.json else _table(rows, columns))
    return EXIT_OK


DEFAULT_PARALLEL_MODELS = 8
"""Models analysed at once by one `advance` run. A model's analysis is mostly waiting (registry
and Prometheus round trips, the lease's settle), so a run over many models takes about as long as
its slowest model instead of their sum, and stays inside the CronJob's one-minute tick."""


def _advance_model(context: Context, model: ModelRolloutSettings) -> tuple[dict[str, Any], bool]:
    """Analyse one model and write its decision: (result row, whether the run fails for it)."""
    try:
        state = _state(context, model)
        decision = _analyse(context, model, state)
    except (RegistryError, PrometheusError, PlanError) as error:
        return {"model": model.name, "action": "error", "written": False, "detail": str(error)}, True
    if decision is None:
        return {"model": model.name, "action": "none", "written": False, "detail": "no candidate"}, False
    if context.dry_run:
        outcome = Outcome(model.name, decision.action, False, f"dry run: {decision.reason}")
    else:
        outcome = write_decision(context.registry, model, state, decision)
    notified = _notify(context, model, state, decision, outcome)
    row = {**asdict(outcome), "weight": decision.weight, "hooks": [f"{r.url}: {r.detail}" for r in notified]}
    return row, decision.action == "rollback"


def cmd_advance(args: argparse.Namespace, context: Context) -> int:
    if args.parallel < 1:
        raise UsageError(f"--parallel must be at least 1, not {args.parallel}")
    models = [_model(context, args.model)] if args.model else list(context.settings.rollout.models)
    # Models are independent (each decision has its own lease and re-check); rows keep config order.
    with ThreadPoolExecutor(max_workers=max(1, min(args.parallel, len(models)))) as pool:
        rows = list(pool.map(lambda model: _advance_model(context, model), models))
    results = [row for row, _ in rows]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(_table(results, ["model", "action", "weight", "written", "detail"]))
    return EXIT_FAILED if any(fails for _, fails in rows) else EXIT_OK


def _manual(args: argparse.Namespace, context: Context, action: str, reason: str) -> int:
    model = _model(context, args.model)
    state = _state(context, model)
    candidate = _candidate(model, state)
    if candidate is None:
        raise UsageError(f"model {model.name!r} has no candidate (alias {model.canary_alias!r} is not set)")
    decision = Decision("promote" if action == "promote" else "rollback", None, reason)
    if context.dry_run:
        outcome = Outcome(model.name, decision.action, False, f"dry run: would {action} version {candidate.version}")
    else:
        outcome = write_decision(context.registry, model, state, decision)
        _notify(context, model, state, decision, outcome)
    print(json.dumps(asdict(outcome)) if args.json else f"{outcome.model}: {outcome.action}: {outcome.detail}")
    if not outcome.written and not context.dry_run:
        return EXIT_FAILED
    return EXIT_FAILED if action == "rollback" else EXIT_OK


def cmd_promote(args: argparse.Namespace, context: Context) -> int:
    return _manual(args, context, "promote", args.reason or "promoted by hand")


def cmd_rollback(args: argparse.Namespace, context: Context) -> int:
    return _manual(args, context, "rollback", args.reason)


def _waiting_gate(model: ModelRolloutSettings, candidate: VersionInfo) -> str | None:
    """The gate the rollout waits at (or will wait at next), if any is configured and unapproved."""
    if model.approval.before_first_step and not started(candidate) and not approved(candidate, "first-step"):
        return "first-step"
    if model.approval.before_promotion and not approved(candidate, "promotion"):
        return "promotion"
    return None


def cmd_approve(args: argparse.Namespace, context: Context) -> int:
    model = _model(context, args.model)
    state = _state(context, model)
    candidate = _candidate(model, state)
    if candidate is None:
        raise UsageError(f"model {model.name!r} has no candidate (alias {model.canary_alias!r} is not set)")
    configured = [g for g, on in zip(GATES, (model.approval.before_first_step, model.approval.before_promotion),
                                     strict=True) if on]  # fmt: skip
    gate_name = args.gate or _waiting_gate(model, candidate)
    if gate_name is None or gate_name not in configured:
        raise UsageError(
            f"model {model.name!r} version {candidate.version}: no "
            + (f"{gate_name!r} gate configured" if gate_name else "unapproved gate")
            + f" (configured: {', '.join(configured) or 'none'})"
        )
    who = args.by or context.environ.get("MLFLOW_TRACKING_USERNAME") or context.environ.get("USER") or "unknown"
    if context.dry_run:
        print(f"{model.name}: dry run: would approve {gate_name} of version {candidate.version} as {who}")
        return EXIT_OK
    value = record_approval(context.registry, model, candidate.version, gate_name, who)
    tag = APPROVAL_TAG_PREFIX + gate_name
    if args.json:
        print(json.dumps({"model": model.name, "version": candidate.version, "gate": gate_name, tag: value}))
    else:
        print(f"{model.name}: version {candidate.version}: {gate_name} approved ({tag}={value})")
    return EXIT_OK


def add_rollout_parser(commands: argparse._SubParsersAction[Any]) -> None:
    rollout = commands.add_parser("rollout", help="analyse, advance, promote or roll back model rollouts")
    actions = rollout.add_subparsers(dest="action", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--stack", required=True, help="models stack whose rollout settings apply (models/Pulumi.<stack>.yaml)"
        )
        parser.add_argument(
            "--namespace", default=None, help="models namespace (default: env MODELS_NAMESPACE, then `models`)"
        )
        parser.add_argument("--stack-file", type=Path, default=None, help="read settings from this file instead")
        parser.add_argument("--tracking-uri", default=None, help="MLflow registry (default: env, then stack)")
        parser.add_argument("--prometheus-url", default=None, help="Prometheus (default: env, then stack)")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    status = actions.add_parser("status", help="table of every model's versions, weights and health")
    common(status)
    status.set_defaults(rollout_handler=cmd_status, need_prometheus=False)

    advance = actions.add_parser("advance", help="analyse every candidate; advance, promote, hold or roll back")
    common(advance)
    advance.add_argument("--model", default=None, help="only this model")
    advance.add_argument("--dry-run", action="store_true", help="decide and print, write nothing")
    advance.add_argument(
        "--parallel",
        type=int,
        default=DEFAULT_PARALLEL_MODELS,
        help=f"models analysed at once (default {DEFAULT_PARALLEL_MODELS})",
    )
    advance.set_defaults(rollout_handler=cmd_advance, need_prometheus=True)

    promote = actions.add_parser("promote", help="make the candidate the stable version")
    promote.add_argument("model")
    common(promote)
    promote.add_argument("--reason", default=None)
    promote.add_argument("--dry-run", action="store_true")
    promote.set_defaults(rollout_handler=cmd_promote, need_prometheus=False)

    rollback = actions.add_parser("rollback", help="stop serving the candidate")
    rollback.add_argument("model")
    common(rollback)
    rollback.add_argument("--reason", required=True, help="why (recorded on the version)")
    rollback.add_argument("--dry-run", action="store_true")
    rollback.set_defaults(rollout_handler=cmd_rollback, need_prometheus=False)

    approve = actions.add_parser("approve", help="approve the candidate at a manual gate (recorded in the registry)")
    approve.add_argument("model")
    common(approve)
    approve.add_argument("--gate", choices=GATES, default=None, help="default: the gate the rollout waits at")
    approve.add_argument("--by", default=None, help="who approves (default: MLFLOW_TRACKING_USERNAME, then USER)")
    approve.add_argument("--dry-run", action="store_true")
    approve.set_defaults(rollout_handler=cmd_approve, need_prometheus=False)


def run_rollout(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        context = _context(args, environ, args.need_prometheus)
        return int(args.rollout_handler(args, context))
    except UsageError as error:
        print(f"mlopsctl: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (RegistryError, PrometheusError, PlanError, hooks.HookSecretError) as error:
        print(f"mlopsctl: {error}", file=sys.stderr)
        return EXIT_FAILED
