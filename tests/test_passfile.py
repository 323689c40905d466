"""The database password reaches libpq as a password file written from the mounted secret, for real.

Against the real PostgreSQL of the session (scram authentication), with the launcher of
`layout.mlflow_server` exactly as the pods run it: it writes `PGPASSFILE` from a CSI-style mounted
file and psycopg2 connects with no password anywhere else; a password rotated in PostgreSQL and
in the mounted file (what the CSI driver's rotation poll does) reaches new connections of the
running process through the refresh loop; libpq ignores a world-readable password file (which is
why the mounted file cannot be used as it is); the running MLflow servers have no database
password in their environment.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2  # type: ignore[import-untyped]
import pytest

from layout.cluster_layout import MLFLOW_ADMIN_PASSWORD, POSTGRES_ADMIN_PASSWORD
from layout.mlflow_server import launch
from tests.services import processes
from tests.services.stack import MlflowDeployment

CONNECT = (
    "import os, psycopg2; "
    "c = psycopg2.connect(host=os.environ['H'], port=os.environ['P'], user=os.environ['U'], dbname='mlflow'); "
    "print(c.get_dsn_parameters()['user'], os.environ.get('EXPORTED', '-'), oct(os.umask(0)))"
)
# Connects once, signals, waits for the test to rotate the password, then opens new connections
# until one succeeds (the refresh loop has rewritten the password file) or 20 s have passed.
FOLLOW_ROTATION = """
import os, sys, time, psycopg2
def connect():
    return psycopg2.connect(host=os.environ['H'], port=os.environ['P'], user=os.environ['U'], dbname='mlflow')
connect().close()
open(os.environ['READY'], 'w').close()
while not os.path.exists(os.environ['ROTATED']):
    time.sleep(0.05)
start, failures = time.monotonic(), 0
while time.monotonic() - start < 20:
    try:
        connect().close()
        print(f'reconnected after {time.monotonic() - start:.1f}s and {failures} refused attempts')
        sys.exit(0)
    except psycopg2.OperationalError:
        failures += 1
        time.sleep(0.2)
