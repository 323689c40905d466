"""Start and stop real services on 127.0.0.1, each on a free port, in its own temporary directory.

- PostgreSQL from the Debian package (`initdb`/`pg_ctl` run as the `postgres` user when we are root,
  since PostgreSQL refuses to run as root), password authentication (scram) so the password file
  the launcher writes (`PGPASSFILE`) is exercised as in the cluster.
- Azurite (npm, pinned in package.json) as the Azure Blob endpoint, `--skipApiVersionCheck`.
- The three MLflow roles, started with exactly the command lines of
  `layout.mlflow_server.server_command`: the launcher reading secrets from files laid out as the
  Key Vault CSI driver mounts them (`mounted_secrets`), no secret in any environment.
- nginx (Debian nginx-light) in the foreground with the routing table of
  `layout.mlflow_routing` rendered as its configuration.

Every process is started in its own session and stopped by its process group id, never by name.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from layout import mlflow_routing
from layout.cluster_layout import POSTGRES_ADMIN_PASSWORD
from layout.mlflow_server import (
    AUTH_DATABASE,
    REGISTRY_DATABASE,
    ROLES,
    TRACKING_DATABASE,
    DatabaseServer,
    Role,
    ServerCommand,
    ServerSettings,
    auth_config,
    migration_commands,
    migration_env,
    server_command,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

# Azurite's well-known development account (documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], what: str, timeout: float = 120.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {process.returncode}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except urllib.error.URLError:
        return False


def _stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Stop a process we started in its own session, with its children (uvicorn workers)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def _stop_all(processes: list[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    """SIGTERM every group at once, then SIGKILL what is left after `timeout` seconds."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _start(
    args: list[str] | tuple[str, ...], env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            list(args), env=dict(env), stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM what is left in the group of a process that has ended (the launcher's refresh loop,
    which would otherwise notice on its next tick). The group id stays reserved while a member lives."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)


def run_to_completion(
    args: list[str] | tuple[str, ...], env: Mapping[str, str], log: Path, timeout: float = 600
) -> int:
    """Run a launched command (a Job's container) to its end, output appended to `log`; its exit code."""
    process = _start(args, env, log)
    try:
        return process.wait(timeout)
    finally:
        _stop(process)
        _end_group(process)


def base_env() -> dict[str, str]:
    """A clean environment: PATH with this venv first, nothing of the caller's MLflow or Azure setup."""
    keep = ("LANG", "LC_ALL", "SYSTEMROOT")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    return env


# --- PostgreSQL ---------------------------------------------------------------------------


def postgres_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if not candidates:
        raise FileNotFoundError("PostgreSQL server binaries not found (Debian package `postgresql`)")
    return candidates[0].parent


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str

    def server(self) -> DatabaseServer:
        return DatabaseServer(host=self.host, port=self.port, user=self.user, sslmode="disable")


def _as_postgres_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


