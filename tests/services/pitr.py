"""PostgreSQL point-in-time recovery on 127.0.0.1, the way the platform's managed server does it:
continuous WAL archiving, a base backup, and replay of the archived WAL up to a target time.

Used by the restore drill (tests/test_restore_drill.py). `pg_basebackup -Xs` takes the backup with
the WAL it needs; the restore is a copy of it with `recovery.signal`, `restore_command` reading the
archive and `recovery_target_time`, promoted once the target is reached. Server processes run as
the `postgres` user when we are root (PostgreSQL refuses root), like tests/services/processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.services.processes import Postgres, _as_postgres_user, free_port, postgres_bin


def archiving_options(archive: Path) -> str:
    """Server settings of the primary: every completed WAL segment copied to `archive`."""
    return f"-c wal_level=replica -c archive_mode=on -c 'archive_command=cp %p {archive}/%f' -c archive_timeout=60"


def archive_directory(root: Path) -> Path:
    archive = root / "wal-archive"
    archive.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(archive, "postgres", "postgres")
    return archive


def _owned_by_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres:postgres", str(path)], check=True)


def base_backup(database: Postgres, target: Path) -> float:
    """`pg_basebackup -Xs` of `database` into `target` (streamed WAL included); its duration in seconds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _owned_by_postgres(target.parent)
    started = time.monotonic()
    subprocess.run(
        _as_postgres_user(
            [
                str(postgres_bin() / "pg_basebackup"),
                "-h",
                database.host,
                "-p",
                str(database.port),
                "-U",
                database.user,
                "-D",
                str(target),
                "-Xs",
                "-c",
                "fast",
            ]
        ),
        check=True,
        capture_output=True,
        env={**os.environ, "PGPASSWORD": database.password},
    )
    return time.monotonic() - started


def switch_wal(database: Postgres) -> str:
    """Close the current WAL segment so the archiver copies it (the changes after the target time)."""
    import psycopg2  # type: ignore[import-untyped]  # noqa: PLC0415

    connection = psycopg2.connect(
        host=database.host, port=database.port, user=database.user, password=database.password, dbname="postgres"
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_walfile_name(pg_switch_wal())")
        (segment,) = cursor.fetchone()
    connection.close()
    return segment  # type: ignore[no-any-return]


def wait_archived(archive: Path, segment: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (archive / segment).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"WAL segment {segment} not archived into {archive}")
        time.sleep(0.2)


@dataclass(frozen=True)
class Restored:
    database: Postgres
    replay_seconds: float
    log: Path


@contextlib.contextmanager
def restored_cluster(backup: Path, archive: Path, target_time: str, root: Path, source: Postgres) -> Iterator[Restored]:
    """A copy of `backup` replayed from `archive` up to `target_time`, promoted, on a new port."""
    import psycopg2  # noqa: PLC0415

    root.mkdir(parents=True)
    data, log = root / "data", root / "postgres.log"
    shutil.copytree(backup, data)
    (data / "recovery.signal").write_text("")
    with (data / "postgresql.auto.conf").open("a") as conf:
        conf.write(f"restore_command = 'cp {archive}/%f %p'\n")
        conf.write(f"recovery_target_time = '{target_time}'\n")
        conf.write("recovery_target_action = 'promote'\n")
    _owned_by_postgres(root)
    data.chmod(0o700)
    port = free_port()
    binaries = postgres_bin()
    # At least what the primary ran with (recovery refuses a lower max_connections), as processes.postgres.
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=400 -c shared_buffers=256MB -c fsync=off"
    )
    started = time.monotonic()
    start = subprocess.run(
        _as_postgres_user(
            [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "120", "start"]
        ),
        check=False,
        capture_output=True,
    )
    if start.returncode:
        tail = log.read_text()[-3000:] if log.exists() else start.stderr.decode()
        raise RuntimeError(f"the restored cluster did not start:\n{tail}")
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                connection = psycopg2.connect(
                    host="127.0.0.1", port=port, user=source.user, password=source.password, dbname="postgres"
                )
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_is_in_recovery()")
                    (in_recovery,) = cursor.fetchone()
                connection.close()
                if not in_recovery:
                    break
            except psycopg2.OperationalError:
                pass  # still starting up
            if time.monotonic() > deadline:
                raise TimeoutError(f"recovery did not finish; see {log}")
            time.sleep(0.1)
        replay = time.monotonic() - started
        yield Restored(Postgres("127.0.0.1", port, source.user, source.password), replay, log)
    finally:
        subprocess.run(
            _as_postgres_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
