"""The MLflow server as deployed: one pure function builds each role's command line and environment.

The Kubernetes Deployments and the migration Job (`components.cluster.mlflow`) and the integration
tests that run the servers for real (`tests/services/`) all call `server_command` and
`migration_commands`, so what is tested is what runs in the cluster; the tests swap only hosts,
ports and URIs for local ones (`ServerSettings` fields).

Three roles share one image, one auth database and one configuration:

- `tracking`: experiments, runs, metrics, logged models and the UI. `--no-serve-artifacts`, and
  new experiments get `mlflow-artifacts:/` roots, so clients move artifacts through the artifacts
  role, never through this one.
- `registry`: the same stores, reached only through the registry API paths (see
  `layout.mlflow_routing`), so registry traffic scales and fails apart from tracking.
- `artifacts`: `--artifacts-only`, proxying `/api/2.0/mlflow-artifacts` to the blob container
  (`wasbs://`), authenticating to Azure with workload identity (no account key anywhere).

No secret is ever on a command line or in a container's environment: every command (servers,
migrations, `mlflow gc`) runs under a small POSIX-shell launcher (`launch`) that reads the Key
Vault secrets from the files the CSI driver mounts (`ServerSettings.secrets_dir`). The store URIs
carry no password: the launcher writes a libpq password file (`PGPASSFILE`, mode 0600, in the
writable /tmp) from the mounted database password and rewrites it every
`PASSFILE_REFRESH_SECONDS`; libpq (psycopg2 under SQLAlchemy) reads it on every new connection, so
a rotated password reaches new connections without a restart. (libpq ignores a password file that
group or others can read, and CSI files are root-owned and world-readable, so the mounted file
itself cannot be the password file.) The other secrets (bootstrap admin password, CSRF key of the
basic-auth app, webhook encryption key, gc's admin password) are read once at start: the launcher
exports them to the process it `exec`s, never to the pod spec (`ServerCommand.secret_files`).
"""

from __future__ import annotations

import configparser
import io
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final
from urllib.parse import quote

from layout import cluster_layout

Role = cluster_layout.MlflowRole
ROLES: Final = cluster_layout.MLFLOW_ROLES
"""The roles (their one home is `layout.cluster_layout.MLFLOW_ROLES`), under the names this module's users know."""

TRACKING_DATABASE: Final = "mlflow"
REGISTRY_DATABASE: Final = "mlflow_registry"
AUTH_DATABASE: Final = "mlflow_auth"

# Environment variable of the launched process → mounted Key Vault secret file the launcher
# exports it from. The database password is not among them: libpq reads the password file.
SECRET_FILES: Final[Mapping[str, str]] = {
    "MLFLOW_AUTH_ADMIN_PASSWORD": cluster_layout.MLFLOW_ADMIN_PASSWORD,
    "MLFLOW_FLASK_SERVER_SECRET_KEY": cluster_layout.MLFLOW_FLASK_SECRET_KEY,
}
# The roles with the registry store create and deliver webhooks: one Fernet key for all of them.
REGISTRY_SECRET_FILES: Final[Mapping[str, str]] = {
    **SECRET_FILES,
    "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": cluster_layout.MLFLOW_WEBHOOK_ENCRYPTION_KEY,
}
DATABASE_PASSWORD_FILE: Final = cluster_layout.POSTGRES_ADMIN_PASSWORD
"""The mounted Key Vault secret the password file is written from."""
DEFAULT_SECRETS_DIR: Final = "/mnt/secrets-store"
DEFAULT_PASSFILE: Final = "/tmp/pgpass"
PASSFILE_REFRESH_SECONDS: Final = 60
"""How often the launcher copies the mounted password into the password file (the CSI driver
rewrites the mounted file within its rotation poll interval, two minutes on this platform)."""
LAUNCHER_NAME: Final = "mlflow-launcher"
DEFAULT_WEBHOOK_CACHE_TTL_SECONDS: Final = 10

POSTGRES_PORT: Final = 5432
PGBOUNCER_PORT: Final = 6432
"""Azure's built-in PgBouncer listens on the server's own host name, port 6432."""

