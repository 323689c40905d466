"""The whole MLflow deployment on 127.0.0.1: PostgreSQL, Azurite, migrations, three roles, nginx.

Used by the `mlflow_stack` pytest fixture (tests/services/plugin.py) and by the benchmark
(benchmarks/mlflow_throughput.py). The roles run with the command lines the cluster runs,
built from a committed stack's settings; only hosts, ports and URIs are local.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.fernet import Fernet

from layers.mlflow_servers import server_settings
from layout import cluster_layout
from layout.mlflow_server import ServerSettings
from settings.model import PlatformSettings
from settings.stack_file import settings_from_stack_file
from tests.services import processes
from tests.services.processes import REPO_ROOT, Azurite, Postgres, RunningServer


def committed_settings(stack: str = "dev") -> PlatformSettings:
    """The settings of `Pulumi.<stack>.yaml`, as the program reads them."""
    return settings_from_stack_file(REPO_ROOT / f"Pulumi.{stack}.yaml")


@dataclass(frozen=True)
class MlflowDeployment:
    """What a client of the local deployment needs."""

    tracking_uri: str
    """The single proxied URL (nginx routing by API path): tracking, registry and artifacts."""
    admin_username: str
    admin_password: str
    artifacts_destination: str
    """`wasbs://<container>@devstoreaccount1.blob.core.windows.net/` (served by Azurite)."""
    artifact_container: str
    azurite: Azurite
    postgres: Postgres
    settings: ServerSettings
    """The servers' settings (local hosts, ports and paths)."""
    servers: dict[str, RunningServer]
    workdir: Path

    @property
    def registry_uri(self) -> str:
        return self.tracking_uri

    @property
    def azurite_connection_string(self) -> str:
        return self.azurite.connection_string


ADMIN_PASSWORD = "local-Admin-password-1234"


@contextlib.contextmanager
def mlflow_deployment(
    workdir: Path, stack: str = "dev", durable: bool = False, workspaces: bool = False
) -> Iterator[MlflowDeployment]:
    """Everything started in order and stopped in reverse; `durable` keeps PostgreSQL's fsync on;
    `workspaces` runs the servers as a stack with teams does (`ServerSettings.workspaces`)."""
    container = committed_settings(stack).artifact_container
    with processes.postgres(workdir, durable=durable) as database, processes.azurite(workdir, (container,)) as blob:
        processes.run_migrations(database.server(), database.password, workdir / "migrations.log")
        with mlflow_servers(database, blob, workdir, stack, workspaces=workspaces) as deployment:
            yield deployment


@contextlib.contextmanager
def mlflow_servers(
    database: Postgres,
    blob: Azurite,
    workdir: Path,
    stack: str = "dev",
    *,
    webhook_key: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    workspaces: bool = False,
) -> Iterator[MlflowDeployment]:
    """The three roles and nginx on an existing (migrated) database and Azurite (the restore drill
    starts them twice: on the original database, then on the restored one; the upgrade test with
    the previous MLflow release's `PATH` in `extra_env`)."""
    platform = committed_settings(stack)
    container = platform.artifact_container
    destination = f"wasbs://{container}@{processes.AZURITE_ACCOUNT}.blob.core.windows.net/"
    proxy_port = processes.free_port()
    settings = replace(
        server_settings(platform, database.server(), destination),
        # The proxy's host (the public host in the cluster) and, like the pod-IP wildcard
        # there, loopback addresses for direct scrapes of /metrics.
        allowed_hosts=(f"127.0.0.1:{proxy_port}", "127.0.0.*"),
        auth_config_path=str(workdir / "etc" / "basic_auth.ini"),
        # Where the launcher reads the Key Vault secrets (the CSI mount in the cluster).
        secrets_dir=str(workdir / "secrets-store"),
        extra_env={"AZURE_STORAGE_CONNECTION_STRING": blob.connection_string, **(extra_env or {})},
        # The local webhook receiver listens on http://127.0.0.1, as the cluster's on a Service IP.
        webhook_private_targets=True,
        workspaces=workspaces,
    )
    secrets = {
        cluster_layout.POSTGRES_ADMIN_PASSWORD: database.password,
        cluster_layout.MLFLOW_ADMIN_PASSWORD: ADMIN_PASSWORD,
        cluster_layout.MLFLOW_FLASK_SECRET_KEY: "local-csrf-key",
        cluster_layout.MLFLOW_WEBHOOK_ENCRYPTION_KEY: webhook_key or Fernet.generate_key().decode(),
    }
    with processes.mlflow_roles(settings, secrets, workdir) as servers:
        upstreams = {role: f"127.0.0.1:{server.port}" for role, server in servers.items()}
        with processes.nginx(workdir, upstreams, proxy_port, settings.workspaces) as url:
            yield MlflowDeployment(
                tracking_uri=url,
                admin_username=settings.admin_username,
                admin_password=ADMIN_PASSWORD,
                artifacts_destination=destination,
                artifact_container=container,
                azurite=blob,
                postgres=database,
                settings=settings,
                servers=servers,
                workdir=workdir,
            )
