"""Rollout event hooks: a signed HTTP POST to configured URLs on pre-rollout, each step, promotion
and rollback.

Signed the way MLflow signs its registry webhooks (mlflow/webhooks/delivery.py, 3.17.2), so one
verifier serves both: `X-Mlops-Signature: v1,<base64(HMAC-SHA256(secret, "<id>.<timestamp>.<body>"))>`
with `X-Mlops-Delivery-Id` (uuid4) and `X-Mlops-Timestamp` (unix seconds); the body is JSON.
A `pre-rollout` hook that does not answer 2xx (or does not answer) holds the rollout; the other
events are notifications: their failures are reported, never change a decision.
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
from collections.abc import Mapping, Sequence
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

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def deliver(
    hooks: Sequence[HookSettings], event: HookEvent, payload: Mapping[str, Any], secret: str | None
) -> list[HookResult]:
    """POST `payload` (plus `event` and a timestamp) to every hook subscribed to `event`."""
    subscribed = [hook for hook in hooks if event in hook.events]
    if subscribed and not secret:
        raise HookSecretError(f"rollout hooks are configured but neither {SECRET_ENV} nor {SECRET_FILE_ENV} is set")
    results = []
    for hook in subscribed:
        timestamp = str(int(time.time()))
        delivery_id = str(uuid.uuid4())
        body = json.dumps({"event": event, **payload})
        assert secret is not None
        request = urllib.request.Request(
            hook.url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                DELIVERY_ID_HEADER: delivery_id,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(secret, delivery_id, timestamp, body),
                EVENT_HEADER: event,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=hook.timeout_seconds) as response:
                results.append(HookResult(hook.url, event, response.status, f"HTTP {response.status}"))
        except urllib.error.HTTPError as error:
            results.append(HookResult(hook.url, event, error.code, f"HTTP {error.code}"))
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            results.append(HookResult(hook.url, event, None, f"no answer: {getattr(error, 'reason', error)}"))
    return results
