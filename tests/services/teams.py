"""Helpers for the teams tests on real MLflow: a webhook recorder and calls as one user in one workspace.

`HookRecorder` is a real HTTP endpoint on 127.0.0.1 that records every delivery (path, headers,
raw body) MLflow POSTs to `/hooks/<team>`; it answers 200 and does nothing else, so the tests see
exactly where MLflow sent each event. `RestAs` calls MLflow's REST API as one user with an
explicit `X-MLFLOW-WORKSPACE` header, so which workspace a request targets is never implicit.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from tests.services.local_http import QuietHandler, serve, shut


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


@dataclass
class HookRecorder:
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HookRecorder:
        recorder = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recorder._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    recorder.deliveries.append(Delivery(self.path, headers, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = serve(Handler)
        return self

    def stop(self) -> None:
        shut(self._server)

    def since(self, start: int) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries[start:])

    def count(self) -> int:
        with self._lock:
            return len(self.deliveries)

    def wait_for(self, start: int, count: int, timeout: float = 15.0, settle: float = 1.5) -> list[Delivery]:
        """At least `count` deliveries after index `start`, plus `settle` seconds for strays."""
        deadline = time.monotonic() + timeout
        while self.count() - start < count and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(settle)
        return self.since(start)


@dataclass(frozen=True)
class RestAs:
    """MLflow's REST API as `username` in `workspace`."""

    base: str
    username: str
    password: str
    workspace: str

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            self.base + path,
            auth=(self.username, self.password),
            headers={"X-MLFLOW-WORKSPACE": self.workspace},
            timeout=30,
            **kwargs,
        )

    def in_workspace(self, workspace: str) -> RestAs:
        return RestAs(self.base, self.username, self.password, workspace)


@contextlib.contextmanager
def mlflow_as(username: str, password: str, workspace: str) -> Iterator[None]:
    """MlflowClient calls inside run as `username` in `workspace`; the previous identity comes back after."""
    import mlflow  # noqa: PLC0415

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = username, password
    mlflow.set_workspace(workspace)
    try:
        yield
    finally:
        mlflow.set_workspace(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class TeamsInput:
    """What `mlopsctl teams ensure` reads: the teams file and the registrar's Key Vault mount."""

    teams_file: Path
    secrets_dir: Path
    passwords: dict[str, str]
    """`<team>-automation` / `<team>-reader` → its password."""
    hook_secrets: dict[str, str]
    """Team → its webhook signing secret."""


def teams_input(workdir: Path, teams: Sequence[str], admins: str, hook_secret: Callable[[str], str]) -> TeamsInput:
    """`teams` (each administered by the group `admins`) as the ensure Job gets them: the teams file,
    and per team its automation and reader passwords and its webhook secret as files in the mount."""
    secrets = workdir / "teams-secrets"
    secrets.mkdir()
    passwords, hook_secrets = {}, {}
    for team in teams:
        for user in (f"{team}-automation", f"{team}-reader"):
            passwords[user] = f"{user}-Password-0123456789"
            (secrets / f"{user}-password").write_text(passwords[user])
        hook_secrets[team] = hook_secret(team)
        (secrets / f"{team}-webhook-secret").write_text(hook_secrets[team])
    teams_file = workdir / "teams.json"
    teams_file.write_text(json.dumps([{"name": t, "adminGroups": [admins]} for t in teams]))
    return TeamsInput(teams_file, secrets, passwords, hook_secrets)