DEFAULT_AUTH_CONFIG_PATH: Final = "/etc/mlflow/basic_auth.ini"
DEFAULT_METRICS_DIR: Final = "/tmp/mlflow-metrics"


@dataclass(frozen=True)
class DatabaseServer:
    """Where the three MLflow databases live; the password is never part of it."""

    host: str
    user: str
    port: int = POSTGRES_PORT
    sslmode: str = "require"

    def uri(self, database: str) -> str:
        """`postgresql+psycopg2://user@host:5432/db?sslmode=require` (psycopg2 named: SQLAlchemy 2.1
        would pick psycopg 3 for a bare `postgresql://`)."""
        return (
            f"postgresql+psycopg2://{quote(self.user, safe='')}@{self.host}:{self.port}/{database}"
            f"?sslmode={self.sslmode}"
        )


@dataclass(frozen=True)
class ServerSettings:
    """Everything a role's command line depends on."""

    database: DatabaseServer
    artifacts_destination: str
    """`wasbs://<container>@<account>.blob.core.windows.net/`."""
    allowed_hosts: Sequence[str]
    """Host headers the servers answer (DNS-rebinding protection); `/health` is exempt."""
    admin_username: str
    default_permission: str
    workers: int = 4
    pool_size: int = 5
    max_overflow: int = 5
    host: str = "0.0.0.0"
    port: int = cluster_layout.MLFLOW_SERVER_PORT
    auth_config_path: str = DEFAULT_AUTH_CONFIG_PATH
    metrics_dir: str = DEFAULT_METRICS_DIR
    """Prometheus multiprocess directory (inside the writable /tmp emptyDir)."""
    webhook_private_targets: bool = False
    """Allow webhook URLs with `http` and private addresses: the platform's receiver is an in-cluster
    Service. Off, MLflow's defaults apply (`https` to public addresses only)."""
    webhook_cache_ttl_seconds: int = DEFAULT_WEBHOOK_CACHE_TTL_SECONDS
    """How long each worker caches the webhook list per event (MLflow's default 60 s drops events
    for up to that long after a webhook is created or changed)."""
    secrets_dir: str = DEFAULT_SECRETS_DIR
    """Where the Key Vault secrets are mounted as files (CSI driver), one file per secret name."""
    passfile: str = DEFAULT_PASSFILE
    """The libpq password file the launcher writes (`PGPASSFILE`)."""
    workspaces: bool = False
    """MLflow workspaces (`--enable-workspaces`): one workspace per team, each with its own registry
    namespace, webhooks, grants and `workspaces/<name>/` artifact prefix. Turns the webhook cache
    off (`webhook_env`). One-way once experiments exist outside `default`."""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    """Environment added verbatim, last (tests: the Azurite connection string)."""


@dataclass(frozen=True)
class ServerCommand:
    role: str
    args: tuple[str, ...]
    """The container's command: the launcher, then `program`."""
    program: tuple[str, ...]
    """What the launcher `exec`s (`mlflow server ...`)."""
    env: dict[str, str]
    """Plain environment (no secrets; `PGPASSFILE` names the password file the launcher writes)."""
    secret_files: dict[str, str]
    """Environment variable → mounted secret file the launcher exports it from (never in the pod spec)."""


def launcher_script(
    secrets_dir: str, passfile: str, exports: Mapping[str, str], refresh_seconds: int = PASSFILE_REFRESH_SECONDS
) -> str:
    """The POSIX shell script `launch` runs: password file, refresh loop, exports, `exec`.

    Password-file fields escape `\\` and `:` with a backslash (libpq's rule). The file is written
    next to itself and renamed, so libpq never reads half a file; a missing or empty mounted
    password fails the start and leaves the last good file in place on a refresh. The refresh
    loop ends by itself once the launched process (which has the launcher's pid) is gone."""
    directory, target = shlex.quote(secrets_dir), shlex.quote(passfile)
    source = f"{directory}/{DATABASE_PASSWORD_FILE}"
    lines = [
        "set -eu",
        # Private files for the password file only; the launched process gets the umask it had.
        "launcher_umask=$(umask)",
        "umask 077",
        "write_passfile() {",
        f"  password=$(sed -e 's/[\\\\:]/\\\\&/g' {source}) || return 1",
        '  [ -n "$password" ] || return 1',
        f"  printf '*:*:*:*:%s\\n' \"$password\" > {target}.new || return 1",
        f"  mv -f {target}.new {target}",
        "}",
        f'write_passfile || {{ echo "{LAUNCHER_NAME}: cannot write the password file from {source}" >&2; exit 1; }}',
        # `$$` is this shell's pid, which `exec` hands to the command: the loop ends with it.
        f"(while sleep {int(refresh_seconds)}; do kill -0 $$ 2>/dev/null || exit 0; "
        f'write_passfile || echo "{LAUNCHER_NAME}: password file not refreshed" >&2; done) </dev/null >/dev/null &',
    ]
    lines += [f'{name}="$(cat {directory}/{shlex.quote(secret)})"; export {name}' for name, secret in exports.items()]
    lines += ['umask "$launcher_umask"', 'exec "$@"']
    return "\n".join(lines)


