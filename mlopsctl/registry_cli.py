"""`mlopsctl registry verify`: does the registry agree with its artifact store? For use after a restore.

Reads the registry and tracking store through MLflow's REST API and the artifact store through the
artifacts role (`/api/2.0/mlflow-artifacts/artifacts`, which lists the blob container with the
role's workload identity), so it needs no storage credentials of its own, only an MLflow login
(`MLFLOW_TRACKING_USERNAME`, and `MLFLOW_TRACKING_PASSWORD_FILE` or `MLFLOW_TRACKING_PASSWORD`).
The comparison is `rollout.registry_consistency`.

Exit codes: 0 consistent; 1 inconsistencies found (missing artifacts, dangling aliases, orphans);
2 bad input or an unreachable registry (one line on stderr).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from rollout.registry_consistency import (
    MODEL_FILE,
    Report,
    VersionLocation,
    compare,
    relative_artifact_path,
    render_text,
    store_folders,
)
from rollout.registry_reader import (
    NotFoundError,
    ReaderOptions,
    RegistryClient,
    RegistryError,
    filter_literal,
    known_ids,
)
from rollout.source import tracking_password

EXIT_CONSISTENT, EXIT_INCONSISTENT, EXIT_USAGE = 0, 1, 2
PAGE_SIZE = 1000


class UsageError(Exception):
    """Bad input or an unreachable service: one line, exit code 2."""


class ArtifactLister:
    """Lists folders of the artifact store through the MLflow artifacts API (relative paths)."""

    def __init__(self, tracking_uri: str, username: str | None, password: str | None, timeout: float) -> None:
        self.url = tracking_uri.rstrip("/") + "/api/2.0/mlflow-artifacts/artifacts"
        self.headers = {"Accept": "application/json"}
        if username is not None and password is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.timeout = timeout

    def entries(self, path: str) -> list[dict[str, Any]]:
        query = "?" + urllib.parse.urlencode({"path": path}) if path else ""
        request = urllib.request.Request(self.url + query, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                document: dict[str, Any] = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise RegistryError(f"{self.url} answered HTTP {error.code} listing {path or '/'}") from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise RegistryError(f"{self.url} did not answer ({getattr(error, 'reason', error)})") from error
        return list(document.get("files") or [])

    def directories(self, path: str) -> list[str]:
        return [str(e["path"]) for e in self.entries(path) if e.get("is_dir")]

    def has_model(self, path: str) -> bool:
        return any(str(e["path"]) == MODEL_FILE and not e.get("is_dir") for e in self.entries(path))


def _pages(client: RegistryClient, endpoint: str, key: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        page = {**params, "max_results": str(PAGE_SIZE), **({"page_token": token} if token else {})}
        document = client.get(endpoint, **page)
        items.extend(document.get(key) or [])
        token = document.get("next_page_token") or ""
        if not token:
            return items


def _locate(client: RegistryClient, model: str, record: Mapping[str, Any], destination: str) -> VersionLocation:
    """Where a version's files are: a `runs:/<run>/<path>` source is the run's artifact root + path
    (the registry answers such a source as written), any other source what `get-download-uri` says
    (`models:/m-<id>`: the logged model's artifact location)."""
    version, source = str(record["version"]), str(record.get("source", ""))
    try:
        if source.startswith("runs:/"):
            run_id, _, inner = source.removeprefix("runs:/").strip("/").partition("/")
            root = str(client.get("runs/get", run_id=run_id)["run"]["info"]["artifact_uri"]).rstrip("/")
            uri = root + ("/" + inner if inner else "")
        else:
            uri = str(client.get("model-versions/get-download-uri", name=model, version=version)["artifact_uri"])
    except NotFoundError:
        return VersionLocation(model, version, source, None, "its source is unknown to the tracking store")
    path = relative_artifact_path(uri, destination)
    if path is None:
        return VersionLocation(model, version, source, None, f"{uri} is outside the artifact store")
    return VersionLocation(model, version, source, path)


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (0, value)


def _experiment_ids(client: RegistryClient) -> list[str]:
    ids: list[str] = []
    token = ""
    while True:
        body: dict[str, Any] = {
            "max_results": PAGE_SIZE,
            "view_type": "ALL",
            **({"page_token": token} if token else {}),
        }
        document = client.post("experiments/search", body)
        ids += [str(e["experiment_id"]) for e in document.get("experiments") or []]
        token = document.get("next_page_token") or ""
        if not token:
            return ids


def verify(client: RegistryClient, lister: ArtifactLister, destination: str) -> Report:
    """Read both sides and compare them (`rollout.registry_consistency.Report`)."""
    aliases: dict[str, dict[str, str]] = {}
    locations: list[VersionLocation] = []
    for registered in _pages(client, "registered-models/search", "registered_models"):
        name = str(registered["name"])
        aliases[name] = {str(a["alias"]): str(a["version"]) for a in registered.get("aliases") or []}
        query = f"name={filter_literal(name)}"
        for record in _pages(client, "model-versions/search", "model_versions", filter=query):
            locations.append(_locate(client, name, record, destination))
    present = {loc.path for loc in locations if loc.path is not None and lister.has_model(loc.path)}
    listing: dict[str, list[str]] = {}
    # The store's top level is listed too, but MLflow 3.17.2 lists nothing at the root of a
    # container-root destination (`wasbs://<container>@<account>.../`: it asks for the prefix "/"),
    # so the experiments come from the tracking store as well.
    for experiment in sorted(set(lister.directories("")) | set(_experiment_ids(client)), key=_numeric):
        listing[experiment] = lister.directories(experiment)
        if "models" in listing[experiment]:
            listing[f"{experiment}/models"] = lister.directories(f"{experiment}/models")
    folders = store_folders(listing)
    runs, logged = known_ids(
        client,
        {f.id for f in folders if f.kind == "run"},
        {f.id for f in folders if f.kind == "logged-model"},
    )
    return compare(locations, aliases, present, folders, known_runs=runs, known_logged_models=logged)


def add_registry_parser(commands: Any) -> None:
    registry = commands.add_parser("registry", help="runtime checks of the MLflow registry (after a restore)")
    actions = registry.add_subparsers(dest="registry_command", required=True)
    check = actions.add_parser(
        "verify",
        help="compare the registry with its artifact store: every version's artifacts present, aliases "
        "pointing at existing versions, no orphaned folders (exit 0 consistent, 1 inconsistent, 2 bad input)",
    )
    check.add_argument("--tracking-uri", default=None, help="MLflow URL (default: MLFLOW_TRACKING_URI)")
    check.add_argument(
        "--artifacts-destination",
        default="",
        help="the physical artifacts root (`wasbs://<container>@<account>.blob.core.windows.net/`), so "
        "versions recorded with physical URIs under it are checked too",
    )
    check.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    check.add_argument("--json", action="store_true", help="machine-readable output")


def run_registry(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        uri = args.tracking_uri or environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise UsageError("no MLflow registry: pass --tracking-uri or set MLFLOW_TRACKING_URI")
        if not uri.startswith(("http://", "https://")):
            raise UsageError(f"--tracking-uri {uri!r} is not an http(s) URL")
        if args.timeout <= 0:
            raise UsageError(f"--timeout {args.timeout} is not a positive number of seconds")
        username = environ.get("MLFLOW_TRACKING_USERNAME")
        password = tracking_password(environ)
        options = ReaderOptions(timeout_seconds=args.timeout)
        client = RegistryClient(uri, username, password, options)
        lister = ArtifactLister(uri, username, password, args.timeout)
        report = verify(client, lister, args.artifacts_destination)
    except (UsageError, RegistryError) as error:
        print(f"mlopsctl registry verify: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(report.as_json(), indent=2) if args.json else render_text(report, uri))
    return EXIT_CONSISTENT if report.consistent else EXIT_INCONSISTENT
