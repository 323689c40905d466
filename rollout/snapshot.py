"""A snapshot of the MLflow Model Registry: exactly what a rollout plan is computed from.

Snapshots are plain data. The registry reader produces them; they serialise to JSON so the
offline preview (`--registry-snapshot FILE`) and CI can plan without an MLflow server, and so a
plan can always be explained by the snapshot it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SNAPSHOT_FORMAT = "mlops-registry-snapshot/v1"


class SnapshotError(ValueError):
    """A snapshot file or document is malformed."""


@dataclass(frozen=True)
class VersionInfo:
    """One model version, with what serving and lineage need."""

    version: str
    run_id: str | None
    source: str
    download_uri: str
    """`mlflow-artifacts:/<path>` (or another artifact URI) of the version's files."""
    status: str = "READY"
    tags: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    """The source run's `mlflow.source.git.commit` tag, if the run recorded one."""


@dataclass(frozen=True)
class ModelState:
    """A registered model's aliases and the versions they point at (and only those)."""

    name: str
    aliases: dict[str, str]
    versions: dict[str, VersionInfo]

    def aliased(self, alias: str) -> VersionInfo | None:
        """The version `alias` points at; None if the alias is not set.

        Raises SnapshotError if the alias names a version the snapshot does not hold.
        """
        number = self.aliases.get(alias)
        if number is None:
            return None
        if number not in self.versions:
            raise SnapshotError(
                f"model {self.name!r}: alias {alias!r} points to version {number}, which does not exist"
            )
        return self.versions[number]


@dataclass(frozen=True)
class RegistrySnapshot:
    tracking_uri: str
    taken_at: str
    models: dict[str, ModelState]

    def to_json(self) -> str:
        document = {
            "format": SNAPSHOT_FORMAT,
            "trackingUri": self.tracking_uri,
            "takenAt": self.taken_at,
            "models": {
                name: {
                    "aliases": dict(sorted(state.aliases.items())),
                    "versions": {number: _version_document(info) for number, info in sorted(state.versions.items())},
                }
                for name, state in sorted(self.models.items())
            },
        }
        return json.dumps(document, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RegistrySnapshot:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise SnapshotError(f"not JSON: {error}") from error
        if not isinstance(document, dict) or document.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(f'not a registry snapshot (expected "format": "{SNAPSHOT_FORMAT}")')
        try:
            models = {
                name: ModelState(
                    name=name,
                    aliases={str(a): str(v) for a, v in model["aliases"].items()},
                    versions={str(n): _version_from(v) for n, v in model["versions"].items()},
                )
                for name, model in document["models"].items()
            }
            return cls(tracking_uri=str(document["trackingUri"]), taken_at=str(document["takenAt"]), models=models)
        except (KeyError, TypeError, AttributeError) as error:
            raise SnapshotError(f"malformed snapshot: missing or wrong field {error}") from error

    @classmethod
    def load(cls, path: Path) -> RegistrySnapshot:
        try:
            return cls.from_json(path.read_text())
        except OSError as error:
            raise SnapshotError(f"cannot read registry snapshot {path}: {error.strerror}") from error
        except SnapshotError as error:
            raise SnapshotError(f"registry snapshot {path}: {error}") from error


def _version_document(info: VersionInfo) -> dict[str, Any]:
    return {
        "version": info.version,
        "runId": info.run_id,
        "source": info.source,
        "downloadUri": info.download_uri,
        "status": info.status,
        "tags": dict(sorted(info.tags.items())),
        "gitCommit": info.git_commit,
    }


def _version_from(document: dict[str, Any]) -> VersionInfo:
    return VersionInfo(
        version=str(document["version"]),
        run_id=document.get("runId"),
        source=str(document["source"]),
        download_uri=str(document["downloadUri"]),
        status=str(document.get("status", "READY")),
        tags={str(k): str(v) for k, v in (document.get("tags") or {}).items()},
        git_commit=document.get("gitCommit"),
    )
