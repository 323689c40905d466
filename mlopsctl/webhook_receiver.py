"""The webhook receiver: an ASGI app (Starlette) that turns a verified registry event into a reconcile request.

`POST /webhook`: every check is `rollout.webhooks.verdict` (signature, replay window, event and
model filter); a delivery that changes what a managed model serves PATCHes the models Stack's
`pulumi.com/reconciliation-request` annotation (value unique per delivery, equal for its retries).
Answers: 401 bad or missing signature, stale timestamp; 204 an event, model, alias or tag the
platform does not act on; 200 reconcile requested (or a duplicate already acted on); 400 a body
that is not JSON; 503 when the API server refused or was unreachable (MLflow retries 503 with the
same delivery, which the replay guard accepts because it was not recorded).

`POST /hooks/<team>`: a team's webhook (registered in the team's MLflow workspace by
`mlopsctl teams ensure`); every check is `rollout.team_hooks.team_verdict` with that team's route
only: 404 unknown team, 401 not signed with *that* team's secret, 409 a payload whose `workspace`
is not the team of the URL (nothing is patched), then the single-tenant answers above against the
team's own managed models; a reconcile PATCHes the team's Stack (`<team>-<env>`) and no other. Each
team has its own replay guard and its own secret file, re-read when it changes (rotation).

`GET /healthz`: liveness and readiness (every secret file is readable).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlopsctl.kube_api import KubeApiError
from rollout.team_hooks import HOOKS_PREFIX, TeamRoute, team_verdict
from rollout.webhooks import ReplayGuard, Verdict, Watch, reconcile_request_value, verdict

log = logging.getLogger("mlopsctl.webhook")

WEBHOOK_PATH = "/webhook"
HEALTH_PATH = "/healthz"
TEAM_HOOK_PATH = HOOKS_PREFIX + "{team}"


@dataclass
class SecretSource:
    """The signing secret: a file (CSI mount, re-read when it changes on rotation) or a fixed value."""

    path: Path | None = None
    value: str | None = None
    _mtime: float = -1.0

    def get(self) -> str:
        if self.path is None:
            if not self.value:
                raise ValueError("no webhook secret")
            return self.value
        mtime = self.path.stat().st_mtime
        if mtime != self._mtime or self.value is None:
            self.value, self._mtime = self.path.read_text().strip(), mtime
        if not self.value:
            raise ValueError(f"webhook secret file {self.path} is empty")
        return self.value


@dataclass
class TeamHook:
    """One team as the receiver serves it: its secret (re-read on rotation), its managed models, the
    one Stack its events may reconcile and how to ask for that, and its own replay guard."""

    secret: SecretSource
    watch: Watch
    stack_name: str
    request_reconcile: Callable[[str], None]
    guard: ReplayGuard = field(default_factory=ReplayGuard)

    def route(self, team: str) -> TeamRoute:
        return TeamRoute(team, self.secret.get(), self.watch, self.stack_name)


def _nothing(_: str) -> None:
    raise RuntimeError("no Stack to reconcile")


def build_app(
    secret: SecretSource,
    watch: Watch,
    request_reconcile: Callable[[str], None],
    guard: ReplayGuard | None = None,
    clock: Callable[[], float] = time.time,
    *,
    teams: Mapping[str, TeamHook] | None = None,
) -> Starlette:
    """`/webhook` for the single models Stack; `/hooks/<team>` for each of `teams` (team name → its hook)."""
    guard = guard if guard is not None else ReplayGuard()
    teams = dict(teams or {})

    async def act(
        result: Verdict,
        headers: Mapping[str, str],
        reconcile: Callable[[str], None],
        replay: ReplayGuard,
        started: float,
        **context: str | None,
    ) -> Response:
        """Request the reconcile a verdict asks for, log one JSON line, answer MLflow."""
        delivery_id = headers.get("x-mlflow-delivery-id", "")
        status, reason, value = result.status, result.reason, None
        if result.reconcile:
            value = reconcile_request_value(delivery_id)
            try:
                await run_in_threadpool(reconcile, value)
            except KubeApiError as error:
                status, reason = 503, f"reconcile request failed: {error}"
            else:
                replay.record(delivery_id, headers["x-mlflow-timestamp"], clock())
        record = {
            **context,
            "delivery": delivery_id,
            "status": status,
            "reason": reason,
            "event": result.decision.event if result.decision else None,
            "model": result.decision.model if result.decision else None,
            "reconcileRequest": value if status == 200 else None,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        log.info(json.dumps(record))
        if status == 204:
            return Response(status_code=204)
        return JSONResponse({"reason": reason, "reconcileRequest": record["reconcileRequest"]}, status_code=status)

    async def webhook(request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        result = verdict(headers, body, secret=secret.get(), watch=watch, guard=guard, now=clock())
        return await act(result, headers, request_reconcile, guard, started)

    async def team_hook(request: Request) -> Response:
        started = time.perf_counter()
        team = str(request.path_params["team"])
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        hook = teams.get(team)
        if hook is None:  # no route: `team_verdict` answers 404, and there is nothing to reconcile
            result = team_verdict(team, headers, body, routes={}, guard=ReplayGuard(), now=clock())
            return await act(result.verdict, headers, _nothing, ReplayGuard(), started, team=team, stack=None)
        # Only this team's route exists for the check (its secret, its models, its Stack), and the
        # reconcile request it can make is bound to its own Stack.
        result = team_verdict(team, headers, body, routes={team: hook.route(team)}, guard=hook.guard, now=clock())
        return await act(
            result.verdict, headers, hook.request_reconcile, hook.guard, started, team=team, stack=result.stack_name
        )

    async def health(_: Request) -> Response:
        try:
            secret.get()
            for hook in teams.values():
                hook.secret.get()
        except (OSError, ValueError) as error:
            return JSONResponse({"ok": False, "reason": str(error)}, status_code=503)
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, webhook, methods=["POST"]),
            Route(TEAM_HOOK_PATH, team_hook, methods=["POST"]),
            Route(HEALTH_PATH, health),
        ]
    )
