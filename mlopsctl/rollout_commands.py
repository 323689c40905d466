"""The bodies of `mlopsctl rollout status|advance|promote|rollback|approve`.

Each takes the parsed arguments and the resolved `Context` (mlopsctl.rollout_context), prints its
result (a table, or JSON with `--json`) and returns the exit code. Decisions are written to the
registry only (`rollout.actions`); nothing here touches the cluster.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from mlopsctl.exit_codes import EXIT_FAILED, EXIT_OK
from mlopsctl.rollout_context import Context, UsageError, candidate_of, configured_model, model_state
from mlopsctl.rollout_decisions import analyse, candidate_predictor, measure, notify
from observability import promql
from rollout.actions import Outcome, record_approval, write_decision
from rollout.analysis import Decision
from rollout.planner import (
    APPROVAL_TAG_PREFIX,
    DECIDED_AT_TAG,
    GATES,
    REASON_TAG,
    STATUS_TAG,
    PlanError,
    approved,
    canary_weight,
    deployment_name,
    started,
)
from rollout.prometheus import PrometheusError
from rollout.registry_reader import RegistryError
from rollout.snapshot import VersionInfo
from settings.rollout import ModelRolloutSettings


def _status_row(context: Context, model: ModelRolloutSettings) -> dict[str, Any]:
    state = model_state(context, model)
    stable, candidate = state.aliased(model.stable_alias), state.aliased(model.canary_alias)
    row: dict[str, Any] = {
        "model": model.name,
        "strategy": model.strategy,
        "stable": stable.version if stable else None,
        "candidate": candidate.version if candidate_of(model, state) is not None and candidate else None,
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
        state = model_state(context, model)
        decision = analyse(context, model, state)
    except (RegistryError, PrometheusError, PlanError) as error:
        return {"model": model.name, "action": "error", "written": False, "detail": str(error)}, True
    if decision is None:
        return {"model": model.name, "action": "none", "written": False, "detail": "no candidate"}, False
    if context.dry_run:
        outcome = Outcome(model.name, decision.action, False, f"dry run: {decision.reason}")
    else:
        outcome = write_decision(context.registry, model, state, decision)
    notified = notify(context, model, state, decision, outcome)
    row = {**asdict(outcome), "weight": decision.weight, "hooks": [f"{r.url}: {r.detail}" for r in notified]}
    return row, decision.action == "rollback"


def cmd_advance(args: argparse.Namespace, context: Context) -> int:
    if args.parallel < 1:
        raise UsageError(f"--parallel must be at least 1, not {args.parallel}")
    models = [configured_model(context, args.model)] if args.model else list(context.settings.rollout.models)
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
    model = configured_model(context, args.model)
    state = model_state(context, model)
    candidate = candidate_of(model, state)
    if candidate is None:
        raise UsageError(f"model {model.name!r} has no candidate (alias {model.canary_alias!r} is not set)")
    decision = Decision("promote" if action == "promote" else "rollback", None, reason)
    if context.dry_run:
        outcome = Outcome(model.name, decision.action, False, f"dry run: would {action} version {candidate.version}")
    else:
        outcome = write_decision(context.registry, model, state, decision)
        notify(context, model, state, decision, outcome)
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
    model = configured_model(context, args.model)
    state = model_state(context, model)
    candidate = candidate_of(model, state)
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
