"""Per-team webhook routing: an event may only ever reconcile the Stack of the team it belongs to.

With MLflow workspaces every team's workspace has its own webhook, registered with the URL
`<receiver>/hooks/<team>` and the team's own signing secret; MLflow adds `"workspace"` to the
payload. The receiver trusts neither alone:

1. the team in the URL must be a known team (else 404) and the delivery must be signed with *that*
   team's secret (else 401): one team's secret cannot forge another team's deliveries;
2. the payload's `workspace` must equal the team of the URL (else 409, nothing done). MLflow
   3.17.2's delivery cache, keyed by event type only, has POSTed team B's event to team A's URL
   labelled `"workspace": "team-a"` (see `layout.mlflow_server.webhook_env`, which turns the cache
   off); this check refuses the mislabelled-but-consistent case only if the label is wrong, so the
   server-side guard stays necessary, and a delivery whose model is not one of the team's managed
   models is ignored (204) by the per-team `Watch`;
3. the rest is the single-tenant `verdict` (replay window, event and model filter) against the
   team's own watch, and a reconcile is requested on `<team>-<env>` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from rollout.webhooks import ReplayGuard, Verdict, Watch, parse_payload, verdict

HOOKS_PREFIX: Final = "/hooks/"


@dataclass(frozen=True)
class TeamRoute:
    """What the receiver knows about one team."""

    team: str
    secret: str
    watch: Watch
    stack_name: str
    """The team's models Stack (`<team>-<env>`), the only Stack its events may reconcile."""


def team_url(base: str, team: str) -> str:
    """The webhook URL registered in the team's workspace: `<base>/hooks/<team>`."""
    return f"{base.rstrip('/')}{HOOKS_PREFIX}{team}"


@dataclass(frozen=True)
class TeamVerdict:
    verdict: Verdict
    stack_name: str | None
    """The Stack to reconcile, set only when `verdict.reconcile`."""


def team_verdict(
    team: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    routes: Mapping[str, TeamRoute],
    guard: ReplayGuard,
    now: float,
) -> TeamVerdict:
    """The whole check of one delivery to `/hooks/<team>`; `headers` keys lower case."""
    route = routes.get(team)
    if route is None:
        return TeamVerdict(Verdict(404, f"no team {team!r}"), None)
    result = verdict(headers, body, secret=route.secret, watch=route.watch, guard=guard, now=now)
    if result.status in {400, 401}:
        return TeamVerdict(result, None)
    payload = parse_payload(body) or {}
    workspace = payload.get("workspace")
    if result.reason != "duplicate delivery, already acted on" and workspace != team:
        return TeamVerdict(Verdict(409, f"workspace {workspace!r} delivered to team {team!r}'s hook: refused"), None)
    return TeamVerdict(result, route.stack_name if result.reconcile else None)
