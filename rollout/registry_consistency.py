"""Is a registry consistent with its artifact store? The comparison, without any I/O.

After a restore the database and the blob container come back separately (PostgreSQL to a point
in time, blobs by their own restore or copy), so they can disagree three ways:

- a model version whose artifacts are missing (the registry is newer than the blobs, or the blobs
  were deleted): serving it would fail at download;
- an alias naming a version that does not exist;
- an orphan: an artifact folder of a logged model or run that the tracking store does not know
  (the blobs are newer than the database: written after the restore point).

`mlopsctl registry verify` (mlopsctl/registry_cli.py) reads both sides and hands them here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MLFLOW_ARTIFACTS_SCHEME = "mlflow-artifacts:"
MODEL_FILE = "MLmodel"
LOGGED_MODELS_FOLDER = "models"
"""`<experiment>/models/<model id>/artifacts`: where the artifacts role keeps a logged model's files;
a run's are under `<experiment>/<run id>/artifacts`."""


@dataclass(frozen=True)
class VersionLocation:
    """One model version and where its artifacts are (destination-relative), or why that is unknown."""

    model: str
    version: str
    source: str
    path: str | None
    """`1/models/m-<id>/artifacts` (relative to the artifacts destination); None: not resolvable."""
    problem: str = ""
    """Why `path` is None (the source's run or logged model is unknown, a URI outside the store)."""


@dataclass(frozen=True)
class ArtifactFolder:
    """A logged model's or a run's folder in the store, and the id the tracking store knows it by."""

    path: str
    kind: str
    """`logged-model` or `run`."""
    id: str


@dataclass(frozen=True)
class Missing:
    model: str
    version: str
    source: str
    path: str | None
    reason: str


@dataclass(frozen=True)
class DanglingAlias:
    model: str
    alias: str
    version: str


@dataclass(frozen=True)
class Report:
    versions: int
    aliases: int
    folders: int
    missing: list[Missing] = field(default_factory=list)
    dangling_aliases: list[DanglingAlias] = field(default_factory=list)
    orphans: list[ArtifactFolder] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not (self.missing or self.dangling_aliases or self.orphans)

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["consistent"] = self.consistent
        return document


def relative_artifact_path(uri: str, destination: str) -> str | None:
    """`mlflow-artifacts:/1/models/m-1/artifacts` (or the same under the physical `destination`)
    → `1/models/m-1/artifacts`; None for a location outside the platform's artifact store."""
    if uri.startswith(MLFLOW_ARTIFACTS_SCHEME):
        rest = uri[len(MLFLOW_ARTIFACTS_SCHEME) :]
        if rest.startswith("//"):  # `mlflow-artifacts://host:port/path`: the path after the authority
            rest = rest[2:].partition("/")[2]
        return rest.strip("/")
    root = destination.rstrip("/") + "/"
    if destination and uri.startswith(root):
        return uri[len(root) :].strip("/")
    return None


def store_folders(listing: Mapping[str, Iterable[str]]) -> list[ArtifactFolder]:
    """Folders of the store from a listing `experiment → its entries` and `experiment/models → model ids`.

    `listing["1"]` holds the run ids (and `models`) of experiment 1; `listing["1/models"]` the
    logged-model ids."""
    folders = []
    for directory, entries in listing.items():
        experiment, _, sub = directory.partition("/")
        for entry in entries:
            if sub == LOGGED_MODELS_FOLDER:
                folders.append(ArtifactFolder(f"{experiment}/{LOGGED_MODELS_FOLDER}/{entry}", "logged-model", entry))
            elif not sub and entry != LOGGED_MODELS_FOLDER:
                folders.append(ArtifactFolder(f"{experiment}/{entry}", "run", entry))
    return sorted(folders, key=lambda f: f.path)


def compare(
    versions: Iterable[VersionLocation],
    aliases: Mapping[str, Mapping[str, str]],
    present: set[str],
    folders: Iterable[ArtifactFolder],
    *,
    known_runs: set[str],
    known_logged_models: set[str],
) -> Report:
    """The inconsistencies between a registry and its store.

    `present`: the version paths that hold an `MLmodel`; `known_*`: the ids the tracking store has."""
    versions = list(versions)
    folders = list(folders)
    missing = []
    for location in versions:
        if location.path is None:
            missing.append(Missing(location.model, location.version, location.source, None, location.problem))
        elif location.path not in present:
            missing.append(
                Missing(location.model, location.version, location.source, location.path, f"no {MODEL_FILE} there")
            )
    existing = {(v.model, v.version) for v in versions}
    dangling = [
        DanglingAlias(model, alias, version)
        for model, by_alias in sorted(aliases.items())
        for alias, version in sorted(by_alias.items())
        if (model, version) not in existing
    ]
    orphans = [
        folder
        for folder in folders
        if folder.id not in (known_logged_models if folder.kind == "logged-model" else known_runs)
    ]
    return Report(
        versions=len(versions),
        aliases=sum(len(a) for a in aliases.values()),
        folders=len(folders),
        missing=sorted(missing, key=lambda m: (m.model, int(m.version) if m.version.isdigit() else 0)),
        dangling_aliases=dangling,
        orphans=orphans,
    )


def render_text(report: Report, registry: str) -> str:
    """Human-readable: one line per problem, then a one-line verdict."""
    lines = [
        f"registry {registry}: {report.versions} model versions, {report.aliases} aliases; "
        f"artifact store: {report.folders} model and run folders"
    ]
    for m in report.missing:
        lines.append(f"MISSING  {m.model} version {m.version}: {m.reason} ({m.path or m.source})")
    for a in report.dangling_aliases:
        lines.append(f"DANGLING {a.model}@{a.alias} -> version {a.version}, which does not exist")
    for o in report.orphans:
        lines.append(f"ORPHAN   {o.path}: {o.kind} {o.id} unknown to the tracking store")
    if report.consistent:
        lines.append("consistent")
    else:
        lines.append(
            f"inconsistent: {len(report.missing)} missing, {len(report.dangling_aliases)} dangling aliases, "
            f"{len(report.orphans)} orphans"
        )
    return "\n".join(lines)
