"""Benchmark: how the cost of the programs grows with teams (issue 20).

1. The platform program (mock engine, `harness.mock_engine.evaluate`) on the committed dev stack with
   `teams` replaced by N generated teams: wall time of one evaluation and the number of resources.
2. One team's models program (`models/Pulumi.fraud-dev.yaml` with M generated models, planned from
   a generated registry snapshot of M models): wall time and resources, the same whatever other
   teams exist (it reads only its own team's entry of the platform outputs).

    .venv/bin/python -m benchmarks.teams_scaling --teams 1 10 50 --models 10 50 200 --repeat 3

Each evaluation runs in this process after one warm-up evaluation (SDK imports out of the figures);
the median of `--repeat` runs is printed with the minimum and maximum.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.mock_engine import MODELS_DIR, evaluate, platform_outputs_example, stack_config

ADMINS = "0b6f7a52-3c1d-4e8f-9a21-5d4c3b2a1f00"


def _timed(run: object, repeat: int) -> tuple[list[float], int]:
    times, count = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        evaluation = run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
        if evaluation.error is not None:
            raise SystemExit(f"evaluation failed: {evaluation.error!r}")
        count = len(evaluation.resources)
    return times, count


def platform_with_teams(count: int, repeat: int) -> tuple[list[float], int]:
    config, secret_keys = stack_config("dev")
    teams = [{"name": f"team-{index:03d}", "adminGroups": [ADMINS]} for index in range(count)]
    config = {**config, "mlops-platform:teams": json.dumps(teams)}
    return _timed(lambda: evaluate("dev", config, secret_keys), repeat)


def _snapshot(models: int, directory: Path) -> Path:
    version = {
        "runId": "0a1b2c3d4e5f40718293a4b5c6d7e8f9",
        "source": "models:/m-0a1b2c3d4e5f40718293a4b5c6d7e8f9",
        "downloadUri": "mlflow-artifacts:/1/models/m-0a1b2c3d4e5f40718293a4b5c6d7e8f9/artifacts",
        "status": "READY",
        "tags": {},
        "gitCommit": "4f2a9c1e7b3d5a8c0e6f1b2d3c4a5e6f7a8b9c0d",
    }
    document = {
        "format": "mlops-registry-snapshot/v1",
        "trackingUri": "https://mlflow.mlops.example.com",
        "takenAt": "2026-11-20T09:00:00+00:00",
        "models": {
            f"model-{index:03d}": {"aliases": {"champion": "1"}, "versions": {"1": {"version": "1", **version}}}
            for index in range(models)
        },
    }
    path = directory / f"snapshot-{models}.json"
    path.write_text(json.dumps(document))
    return path


def team_models(models: int, repeat: int, directory: Path) -> tuple[list[float], int]:
    config, secret_keys = stack_config("fraud-dev", MODELS_DIR)
    rollout = {"models": [{"name": f"model-{index:03d}", "replicas": 1} for index in range(models)]}
    config = {**config, "mlops-models:rollout": json.dumps(rollout)}
    snapshot = _snapshot(models, directory)
    # The team's quota sized for M models (two 1.1-CPU, 1664Mi pods each: rollout.quota), so the
    # figures measure planning and declaring; the quota check itself runs, and passes, every time.
    outputs = json.loads(platform_outputs_example("fraud-dev").read_text())
    outputs["teams"]["fraud"]["quota"] = {
        "cpu": str(3 * models),
        "memory": f"{4 * models}Gi",
        "pods": 2 * models,
        "maxReplicas": 10,
        "models": models,
    }
    return _timed(
        lambda: evaluate(
            "fraud-dev",
            config,
            secret_keys,
            project_dir=MODELS_DIR,
            registry_snapshot=snapshot,
            platform_outputs=outputs,
        ),
        repeat,
    )


def _line(label: str, times: list[float], count: int) -> str:
    median = statistics.median(times)
    return f"{label:<28} {count:>6} resources  median {median:7.2f} s  (min {min(times):.2f}, max {max(times):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--models", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    platform_with_teams(1, 1)  # warm-up: imports and first-run caches
    for count in args.teams:
        times, resources = platform_with_teams(count, args.repeat)
        print(_line(f"platform, {count} teams", times, resources), flush=True)
    with tempfile.TemporaryDirectory(prefix="teams-bench-") as directory:
        team_models(1, 1, Path(directory))
        for count in args.models:
            times, resources = team_models(count, args.repeat, Path(directory))
            print(_line(f"team models, {count} models", times, resources), flush=True)


if __name__ == "__main__":
    main()
