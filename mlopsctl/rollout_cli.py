"""`mlopsctl rollout status|advance|promote|rollback`: progressive delivery driven by metrics.

Reads the models stack's rollout settings (`models/Pulumi.<stack>.yaml`), the registry (MLflow)
and Prometheus; writes decisions to the registry only (no side effects on the cluster). Addresses
come from flags, then the environment (`MLFLOW_TRACKING_URI`, `PROMETHEUS_URL`, `MODELS_NAMESPACE`;
credentials `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`), then the stack settings
(`rollout.trackingUri`, `rollout.prometheusUrl`). The platform's CronJob sets the environment
from its own outputs (in-cluster MLflow and Prometheus, the models namespace).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from observability import promql
from rollout.actions import Outcome, write_decision
from rollout.analysis import CanaryMetrics, Decision, decide
from rollout.planner import DECIDED_AT_TAG, REASON_TAG, STATUS_TAG, PlanError, canary_weight, deployment_name
from rollout.prometheus import PrometheusClient, PrometheusError
from rollout.registry_reader import ReaderOptions, RegistryClient, RegistryError, read_model
from rollout.snapshot import ModelState
from settings import SettingsError
from settings.models import ModelsSettings
from settings.rollout import ModelRolloutSettings
from settings.stack_file import models_settings_from_stack_file

DEFAULT_MODELS_NAMESPACE = "models"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


@dataclass
class Context:
    settings: ModelsSettings
    registry: RegistryClient
    prometheus: PrometheusClient | None
    dry_run: bool
    models_namespace: str = DEFAULT_MODELS_NAMESPACE


def _stack_settings(args: argparse.Namespace) -> ModelsSettings:
    from mlopsctl.mock_engine import MODELS_DIR  # noqa: PLC0415 - keeps `rollout` free of the Pulumi harness

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
    """`MLFLOW_TRACKING_PASSWORD`, or the file `MLFLOW_TRACKING_PASSWORD_FILE` names (a CSI mount)."""
    path = environ.get("MLFLOW_TRACKING_PASSWORD_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise UsageError(f"cannot read MLFLOW_TRACKING_PASSWORD_FILE {path}: {error.strerror}") from error
    return environ.get("MLFLOW_TRACKING_PASSWORD")


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
    return Context(settings, registry, prometheus, getattr(args, "dry_run", False), namespace)


def _model(context: Context, name: str) -> ModelRolloutSettings:
    for model in context.settings.rollout.models:
        if model.name == name:
            return model
    configured = ", ".join(m.name for m in context.settings.rollout.models) or "none"
    raise UsageError(f"model {name!r} is not in the stack's rollout.models (configured: {configured})")


def candidate_predictor(model: ModelRolloutSettings) -> str:
    return "shadow" if model.strategy == "shadow" else "canary"


def measure(context: Context, model: ModelRolloutSettings) -> CanaryMetrics:
    """The candidate's traffic, errors and latency over the analysis window (same PromQL as the dashboards)."""
    assert context.prometheus is not None
    deployment, namespace, window = (
        deployment_name(model.name),
        context.models_namespace,
        model.analysis.window,
    )
    candidate = promql.Target(deployment, candidate_predictor(model), namespace)
    stable = promql.Target(deployment, "stable", namespace)
    query = context.prometheus.scalar
    return CanaryMetrics(
        requests=query(promql.request_count(candidate, window)) or 0.0,
        error_rate=query(promql.error_ratio(candidate, window)),
        p95_seconds=query(promql.latency_quantile(candidate, 0.95, window)),
        stable_p95_seconds=query(promql.latency_quantile(stable, 0.95, window)),
    )


def _state(context: Context, model: ModelRolloutSettings) -> ModelState:
    return read_model(context.registry, model.name, (model.stable_alias, model.canary_alias))


