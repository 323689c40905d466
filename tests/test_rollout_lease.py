"""The decision lease under real contention: runs racing for it on a real MLflow (PostgreSQL).

Every run starts from no lease tag (a run releases it by deleting it), so concurrent runs insert
the same (model, key) row at once. MLflow's `set_registered_model_tag` is a SQLAlchemy `merge`:
one insert wins and the others get HTTP 400 (the unique-key violation surfaces as BAD_REQUEST).
Losing that race must mean "not acquired", never a crashed run.
"""

from __future__ import annotations

import threading
from typing import Any

from mlflow import MlflowClient

from rollout.actions import Lease
from rollout.registry_reader import ReaderOptions, RegistryClient

CONTENDERS = 4
ROUNDS = 12


def _race(client: RegistryClient, model: str) -> tuple[list[bool], list[BaseException]]:
    barrier = threading.Barrier(CONTENDERS)
    acquired: list[bool] = []
    errors: list[BaseException] = []

    def contend() -> None:
        lease = Lease(client, model, settle_seconds=0.5)
        barrier.wait()
        try:
            acquired.append(lease.acquire())
        except Exception as error:  # noqa: BLE001 - the test reports what a run would have died of
            errors.append(error)

    threads = [threading.Thread(target=contend) for _ in range(CONTENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return acquired, errors


def test_racing_runs_get_one_lease_and_none_fails(mlflow_stack: Any, registry: MlflowClient) -> None:
    client = RegistryClient(
        mlflow_stack.tracking_uri, mlflow_stack.admin_username, mlflow_stack.admin_password, ReaderOptions()
    )
    for round_ in range(ROUNDS):
        model = f"lease-race-{round_}"
        registry.create_registered_model(model)
        acquired, errors = _race(client, model)
        assert errors == [], f"round {round_}: {errors[0]!r}"
        assert sorted(acquired) == [False] * (CONTENDERS - 1) + [True], f"round {round_}: {acquired}"
