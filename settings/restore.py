"""Restore settings: a stack created from another PostgreSQL server's backups, and blob restore.

Checked before any resource is declared, like every setting. The time of a point-in-time restore
is compared with "now" (injected: the program passes the clock, tests a fixed instant), so a time
outside the retention window is refused here rather than by Azure after the other resources of the
stack were created. The one thing the settings cannot know is the subscription the program runs
in: `source_problems` checks the source against it once the program has read it (still before any
resource), and refuses a source that is this stack's own server (a restore never touches its source).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from settings.problems import Problem

Values = dict[str, Any]
KeyOf = Callable[[str], str]

FLEXIBLE_SERVER_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"/resourceGroups/(?P<group>[-\w._()]{1,90})"
    r"/providers/Microsoft\.DBforPostgreSQL/flexibleServers/(?P<name>[a-z0-9][-a-z0-9]{1,61}[a-z0-9])$",
    re.IGNORECASE,
)
"""ARM id of a PostgreSQL Flexible Server (provider namespace and type are case-insensitive in ARM)."""

SOURCE_ID_SHAPE = (
    "an ARM id `/subscriptions/<subscription id>/resourceGroups/<group>/providers/"
    "Microsoft.DBforPostgreSQL/flexibleServers/<server name>`"
)
RESTORE_KEYS = (
    "postgres_restore_source_server_id",
    "postgres_restore_point_in_time",
    "mlflow_migrate_restored_database",
)


@dataclass(frozen=True)
class SourceServer:
    """The parts of a source server's ARM id."""

    subscription_id: str
    resource_group: str
    name: str


def parse_source_id(value: str) -> SourceServer | None:
    match = FLEXIBLE_SERVER_ID.fullmatch(value)
    if match is None:
        return None
    return SourceServer(match["subscription"], match["group"], match["name"])


def parse_utc(value: str) -> datetime | None:
    """An ISO-8601 time with an explicit UTC offset (`Z` or `+00:00`); None for anything else
    (a local time without offset would be read differently by people and by Azure)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|\+00:00)", value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def _time_problems(values: Values, key: KeyOf, now: datetime) -> list[Problem]:
    name = "postgres_restore_point_in_time"
    raw: str = values[name]
    if not raw:
        return [
            Problem(
                key(name),
                "nothing",
                f"the UTC time to restore to (required with {key('postgres_create_mode')} "
                f"{values['postgres_create_mode']})",
            )
        ]
    when = parse_utc(raw)
    if when is None:
        return [Problem(key(name), repr(raw), "an ISO-8601 UTC time such as `2025-06-01T14:05:00Z`")]
    days = values["postgres_backup_retention_days"]
    earliest = now - timedelta(days=days)
    if when > now:
        return [Problem(key(name), repr(raw), f"a time that has passed (now is {now:%Y-%m-%dT%H:%M:%SZ})")]
    if when < earliest:
        return [
            Problem(
                key(name),
                repr(raw),
                f"a time inside the {days}-day retention window ({key('postgres_backup_retention_days')}): "
                f"{earliest:%Y-%m-%dT%H:%M:%SZ} or later",
            )
        ]
    return []


def postgres_restore_problems(values: Values, key: KeyOf, now: datetime) -> list[Problem]:
    """A restore names a source server and a time inside the window; without one, no restore key is set."""
    mode = values["postgres_create_mode"]
    if mode == "Default":
        return [
            Problem(
                key(name),
                repr(values[name]),
                f"only with {key('postgres_create_mode')} PointInTimeRestore or GeoRestore",
            )
            for name in RESTORE_KEYS
            if values[name]
        ]
    problems = []
    source = values["postgres_restore_source_server_id"]
    if not source:
        problems.append(
            Problem(key("postgres_restore_source_server_id"), "nothing", f"{SOURCE_ID_SHAPE} (required with {mode})")
        )
    elif parse_source_id(source) is None:
        problems.append(Problem(key("postgres_restore_source_server_id"), repr(source), SOURCE_ID_SHAPE))
    problems += _time_problems(values, key, now)
    return problems


def blob_restore_problems(values: Values, key: KeyOf) -> list[Problem]:
    """Blob point-in-time restore needs soft delete that outlives its window, and previous versions
    kept at least as long (they are what a restore rolls back to)."""
    days = values["blob_restore_days"]
    if days == 0:
        return []
    problems = []
    if days >= values["blob_soft_delete_days"]:
        problems.append(
            Problem(
                key("blob_restore_days"),
                str(days),
                f"fewer days than {key('blob_soft_delete_days')} ({values['blob_soft_delete_days']}): Azure requires "
                "the restore window to end at least a day before soft-deleted data is purged",
            )
        )
    if days > values["blob_version_retention_days"]:
        problems.append(
            Problem(
                key("blob_restore_days"),
                str(days),
                f"at most {key('blob_version_retention_days')} ({values['blob_version_retention_days']}): the "
                "lifecycle policy would delete the previous versions a restore needs",
            )
        )
    return problems


def source_problems(source_id: str, subscription_id: str, own_server_name: str, key: str) -> list[Problem]:
    """The source lives in the subscription the program runs in, and is not this stack's own server."""
    source = parse_source_id(source_id)
    if source is None:
        return []  # reported by the settings check
    problems = []
    if source.subscription_id.lower() != subscription_id.lower():
        problems.append(
            Problem(
                key,
                repr(source_id),
                f"a server in this stack's subscription {subscription_id} (a restore reads "
                "backups of the same subscription)",
            )
        )
    if source.name.lower() == own_server_name.lower():
        problems.append(
            Problem(
                key,
                repr(source_id),
                f"another stack's server: {own_server_name} is the server this stack "
                "declares (a restore creates a new server and leaves its source alone; give the restore stack "
                "its own namePrefix or environment)",
            )
        )
    return problems


def utc_now() -> datetime:
    return datetime.now(UTC)


POSTGRES_RESTORE_NAMES = ("postgres_create_mode", "postgres_backup_retention_days", *RESTORE_KEYS)
BLOB_RESTORE_NAMES = ("blob_restore_days", "blob_soft_delete_days", "blob_version_retention_days")
