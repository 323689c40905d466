"""What a predictor pod does, run on 127.0.0.1: the storage initializer's rclone, then MLServer.

Both come from `.venv-serving` (scripts/setup.sh), installed from the images' own requirement
files, so the test runs the rclone and the MLServer/MLflow/scikit-learn the images ship. The
command lines and env are the pod's (layout/model_serving.py mirrors the Seldon operator, and the
images' Dockerfiles give ENTRYPOINT and CMD). What differs from the pod, and only that:

- rclone authenticates with Azurite's account key and endpoint instead of `env_auth` (workload
  identity needs Azure), so `_ENV_AUTH` is replaced by `_KEY`, `_ENDPOINT` and Azurite's account;
- `/mnt/models` is a temporary folder, and MLServer's ports are free local ports.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layout import model_serving
from tests.services import processes
from tests.services.processes import REPO_ROOT, Azurite


def _serving_venv() -> Path:
    """`.venv-serving` of this checkout, else the one beside the `.venv` it uses (a git worktree
    that links the main checkout's `.venv` shares its serving venv too)."""
    own = REPO_ROOT / ".venv-serving"
    if own.exists():
        return own
    return (REPO_ROOT / ".venv").resolve().parent / ".venv-serving"


SERVING_VENV = _serving_venv()
SERVING_BIN = SERVING_VENV / "bin"
MODEL_SERVER_DOCKERFILE = REPO_ROOT / "images" / "model-server" / "Dockerfile"
STORAGE_INITIALIZER_DOCKERFILE = REPO_ROOT / "images" / "storage-initializer" / "Dockerfile"


class ServingEnvironmentMissingError(RuntimeError):
    """`.venv-serving` is not installed (run `scripts/setup.sh all`)."""


def dockerfile_instruction(dockerfile: Path, instruction: str) -> list[str]:
    """The exec-form (JSON) argument of the last `instruction` (CMD, ENTRYPOINT) of a Dockerfile."""
    found: list[str] | None = None
    for line in dockerfile.read_text().splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == instruction:
            found = json.loads(rest)
    if found is None:
        raise ValueError(f"{dockerfile} has no {instruction} in exec form")
    return found


def serving_env_base(home: Path) -> dict[str, str]:
    """A clean environment like the images': the serving venv first on PATH, HOME a writable folder."""
    if not (SERVING_BIN / "mlserver").exists() or not (SERVING_BIN / "rclone").exists():
        raise ServingEnvironmentMissingError(f"{SERVING_VENV} missing mlserver or rclone: run `scripts/setup.sh all`")
    env = {key: os.environ[key] for key in ("LANG", "LC_ALL") if key in os.environ}
    env["PATH"] = f"{SERVING_BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin"
    env["HOME"] = str(home)
    return env


def azurite_auth(remote_env: Mapping[str, str], azurite: Azurite) -> dict[str, str]:
    """The pod's rclone remote env with only its authentication swapped for Azurite's key and endpoint."""
    prefix = f"RCLONE_CONFIG_{model_serving.RCLONE_REMOTE.upper()}_"
    env_auth = prefix + "ENV_AUTH"
    if remote_env.get(env_auth) != "true":
        raise AssertionError(f"the declared remote does not use workload identity ({env_auth}): {dict(remote_env)}")
    swapped = {key: value for key, value in remote_env.items() if key != env_auth}
    swapped[prefix + "ACCOUNT"] = azurite.account
    swapped[prefix + "KEY"] = azurite.key
    swapped[prefix + "ENDPOINT"] = azurite.blob_endpoint
    return swapped


def run_storage_initializer(model_uri: str, remote_env: Mapping[str, str], azurite: Azurite, target: Path) -> None:
    """The init container: `rclone copy <modelUri> /mnt/models`, with the declared remote env."""
    entrypoint = dockerfile_instruction(STORAGE_INITIALIZER_DOCKERFILE, "ENTRYPOINT")
    command = [*entrypoint, *model_serving.initializer_args(model_uri, str(target))]
    home = target.parent / f"{target.name}-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**serving_env_base(home), **azurite_auth(remote_env, azurite)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")


@dataclass
class RunningModelServer:
    node: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    ready_seconds: float = 0.0
    """From process start until `/v2/models/<node>/ready` answered 200."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def infer(self, columns: Mapping[str, Sequence[float]]) -> list[float]:
        """A V2 request with one FP64 input per column (`content_type: pd`); the first output's data."""
        rows = len(next(iter(columns.values())))
        body = {
            "parameters": {"content_type": "pd"},
            "inputs": [
                {"name": name, "datatype": "FP64", "shape": [rows, 1], "data": [float(v) for v in values]}
                for name, values in columns.items()
            ],
        }
        request = urllib.request.Request(
            self.url + model_serving.inference_path(self.node),
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return [float(v) for v in answer["outputs"][0]["data"]]

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)


@contextlib.contextmanager
def model_server(
    model_dir: Path, node: str, namespace: str, workdir: Path, wait_for_model: bool = True
) -> Iterator[RunningModelServer]:
    """The image's CMD (`mlserver start /mnt/models`) with the operator's MLSERVER_* env.

    With `wait_for_model` it waits for the model's own readiness (what the platform's startup
    probe asks); without, for `/v2/health/ready` only (what the operator's readiness probe asks).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    command = [str(model_dir) if arg == model_serving.MODEL_MOUNT else arg for arg in _server_cmd()]
    http_port, grpc_port, metrics_port = processes.free_port(), processes.free_port(), processes.free_port()
    env = {
        **serving_env_base(workdir),
        **model_serving.mlserver_env(
            node,
            namespace,
            model_uri=str(model_dir),
            http_port=http_port,
            grpc_port=grpc_port,
            metrics_port=metrics_port,
        ),
    }
    log = workdir / "mlserver.log"
    started = time.monotonic()
    process = processes._start(command, env, log, cwd=workdir)
    server = RunningModelServer(node, http_port, process, log)
    try:
        path = model_serving.model_ready_path(node) if wait_for_model else "/v2/health/ready"
        processes.wait_until(
            functools.partial(processes.http_ok, server.url + path), f"MLServer {node} (log {log})", 180, process
        )
        server.ready_seconds = time.monotonic() - started
        yield server
    finally:
        processes._stop(process)


def _server_cmd() -> list[str]:
    return dockerfile_instruction(MODEL_SERVER_DOCKERFILE, "CMD")
