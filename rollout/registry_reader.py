"""Read one consistent snapshot of the configured models from the MLflow registry REST API.

Batched, so a snapshot costs about one request per model however many versions a model has
(MLflow 3.17.2's REST API, read from the `mlflow` package this repository pins):

1. `registered-models/search` with `name IN (...)`, up to `chunk_size` models per request: every
   model's aliases (a `RegisteredModel` carries them; a searched `ModelVersion` does not).
2. Per model, one `model-versions/search` with `name='<model>' AND version_number >= <lowest
   aliased> AND version_number <= <highest aliased>`: the aliased versions' records (tags,
   source, run id, status) in one page.
3. Lineage and locations, batched across models: `experiments/search` (the searches below need
   experiment ids), `runs/search` with `attributes.run_id IN (...)` (git commit tag, artifact root
   of `runs:/` sources) and `logged-models/search` with `model_id IN (...)` (artifact location of
   `models:/m-<id>` sources, what the registry's download URI resolves to).
4. Step 1 again: a model whose aliases moved while it was read is read again, so each model's
   aliases and versions agree.

Every request has a timeout; transient failures (connection errors, 429, 5xx) are retried with
backoff. Any failure raises `RegistryError` naming the registry and the models: the program then
fails before declaring a single rollout, and no SeldonDeployment is deleted by accident.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rollout.snapshot import ModelState, RegistrySnapshot, VersionInfo

GIT_COMMIT_TAG = "mlflow.source.git.commit"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
PAGE_SIZE = 1000
"""Largest page asked for (MLflow's limit for experiments, runs and model versions is higher)."""


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
    chunk_size: int = 100
    """Names or ids per `IN (...)` filter."""


WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"
"""MLflow 3.17.2's request header selecting a workspace (`mlflow.utils.workspace_utils.WORKSPACE_HEADER_NAME`)."""
WORKSPACE_ENV = "MLFLOW_WORKSPACE"
"""The variable MLflow's own client reads the workspace from; the registry reader honours it too."""


class RegistryClient:
    """A small MLflow REST client: basic auth, timeouts, retries, and a request counter."""

    def __init__(
        self,
        tracking_uri: str,
        username: str | None,
        password: str | None,
        options: ReaderOptions,
        workspace: str | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        self.options = options
        self._headers = {"Accept": "application/json"}
        if workspace:
            # MLflow workspaces (a team's models Stack): this REST client is not MLflow's, which would
            # send the header from `MLFLOW_WORKSPACE` itself (mlflow/utils/rest_utils.py).
            self._headers[WORKSPACE_HEADER] = workspace
        if username is not None and password is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._lock = threading.Lock()
        self.requests = 0

    def get(self, endpoint: str, **params: str) -> dict[str, Any]:
        return self.call("GET", endpoint, params)

    def post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", endpoint, body)

    def delete(self, endpoint: str, body: dict[str, str]) -> dict[str, Any]:
        return self.call("DELETE", endpoint, body)

    def call(self, method: str, endpoint: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
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


def filter_literal(value: str) -> str:
    """A string literal of MLflow's search filter grammar."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise RegistryError(f"{value!r} holds both quote characters and cannot be searched for")


def _in_filter(key: str, values: Iterable[str]) -> str:
    return f"{key} IN ({', '.join(filter_literal(v) for v in values)})"


def _chunks(values: Iterable[str], size: int) -> Iterator[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _pages(fetch: Any, key: str) -> list[dict[str, Any]]:
    """Every item of a paginated search (`fetch(page_token) -> document`)."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        document = fetch(token)
        items.extend(document.get(key) or [])
        token = document.get("next_page_token") or ""
        if not token:
            return items


class _Batch:
    """One snapshot's reads: batched searches, concurrent where they are per model."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self._experiments: list[str] | None = None

    def _map(self, function: Any, items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.client.options.max_workers) as pool:
            return list(pool.map(function, items))

    def aliases(self, names: Iterable[str]) -> dict[str, dict[str, str]]:
        """name → {alias: version} for the models that exist."""

        def one(chunk: list[str]) -> list[dict[str, Any]]:
            document = self.client.get(
                "registered-models/search", filter=_in_filter("name", chunk), max_results=str(len(chunk))
            )
            return list(document.get("registered_models") or [])

        found: dict[str, dict[str, str]] = {}
        for models in self._map(one, list(_chunks(names, self.client.options.chunk_size))):
            for model in models:
                found[model["name"]] = {a["alias"]: str(a["version"]) for a in model.get("aliases") or []}
        return found

    def versions(self, name: str, numbers: set[str]) -> dict[str, dict[str, Any]]:
        """The records of `numbers` (one search over their range; versions outside it are not read)."""
        if not numbers:
            return {}
        low, high = min(map(int, numbers)), max(map(int, numbers))
        query = f"name={filter_literal(name)} AND version_number >= {low} AND version_number <= {high}"

        def fetch(token: str) -> dict[str, Any]:
            params = {"filter": query, "max_results": str(PAGE_SIZE)}
            if token:
                params["page_token"] = token
            return self.client.get("model-versions/search", **params)

        records = _pages(fetch, "model_versions")
        return {str(r["version"]): r for r in records if str(r["version"]) in numbers}

    def experiment_ids(self) -> list[str]:
        if self._experiments is None:

            def fetch(token: str) -> dict[str, Any]:
                body: dict[str, Any] = {"max_results": PAGE_SIZE, "view_type": "ALL"}
                if token:
                    body["page_token"] = token
                return self.client.post("experiments/search", body)

            self._experiments = [str(e["experiment_id"]) for e in _pages(fetch, "experiments")]
        return self._experiments

    def _search_by_ids(
        self, endpoint: str, key: str, ids: set[str], filter_key: str, extra: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if not ids:
            return []
        experiments = self.experiment_ids()

        def one(chunk: list[str]) -> list[dict[str, Any]]:
            def fetch(token: str) -> dict[str, Any]:
                body: dict[str, Any] = {
                    "experiment_ids": experiments,
                    "filter": _in_filter(filter_key, chunk),
                    "max_results": len(chunk),
                    **extra,
                }
                if token:
                    body["page_token"] = token
                return self.client.post(endpoint, body)

            return _pages(fetch, key)

        return [item for items in self._map(one, list(_chunks(ids, self.client.options.chunk_size))) for item in items]

    def runs(self, run_ids: set[str]) -> dict[str, dict[str, Any]]:
        runs = self._search_by_ids("runs/search", "runs", run_ids, "attributes.run_id", {"run_view_type": "ALL"})
        return {str(run["info"]["run_id"]): run for run in runs}

    def logged_models(self, model_ids: set[str]) -> dict[str, dict[str, Any]]:
        models = self._search_by_ids("logged-models/search", "models", model_ids, "model_id", {})
        return {str(model["info"]["model_id"]): model for model in models}


def _logged_model_id(source: str) -> str | None:
    return source.removeprefix("models:/").strip("/") if source.startswith("models:/m-") else None


def _download_uri(
    batch: _Batch, model: str, record: dict[str, Any], runs: Mapping[str, Any], logged: Mapping[str, Any]
) -> str:
    """What the registry's `get-download-uri` answers, resolved to the artifact store location.

    `models:/m-<id>` → the logged model's artifact location (the version's storage location);
    `runs:/<run>/<path>` → the run's artifact root + path; any other URI is the location itself.
    """
    source = str(record.get("source", ""))
    version = str(record["version"])
    logged_id = _logged_model_id(source)
    if logged_id is not None:
        if logged_id not in logged:
            raise NotFoundError(f"model {model!r} version {version}: logged model {logged_id} not found")
        return str(logged[logged_id]["info"]["artifact_uri"])
    if source.startswith("runs:/"):
        run_id, _, path = source.removeprefix("runs:/").strip("/").partition("/")
        if run_id not in runs:
            raise NotFoundError(f"model {model!r} version {version}: source run {run_id} not found")
        return str(runs[run_id]["info"]["artifact_uri"]).rstrip("/") + ("/" + path if path else "")
    if source.startswith("models:/"):
        # A version registered from another version (`models:/<name>/<version>`): rare, one call.
        answer = batch.client.get("model-versions/get-download-uri", name=model, version=version)
        return str(answer["artifact_uri"])
    return source


def _version_info(
    batch: _Batch, model: str, record: dict[str, Any], runs: Mapping[str, Any], logged: Mapping[str, Any]
) -> VersionInfo:
    run_id = record.get("run_id") or None
    git_commit = None
    if run_id and run_id in runs:
        git_commit = _tags(runs[run_id].get("data", {}).get("tags")).get(GIT_COMMIT_TAG)
    logged_id = _logged_model_id(str(record.get("source", "")))
    if git_commit is None and logged_id is not None and logged_id in logged:
        git_commit = _tags(logged[logged_id]["info"].get("tags")).get(GIT_COMMIT_TAG)
    return VersionInfo(
        version=str(record["version"]),
        run_id=run_id,
        source=str(record.get("source", "")),
        download_uri=_download_uri(batch, model, record, runs, logged),
        status=str(record.get("status", "READY")),
        tags=_tags(record.get("tags")),
        git_commit=git_commit,
    )


def read_models(
    client: RegistryClient, models: Mapping[str, Sequence[str]]
) -> tuple[dict[str, ModelState], dict[str, str]]:
    """States of `models` (name → aliases of interest), and the reason for each model that failed."""
    batch = _Batch(client)
    states: dict[str, ModelState] = {}
    failures: dict[str, str] = {}
    pending = dict(models)
    current = batch.aliases(pending)
    for _ in range(client.options.consistency_attempts):
        for name in [n for n in pending if n not in current]:
            failures[name] = f"registered model {name!r} does not exist in {client.tracking_uri}"
            del pending[name]
        wanted = {
            name: {alias: v for alias, v in current[name].items() if alias in aliases}
            for name, aliases in pending.items()
        }
        names = sorted(pending)
        work = [(name, set(wanted[name].values())) for name in names]
        records = dict(zip(names, batch._map(lambda item: batch.versions(*item), work), strict=True))
        run_ids = {str(r["run_id"]) for rs in records.values() for r in rs.values() if r.get("run_id")}
        run_ids |= {
            str(r["source"]).removeprefix("runs:/").split("/", 1)[0]
            for rs in records.values()
            for r in rs.values()
            if str(r.get("source", "")).startswith("runs:/")
        }
        logged_ids = {
            i for rs in records.values() for r in rs.values() if (i := _logged_model_id(str(r.get("source", ""))))
        }
        runs = batch.runs(run_ids)
        logged = batch.logged_models(logged_ids)
        read: dict[str, ModelState] = {}
        for name in names:
            if set(records[name]) != set(wanted[name].values()):
                continue  # a version was deleted while we read: read the model again
            try:
                versions = {n: _version_info(batch, name, r, runs, logged) for n, r in records[name].items()}
            except NotFoundError as error:
                failures[name] = str(error)  # e.g. the source run of a `runs:/` version was deleted
                del pending[name]
                continue
            read[name] = ModelState(name=name, aliases=wanted[name], versions=versions)
        current = batch.aliases(pending)  # did an alias move while we read?
        for name, state in read.items():
            moved = {a: v for a, v in current.get(name, {}).items() if a in models[name]} != state.aliases
            if not moved:
                states[name] = state
                del pending[name]
        if not pending:
            break
    for name in pending:
        failures[name] = f"model {name!r}: its aliases kept changing while it was read; try again"
    return states, failures


def read_model(client: RegistryClient, model: str, aliases: Sequence[str]) -> ModelState:
    """One model's aliases of interest and their versions (raises RegistryError)."""
    states, failures = read_models(client, {model: aliases})
    if failures:
        raise RegistryError(failures[model])
    return states[model]


def read_snapshot(
    tracking_uri: str,
    models: Mapping[str, Sequence[str]],
    *,
    username: str | None = None,
    password: str | None = None,
    options: ReaderOptions | None = None,
    workspace: str | None = None,
) -> tuple[RegistrySnapshot, int]:
    """Snapshot of `models` (name → aliases of interest) and the number of HTTP requests it took,
    in MLflow workspace `workspace` when given (else the server's default workspace)."""
    client = RegistryClient(tracking_uri, username, password, options or ReaderOptions(), workspace)
    taken_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        states, failures = read_models(client, models)
    except RegistryError as error:
        failures = {name: str(error) for name in models}
        states = {}
    if failures:
        detail = "; ".join(f"{name}: {reason}" for name, reason in sorted(failures.items()))
        raise RegistryError(
            f"cannot read the model registry at {client.tracking_uri} for {', '.join(sorted(failures))} ({detail})"
        )
    return RegistrySnapshot(tracking_uri=client.tracking_uri, taken_at=taken_at, models=states), client.requests


def known_ids(client: RegistryClient, run_ids: set[str], model_ids: set[str]) -> tuple[set[str], set[str]]:
    """Which of `run_ids` and `model_ids` the tracking store knows (deleted runs included), batched
    like a snapshot's reads (`mlopsctl registry verify` finds orphaned artifact folders with it)."""
    batch = _Batch(client)
    return set(batch.runs(run_ids)), set(batch.logged_models(model_ids))
