"""`mlopsctl registry ensure-reader`: the models stack's own read-only MLflow user, idempotently.

A subcommand of `registry` (mlopsctl/registry_cli.py registers it beside `verify`).

Runs as the basic-auth admin (`MLFLOW_TRACKING_USERNAME`, password from the file
`MLFLOW_TRACKING_PASSWORD_FILE` names or `MLFLOW_TRACKING_PASSWORD`), like `webhook ensure`; the
reader's password comes from `--password-file` (the Key Vault CSI mount). The managed models are
`--model NAME` (repeat), `--models-file` (one name per line) or a models stack's
`rollout.models` (`--stack`, `models/Pulumi.<stack>.yaml`, or `--stack-file`). The logic is
`mlopsctl.registry_access.ensure_reader`; one JSON line per item is printed (`user`, `password`,
`model:<name>`, `experiments:*`, stale grants `removed`), and a second run prints `unchanged` for
every item. Bad input: one line on stderr, exit 2; MLflow refusing a call: one line, exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from layout import cluster_layout
from layout.paths import MODELS_DIR
from mlopsctl.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from mlopsctl.registry_access import MlflowAdminError, RestReaderAdmin, ensure_reader
from mlopsctl.webhook_cli import _wait_for_registry
from rollout.registry_reader import RegistryError
from rollout.source import tracking_password
from settings import SettingsError
from settings.stack_file import models_settings_from_stack_file

MODEL_NAME = re.compile(r"^[^\s'\"]{1,256}$")
"""What a managed model name may be here: no blanks or quotes (the reader's `name IN (...)` filter)."""


class UsageError(Exception):
    """Bad input: one line, exit 2."""


def _read_file(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise UsageError(f"cannot read {what} {path}: {error.strerror}") from error


def reader_password(path: Path) -> str:
    value = _read_file(path, "password file").strip()
    if not value:
        raise UsageError(f"password file {path} is empty")
    return value


def managed_models(args: argparse.Namespace) -> list[str]:
    """Every name from `--model`, `--models-file` and the models stack, each once, in order."""
    names: list[str] = list(args.model)
    if args.models_file is not None:
        names += [line.strip() for line in _read_file(args.models_file, "models file").splitlines() if line.strip()]
    if args.stack is not None or args.stack_file is not None:
        path = args.stack_file or MODELS_DIR / f"Pulumi.{args.stack}.yaml"
        if not path.is_file():
            raise UsageError(f"no models stack file {path}")
        try:
            names += [m.name for m in models_settings_from_stack_file(path).rollout.models]
        except SettingsError as error:
            raise UsageError(f"models stack file {path}: {len(error.problems)} bad setting(s)") from error
    bad = [name for name in names if not MODEL_NAME.match(name)]
    if bad:
        raise UsageError(f"bad model name {bad[0]!r}")
    if not names:
        raise UsageError("no managed models: pass --model, --models-file, --stack or --stack-file")
    return list(dict.fromkeys(names))


def cmd_ensure_reader(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    models = managed_models(args)
    password = reader_password(args.password_file)
    tracking_uri = args.tracking_uri or environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        raise UsageError("no MLflow address: pass --tracking-uri or set MLFLOW_TRACKING_URI")
    try:
        admin_password = tracking_password(environ)
    except RegistryError as error:
        raise UsageError(str(error)) from error
    admin_username = environ.get("MLFLOW_TRACKING_USERNAME")
    if not admin_username or not admin_password:
        raise UsageError("no MLflow admin: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD(_FILE)")
    if args.username == admin_username:
        raise UsageError(f"--username {args.username} is the admin: the reader must be its own user")
    import mlflow  # noqa: PLC0415 - heavy import, only here

    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = admin_username, admin_password
    _wait_for_registry(mlflow.MlflowClient(tracking_uri=tracking_uri), args.wait_seconds)
    try:
        admin = RestReaderAdmin(tracking_uri, admin_username, admin_password)
        actions = ensure_reader(admin, args.username, password, models)
    except (MlflowAdminError, requests.RequestException) as error:
        print(f"mlopsctl registry ensure-reader: MLflow refused: {error}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILED
    for item, action in actions.items():
        print(json.dumps({"user": args.username, "item": item, "action": action}))
    return EXIT_OK


def add_ensure_reader_parser(actions: argparse._SubParsersAction[Any]) -> None:
    """`registry ensure-reader`, registered by `mlopsctl.registry_cli.add_registry_parser`."""
    ensure = actions.add_parser(
        "ensure-reader", help="create or update the read-only user and its grants on the managed models, idempotently"
    )
    ensure.add_argument("--username", default=cluster_layout.MODELS_READER_USER, help="the reader's MLflow user")
    ensure.add_argument("--password-file", type=Path, required=True, help="the reader's password (Key Vault file)")
    ensure.add_argument("--model", action="append", default=[], metavar="NAME", help="a managed model (repeat)")
    ensure.add_argument("--models-file", type=Path, default=None, help="managed models, one name per line")
    ensure.add_argument("--stack", default=None, help="models stack whose rollout.models are the managed models")
    ensure.add_argument("--stack-file", type=Path, default=None, help="read the models from this file instead")
    ensure.add_argument("--tracking-uri", default=None, help="MLflow (default: env MLFLOW_TRACKING_URI)")
    ensure.add_argument("--wait-seconds", type=float, default=300, help="how long to wait for MLflow to answer")


def run_ensure_reader(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        return cmd_ensure_reader(args, environ)
    except UsageError as error:
        print(f"mlopsctl registry ensure-reader: {error}", file=sys.stderr)
        return EXIT_USAGE
