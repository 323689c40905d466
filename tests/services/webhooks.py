"""The webhook receiver as a real process, and a local HTTP endpoint standing in for the Kubernetes API.

No cluster is reachable here, so `StandInApiServer` plays the API server's part for the one call
the receiver makes (a JSON merge PATCH of the models Stack): it records each request with its
arrival time and answers like the API server would (200 with the object, or a configured error).
Everything else is real: MLflow delivers to `mlopsctl webhook serve` (uvicorn) on 127.0.0.1, and
the receiver finds the stand-in through a kubeconfig file, as it would find a real API server.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.services import processes
from tests.services.local_http import QuietHandler, serve, shut

STAND_IN_TOKEN = "stand-in-service-account-token"


@dataclass(frozen=True)
class PatchRequest:
    path: str
    content_type: str
    authorization: str
    body: dict[str, Any]
    arrived: float
    """`time.perf_counter()` at arrival (same clock as the benchmark's)."""
    status: int


@dataclass
class StandInApiServer:
    """Records PATCHes; `fail_next` makes the next N answer 500 (an API server having a bad moment)."""

    requests: list[PatchRequest] = field(default_factory=list)
    fail_next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StandInApiServer:
        stand_in = self

        class Handler(QuietHandler):
            def do_PATCH(self) -> None:
                arrived = time.perf_counter()
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with stand_in._lock:
                    status = 500 if stand_in.fail_next > 0 else 200
                    stand_in.fail_next = max(0, stand_in.fail_next - 1)
                    stand_in.requests.append(
                        PatchRequest(
                            self.path,
                            self.headers.get("Content-Type", ""),
                            self.headers.get("Authorization", ""),
                            body,
                            arrived,
                            status,
                        )
                    )
                    stand_in._arrived.notify_all()
                reply = json.dumps({"kind": "Stack", "apiVersion": "pulumi.com/v1", **body}).encode()
                if status != 200:
                    reply = json.dumps({"kind": "Status", "code": status, "message": "stand-in failure"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._server = serve(Handler)
        return self

    def stop(self) -> None:
        shut(self._server)

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[PatchRequest]:
        """Block until at least `count` PATCHes arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.requests)} of {count} reconcile requests after {timeout:.0f}s")
                self._arrived.wait(remaining)
            return list(self.requests)

    def kubeconfig(self, path: Path) -> Path:
        """A kubeconfig naming this endpoint, with a bearer token, like a real cluster's."""
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "stand-in",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "receiver", "user": {"token": STAND_IN_TOKEN}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "receiver"}}],
        }
        path.write_text(yaml.safe_dump(document))
        return path


@dataclass(frozen=True)
class Receiver:
    url: str
    """The webhook URL (`http://127.0.0.1:<port>/webhook`)."""
    log: Path
    team_secrets: Path | None = None
    """The directory of the teams' `<team>-webhook-secret` files (as the Key Vault CSI mount)."""

    @property
    def base(self) -> str:
        """The receiver's address; a team's hook is `<base>/hooks/<team>`."""
        return self.url.removesuffix("/webhook")

    def records(self) -> list[dict[str, Any]]:
        """The receiver's one JSON line per delivery."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return [record for record in records if "delivery" in record]  # not the start-up line


@dataclass(frozen=True)
class TeamHookSpec:
    """One team the receiver serves: its Stack, its webhook secret (written to `<team>-webhook-secret`)."""

    stack: str
    secret: str


@contextlib.contextmanager
def receiver(
    workdir: Path,
    secret: str,
    models: Sequence[str],
    kubeconfig: Path,
    *,
    teams: Mapping[str, TeamHookSpec] | None = None,
    models_dir: Path | None = None,
) -> Iterator[Receiver]:
    """`mlopsctl webhook serve` in its own process, secrets from files as in the pod; with `teams`,
    `--team <team>=<stack>` each, their managed models from `models_dir` (`Pulumi.<stack>.yaml`)."""
    root = workdir / f"receiver-{processes.free_port()}"
    root.mkdir(parents=True)
    secret_file = root / "signing-secret"
    secret_file.write_text(secret)
    port = processes.free_port()
    args = [str(processes.VENV_BIN / "python"), "-m", "mlopsctl", "webhook", "serve", "--host", "127.0.0.1"]
    args += ["--port", str(port), "--secret-file", str(secret_file)]
    for model in models:
        args += ["--model", model]
    team_secrets = None
    if teams:
        team_secrets = root / "team-secrets"
        team_secrets.mkdir()
        args += ["--team-secrets-dir", str(team_secrets)]
        for team, spec in teams.items():
            (team_secrets / f"{team}-webhook-secret").write_text(spec.secret)
            args += ["--team", f"{team}={spec.stack}"]
    if models_dir is not None:
        args += ["--models-dir", str(models_dir)]
    env = {**processes.base_env(), "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(processes.REPO_ROOT)}
    log = root / "receiver.log"
    process = processes._start(args, env, log, cwd=processes.REPO_ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        processes.wait_until(lambda: processes.http_ok(f"{base}/healthz"), f"receiver (log {log})", 60, process)
        yield Receiver(f"{base}/webhook", log, team_secrets)
    finally:
        processes._stop(process)


def post_delivery(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """POST a (signed) delivery to a running receiver as MLflow does; the HTTP status it answers."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
