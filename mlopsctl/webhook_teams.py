"""The teams' side of `mlopsctl webhook serve`: one hook per team, built from what the pod is given.

Per `--team TEAM=STACK` (the platform passes one per team with a webhook, components/cluster/
webhook_teams.py):

- the signing secret is the file `<team>-webhook-secret` in `--team-secrets-dir` (the Key Vault CSI
  mount, the same name `mlopsctl teams ensure` registers the team's webhook with), re-read when it
  changes, like the single-tenant secret;
- the reconcile target is the Stack `STACK` in `--team-stack-namespace` (`<team>-<env>` in the
  automation namespace), PATCHed by a reconciler bound to that one Stack;
- the managed models are the team's models stack file, `<models-dir>/Pulumi.<STACK>.yaml`: the
  file the team's Stack itself runs (the operator's workspace clones the same repository), found
  the way the single-tenant `--stack` finds `models/Pulumi.<stack>.yaml` in the image. Read at
  start, not passed by the platform, because the models are the team's, not the platform's: the
  platform program never reads a team's models file (a team's bad file must not fail the
  platform's preview). A team whose file is missing (no models in this environment yet), invalid,
  or written for another team (`mlops-models:team`) gets an empty watch (every event 204) and a
  logged problem, not a failed start: one team's file must not silence every other team's hook.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from layout import cluster_layout, team_layout
from mlopsctl.kube_api import KubeConnection, StackReconciler
from mlopsctl.webhook_receiver import SecretSource, TeamHook
from rollout.webhooks import ReplayGuard, Watch, WatchedModel
from settings import SettingsError
from settings.stack_file import models_settings_from_stack_file
from settings.teams import TeamName

log = logging.getLogger("mlopsctl.webhook")


class TeamSpecError(ValueError):
    """A bad `--team` or a missing secret file: the CLI reports it as a usage error."""


def secret_file(directory: Path, team: str) -> Path:
    """The team's signing secret as the CSI driver writes it (the Key Vault secret's name)."""
    return directory / team_layout.webhook_secret(team)


def parse_team_spec(spec: str) -> tuple[str, str]:
    """`fraud=fraud-dev` → (team, Stack); the team must be a valid team name."""
    team, sep, stack = spec.partition("=")
    if not sep or not team or not stack:
        raise TeamSpecError(f"--team: expected TEAM=STACK, got {spec!r}")
    try:
        TypeAdapter(TeamName).validate_python(team)
    except ValidationError as error:
        raise TeamSpecError(f"--team {spec!r}: {error.errors()[0]['msg']}") from error
    return team, stack


def team_watch(team: str, stack: str, models_dir: Path, tag_keys: frozenset[str]) -> tuple[Watch, str | None]:
    """The team's managed models and their aliases from `<models_dir>/Pulumi.<stack>.yaml`, and the
    problem that left the watch empty (None when the file was read)."""
    path = models_dir / f"Pulumi.{stack}.yaml"
    empty = Watch({}, tag_keys)
    if not path.is_file():
        return empty, f"no models stack file {path.name}: no managed models yet"
    try:
        settings = models_settings_from_stack_file(path)
    except SettingsError as error:
        return empty, f"{path.name}: {len(error.problems)} bad setting(s): " + "; ".join(
            p.render() for p in error.problems[:3]
        )
    if settings.team != team:
        return empty, f"{path.name} is team {settings.team or '(none)'!r}'s, not {team!r}'s"
    models = [WatchedModel(m.name, frozenset({m.stable_alias, m.canary_alias})) for m in settings.rollout.models]
    return Watch({m.name: m for m in models}, tag_keys), None


def team_hooks(args: argparse.Namespace, connection: KubeConnection, tag_keys: frozenset[str]) -> dict[str, TeamHook]:
    """Every `--team` as a hook; a missing or empty secret file is an error (the pod would never verify)."""
    specs = [parse_team_spec(spec) for spec in args.team]
    if specs and args.team_secrets_dir is None:
        raise TeamSpecError("--team needs --team-secrets-dir (the teams' webhook secret files)")
    hooks: dict[str, TeamHook] = {}
    for team, stack in specs:
        if team in hooks:
            raise TeamSpecError(f"--team {team!r} given twice")
        secret = SecretSource(path=secret_file(args.team_secrets_dir, team))
        try:
            secret.get()
        except (OSError, ValueError) as error:
            raise TeamSpecError(f"team {team!r}: {error}") from error
        watch, problem = team_watch(team, stack, args.models_dir, tag_keys)
        log.info(json.dumps({"team": team, "stack": stack, "watching": sorted(watch.models), "problem": problem}))
        reconciler = StackReconciler(connection, args.team_stack_namespace, stack)
        hooks[team] = TeamHook(secret, watch, stack, reconciler.request_reconcile, ReplayGuard(args.tolerance_seconds))
    return hooks


def add_team_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--team",
        action="append",
        default=[],
        metavar="TEAM=STACK",
        help="serve /hooks/TEAM: events of the team's workspace reconcile Stack STACK only (repeat per team)",
    )
    serve.add_argument(
        "--team-secrets-dir", type=Path, default=None, help="directory of the teams' <team>-webhook-secret files"
    )
    serve.add_argument(
        "--team-stack-namespace",
        default=cluster_layout.AUTOMATION_NAMESPACE,
        help="namespace of the teams' Stacks",
    )