sys.exit(1)
"""
TRICKY_PASSWORD = "pa:ss\\word:with*colons"
ROLE = "passfile_probe"


def _admin(mlflow_stack: MlflowDeployment) -> psycopg2.extensions.connection:
    pg = mlflow_stack.postgres
    connection = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="mlflow")
    connection.autocommit = True
    return connection


@pytest.fixture
def probe_role(mlflow_stack: MlflowDeployment) -> Iterator[str]:
    """A login of its own (the servers' login is left alone), with a password that needs the
    password file's escaping (`:` and `\\`)."""
    connection = _admin(mlflow_stack)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {ROLE}")
        cursor.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD %s", (TRICKY_PASSWORD,))
    try:
        yield ROLE
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP ROLE IF EXISTS {ROLE}")
        connection.close()


def _env(mlflow_stack: MlflowDeployment, user: str, passfile: Path, **extra: str) -> dict[str, str]:
    pg = mlflow_stack.postgres
    env = {**processes.base_env(), "H": pg.host, "P": str(pg.port), "U": user, "PGPASSFILE": str(passfile), **extra}
    assert "PGPASSWORD" not in env
    return env


def _run(command: tuple[str, ...], env: dict[str, str], workdir: Path) -> tuple[int, str]:
    log = workdir / "run.log"
    code = processes.run_to_completion(command, env, log, timeout=60)
    return code, log.read_text()


def test_the_launcher_writes_a_private_password_file_libpq_uses(
    mlflow_stack: MlflowDeployment, probe_role: str, tmp_path: Path
) -> None:
    secrets = processes.mounted_secrets(
        tmp_path / "secrets-store", {POSTGRES_ADMIN_PASSWORD: TRICKY_PASSWORD, MLFLOW_ADMIN_PASSWORD: "admin-pw"}
    )
    passfile = tmp_path / "pgpass"
    command = launch([sys.executable, "-c", CONNECT], str(secrets), str(passfile), {"EXPORTED": MLFLOW_ADMIN_PASSWORD})
    code, output = _run(command, _env(mlflow_stack, probe_role, passfile), tmp_path)
    assert code == 0, output
    # Connected as the role with the password from the file; the export reached the process only,
    # and with the umask it was started with (the launcher's 077 is for the password file).
    ours = os.umask(0o077)
    os.umask(ours)  # the child inherited ours
    assert ours != 0o077 and output.split() == [probe_role, "admin-pw", oct(ours)]
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert passfile.read_text() == "*:*:*:*:pa\\:ss\\\\word\\:with*colons\n"


def test_a_wrong_mounted_password_fails_the_connection(
    mlflow_stack: MlflowDeployment, probe_role: str, tmp_path: Path
) -> None:
    secrets = processes.mounted_secrets(tmp_path / "secrets-store", {POSTGRES_ADMIN_PASSWORD: "not-the-password"})
    passfile = tmp_path / "pgpass"
    command = launch([sys.executable, "-c", CONNECT], str(secrets), str(passfile), {})
    code, output = _run(command, _env(mlflow_stack, probe_role, passfile), tmp_path)
    assert code != 0
    assert "password authentication failed" in output


@pytest.mark.parametrize("mounted", [{}, {POSTGRES_ADMIN_PASSWORD: ""}], ids=["missing", "empty"])
def test_the_launcher_refuses_to_start_without_a_mounted_password(
    mlflow_stack: MlflowDeployment, probe_role: str, tmp_path: Path, mounted: dict[str, str]
) -> None:
    secrets = processes.mounted_secrets(tmp_path / "secrets-store", mounted)
    passfile = tmp_path / "pgpass"
    command = launch([sys.executable, "-c", CONNECT], str(secrets), str(passfile), {})
    code, output = _run(command, _env(mlflow_stack, probe_role, passfile), tmp_path)
    assert code == 1 and "mlflow-launcher: cannot write the password file" in output, output
    assert not passfile.exists()


def test_a_rotated_password_reaches_new_connections_of_a_running_process(
    mlflow_stack: MlflowDeployment, probe_role: str, tmp_path: Path
) -> None:
    secrets = processes.mounted_secrets(tmp_path / "secrets-store", {POSTGRES_ADMIN_PASSWORD: TRICKY_PASSWORD})
    passfile, ready, rotated = tmp_path / "pgpass", tmp_path / "ready", tmp_path / "rotated"
    # The deployed interval is 60 s (tests/test_mlflow_stack.py); 1 s here, same script.
    command = launch([sys.executable, "-c", FOLLOW_ROTATION], str(secrets), str(passfile), {}, refresh_seconds=1)
    env = _env(mlflow_stack, probe_role, passfile, READY=str(ready), ROTATED=str(rotated))
    log = tmp_path / "follow.log"
    process = processes._start(command, env, log)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        # The rotation: PostgreSQL gets the new password, then the CSI driver swaps the mounted
        # file (write beside it, rename: its atomic writer).
        new_password = "rotated:pass\\word-2"
        with _admin(mlflow_stack).cursor() as cursor:
            cursor.execute(f"ALTER ROLE {probe_role} PASSWORD %s", (new_password,))
        staged = secrets / f".{POSTGRES_ADMIN_PASSWORD}.new"
        staged.write_text(new_password)
        staged.chmod(0o644)
        staged.replace(secrets / POSTGRES_ADMIN_PASSWORD)
        rotated.touch()
        assert process.wait(40) == 0, log.read_text()
    finally:
        processes._stop(process)
        processes._end_group(process)
    assert "reconnected after" in log.read_text()
    print(log.read_text().strip())  # the figure, with -s
    assert passfile.read_text() == "*:*:*:*:rotated\\:pass\\\\word-2\n"
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600


def test_libpq_ignores_a_world_readable_password_file(
    mlflow_stack: MlflowDeployment, probe_role: str, tmp_path: Path
) -> None:
    # What the CSI driver mounts: world-readable. Correct content, but libpq refuses to read it.
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:*:pa\\:ss\\\\word\\:with*colons\n")
    passfile.chmod(0o644)
    code, output = _run((sys.executable, "-c", CONNECT), _env(mlflow_stack, probe_role, passfile), tmp_path)
    assert code != 0
    assert "group or world access" in output
    passfile.chmod(0o600)
    code, output = _run((sys.executable, "-c", CONNECT), _env(mlflow_stack, probe_role, passfile), tmp_path)
    assert code == 0, output


def test_running_servers_hold_no_database_password_in_their_environment(mlflow_stack: MlflowDeployment) -> None:
    for role, server in mlflow_stack.servers.items():
        # The launcher `exec`s the server: the process started is the MLflow server itself.
        cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0] != b"/bin/sh" and b"server" in cmdline, role
        environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
        variables = dict(entry.decode().split("=", 1) for entry in environ if b"=" in entry)
        assert "PGPASSWORD" not in variables, role
        assert mlflow_stack.postgres.password not in variables.values(), role
        passfile = Path(variables["PGPASSFILE"])
        assert passfile == Path(server.command.env["PGPASSFILE"]), role
        assert stat.S_IMODE(os.stat(passfile).st_mode) == 0o600, role
        # The exports the launcher made, and only those, reached the server process.
        assert set(server.command.secret_files) <= set(variables), role
