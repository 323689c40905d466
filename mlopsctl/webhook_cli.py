"""`mlopsctl webhook serve|ensure`: registry events reach the cluster in seconds.

- `serve` runs the receiver (`mlopsctl.webhook_receiver`) under uvicorn: verified, relevant
  deliveries become a reconcile request on the models Stack (Kubernetes configuration: in-cluster,
  else `KUBECONFIG`); with `--team TEAM=STACK`, also each team's `/hooks/<team>`, which reconciles
  that team's Stack only (`mlopsctl.webhook_teams`).
- `ensure` registers the webhook in MLflow, idempotently: created when no webhook has the name,
  updated when its URL, events, status or secret differ, left alone otherwise. MLflow never
  returns a stored secret, so the webhook's description carries a fingerprint of it
  (`rollout.webhooks.secret_fingerprint`) and a changed secret is detected.

The signing secret comes from a file (`--secret-file`, a Key Vault CSI mount) or the environment
variable `MLOPS_WEBHOOK_SECRET`; MLflow credentials from `MLFLOW_TRACKING_USERNAME` and
`MLFLOW_TRACKING_PASSWORD` or the file `MLFLOW_TRACKING_PASSWORD_FILE` names.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from layout import cluster_layout
from layout.paths import MODELS_DIR
from mlopsctl.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from mlopsctl.kube_api import KubeConfigError, StackReconciler, load_connection
from mlopsctl.webhook_receiver import SecretSource, build_app
from mlopsctl.webhook_teams import TeamSpecError, add_team_arguments, team_hooks
from rollout.planner import PLAN_TAGS
from rollout.registry_reader import RegistryError
from rollout.source import tracking_password
from rollout.webhooks import (
    DEFAULT_TOLERANCE_SECONDS,
    EVENTS,
    ReplayGuard,
    Watch,
    WatchedModel,
    parse_watch_spec,
    secret_fingerprint,
)
from settings import SettingsError
from settings.stack_file import models_settings_from_stack_file

log = logging.getLogger("mlopsctl.webhook")
SECRET_ENV = "MLOPS_WEBHOOK_SECRET"
DEFAULT_WEBHOOK_NAME = "mlops-platform-reconcile"
DESCRIPTION_PREFIX = "Registry events to the platform's reconcile receiver (mlopsctl webhook ensure)"

EnsureAction = Literal["created", "updated", "unchanged", "disabled"]


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


def _secret_source(args: argparse.Namespace, environ: Mapping[str, str]) -> SecretSource:
    if args.secret_file is not None:
        if not args.secret_file.is_file():
            raise UsageError(f"no secret file {args.secret_file}")
        return SecretSource(path=args.secret_file)
    value = environ.get(SECRET_ENV, "").strip()
    if not value:
        raise UsageError(f"no signing secret: pass --secret-file or set {SECRET_ENV}")
    return SecretSource(value=value)


def _stack_models(args: argparse.Namespace) -> list[WatchedModel]:
    """The served models of a models stack (`models/Pulumi.<stack>.yaml`) and the aliases their rollouts read."""
    path = args.stack_file or args.models_dir / f"Pulumi.{args.stack}.yaml"
    if not path.is_file():
        raise UsageError(f"no models stack file {path}")
    try:
        settings = models_settings_from_stack_file(path)
    except SettingsError as error:
        raise UsageError(f"stack {args.stack}: {len(error.problems)} bad setting(s)") from error
    return [WatchedModel(m.name, frozenset({m.stable_alias, m.canary_alias})) for m in settings.rollout.models]


def _watch(args: argparse.Namespace) -> Watch:
    try:
        models = [parse_watch_spec(spec) for spec in args.model]
    except ValueError as error:
        raise UsageError(f"--model: {error}") from error
    if args.stack or args.stack_file:
        models += _stack_models(args)
    if not models:
        raise UsageError("no managed models: pass --stack (models stack) or --model MODEL=ALIAS[,ALIAS]")
    return Watch({m.name: m for m in models}, frozenset(args.tag or PLAN_TAGS))


def cmd_serve(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    import uvicorn  # noqa: PLC0415 - only the receiver needs the server

    secret = _secret_source(args, environ)
    secret.get()
    watch = _watch(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    log.info(json.dumps({"watching": sorted(watch.models), "tags": sorted(watch.tag_keys)}))
    try:
        connection = load_connection(environ)
    except KubeConfigError as error:
        raise UsageError(str(error)) from error
    try:
        teams = team_hooks(args, connection, watch.tag_keys)
    except TeamSpecError as error:
        raise UsageError(str(error)) from error
    reconciler = StackReconciler(connection, args.stack_namespace, args.stack_name)
    app = build_app(secret, watch, reconciler.request_reconcile, ReplayGuard(args.tolerance_seconds), teams=teams)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="off")
    return EXIT_OK


# --- ensure ----------------------------------------------------------------------------------


def _password(environ: Mapping[str, str]) -> str | None:
    """`rollout.source.tracking_password` (the CSI-mounted file wins), an unreadable file a usage error."""
    try:
        return tracking_password(environ)
    except RegistryError as error:
        raise UsageError(str(error)) from error


def description(secret: str) -> str:
    return f"{DESCRIPTION_PREFIX}; secret sha256:{secret_fingerprint(secret)}"


def _event_names(webhook: Any) -> list[str]:
    return sorted(f"{e.entity.value}.{e.action.value}" for e in webhook.events)


def find_webhook(client: Any, name: str) -> Any | None:
    """The webhook called `name` (in the client's workspace), or None; `client` is an `mlflow.MlflowClient`."""
    page_token = None
    while True:
        page = client.list_webhooks(max_results=100, page_token=page_token)
        existing = next((w for w in page if w.name == name), None)
        page_token = page.token
        if existing is not None or not page_token:
            return existing


def disable_webhook(client: Any, name: str) -> EnsureAction:
    """Stop deliveries of the webhook called `name`, kept (secret, URL, events) for turning it on again."""
    existing = find_webhook(client, name)
    if existing is None or existing.status.value == "DISABLED":
        return "unchanged"
    client.update_webhook(existing.webhook_id, status="DISABLED")
    return "disabled"


def ensure_webhook(client: Any, name: str, url: str, secret: str, events: Sequence[str] = EVENTS) -> EnsureAction:
    """Create or update the webhook called `name` so it matches; `client` is an `mlflow.MlflowClient`."""
    existing = find_webhook(client, name)
    wanted_description = description(secret)
    if existing is None:
        client.create_webhook(
            name=name, url=url, events=list(events), description=wanted_description, secret=secret, status="ACTIVE"
        )
        return "created"
    if (
        existing.url == url
        and _event_names(existing) == sorted(events)
        and existing.status.value == "ACTIVE"
        and existing.description == wanted_description
    ):
        return "unchanged"
    client.update_webhook(
        existing.webhook_id,
        url=url,
        events=list(events),
        description=wanted_description,
        secret=secret,
        status="ACTIVE",
    )
    return "updated"


def _wait_for_registry(client: Any, timeout: float) -> None:
    """MLflow is declared before the Job, but a rollout may still be settling: retry until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_webhooks(max_results=1)
            return
        except Exception as error:  # connection errors, 5xx: all mean "not yet"
            if time.monotonic() >= deadline:
                raise UsageError(f"MLflow did not answer within {timeout:.0f} s: {error}") from error
            time.sleep(2)


def cmd_ensure(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    import mlflow  # noqa: PLC0415 - heavy import, only here

    secret = _secret_source(args, environ).get()
    tracking_uri = args.tracking_uri or environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        raise UsageError("no MLflow address: pass --tracking-uri or set MLFLOW_TRACKING_URI")
    password = _password(environ)
    if password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    _wait_for_registry(client, args.wait_seconds)
    try:
        action = ensure_webhook(client, args.name, args.url, secret)
    except mlflow.exceptions.MlflowException as error:  # e.g. a URL scheme the servers do not allow
        print(f"mlopsctl webhook ensure: MLflow refused: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps({"webhook": args.name, "url": args.url, "events": list(EVENTS), "action": action}))
    return EXIT_OK


def add_webhook_parser(commands: argparse._SubParsersAction[Any]) -> None:
    webhook = commands.add_parser("webhook", help="registry webhooks: the receiver and its registration")
    sub = webhook.add_subparsers(dest="webhook_command", required=True)

    def secret_flag(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--secret-file", type=Path, default=None, help=f"signing secret file (default: env {SECRET_ENV})"
        )

    serve = sub.add_parser("serve", help="run the receiver: verified registry events → reconcile request")
    secret_flag(serve)
    serve.add_argument("--host", default="0.0.0.0", help="listen address")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="MODEL=ALIAS[,ALIAS]",
        help="a managed model and the aliases its rollout reads (repeat per model)",
    )
    serve.add_argument("--stack", default=None, help="models stack whose served models to act on")
    serve.add_argument("--stack-file", type=Path, default=None, help="read the models from this file instead")
    serve.add_argument(
        "--models-dir", type=Path, default=MODELS_DIR, help="where Pulumi.<stack>.yaml files are (default: the image's)"
    )
    serve.add_argument(
        "--tag",
        action="append",
        default=None,
        help=f"version tag keys that change the plan (default: the planner's {', '.join(PLAN_TAGS)})",
    )
    serve.add_argument("--stack-namespace", default=cluster_layout.MODELS_STACK_CR_NAMESPACE)
    serve.add_argument("--stack-name", default=cluster_layout.MODELS_STACK_CR_NAME)
    serve.add_argument("--tolerance-seconds", type=int, default=DEFAULT_TOLERANCE_SECONDS, help="replay window")
    add_team_arguments(serve)
    serve.set_defaults(webhook_handler=cmd_serve)

    ensure = sub.add_parser("ensure", help="register (create or update) the webhook in MLflow, idempotently")
    secret_flag(ensure)
    ensure.add_argument("--url", required=True, help="the receiver's URL, e.g. http://webhook-receiver.mlops-system")
    ensure.add_argument("--name", default=DEFAULT_WEBHOOK_NAME)
    ensure.add_argument("--tracking-uri", default=None, help="MLflow (default: env MLFLOW_TRACKING_URI)")
    ensure.add_argument("--wait-seconds", type=float, default=300, help="how long to wait for MLflow to answer")
    ensure.set_defaults(webhook_handler=cmd_ensure)


def run_webhook(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        return int(args.webhook_handler(args, environ))
    except UsageError as error:
        print(f"mlopsctl webhook: {error}", file=sys.stderr)
        return EXIT_USAGE