def launch(
    command: Sequence[str],
    secrets_dir: str,
    passfile: str,
    exports: Mapping[str, str],
    refresh_seconds: int = PASSFILE_REFRESH_SECONDS,
) -> tuple[str, ...]:
    """`command` run by the launcher: `/bin/sh -c <script> mlflow-launcher <command...>`."""
    script = launcher_script(secrets_dir, passfile, exports, refresh_seconds)
    return ("/bin/sh", "-c", script, LAUNCHER_NAME, *command)


def _common_flags(settings: ServerSettings) -> list[str]:
    return [
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.workers),
        "--app-name",
        "basic-auth",
        "--expose-prometheus",
        settings.metrics_dir,
        "--allowed-hosts",
        ",".join(settings.allowed_hosts),
        # uvicorn kills a worker that misses one 5 s health ping; a CPU-throttled pod busy with a
        # large upload would lose in-flight requests. Drain on SIGTERM within the pod's grace period.
        "--uvicorn-opts",
        "--timeout-worker-healthcheck 30 --timeout-graceful-shutdown 20",
    ]


def _store_flags(settings: ServerSettings) -> list[str]:
    return [
        "--backend-store-uri",
        settings.database.uri(TRACKING_DATABASE),
        "--registry-store-uri",
        settings.database.uri(REGISTRY_DATABASE),
    ]


def _workspace_flags(role: Role, settings: ServerSettings) -> list[str]:
    """`--enable-workspaces` on every role; the artifacts role has no backend store, so it is told
    where the workspace table lives (the tracking database) to resolve `workspaces/<name>/` paths."""
    if not settings.workspaces:
        return []
    flags = ["--enable-workspaces"]
    if role == "artifacts":
        flags += ["--workspace-store-uri", settings.database.uri(TRACKING_DATABASE)]
    return flags


ARTIFACTS_ROLE_WITH_WORKSPACES: Final[Role] = "tracking"
"""Who proxies artifacts when workspaces are on. MLflow 3.17.2's `--artifacts-only` server authorizes a
proxied path by looking the experiment's workspace up in a tracking store it may not have (it refuses
`--backend-store-uri`), so it answers 403 to every non-admin (tests/test_teams_mlflow.py). The tracking
role has the store: it serves `mlflow-artifacts` (no `--no-serve-artifacts`, the destination given) and
`layout.mlflow_routing.routes` sends those paths to it; the artifacts role stays for `mlflow gc`."""


