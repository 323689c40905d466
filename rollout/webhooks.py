"""Registry webhooks: what MLflow sends, how a delivery is verified, and which ones ask for a reconcile.

Pure functions (no I/O) used by the receiver (`mlopsctl webhook serve`), the registration command
(`mlopsctl webhook ensure`) and their tests. The format is MLflow 3.17.2's, read from its source
(`mlflow/webhooks/delivery.py`, `constants.py`, `entities/webhook.py`):

- headers `X-MLflow-Delivery-Id` (uuid4), `X-MLflow-Timestamp` (unix seconds) and, only when the
  webhook has a secret, `X-MLflow-Signature` = `v1,` + standard base64 of
  HMAC-SHA256(secret as UTF-8, `<delivery id>.<timestamp>.<raw body>`);
- body `{"entity", "action", "timestamp", "data"}`; the event name is `<entity>.<action>`;
- a delivery answered 429/500/502/503/504 is retried (up to 3 times, backoff 1 s, 2 s, 4 s plus
  jitter) with the *same* delivery id, timestamp and signature; nothing is queued durably.

So the replay window is: the timestamp must be within `tolerance` seconds of now (stale → 401),
and a delivery id the receiver already acted on is answered 200 without acting again. A delivery
it answered with 5xx was not recorded, so MLflow's retry of it is accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

DELIVERY_ID_HEADER: Final = "X-MLflow-Delivery-Id"
TIMESTAMP_HEADER: Final = "X-MLflow-Timestamp"
SIGNATURE_HEADER: Final = "X-MLflow-Signature"
SIGNATURE_VERSION: Final = "v1"

ALIAS_CREATED: Final = "model_version_alias.created"
ALIAS_DELETED: Final = "model_version_alias.deleted"
TAG_SET: Final = "model_version_tag.set"
TAG_DELETED: Final = "model_version_tag.deleted"
EVENTS: Final = (ALIAS_CREATED, ALIAS_DELETED, TAG_SET, TAG_DELETED)
"""The events the platform's webhook subscribes to (moving an alias fires only `.created`)."""

