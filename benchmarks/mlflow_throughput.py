"""Write throughput of the platform's MLflow deployment against MLflow's single-process SQLite default.

Not a test: a measurement. It starts, on 127.0.0.1,

1. the platform deployment exactly as the integration tests run it (tests/services/stack.py):
   PostgreSQL with fsync on, Azurite, the three roles with the command lines of
   `layout.mlflow_server.server_command` and the committed stack's worker and pool settings,
   basic-auth, behind nginx routing by API path;
2. MLflow's default: `mlflow server --backend-store-uri sqlite:///... --workers 1` (no auth, no
   proxy; what `mlflow server` gives a team without a platform);

and drives each with the same load: N concurrent clients (default 32), each with its own run,
alternately logging a metric and a parameter through the REST API for a fixed time. Then every
acknowledged write is read back; a write that was acknowledged (HTTP 200) but is not there is a
lost write. Prints requests/s, p50/p95 latency, errors and lost writes per setup, and the ratio.

    .venv/bin/python -m benchmarks.mlflow_throughput --clients 32 --duration 60 [--markdown out.md]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.services import processes  # noqa: E402
from tests.services.stack import mlflow_deployment  # noqa: E402


@dataclass
class Target:
    name: str
    url: str
    auth: tuple[str, str] | None


@dataclass
class ClientResult:
    run_id: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    metric_steps: list[int] = field(default_factory=list)
    params: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Summary:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    errors: int
    acknowledged: int
    lost: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def _session(target: Target) -> requests.Session:
    session = requests.Session()
    if target.auth is not None:
        session.auth = target.auth
    return session


def _client(target: Target, result: ClientResult, stop_at: float) -> None:
    session = _session(target)
    step = 0
    while time.monotonic() < stop_at:
        if step % 2 == 0:
            path = "/api/2.0/mlflow/runs/log-metric"
            body: dict[str, str | int | float] = {
                "run_id": result.run_id,
                "key": "loss",
                "value": 1.0 / (step + 1),
                "timestamp": int(time.time() * 1000),
                "step": step,
            }
        else:
            path = "/api/2.0/mlflow/runs/log-parameter"
            body = {"run_id": result.run_id, "key": f"p{step}", "value": str(step)}
        started = time.perf_counter()
        try:
            response = session.post(target.url + path, json=body, timeout=60)
            ok = response.status_code == 200
        except requests.RequestException:
            ok = False
        result.latencies.append(time.perf_counter() - started)
        if not ok:
            result.errors += 1
        elif step % 2 == 0:
            result.metric_steps.append(step)
        else:
            result.params.append(f"p{step}")
        step += 1


def _lost_writes(target: Target, result: ClientResult) -> int:
    session = _session(target)
    history = session.get(
        target.url + "/api/2.0/mlflow/metrics/get-history",
        params={"run_id": result.run_id, "metric_key": "loss", "max_results": "100000"},
        timeout=120,
    )
    history.raise_for_status()
    steps = {int(m.get("step", 0)) for m in history.json().get("metrics", [])}
    run = session.get(target.url + "/api/2.0/mlflow/runs/get", params={"run_id": result.run_id}, timeout=120)
    run.raise_for_status()
    params = {p["key"] for p in run.json()["run"]["data"].get("params", [])}
    return sum(1 for s in result.metric_steps if s not in steps) + sum(1 for p in result.params if p not in params)


def drive(target: Target, clients: int, duration: float) -> Summary:
    session = _session(target)
    response = session.post(
        target.url + "/api/2.0/mlflow/experiments/create", json={"name": f"bench-{time.time_ns()}"}, timeout=60
    )
    response.raise_for_status()
    experiment = response.json()["experiment_id"]
    results = []
    for _ in range(clients):
        created = session.post(
            target.url + "/api/2.0/mlflow/runs/create", json={"experiment_id": experiment}, timeout=60
        )
        created.raise_for_status()
        results.append(ClientResult(created.json()["run"]["info"]["run_id"]))
    stop_at = time.monotonic() + duration
    started = time.monotonic()
    threads = [threading.Thread(target=_client, args=(target, r, stop_at)) for r in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies = sorted(lat for r in results for lat in r.latencies)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Summary(
        name=target.name,
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=quantiles[49] * 1000,
        p95_ms=quantiles[94] * 1000,
        errors=sum(r.errors for r in results),
        acknowledged=sum(len(r.metric_steps) + len(r.params) for r in results),
        lost=sum(_lost_writes(target, r) for r in results),
    )


@contextlib.contextmanager
def sqlite_default(workdir: Path) -> Iterator[str]:
    """`mlflow server` as its docs start it for one user: SQLite file, one worker, no auth, no proxy."""
    port = processes.free_port()
    root = workdir / "sqlite-default"
    root.mkdir(parents=True)
    args = ["mlflow", "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--workers", "1"]
    args += ["--host", "127.0.0.1", "--port", str(port)]
    with (root / "server.log").open("ab") as log:
        process = subprocess.Popen(
            args, env=processes.base_env(), cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_until(lambda: processes.http_ok(url + "/health"), "MLflow SQLite default", 180, process)
        yield url
    finally:
        processes._stop(process)


def render(summaries: list[Summary], clients: int, duration: float) -> str:
    lines = [
        f"{clients} concurrent clients, {duration:.0f} s each, alternating log-metric and log-parameter.",
        "",
        "| setup | requests/s | p50 ms | p95 ms | errors | acknowledged writes | lost writes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        figures = f"{s.per_second:.1f} | {s.p50_ms:.0f} | {s.p95_ms:.0f} | {s.errors} | {s.acknowledged} | {s.lost}"
        lines.append(f"| {s.name} | {figures} |")
    if len(summaries) == 2 and summaries[1].per_second > 0:
        lines += ["", f"Throughput ratio platform / default: {summaries[0].per_second / summaries[1].per_second:.2f}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per setup")
    parser.add_argument("--stack", default="dev", help="committed stack whose worker/pool settings to run")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    options = parser.parse_args(argv)

    summaries = []
    with processes.temporary_directory("mlflow-bench-") as workdir:
        with mlflow_deployment(workdir, options.stack, durable=True) as deployment:
            target = Target(
                f"platform ({options.stack} settings: 3 roles x {deployment.settings.workers} workers, "
                "PostgreSQL, basic-auth, nginx)",
                deployment.tracking_uri,
                (deployment.admin_username, deployment.admin_password),
            )
            summaries.append(drive(target, options.clients, options.duration))
            print(render(summaries, options.clients, options.duration), flush=True)
        with sqlite_default(workdir) as url:
            summaries.append(
                drive(Target("default (SQLite, 1 worker, no auth)", url, None), options.clients, options.duration)
            )
    text = render(summaries, options.clients, options.duration)
    print(text)
    if options.markdown:
        options.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