def server_command(role: Role, settings: ServerSettings) -> ServerCommand:
    """The `mlflow server` invocation of one role, and its environment."""
    if role not in ROLES:
        raise ValueError(f"unknown MLflow role {role!r}; one of {ROLES}")
    args = ["mlflow", "server"]
    if role in ("tracking", "registry"):
        # Registry requests resolve logged models and runs, so both roles see both stores.
        args += _store_flags(settings)
        if role == "tracking" and settings.workspaces:
            # With workspaces the tracking role serves the artifacts proxy (`ARTIFACTS_ROLE_WITH_WORKSPACES`).
            args += ["--artifacts-destination", settings.artifacts_destination]
        else:
            args += ["--no-serve-artifacts"]
        args += ["--default-artifact-root", "mlflow-artifacts:/"]
    else:
        # MLflow refuses store URIs with `--artifacts-only`; the role still creates an unused
        # SQLite file in its working directory (/tmp, the pod's emptyDir). Its permission checks
        # read the shared auth database.
        args += ["--artifacts-only", "--artifacts-destination", settings.artifacts_destination]
    args += _workspace_flags(role, settings)
    args += _common_flags(settings)
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": settings.auth_config_path,
        "MLFLOW_AUTH_ADMIN_USERNAME": settings.admin_username,
        "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": str(settings.pool_size),
        "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": str(settings.max_overflow),
        # Connections die quietly behind load balancers and on server failover.
        "MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE": "1800",
        # The GenAI job runner (online scoring, trace archival) schedules periodic tasks in every
        # replica; this platform runs replicas of classic ML servers, so it is off.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "PYTHONUNBUFFERED": "1",
        # Anything MLflow or its libraries cache goes to the writable emptyDir.
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "PGPASSFILE": settings.passfile,
        **(webhook_env(settings) if role != "artifacts" else {}),
        **settings.extra_env,
    }
    secret_files = SECRET_FILES if role == "artifacts" else REGISTRY_SECRET_FILES
    return _launched(role, args, env, secret_files, settings)


def _launched(
    role: str, program: Sequence[str], env: dict[str, str], secret_files: Mapping[str, str], settings: ServerSettings
) -> ServerCommand:
    return ServerCommand(
        role=role,
        args=launch(program, settings.secrets_dir, settings.passfile, secret_files),
        program=tuple(program),
        env=env,
        secret_files=dict(secret_files),
    )


def webhook_env(settings: ServerSettings) -> dict[str, str]:
    """Webhook delivery settings, set explicitly either way (the encryption key is a secret, elsewhere).

    `MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true` turns MLflow's SSRF check off for every webhook; only
    admins can create webhooks, and the servers' egress NetworkPolicy limits where they can connect.

    With workspaces the cache TTL is 0 whatever the setting says: MLflow 3.17.2 keys its per-worker
    webhook cache by event type only (`mlflow/webhooks/delivery.py`, `_get_cached_webhooks_by_event`),
    so within the TTL one workspace's event goes to the webhooks cached for another workspace
    (tests/test_teams_mlflow.py reproduces it). Without the cache every delivery lists the
    webhooks of its own workspace: one indexed query per registry write.
    """
    private = settings.webhook_private_targets
    return {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "https,http" if private else "https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true" if private else "false",
        "MLFLOW_WEBHOOK_CACHE_TTL": str(effective_webhook_cache_ttl(settings)),
    }


def effective_webhook_cache_ttl(settings: ServerSettings) -> int:
    """The TTL the servers run with: 0 with workspaces (the cache misroutes across them), else the setting."""
    return 0 if settings.workspaces else settings.webhook_cache_ttl_seconds


GC_SECRET_FILES: Final[Mapping[str, str]] = {"MLFLOW_TRACKING_PASSWORD": cluster_layout.MLFLOW_ADMIN_PASSWORD}


def gc_command(
    settings: ServerSettings, older_than: str, artifacts_url: str, workspace: str | None = None
) -> ServerCommand:
    """`mlflow gc`: runs, experiments and logged models deleted longer ago than `older_than` are
    removed from the tracking database, and their artifacts deleted.

    Their artifact URIs are `mlflow-artifacts:/...`, which MLflow resolves through the tracking
    URI: `artifacts_url` is the artifacts role (`--artifacts-only`), which deletes the blobs with
    its workload identity; gc logs in as the basic-auth admin (`MLFLOW_TRACKING_USERNAME` /
    `_PASSWORD`, exported by the launcher from the mounted file). The database password comes from
    the launcher's password file (libpq), never the command line or the environment.

    With workspaces, `workspace` limits gc to one workspace (`--workspace`), else every workspace
    is collected (`--all-workspaces`); gc itself only honours those flags with
    `MLFLOW_ENABLE_WORKSPACES=true` in its environment.
    """
    if workspace is not None and not settings.workspaces:
        raise ValueError("gc --workspace needs a server with workspaces enabled")
    scope: tuple[str, ...] = ()
    if settings.workspaces:
        scope = ("--workspace", workspace) if workspace is not None else ("--all-workspaces",)
    args = (
        "mlflow",
        "gc",
        "--backend-store-uri",
        settings.database.uri(TRACKING_DATABASE),
        "--artifacts-destination",
        settings.artifacts_destination,
        "--older-than",
        older_than,
        "--tracking-uri",
        artifacts_url,
        *scope,
    )
    env = {
        "MLFLOW_TRACKING_USERNAME": settings.admin_username,
        **({"MLFLOW_ENABLE_WORKSPACES": "true"} if settings.workspaces else {}),
        "PYTHONUNBUFFERED": "1",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "PGPASSFILE": settings.passfile,
        **settings.extra_env,
    }
    return _launched("gc", args, env, GC_SECRET_FILES, settings)