@contextlib.contextmanager
def postgres(
    workdir: Path,
    databases: tuple[str, ...] = (TRACKING_DATABASE, REGISTRY_DATABASE, AUTH_DATABASE),
    durable: bool = False,
    options: str = "",
) -> Iterator[Postgres]:
    """A throwaway cluster with password authentication and the MLflow databases.

    `durable=False` (tests) skips fsync; the benchmark asks for `durable=True`, so PostgreSQL
    commits as safely as the SQLite default it is compared with. `options` are more server
    settings (`-c archive_mode=on ...`, the restore drill).
    """
    import psycopg2  # type: ignore[import-untyped]  # noqa: PLC0415 - imported when a database is wanted

    root = workdir / "postgres"
    root.mkdir(parents=True)
    user, password = "mlflowadmin", "local-test-password"
    (root / "pwfile").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(root / "pwfile", "postgres", "postgres")
        workdir.chmod(0o755)
    data, log = root / "data", root / "postgres.log"
    binaries = postgres_bin()
    subprocess.run(
        _as_postgres_user(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                user,
                f"--pwfile={root / 'pwfile'}",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-instructions",
            ]
        ),
        check=True,
        capture_output=True,
    )
    port = free_port()
    extra = options
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=400 -c shared_buffers=256MB"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    options += f" {extra}" if extra else ""
    subprocess.run(
        _as_postgres_user(
            [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        connection = psycopg2.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            for database in databases:
                cursor.execute(f'CREATE DATABASE "{database}"')
        connection.close()
        yield Postgres("127.0.0.1", port, user, password)
    finally:
        subprocess.run(
            _as_postgres_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
        )


# --- Azurite ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Azurite:
    port: int
    account: str = AZURITE_ACCOUNT
    key: str = AZURITE_KEY

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        """What the Azure SDK (and so MLflow's `wasbs://` repository) reads from AZURE_STORAGE_CONNECTION_STRING."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )


def azurite_bin() -> Path:
    path = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: run `scripts/setup.sh all` (npm ci)")
    return path


@contextlib.contextmanager
def azurite(workdir: Path, containers: tuple[str, ...] = ()) -> Iterator[Azurite]:
    from azure.storage.blob import BlobServiceClient  # noqa: PLC0415

    root = workdir / "azurite"
    root.mkdir(parents=True)
    port = free_port()
    args = [str(azurite_bin()), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(root)]
    args += ["--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry"]
    process = _start(args, base_env(), root / "azurite.log")
    try:
        service = Azurite(port)
        wait_until(lambda: _port_open(port), "Azurite", 60, process)
        client = BlobServiceClient.from_connection_string(service.connection_string)
        for container in containers:
            client.create_container(container)
        yield service
    finally:
        _stop(process)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- MLflow -------------------------------------------------------------------------------


def mounted_secrets(directory: Path, secrets: Mapping[str, str]) -> Path:
    """Secrets as the Key Vault CSI driver presents them: one world-readable file per secret name,
    no trailing newline (libpq would ignore such a file as a password file: hence the launcher)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in secrets.items():
        path = directory / name
        path.write_text(value)
        path.chmod(0o644)
    return directory


def run_migrations(database: DatabaseServer, password: str, log: Path) -> None:
    """The migration Job's commands (as its init containers and container run them), each under the
    launcher with the password from a mounted file and its own password file."""
    secrets = mounted_secrets(log.parent / f"{log.stem}-secrets", {POSTGRES_ADMIN_PASSWORD: password})
    running = []
    # The databases are independent: run the three upgrades side by side (the Job runs them one
    # after the other; their order does not matter).
    for index in range(3):
        passfile = str(log.parent / f"{log.stem}-pgpass-{index}")
        command = migration_commands(database, str(secrets), passfile)[index]
        running.append(_start(command, {**base_env(), **migration_env(passfile)}, log))
    try:
        codes = [process.wait(600) for process in running]
    finally:
        _stop_all(running)
        for process in running:
            _end_group(process)
    if any(codes):
        raise RuntimeError(f"migrations failed with {codes}; see {log}")


@dataclass
class RunningServer:
    role: str
    command: ServerCommand
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def mlflow_roles(
    settings: ServerSettings, secrets: Mapping[str, str], workdir: Path, roles: tuple[Role, ...] = ROLES
) -> Iterator[dict[str, RunningServer]]:
    """Every role as `server_command` builds it; `secrets` maps a secret key to its value, laid out
    in `settings.secrets_dir` as the CSI driver mounts them (no secret in any environment)."""
    (workdir / "mlflow").mkdir(parents=True, exist_ok=True)
    mounted_secrets(Path(settings.secrets_dir), secrets)
    config = Path(settings.auth_config_path)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(auth_config(settings))
    servers: dict[str, RunningServer] = {}
    try:
        for role in roles:
            port = free_port()
            metrics = workdir / "mlflow" / f"{role}-metrics"
            role_settings = replace(
                settings,
                host="127.0.0.1",
                port=port,
                metrics_dir=str(metrics),
                passfile=str(workdir / "mlflow" / f"{role}-pgpass"),
            )
            command = server_command(role, role_settings)
            env = {**base_env(), **command.env}
            log = workdir / "mlflow" / f"{role}.log"
            process = _start(command.args, env, log, cwd=workdir / "mlflow")
            servers[role] = RunningServer(role, command, port, process, log)
        for server in servers.values():
            wait_until(
                functools.partial(http_ok, f"{server.url}/health"),
                f"MLflow {server.role} (log {server.log})",
                180,
                server.process,
            )
        yield servers
    finally:
        _stop_all([server.process for server in servers.values()])


# --- nginx --------------------------------------------------------------------------------


def nginx_config(root: Path, port: int, upstreams: Mapping[str, str], workspaces: bool = False) -> str:
    blocks = "\n".join(
        f"upstream mlflow_{role} {{ server {address}; keepalive 64; }}" for role, address in upstreams.items()
    )
    routes = mlflow_routing.routes(workspaces)
    locations = mlflow_routing.nginx_locations({role: f"mlflow_{role}" for role in upstreams}, routes)
    return f"""
worker_processes 2;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {root}/client_body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  {blocks}
  server {{
    listen 127.0.0.1:{port};
    {locations}
  }}
}}
"""


@contextlib.contextmanager
def nginx(
    workdir: Path, upstreams: Mapping[str, str], port: int | None = None, workspaces: bool = False
) -> Iterator[str]:
    """nginx in the foreground routing by API path as the platform does (`workspaces`: with teams); yields its
    base URL."""
    root = workdir / "nginx"
    root.mkdir(parents=True)
    root.chmod(0o777)  # workers drop to `nobody` when the master runs as root
    port = port or free_port()
    config = root / "nginx.conf"
    config.write_text(nginx_config(root, port, upstreams, workspaces))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    subprocess.run([binary, "-t", "-p", str(root), "-c", str(config)], check=True, capture_output=True)
    process = _start([binary, "-p", str(root), "-c", str(config), "-g", "daemon off;"], base_env(), root / "nginx.log")
    try:
        wait_until(lambda: _port_open(port), "nginx", 30, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


@contextlib.contextmanager
def temporary_directory(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