def _analyse(context: Context, model: ModelRolloutSettings, state: ModelState) -> Decision | None:
    candidate = state.aliased(model.canary_alias)
    stable = state.aliased(model.stable_alias)
    if candidate is None or (stable is not None and candidate.version == stable.version):
        return None
    if model.strategy != "canary":
        return Decision("hold", None, f"strategy {model.strategy}: promote or roll back by hand")
    weight = canary_weight(model.name, candidate, model.steps)
    return decide(measure(context, model), model.analysis, model.steps, weight)


# --- commands ------------------------------------------------------------------------------------


def _status_row(context: Context, model: ModelRolloutSettings) -> dict[str, Any]:
    state = _state(context, model)
    stable, candidate = state.aliased(model.stable_alias), state.aliased(model.canary_alias)
    row: dict[str, Any] = {
        "model": model.name,
        "strategy": model.strategy,
        "stable": stable.version if stable else None,
        "candidate": candidate.version if candidate and (not stable or candidate.version != stable.version) else None,
        "declaredWeight": None,
        "observedShare": None,
        "errorRate": None,
        "p95Seconds": None,
        "lastDecision": None,
        "decidedAt": None,
    }
    if row["candidate"] is not None and candidate is not None:
        if model.strategy == "canary":
            row["declaredWeight"] = canary_weight(model.name, candidate, model.steps)
        elif model.strategy == "ab":
            row["declaredWeight"] = model.ab_weight
        else:
            row["declaredWeight"] = 0
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


def cmd_advance(args: argparse.Namespace, context: Context) -> int:
    models = [_model(context, args.model)] if args.model else list(context.settings.rollout.models)
    results: list[dict[str, Any]] = []
    failed = False
    for model in models:
        try:
            state = _state(context, model)
            decision = _analyse(context, model, state)
        except (RegistryError, PrometheusError, PlanError) as error:
            results.append({"model": model.name, "action": "error", "written": False, "detail": str(error)})
            failed = True
            continue
        if decision is None:
            results.append({"model": model.name, "action": "none", "written": False, "detail": "no candidate"})
            continue
        if context.dry_run:
            outcome = Outcome(model.name, decision.action, False, f"dry run: {decision.reason}")
        else:
            outcome = write_decision(context.registry, model, state, decision)
        results.append({**asdict(outcome), "weight": decision.weight})
        failed |= decision.action == "rollback"
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(_table(results, ["model", "action", "weight", "written", "detail"]))
    return EXIT_FAILED if failed else EXIT_OK


def _manual(args: argparse.Namespace, context: Context, action: str, reason: str) -> int:
    model = _model(context, args.model)
    state = _state(context, model)
    candidate, stable = state.aliased(model.canary_alias), state.aliased(model.stable_alias)
    if candidate is None or (stable is not None and candidate.version == stable.version):
        raise UsageError(f"model {model.name!r} has no candidate (alias {model.canary_alias!r} is not set)")
    decision = Decision("promote" if action == "promote" else "rollback", None, reason)
    if context.dry_run:
        outcome = Outcome(model.name, decision.action, False, f"dry run: would {action} version {candidate.version}")
    else:
        outcome = write_decision(context.registry, model, state, decision)
    print(json.dumps(asdict(outcome)) if args.json else f"{outcome.model}: {outcome.action}: {outcome.detail}")
    if not outcome.written and not context.dry_run:
        return EXIT_FAILED
    return EXIT_FAILED if action == "rollback" else EXIT_OK


def cmd_promote(args: argparse.Namespace, context: Context) -> int:
    return _manual(args, context, "promote", args.reason or "promoted by hand")


def cmd_rollback(args: argparse.Namespace, context: Context) -> int:
    return _manual(args, context, "rollback", args.reason)


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


def run_rollout(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        context = _context(args, environ, args.need_prometheus)
        return int(args.rollout_handler(args, context))
    except UsageError as error:
        print(f"mlopsctl: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (RegistryError, PrometheusError, PlanError) as error:
        print(f"mlopsctl: {error}", file=sys.stderr)
        return EXIT_FAILED
