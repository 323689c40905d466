"""The webhook receiver: an ASGI app (Starlette) that turns a verified registry event into a reconcile request.

`POST /webhook`: every check is `rollout.webhooks.verdict` (signature, replay window, event and
model filter); a delivery that changes what a managed model serves PATCHes the models Stack's
`pulumi.com/reconciliation-request` annotation (value unique per delivery, equal for its retries).
Answers: 401 bad or missing signature, stale timestamp; 204 an event, model, alias or tag the
platform does not act on; 200 reconcile requested (or a duplicate already acted on); 400 a body
that is not JSON; 503 when the API server refused or was unreachable (MLflow retries 503 with the
same delivery, which the replay guard accepts because it was not recorded).

`GET /healthz`: liveness and readiness (the secret file is readable).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlopsctl.kube_api import KubeApiError
from rollout.webhooks import ReplayGuard, Watch, reconcile_request_value, verdict

log = logging.getLogger("mlopsctl.webhook")

WEBHOOK_PATH = "/webhook"
HEALTH_PATH = "/healthz"


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


def build_app(
    secret: SecretSource,
    watch: Watch,
    request_reconcile: Callable[[str], None],
    guard: ReplayGuard | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    guard = guard if guard is not None else ReplayGuard()

    async def webhook(request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        result = verdict(headers, body, secret=secret.get(), watch=watch, guard=guard, now=clock())
        delivery_id = headers.get("x-mlflow-delivery-id", "")
        status, reason, value = result.status, result.reason, None
        if result.reconcile:
            value = reconcile_request_value(delivery_id)
            try:
                await run_in_threadpool(request_reconcile, value)
            except KubeApiError as error:
                status, reason = 503, f"reconcile request failed: {error}"
            else:
                guard.record(delivery_id, headers["x-mlflow-timestamp"], clock())
        record = {
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

    async def health(_: Request) -> Response:
        try:
            secret.get()
        except (OSError, ValueError) as error:
            return JSONResponse({"ok": False, "reason": str(error)}, status_code=503)
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route(WEBHOOK_PATH, webhook, methods=["POST"]), Route(HEALTH_PATH, health)])
