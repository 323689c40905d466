"""Read one consistent snapshot of the configured models from the MLflow registry REST API.

Per model a bounded number of calls, never a listing of all versions: the registered model
(with its aliases), then for each aliased version its record, its download URI and its source
run (for the git commit): 1 + 2 * 3 = 7 requests, plus one per version registered from a logged
model (`models:/m-...`, whose artifact location is one more lookup). Models are read concurrently with a
bounded pool; every request has a timeout and transient failures (connection errors, 429,
5xx) are retried with backoff. A model whose alias moves while it is read is read again, so each
model's aliases and versions agree.

Any failure raises `RegistryError` naming the registry and the models: the program then fails
before declaring a single rollout, and no SeldonDeployment is deleted by accident.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rollout.snapshot import ModelState, RegistrySnapshot, VersionInfo

GIT_COMMIT_TAG = "mlflow.source.git.commit"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class RegistryError(RuntimeError):
    """The registry could not be read consistently."""


class NotFoundError(Exception):
    """The registry has no such model, version, run or alias."""


@dataclass(frozen=True)
class ReaderOptions:
    timeout_seconds: float = 10.0
    attempts: int = 3
    backoff_seconds: float = 0.2
    max_workers: int = 8
    consistency_attempts: int = 3


class RegistryClient:
    """A small MLflow REST client: basic auth, timeouts, retries, and a request counter."""

    def __init__(self, tracking_uri: str, username: str | None, password: str | None, options: ReaderOptions) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        self.options = options
        self._headers = {"Accept": "application/json"}
        if username is not None and password is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._lock = threading.Lock()
        self.requests = 0

    def get(self, endpoint: str, **params: str) -> dict[str, Any]:
        return self.call("GET", endpoint, params)

    def post(self, endpoint: str, body: dict[str, str]) -> dict[str, Any]:
        return self.call("POST", endpoint, body)

    def delete(self, endpoint: str, body: dict[str, str]) -> dict[str, Any]:
        return self.call("DELETE", endpoint, body)

    def call(self, method: str, endpoint: str, arguments: dict[str, str]) -> dict[str, Any]:
        """One REST call; GET arguments go in the query string, others in a JSON body."""
        url = f"{self.tracking_uri}/api/2.0/mlflow/{endpoint}"
        data = None
        headers = dict(self._headers)
        if method == "GET":
            url += "?" + urllib.parse.urlencode(arguments)
        else:
            data = json.dumps(arguments).encode()
            headers["Content-Type"] = "application/json"
        last_error = ""
        for attempt in range(self.options.attempts):
            if attempt:
                time.sleep(self.options.backoff_seconds * 2 ** (attempt - 1))
            with self._lock:
                self.requests += 1
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.options.timeout_seconds) as response:
                    document: dict[str, Any] = json.loads(response.read() or b"{}")
                    return document
            except urllib.error.HTTPError as error:
                body = error.read().decode(errors="replace")
                if error.code == 404 and "RESOURCE_DOES_NOT_EXIST" in body:
                    raise NotFoundError(body) from error
                if error.code in (401, 403):
                    raise RegistryError(f"{self.tracking_uri} refused the credentials (HTTP {error.code})") from error
                last_error = f"HTTP {error.code} from {endpoint}: {body[:200]}"
                if error.code not in RETRYABLE_STATUS:
                    break
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                reason = getattr(error, "reason", error)
                last_error = f"{endpoint}: {reason}"
        raise RegistryError(f"{self.tracking_uri} did not answer ({last_error})")


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or []}


def _resolve_download_uri(client: RegistryClient, uri: str, run: dict[str, Any] | None) -> str:
    """Registry-relative download URIs → the artifact store location they stand for.

    MLflow hands back a version's source unresolved when it was registered from `runs:/<run>/<path>`
    (resolved through the run's artifact URI) or from a logged model `models:/m-<id>` (through
    the logged model's artifact location).
    """
    if uri.startswith("runs:/"):
        run_id, _, path = uri.removeprefix("runs:/").strip("/").partition("/")
        if run is None or run.get("info", {}).get("run_id") != run_id:
            run = client.get("runs/get", run_id=run_id)["run"]
        return str(run["info"]["artifact_uri"]).rstrip("/") + ("/" + path if path else "")
    if uri.startswith("models:/m-"):
        model_id = uri.removeprefix("models:/").strip("/")
        logged = client.get(f"logged-models/{urllib.parse.quote(model_id)}")["model"]
        return str(logged["info"]["artifact_uri"])
    return uri


def _read_version(client: RegistryClient, model: str, number: str) -> tuple[VersionInfo, set[str]]:
    record = client.get("model-versions/get", name=model, version=number)["model_version"]
    download = client.get("model-versions/get-download-uri", name=model, version=number)["artifact_uri"]
    run_id = record.get("run_id") or None
    git_commit = None
    run: dict[str, Any] | None = None
    if run_id:
        try:
            run = client.get("runs/get", run_id=run_id)["run"]
            git_commit = _tags(run.get("data", {}).get("tags")).get(GIT_COMMIT_TAG)
        except NotFoundError:
            git_commit = None  # the run was deleted; the version still stands on its own
    download = _resolve_download_uri(client, str(download), run)
    info = VersionInfo(
        version=str(record["version"]),
        run_id=run_id,
        source=str(record.get("source", "")),
        download_uri=str(download),
        status=str(record.get("status", "READY")),
        tags=_tags(record.get("tags")),
        git_commit=git_commit,
    )
    return info, set(record.get("aliases") or [])


def read_model(client: RegistryClient, model: str, aliases: Sequence[str]) -> ModelState:
    """The model's aliases of interest and their versions, re-read if an alias moves meanwhile."""
    for _ in range(client.options.consistency_attempts):
        try:
            registered = client.get("registered-models/get", name=model)["registered_model"]
        except NotFoundError as error:
            raise RegistryError(f"registered model {model!r} does not exist in {client.tracking_uri}") from error
        current = {a["alias"]: str(a["version"]) for a in registered.get("aliases") or [] if a["alias"] in aliases}
        versions: dict[str, VersionInfo] = {}
        consistent = True
        for number in sorted(set(current.values())):
            try:
                info, version_aliases = _read_version(client, model, number)
            except NotFoundError:
                consistent = False  # deleted while we read: read the model again
                break
            if any(alias not in version_aliases for alias, v in current.items() if v == number):
                consistent = False  # an alias moved while we read
                break
            versions[number] = info
        if consistent:
            return ModelState(name=model, aliases=current, versions=versions)
    raise RegistryError(f"model {model!r}: its aliases kept changing while it was read; try again")


def read_snapshot(
    tracking_uri: str,
    models: Mapping[str, Sequence[str]],
    *,
    username: str | None = None,
    password: str | None = None,
    options: ReaderOptions | None = None,
) -> tuple[RegistrySnapshot, int]:
    """Snapshot of `models` (name → aliases of interest) and the number of HTTP requests it took."""
    client = RegistryClient(tracking_uri, username, password, options or ReaderOptions())
    taken_at = datetime.now(UTC).isoformat(timespec="seconds")
    failures: dict[str, str] = {}
    states: dict[str, ModelState] = {}
    with ThreadPoolExecutor(max_workers=client.options.max_workers) as pool:
        futures = {name: pool.submit(read_model, client, name, aliases) for name, aliases in models.items()}
        for name, future in futures.items():
            try:
                states[name] = future.result()
            except RegistryError as error:
                failures[name] = str(error)
    if failures:
        detail = "; ".join(f"{name}: {reason}" for name, reason in sorted(failures.items()))
        raise RegistryError(
            f"cannot read the model registry at {client.tracking_uri} for {', '.join(sorted(failures))} ({detail})"
        )
    return RegistrySnapshot(tracking_uri=client.tracking_uri, taken_at=taken_at, models=states), client.requests