DEFAULT_TOLERANCE_SECONDS: Final = 300
"""Timestamp tolerance: longer than MLflow's retries (≈ 10 s), short enough to bound replays."""


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The `X-MLflow-Signature` value MLflow sends for this delivery."""
    message = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_valid(secret: str, delivery_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """True when one of the space-separated `v1,<base64>` signatures in `header` matches (constant time)."""
    expected = sign(secret, delivery_id, timestamp, body).encode()
    return any(hmac.compare_digest(candidate.encode(), expected) for candidate in header.split() if candidate)


def timestamp_fresh(timestamp: str, now: float, tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """True when `timestamp` (unix seconds, as MLflow sends it) is within `tolerance` of `now`, either way."""
    if not timestamp.isdigit():
        return False
    return abs(now - int(timestamp)) <= tolerance


@dataclass
class ReplayGuard:
    """Delivery ids acted on, remembered while their timestamps are inside the window.

    Only deliveries answered 2xx are recorded (`record`), so a retry of a delivery answered 5xx is
    accepted. Per process: with several receiver replicas a replay may reach another replica,
    which then repeats an idempotent reconcile request (same annotation value), never more.
    """

    tolerance: int = DEFAULT_TOLERANCE_SECONDS
    _seen: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, delivery_id: str) -> bool:
        with self._lock:
            return delivery_id in self._seen

    def record(self, delivery_id: str, timestamp: str, now: float) -> None:
        with self._lock:
            self._seen[delivery_id] = int(timestamp)
            horizon = now - 2 * self.tolerance
            for stale in [key for key, ts in self._seen.items() if ts < horizon]:
                del self._seen[stale]

    def __len__(self) -> int:
        return len(self._seen)


@dataclass(frozen=True)
class WatchedModel:
    """A registered model the platform serves, and the aliases its rollout reads."""

    name: str
    aliases: frozenset[str]


@dataclass(frozen=True)
class Watch:
    """What the receiver acts on: managed models (with their aliases) and version tag keys."""

    models: Mapping[str, WatchedModel]
    tag_keys: frozenset[str]


def parse_watch_spec(spec: str) -> WatchedModel:
    """`fraud-detector=champion,challenger` → the model and its aliases (CLI `--model`)."""
    name, sep, aliases = spec.rpartition("=")
    if not sep or not name or not aliases:
        raise ValueError(f"expected MODEL=ALIAS[,ALIAS...], got {spec!r}")
    names = frozenset(a.strip() for a in aliases.split(",") if a.strip())
    if not names:
        raise ValueError(f"no alias in {spec!r}")
    return WatchedModel(name, names)


def watch_spec(model: WatchedModel) -> str:
    """The inverse of `parse_watch_spec` (aliases sorted)."""
    return f"{model.name}={','.join(sorted(model.aliases))}"


Action = Literal["reconcile", "ignore"]


@dataclass(frozen=True)
class EventDecision:
    action: Action
    reason: str
    event: str | None = None
    model: str | None = None


def event_name(payload: Mapping[str, object]) -> str | None:
    entity, action = payload.get("entity"), payload.get("action")
    if not isinstance(entity, str) or not isinstance(action, str):
        return None
    return f"{entity}.{action}"


def classify(payload: Mapping[str, object], watch: Watch) -> EventDecision:  # noqa: PLR0911 - one answer per check
    """Whether a verified delivery changes what a managed model serves (→ reconcile) or not (→ ignore)."""
    event = event_name(payload)
    if event not in EVENTS:
        return EventDecision("ignore", f"event {event!r} is not one the platform acts on", event)
    data = payload.get("data")
    if not isinstance(data, Mapping):
        return EventDecision("ignore", "no data object", event)
    name = data.get("name")
    model = watch.models.get(name) if isinstance(name, str) else None
    if model is None:
        return EventDecision("ignore", f"model {name!r} is not managed", event, name if isinstance(name, str) else None)
    if event in (ALIAS_CREATED, ALIAS_DELETED):
        alias = data.get("alias")
        if alias not in model.aliases:
            return EventDecision("ignore", f"alias {alias!r} is not one of {sorted(model.aliases)}", event, model.name)
        return EventDecision("reconcile", f"alias {alias!r} {event.rsplit('.', 1)[1]}", event, model.name)
    key = data.get("key")
    if key not in watch.tag_keys:
        return EventDecision("ignore", f"tag {key!r} does not change the plan", event, model.name)
    return EventDecision("reconcile", f"tag {key!r} {event.rsplit('.', 1)[1]}", event, model.name)


def parse_payload(body: bytes) -> dict[str, object] | None:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


def reconcile_request_value(delivery_id: str) -> str:
    """The annotation value for one delivery: unique per delivery, the same for its retries."""
    return f"mlflow-webhook-{delivery_id}"


@dataclass(frozen=True)
class Verdict:
    """The receiver's answer before any side effect: reject, acknowledge, or go and reconcile."""

    status: int
    reason: str
    decision: EventDecision | None = None

    @property
    def reconcile(self) -> bool:
        return self.decision is not None and self.decision.action == "reconcile" and self.status == 200


def verdict(  # noqa: PLR0911 - one early answer per check, in order
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str,
    watch: Watch,
    guard: ReplayGuard,
    now: float,
) -> Verdict:
    """The whole check of one delivery. `headers` keys are lower case (ASGI)."""
    delivery_id = headers.get(DELIVERY_ID_HEADER.lower(), "")
    timestamp = headers.get(TIMESTAMP_HEADER.lower(), "")
    signature = headers.get(SIGNATURE_HEADER.lower(), "")
    if not delivery_id or not timestamp or not signature:
        return Verdict(401, "missing delivery id, timestamp or signature header")
    if not timestamp_fresh(timestamp, now, guard.tolerance):
        return Verdict(401, f"timestamp {timestamp!r} outside the {guard.tolerance} s window")
    if not signature_valid(secret, delivery_id, timestamp, body, signature):
        return Verdict(401, "bad signature")
    if guard.seen(delivery_id):
        return Verdict(200, "duplicate delivery, already acted on")
    payload = parse_payload(body)
    if payload is None:
        return Verdict(400, "body is not a JSON object")
    decision = classify(payload, watch)
    if decision.action == "ignore":
        return Verdict(204, decision.reason, decision)
    return Verdict(200, decision.reason, decision)


def secret_fingerprint(secret: str) -> str:
    """A short, non-reversible fingerprint of a (high-entropy) secret, kept in the webhook's description
    so `ensure` can tell whether the stored secret is current (MLflow never returns secrets)."""
    return hashlib.sha256(b"mlops-platform webhook secret:" + secret.encode("utf-8")).hexdigest()[:16]
