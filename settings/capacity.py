"""PostgreSQL connections at maximum scale: what MLflow can open, and what the server accepts.

The arithmetic `settings.combinations` validates (and the README states):

- **Clients.** Every uvicorn worker process of every MLflow pod holds one SQLAlchemy engine per
  store it talks to, each with up to `pool_size + max_overflow` connections. Tracking and
  registry pods talk to three stores (tracking, registry, basic-auth); artifacts pods only to the
  basic-auth database (their tracking store is an unused local SQLite file). At maximum scale a
  role runs its HPA maximum plus one surge pod of a rolling update (`maxSurge: 1`).
- **Direct to PostgreSQL** (port 5432): clients + the migration Job (one connection at a time)
  + operator headroom must fit `max_connections - 15` (Azure reserves 15 connections for
  replication and monitoring).
- **Through the built-in PgBouncer** (port 6432, transaction pooling): clients must fit
  `pgbouncer.max_client_conn`; on the server side PgBouncer opens at most
  `pgbouncer.default_pool_size` connections per user/database pair (MLflow uses one login for
  three databases), and those + the migration Job (which connects directly) + headroom must fit
  `max_connections - 15`.

`max_connections` is Azure's default for the compute SKU (it scales with memory), from the
"Limits in Azure Database for PostgreSQL flexible server" table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

AZURE_RESERVED_CONNECTIONS: Final = 15
"""Connections Azure keeps for physical replication and monitoring (not usable by clients)."""
MIGRATION_CONNECTIONS: Final = 1
"""The migration Job runs its three upgrades one after another, each on one connection."""
OPERATOR_HEADROOM: Final = 10
"""Kept free for people (psql during an incident), backups tooling and `pg_dump`."""
PGBOUNCER_MAX_CLIENT_CONN_LIMIT: Final = 50000

# Memory (GiB) of the Burstable SKUs, whose memory per vCore varies.
_BURSTABLE_MEMORY_GB: Final[Mapping[str, int]] = {
    "B1ms": 2,
    "B2s": 4,
    "B2ms": 8,
    "B4ms": 16,
    "B8ms": 32,
    "B12ms": 48,
    "B16ms": 64,
    "B20ms": 80,
}
# GiB per vCore of the general-purpose (D) and memory-optimised (E) series.
_MEMORY_PER_VCORE_GB: Final[Mapping[str, int]] = {"D": 4, "E": 8}
# Azure's default max_connections by memory: (at least GiB, max_connections).
_MAX_CONNECTIONS_BY_MEMORY: Final[tuple[tuple[int, int], ...]] = (
    (48, 5000),
    (32, 3437),
    (16, 1718),
    (8, 859),
    (4, 429),
    (0, 50),
)


def sku_memory_gb(sku_name: str) -> int | None:
    """Memory of a Flexible Server compute SKU (`Standard_D4ds_v5` → 16), None if unknown."""
    match = re.fullmatch(r"Standard_(([BDE])(\d+)[a-z]*)(_v\d+)?", sku_name)
    if match is None:
        return None
    short, series, vcores = match.group(1), match.group(2), int(match.group(3))
    if series == "B":
        return _BURSTABLE_MEMORY_GB.get(short)
    return vcores * _MEMORY_PER_VCORE_GB[series]


def max_connections(sku_name: str) -> int | None:
    """Azure's default `max_connections` of a SKU (B2ms 859, D4ds_v5 1718, D16+ 5000)."""
    memory = sku_memory_gb(sku_name)
    if memory is None:
        return None
    return next(limit for floor, limit in _MAX_CONNECTIONS_BY_MEMORY if memory >= floor)


def user_connections(sku_name: str) -> int | None:
    """Connections clients may open: `max_connections` less Azure's reserved ones."""
    limit = max_connections(sku_name)
    return None if limit is None else limit - AZURE_RESERVED_CONNECTIONS


ENGINES_PER_WORKER: Final[Mapping[str, int]] = {"tracking": 3, "registry": 3, "artifacts": 1}
"""SQLAlchemy engines on PostgreSQL per worker process: tracking, registry and auth stores; the
artifacts role only checks permissions in the auth database."""
DATABASES: Final = 3
"""mlflow, mlflow_registry, mlflow_auth: one PgBouncer pool each (one login)."""


@dataclass(frozen=True)
class MlflowScale:
    """What decides how many connections MLflow can hold."""

    workers: int
    pool_size: int
    max_overflow: int
    max_replicas: Mapping[str, int]
    """Maximum pods per role (HPA maximum, or the fixed count)."""
    surge: int = 1
    """Extra pods per role during a rolling update (`maxSurge`)."""

    def pods(self, role: str) -> int:
        return self.max_replicas[role] + self.surge

    def role_connections(self, role: str) -> int:
        return self.pods(role) * self.workers * ENGINES_PER_WORKER[role] * (self.pool_size + self.max_overflow)

    @property
    def client_connections(self) -> int:
        """Every connection MLflow may hold at maximum scale, mid-rollout."""
        return sum(self.role_connections(role) for role in ENGINES_PER_WORKER)


@dataclass(frozen=True)
class ConnectionBudget:
    """Server-side demand against the server's limit, and client-side demand against PgBouncer's."""

    clients: int
    server_demand: int
    server_limit: int
    pgbouncer_client_limit: int | None
    """None: no PgBouncer, clients connect directly (then `server_demand` includes them)."""

    @property
    def fits(self) -> bool:
        clients_fit = self.pgbouncer_client_limit is None or self.clients <= self.pgbouncer_client_limit
        return clients_fit and self.server_demand <= self.server_limit


def connection_budget(
    scale: MlflowScale, user_limit: int, pgbouncer_pool_size: int | None, pgbouncer_max_client_conn: int | None
) -> ConnectionBudget:
    """The connection arithmetic of the module docstring (`pgbouncer_pool_size` None: direct)."""
    fixed = MIGRATION_CONNECTIONS + OPERATOR_HEADROOM
    if pgbouncer_pool_size is None:
        return ConnectionBudget(scale.client_connections, scale.client_connections + fixed, user_limit, None)
    return ConnectionBudget(
        scale.client_connections, DATABASES * pgbouncer_pool_size + fixed, user_limit, pgbouncer_max_client_conn
    )
