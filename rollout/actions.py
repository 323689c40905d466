"""Writing rollout decisions to the registry — the CLI's only side effects.

The registry is the single source of truth: a decision is a set of tags on the candidate version
(and, for promote and roll back, alias moves); the next `pulumi up` declares the result.

Two overlapping runs must not both decide. A run takes a lease (a tag on the registered model
holding an owner id and an expiry), waits a moment and reads it back: only the last writer sees
itself and goes on. It then re-reads the model and writes only if the aliases and the
candidate's rollout tags are still what its analysis saw.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from rollout.analysis import Decision
from rollout.planner import (
    APPROVAL_TAG_PREFIX,
    DECIDED_AT_TAG,
    REASON_TAG,
    STARTED_TAG,
    STATUS_TAG,
    STEP_AT_TAG,
    WEIGHT_TAG,
)
from rollout.registry_reader import NotFoundError, RegistryClient, RegistryError, read_model
from rollout.snapshot import ModelState
from settings.rollout import ModelRolloutSettings

LEASE_TAG = "mlops.rollout.lease"
STATUS_BY_ACTION = {
    "hold": "holding",
    "start": "progressing",
    "advance": "progressing",
    "promote": "promoted",
    "rollback": "rolled_back",
}
RETIRED = "retired"


@dataclass(frozen=True)
class Outcome:
    model: str
    action: str
    written: bool
    detail: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def rollout_fingerprint(state: ModelState, settings: ModelRolloutSettings) -> tuple[object, ...]:
    """What a decision is based on: the aliases and the candidate's rollout tags."""
    candidate = state.aliased(settings.canary_alias)
    tags = candidate.tags if candidate else {}
    return (
        tuple(sorted(state.aliases.items())),
        tags.get(WEIGHT_TAG),
        tags.get(STATUS_TAG),
        tags.get(DECIDED_AT_TAG),
        tags.get(STARTED_TAG),
    )


class Lease:
    """Mutual exclusion between `advance` runs, on one registered model, through a tag."""

    def __init__(self, client: RegistryClient, model: str, seconds: float = 120, settle_seconds: float = 1.0) -> None:
        self.client, self.model = client, model
        self.seconds, self.settle_seconds = seconds, settle_seconds
        self.token = f"{uuid.uuid4().hex}|{time.time() + seconds:.0f}"

    def _holder(self) -> str | None:
        registered = self.client.get("registered-models/get", name=self.model)["registered_model"]
        tags = {t["key"]: t.get("value", "") for t in registered.get("tags") or []}
        return tags.get(LEASE_TAG)

    def _held_by_another(self) -> bool:
        """Another run's lease is on the model and has not expired."""
        holder = self._holder()
        if not holder or holder == self.token:
            return False
        _, _, expiry = holder.partition("|")
        return expiry.isdigit() and int(expiry) > time.time()

    def acquire(self) -> bool:
        if self._held_by_another():
            return False
        try:
            self.client.post("registered-models/set-tag", {"name": self.model, "key": LEASE_TAG, "value": self.token})
        except RegistryError:
            # Runs racing from no lease tag all insert its row: MLflow's `merge` lets one insert win
            # and answers the others HTTP 400 (a unique-key violation). A live lease held by another
            # run means this run lost the race; anything else is a real registry error.
            if self._held_by_another():
                return False
            raise
        time.sleep(self.settle_seconds)
        return self._holder() == self.token

    def release(self) -> None:
        if self._holder() == self.token:
            with contextlib.suppress(NotFoundError):
                self.client.delete("registered-models/delete-tag", {"name": self.model, "key": LEASE_TAG})


def _set_tags(client: RegistryClient, model: str, version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.post("model-versions/set-tag", {"name": model, "version": version, "key": key, "value": value})


def _delete_alias(client: RegistryClient, model: str, alias: str) -> None:
    with contextlib.suppress(NotFoundError):  # already gone: the decision is idempotent
        client.delete("registered-models/alias", {"name": model, "alias": alias})


def write_decision(
    client: RegistryClient,
    settings: ModelRolloutSettings,
    analysed: ModelState,
    decision: Decision,
    *,
    lease_settle_seconds: float = 1.0,
) -> Outcome:
    """Record `decision` for the candidate of `analysed`, if that state is still current."""
    model = settings.name
    lease = Lease(client, model, settle_seconds=lease_settle_seconds)
    if not lease.acquire():
        return Outcome(model, decision.action, False, "another rollout run holds the lease; nothing written")
    try:
        aliases = (settings.stable_alias, settings.canary_alias)
        current = read_model(client, model, aliases)
        if rollout_fingerprint(current, settings) != rollout_fingerprint(analysed, settings):
            return Outcome(model, decision.action, False, "the registry changed since the analysis; nothing written")
        candidate = current.aliased(settings.canary_alias)
        stable = current.aliased(settings.stable_alias)
        if candidate is None:
            return Outcome(model, decision.action, False, "no candidate version; nothing to decide")
        tags = {
            STATUS_TAG: STATUS_BY_ACTION[decision.action],
            REASON_TAG: decision.reason[:5000],
            DECIDED_AT_TAG: _now(),
        }
        if decision.weight is not None:
            tags[WEIGHT_TAG] = str(decision.weight)
        if decision.weight is not None or decision.marks_step:
            tags[STEP_AT_TAG] = tags[DECIDED_AT_TAG]
        if decision.action == "start":
            tags[STARTED_TAG] = tags[DECIDED_AT_TAG]
        _set_tags(client, model, candidate.version, tags)
        if decision.action == "promote":
            client.post(
                "registered-models/alias",
                {"name": model, "alias": settings.stable_alias, "version": candidate.version},
            )
            _delete_alias(client, model, settings.canary_alias)
            if stable is not None and stable.version != candidate.version:
                _set_tags(client, model, stable.version, {STATUS_TAG: RETIRED, DECIDED_AT_TAG: tags[DECIDED_AT_TAG]})
        elif decision.action == "rollback":
            _delete_alias(client, model, settings.canary_alias)
        return Outcome(model, decision.action, True, decision.reason)
    finally:
        lease.release()


def record_approval(client: RegistryClient, settings: ModelRolloutSettings, version: str, gate: str, who: str) -> str:
    """Tag the candidate version `mlops.rollout.approved.<gate>` = `<who> at <time>`; returns the value."""
    value = f"{who} at {_now()}"
    _set_tags(client, settings.name, version, {APPROVAL_TAG_PREFIX + gate: value})
    return value
