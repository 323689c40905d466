"""Benchmark: a predictor's start and its inference latency, with the platform's serving path.

Saves a scikit-learn model with MLflow (as a training run would log it), uploads the model folder
to Azurite where the artifacts store would hold it, then per round does what a predictor pod does
(tests/services/serving.py): the storage initializer's `rclone copy` and the model server image's
`mlserver start` with the operator's env, and times

- copy: rclone's download of the model folder,
- ready: MLServer start until `/v2/models/model/ready` answers 200 (what the startup probe waits for),
- latency: V2 REST inference of `--rows` rows, one request at a time, after a warm-up.

    .venv/bin/python benchmarks/model_serving.py --rounds 3 --requests 200 --rows 12

Needs `scripts/setup.sh all` (.venv-serving, Azurite).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mlflow
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import sklearn  # type: ignore[import-untyped]
from azure.storage.blob import BlobServiceClient
from sklearn.linear_model import LinearRegression  # type: ignore[import-untyped]

from layout import model_serving
from tests.services import processes, serving

CONTAINER = "mlflow-artifacts"
PREFIX = "1/models/m-benchmark/artifacts"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="pod starts to time")
    parser.add_argument("--requests", type=int, default=200, help="timed inference requests per round")
    parser.add_argument("--rows", type=int, default=12, help="rows per inference request")
    options = parser.parse_args()

    columns = ["tenure", "spend", "visits"]
    rng = np.random.default_rng(3)
    train = pd.DataFrame(rng.normal(size=(200, 3)), columns=columns)
    rows = pd.DataFrame(rng.normal(size=(options.rows, 3)), columns=columns)
    model = LinearRegression().fit(train, train.to_numpy() @ np.array([1.5, -2.0, 0.5]) + 3)

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        saved = work / "saved"
        mlflow.sklearn.save_model(model, saved, pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
        with processes.azurite(work, (CONTAINER,)) as azurite:
            container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
                CONTAINER
            )
            for path in saved.rglob("*"):
                if path.is_file():
                    container.upload_blob(f"{PREFIX}/{path.relative_to(saved)}", path.read_bytes())
            model_uri = f"{model_serving.RCLONE_REMOTE}:{CONTAINER}/{PREFIX}"
            remote_env = model_serving.storage_remote_env("benchmarkaccount")
            body = {column: [float(v) for v in rows[column]] for column in columns}
            copies, readies, latencies = [], [], []
            for round_ in range(options.rounds):
                target = work / f"round-{round_}" / "mnt-models"
                started = time.monotonic()
                serving.run_storage_initializer(model_uri, remote_env, azurite, target)
                copies.append(time.monotonic() - started)
                with serving.model_server(target, "model", "models", work / f"round-{round_}" / "server") as server:
                    readies.append(server.ready_seconds)
                    expected = [float(v) for v in model.predict(rows)]
                    for _ in range(10):
                        assert np.allclose(server.infer(body), expected)
                    for _ in range(options.requests):
                        started = time.monotonic()
                        server.infer(body)
                        latencies.append((time.monotonic() - started) * 1000)

    print(f"rounds={options.rounds} requests/round={options.requests} rows/request={options.rows}")
    print(f"rclone copy (s):   median {statistics.median(copies):.2f}  max {max(copies):.2f}")
    print(f"MLServer ready (s): median {statistics.median(readies):.1f}  max {max(readies):.1f}")
    print(
        f"inference (ms):    p50 {_percentile(latencies, 0.5):.1f}  p95 {_percentile(latencies, 0.95):.1f}"
        f"  p99 {_percentile(latencies, 0.99):.1f}"
    )


if __name__ == "__main__":
    main()
