"""What every `mlopsctl rollout` command works with: the models stack's settings, the registry,
Prometheus and the models namespace, resolved from flags, then the environment, then the stack file.

Addresses: `--tracking-uri` / `MLFLOW_TRACKING_URI` / `rollout.trackingUri`, `--prometheus-url` /
`PROMETHEUS_URL` / `rollout.prometheusUrl`, `--namespace` / `MODELS_NAMESPACE` / `models`;
credentials `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD` (or the file
`MLFLOW_TRACKING_PASSWORD_FILE` names). Bad input raises `UsageError` (one line, exit code 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field

from layout.paths import MODELS_DIR
from rollout.prometheus import PrometheusClient
from rollout.registry_reader import ReaderOptions, RegistryClient, RegistryError, read_model
from rollout.snapshot import ModelState, VersionInfo
from rollout.source import tracking_password
from settings import SettingsError
from settings.models import ModelsSettings
from settings.rollout import ModelRolloutSettings
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


def stack_settings(args: argparse.Namespace) -> ModelsSettings:
    """The models stack's settings (`--stack-file`, else `models/Pulumi.<stack>.yaml`); bad ones a usage error."""
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


def build_context(args: argparse.Namespace, environ: Mapping[str, str], need_prometheus: bool) -> Context:
    """The command's context; `need_prometheus`: a command that measures fails without an address."""
    settings = stack_settings(args)
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


def configured_model(context: Context, name: str) -> ModelRolloutSettings:
    """The rollout settings of model `name`; one the stack does not list is a usage error naming those it does."""
    for model in context.settings.rollout.models:
        if model.name == name:
            return model
    configured = ", ".join(m.name for m in context.settings.rollout.models) or "none"
    raise UsageError(f"model {name!r} is not in the stack's rollout.models (configured: {configured})")


def model_state(context: Context, model: ModelRolloutSettings) -> ModelState:
    """The model's two aliases and their versions, read from the registry now."""
    return read_model(context.registry, model.name, (model.stable_alias, model.canary_alias))


def candidate_of(model: ModelRolloutSettings, state: ModelState) -> VersionInfo | None:
    """The version being rolled out: the canary alias's, unless absent or the stable one."""
    candidate, stable = state.aliased(model.canary_alias), state.aliased(model.stable_alias)
    if candidate is None or (stable is not None and candidate.version == stable.version):
        return None
    return candidate
