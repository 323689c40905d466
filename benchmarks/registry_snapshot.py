"""Benchmark: registry snapshot of N models, the batched reader vs a naive list-everything reader.

Starts a local MLflow server (SQLite backend, loopback only), registers N models with V versions
each and the `champion`/`challenger` aliases, then reads the snapshot with the platform's reader
(`rollout.registry_reader.read_snapshot`: batched searches, about one request per model) and,
in the same run against the same server, with a naive reader that lists every version of every
model and fetches each download URI. Prints wall time and HTTP requests per model for both.

    .venv/bin/python benchmarks/registry_snapshot.py --models 200 --versions 20
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rollout.registry_reader import ReaderOptions, RegistryClient, read_snapshot


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"MLflow did not start at {url}")


def _populate(client: RegistryClient, models: int, versions: int) -> None:
    def one(index: int) -> None:
        name = f"model-{index:04d}"
        client.post("registered-models/create", {"name": name})
        run = client.post("runs/create", {"experiment_id": "0", "run_name": name})["run"]["info"]["run_id"]
        client.post("runs/set-tag", {"run_id": run, "key": "mlflow.source.git.commit", "value": "0" * 40})
        for _ in range(versions):
            client.post("model-versions/create", {"name": name, "source": f"runs:/{run}/model", "run_id": run})
        client.post("registered-models/alias", {"name": name, "alias": "champion", "version": str(versions - 1)})
        client.post("registered-models/alias", {"name": name, "alias": "challenger", "version": str(versions)})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(models)))


def _naive_snapshot(client: RegistryClient, names: list[str], workers: int) -> None:
    """List every version of every model, then every download URI: what a reader without aliases does."""

    def one(name: str) -> None:
        listed = client.get("model-versions/search", filter=f"name='{name}'", max_results="1000")
        for version in listed.get("model_versions", []):
            client.get("model-versions/get-download-uri", name=name, version=str(version["version"]))
        client.get("registered-models/get", name=name)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--versions", type=int, default=20, help="versions per model (the aliases use the last two)")
    parser.add_argument("--workers", type=int, default=8, help="reader pool size (both readers)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.versions < 2:
        parser.error("--versions must be at least 2")

    with tempfile.TemporaryDirectory() as workdir:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                f"sqlite:///{workdir}/mlflow.db",
                "--artifacts-destination",
                f"{workdir}/art",
                "--workers",
                "2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(url)
            setup = RegistryClient(url, None, None, ReaderOptions(timeout_seconds=60))
            started = time.monotonic()
            _populate(setup, args.models, args.versions)
            print(f"registered {args.models} models x {args.versions} versions in {time.monotonic() - started:.1f} s")
            names = [f"model-{i:04d}" for i in range(args.models)]
            wanted = {name: ("champion", "challenger") for name in names}
            options = ReaderOptions(max_workers=args.workers, timeout_seconds=60)

            bounded_times, bounded_requests = [], 0
            for _ in range(args.repeat):
                started = time.monotonic()
                snapshot, bounded_requests = read_snapshot(url, wanted, options=options)
                bounded_times.append(time.monotonic() - started)
                assert len(snapshot.models) == args.models
            naive_times, naive_requests = [], 0
            for _ in range(args.repeat):
                naive = RegistryClient(url, None, None, options)
                started = time.monotonic()
                _naive_snapshot(naive, names, args.workers)
                naive_times.append(time.monotonic() - started)
                naive_requests = naive.requests
        finally:
            server.terminate()
            server.wait(timeout=30)

    bounded, naive_median = statistics.median(bounded_times), statistics.median(naive_times)
    print(f"{'reader':<10} {'wall time (median of ' + str(args.repeat) + ')':>28} {'requests/model':>15}")
    print(f"{'batched':<10} {bounded:>26.2f} s {bounded_requests / args.models:>15.2f}")
    print(f"{'naive':<10} {naive_median:>26.2f} s {naive_requests / args.models:>15.2f}")
    speedup = naive_median / bounded
    print(f"naive / batched: {speedup:.2f}x time, {naive_requests / bounded_requests:.2f}x requests")
    met = speedup >= 5 and bounded_requests <= 3 * args.models
    print(f"goal: >= 5x faster, <= 3 requests per model: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