def migration_programs(database: DatabaseServer) -> tuple[tuple[str, ...], ...]:
    """Schema upgrades, in order: tracking, registry, auth. Each is idempotent (alembic to head)."""
    return (
        ("mlflow", "db", "upgrade", database.uri(TRACKING_DATABASE)),
        ("mlflow", "db", "upgrade", database.uri(REGISTRY_DATABASE)),
        ("python", "-m", "mlflow.server.auth", "db", "upgrade", "--url", database.uri(AUTH_DATABASE)),
    )


def migration_commands(
    database: DatabaseServer, secrets_dir: str = DEFAULT_SECRETS_DIR, passfile: str = DEFAULT_PASSFILE
) -> tuple[tuple[str, ...], ...]:
    """`migration_programs`, each under the launcher: the database password from the password file."""
    return tuple(launch(program, secrets_dir, passfile, {}) for program in migration_programs(database))


def migration_env(passfile: str = DEFAULT_PASSFILE) -> dict[str, str]:
    """Environment of the migration commands: nothing secret."""
    return {"HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONUNBUFFERED": "1", "PGPASSFILE": passfile}


def auth_config(settings: ServerSettings) -> str:
    """`basic_auth.ini` (read through `MLFLOW_AUTH_CONFIG_PATH`): no secret in it.

    The admin user and password come from `MLFLOW_AUTH_ADMIN_USERNAME`/`..._PASSWORD`; the auth
    database URI carries no password either (libpq reads the `PGPASSFILE` password file).
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser["mlflow"] = {
        "default_permission": settings.default_permission,
        "database_uri": settings.database.uri(AUTH_DATABASE),
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        "grant_default_workspace_access": "false",
        # Credential checks are PBKDF2 hashes: cache a success for a minute per worker.
        "auth_cache_ttl_seconds": "60",
    }
    text = io.StringIO()
    parser.write(text)
    return text.getvalue()


def ip_wildcard(cidr: str) -> str:
    """`10.244.0.0/16` → `10.244.*`: the allowed-hosts pattern of pod IPs (Prometheus scrapes)."""
    address, prefix = cidr.split("/")
    octets = address.split(".")[: int(prefix) // 8]
    return ".".join([*octets, "*"])


def service_name(role: str) -> str:
    """Kubernetes Service (and Deployment) of a role: `mlflow-tracking`."""
    return f"mlflow-{role}"


def cluster_allowed_hosts(public_host: str, namespace: str, pod_cidr: str) -> tuple[str, ...]:
    """The public host, every role's in-cluster service names, and pod IPs (metrics scrapes)."""
    hosts = [public_host]
    port = cluster_layout.MLFLOW_SERVER_PORT
    for role in ROLES:
        for name in (f"{service_name(role)}.{namespace}.svc", f"{service_name(role)}.{namespace}.svc.cluster.local"):
            hosts += [name, f"{name}:{port}"]  # the Host header carries the port when it is not 80
    hosts.append(ip_wildcard(pod_cidr))
    return tuple(hosts)


def migration_database(database: DatabaseServer) -> DatabaseServer:
    """Schema migrations talk to PostgreSQL itself on 5432: long DDL transactions and session state
    have no place in a transaction-pooled PgBouncer."""
    return replace(database, port=POSTGRES_PORT)
