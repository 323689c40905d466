"""Rollout event hooks: a signed HTTP POST to configured URLs on pre-rollout, each step, promotion
and rollback.

Signed the way MLflow signs its registry webhooks (mlflow/webhooks/delivery.py, 3.17.2), so one
verifier serves both: `X-Mlops-Signature: v1,<base64(HMAC-SHA256(secret, "<id>.<timestamp>.<body>"))>`
with `X-Mlops-Delivery-Id` (uuid4) and `X-Mlops-Timestamp` (unix seconds); the body is JSON.
A connection error, a timeout or a 5xx answer is retried (`retries`, default 2, with exponential
backoff from `retryBackoffSeconds`), each attempt with the same delivery id, timestamp and
signature so a receiver can dedupe; a 4xx is final. A `pre-rollout` hook that still does not answer
2xx holds the rollout; the other events are notifications: their failures are reported, never
change a decision.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from settings.rollout import HookEvent, HookSettings

SECRET_ENV = "MLOPS_HOOK_SECRET"
SECRET_FILE_ENV = "MLOPS_HOOK_SECRET_FILE"
DELIVERY_ID_HEADER = "X-Mlops-Delivery-Id"
TIMESTAMP_HEADER = "X-Mlops-Timestamp"
SIGNATURE_HEADER = "X-Mlops-Signature"
EVENT_HEADER = "X-Mlops-Event"


class HookSecretError(RuntimeError):
    """Hooks are configured but no signing secret is available."""


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """`v1,` + base64(HMAC-SHA256(secret as UTF-8, f"{delivery_id}.{timestamp}.{body}"))."""
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: str, tolerance_seconds: float = 300) -> bool:
    """What a receiver checks: the signature over the exact body, and a fresh timestamp."""
    lowered = {k.lower(): v for k, v in headers.items()}
    delivery_id, timestamp = lowered.get(DELIVERY_ID_HEADER.lower()), lowered.get(TIMESTAMP_HEADER.lower())
    signature = lowered.get(SIGNATURE_HEADER.lower())
    if not (delivery_id and timestamp and signature and timestamp.isdigit()):
        return False
    if abs(time.time() - int(timestamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, delivery_id, timestamp, body), signature)


def secret_from(environ: Mapping[str, str]) -> str | None:
    """`MLOPS_HOOK_SECRET`, or the file `MLOPS_HOOK_SECRET_FILE` names (a CSI mount)."""
    path = environ.get(SECRET_FILE_ENV)
    if path:
        return Path(path).read_text().strip() or None
    return environ.get(SECRET_ENV) or None


@dataclass(frozen=True)
class HookResult:
    url: str
    event: str
    status: int | None
    detail: str
    attempts: int = 1
    delivery_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def retryable(status: int | None) -> bool:
    """No answer (connection error, timeout) or a 5xx: worth another attempt. A 4xx is the hook's
    considered answer and is final."""
    return status is None or status >= 500


def _attempt(request: urllib.request.Request, timeout: float) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return error.code, f"HTTP {error.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        return None, f"no answer: {getattr(error, 'reason', error)}"


def post(
    hook: HookSettings,
    event: HookEvent,
    body: str,
    secret: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> HookResult:
    """One delivery to one hook: up to `1 + hook.retries` attempts with exponential backoff, all with
    the same delivery id, timestamp and signature (a receiver dedupes on the id, as with MLflow's)."""
    timestamp = str(int(time.time()))
    delivery_id = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        DELIVERY_ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, delivery_id, timestamp, body),
        EVENT_HEADER: event,
    }
    attempt = 0
    while True:
        attempt += 1
        request = urllib.request.Request(hook.url, data=body.encode(), method="POST", headers=headers)
        status, detail = _attempt(request, hook.timeout_seconds)
        if not retryable(status) or attempt > hook.retries:
            break
        sleep(hook.retry_backoff_seconds * float(1 << (attempt - 1)))
    if attempt > 1:
        detail += f" (after {attempt} attempts)"
    return HookResult(hook.url, event, status, detail, attempt, delivery_id)


def deliver(
    hooks: Sequence[HookSettings],
    event: HookEvent,
    payload: Mapping[str, Any],
    secret: str | None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[HookResult]:
    """POST `payload` (plus `event`) to every hook subscribed to `event`, retrying each as it allows."""
    subscribed = [hook for hook in hooks if event in hook.events]
    if subscribed and not secret:
        raise HookSecretError(f"rollout hooks are configured but neither {SECRET_ENV} nor {SECRET_FILE_ENV} is set")
    body = json.dumps({"event": event, **payload})
    return [post(hook, event, body, secret or "", sleep=sleep) for hook in subscribed]
