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
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlopsctl.exit_codes import EXIT_FAILED, EXIT_USAGE
from mlopsctl.rollout_commands import (
    DEFAULT_PARALLEL_MODELS,
    cmd_advance,
    cmd_approve,
    cmd_promote,
    cmd_rollback,
    cmd_status,
)
from mlopsctl.rollout_context import UsageError, build_context
from rollout import hooks
from rollout.planner import GATES, PlanError
from rollout.prometheus import PrometheusError
from rollout.registry_reader import RegistryError


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
        context = build_context(args, environ, args.need_prometheus)
        return int(args.rollout_handler(args, context))
    except UsageError as error:
        print(f"mlopsctl: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (RegistryError, PrometheusError, PlanError, hooks.HookSecretError) as error:
        print(f"mlopsctl: {error}", file=sys.stderr)
        return EXIT_FAILED
