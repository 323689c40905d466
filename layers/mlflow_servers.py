"""A stack's settings mapped onto the MLflow servers' settings (layout/mlflow_server.py).

The server commands are pure layout that knows nothing of stack settings; this is where the two
meet, for the cluster layer (layers/cluster.py) and for the integration tests that run the same
servers locally (tests/services/stack.py), which swap only hosts, ports and URIs.
"""

from __future__ import annotations

from layout import cluster_layout
from layout.mlflow_server import PGBOUNCER_PORT, POSTGRES_PORT, DatabaseServer, ServerSettings, cluster_allowed_hosts
from settings.model import PlatformSettings


def cluster_database(settings: PlatformSettings, host: str) -> DatabaseServer:
    """Where the servers in the cluster connect: the built-in PgBouncer when it is on, else PostgreSQL.

    Migrations never go through PgBouncer (`migration_database`)."""
    port = PGBOUNCER_PORT if settings.postgres_pgbouncer else POSTGRES_PORT
    return DatabaseServer(host=host, user=settings.postgres_admin_login, port=port)


def server_settings(settings: PlatformSettings, database: DatabaseServer, artifacts_destination: str) -> ServerSettings:
    """The servers' settings of a stack (the cluster's names; tests swap hosts, ports and URIs)."""
    return ServerSettings(
        database=database,
        artifacts_destination=artifacts_destination,
        allowed_hosts=cluster_allowed_hosts(
            cluster_layout.public_host("mlflow", settings.domain), settings.mlflow_namespace, settings.aks_pod_cidr
        ),
        admin_username=settings.mlflow_admin_username,
        default_permission=settings.mlflow_default_permission,
        workers=settings.mlflow_workers,
        pool_size=settings.mlflow_db_pool_size,
        max_overflow=settings.mlflow_db_max_overflow,
        webhook_private_targets=settings.webhook_receiver,
        webhook_cache_ttl_seconds=settings.mlflow_webhook_cache_ttl_seconds,
        # Teams are MLflow workspaces (docs/teams.md); without teams the servers run as before.
        workspaces=bool(settings.teams),
    )
