"""How long one analysis run (`mlopsctl rollout advance`, one CronJob tick) takes.

Not a test: a measurement, to size `rolloutAnalysisSchedule`. It starts, on 127.0.0.1, the
platform's MLflow deployment as the integration tests run it (tests/services/stack.py: PostgreSQL,
Azurite, the three roles with the committed stack's command lines, basic-auth, nginx) and a real
Prometheus scraping the synthetic Seldon-shaped exporter (every second). It registers N models,
each with a `champion` and a `challenger` version and healthy traffic on both predictors, in the
mix a stack has: `canary` (dwelling at its step), `ab` waiting at a first-step gate, `shadow`
waiting at a promotion gate. Every run therefore writes a decision per model (lease, re-read,
tags), the expensive path.

Then it runs `python -m mlopsctl rollout advance --stack dev --stack-file <file> --json` (the
CronJob's command, in a fresh interpreter like the pod) R times for each `--parallel` value given
(the CLI's default when none is) and prints the wall time of each run.

    .venv/bin/python -m benchmarks.analysis_run --models 3 --runs 5
    .venv/bin/python -m benchmarks.analysis_run --models 10 --runs 3 --parallel 1 --parallel 8
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import yaml  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from mlopsctl.rollout_commands import DEFAULT_PARALLEL_MODELS  # noqa: E402
from observability import promql  # noqa: E402
from rollout.planner import deployment_name  # noqa: E402
from tests.services import processes  # noqa: E402
from tests.services.exporter import SyntheticExporter, TrafficControl  # noqa: E402
from tests.services.prometheus import PrometheusServer  # noqa: E402
from tests.services.registry import register_run_versions  # noqa: E402
from tests.services.stack import mlflow_deployment  # noqa: E402

WINDOW = "30s"
MIN_REQUESTS = 20
ANALYSIS = {"window": WINDOW, "minRequests": MIN_REQUESTS, "maxErrorRate": 0.05, "maxP95LatencySeconds": 0.5,
            "maxP95RatioToStable": 4}  # fmt: skip


def model_settings(index: int) -> dict[str, Any]:
    name = f"bench-model-{index}"
    kind = index % 3
    if kind == 0:
        return {"name": name, "strategy": "canary", "steps": [10, 50, 100], "analysis": ANALYSIS}
    if kind == 1:
        return {"name": name, "strategy": "ab", "analysis": ANALYSIS, "approval": {"beforeFirstStep": True}}
    return {"name": name, "strategy": "shadow", "analysis": ANALYSIS, "approval": {"beforePromotion": True}}


def _register(client: MlflowClient, model: str) -> None:
    register_run_versions(client, model)
    client.set_registered_model_alias(model, "champion", "1")
    client.set_registered_model_alias(model, "challenger", "2")


def measure(models: int, runs: int, parallels: list[int]) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(processes.temporary_directory("mlops-analysis-bench-"))
        deployment = stack.enter_context(mlflow_deployment(workdir, "dev"))
        control = TrafficControl()
        exporter = SyntheticExporter(control).start()
        stack.callback(exporter.stop)
        prometheus = PrometheusServer([f"127.0.0.1:{exporter.port}"], scrape_interval="1s").start()
        stack.callback(prometheus.stop)
        env = {**os.environ, "MLFLOW_TRACKING_USERNAME": deployment.admin_username,
               "MLFLOW_TRACKING_PASSWORD": deployment.admin_password}  # fmt: skip
        os.environ.update(env)
        client = MlflowClient(tracking_uri=deployment.tracking_uri, registry_uri=deployment.tracking_uri)
        configured = [model_settings(i) for i in range(models)]
        for model in configured:
            _register(client, model["name"])
            name = deployment_name(model["name"])
            candidate = "shadow" if model["strategy"] == "shadow" else "canary"
            control.set_predictor(name, "stable", rps=20.0, error_ratio=0.0, latency_seconds=0.02, version="1")
            control.set_predictor(name, candidate, rps=20.0, error_ratio=0.0, latency_seconds=0.02, version="2")
        document = yaml.safe_load((REPO / "models" / "Pulumi.dev.yaml").read_text())
        document["config"]["mlops-models:rollout"] = {
            "trackingUri": deployment.tracking_uri,
            "prometheusUrl": prometheus.url,
            "models": configured,
        }
        stack_file = workdir / "Pulumi.dev.yaml"
        stack_file.write_text(yaml.safe_dump(document))
        last = promql.request_count(promql.Target(deployment_name(configured[-1]["name"]), "stable", "models"), WINDOW)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and max(prometheus.values(last).values(), default=0) < MIN_REQUESTS * 1.5:
            time.sleep(1)
        command = [sys.executable, "-m", "mlopsctl", "rollout", "advance", "--stack", "dev",
                   "--stack-file", str(stack_file), "--json"]  # fmt: skip
        measured = []
        for parallel in parallels:
            seconds: list[float] = []
            actions: list[Counter[str]] = []
            for _ in range(runs):
                started = time.perf_counter()
                result = subprocess.run(
                    [*command, "--parallel", str(parallel)],
                    cwd=REPO,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
                seconds.append(time.perf_counter() - started)
                if result.returncode not in (0, 1):
                    raise RuntimeError(f"advance failed: {result.stderr.strip()}")
                outcomes = json.loads(result.stdout)
                actions.append(Counter(f"{o['action']}{'' if o['written'] else ' (not written)'}" for o in outcomes))
            measured.append({"parallel": parallel, "seconds": seconds, "actions": actions})
        return {"models": models, "measured": measured}


def render(result: dict[str, Any]) -> str:
    lines = [f"models: {result['models']} (canary dwelling / ab at a first-step gate / shadow at a promotion gate)"]
    for measured in result["measured"]:
        seconds = measured["seconds"]
        lines.append(f"--parallel {measured['parallel']}:")
        for index, (took, actions) in enumerate(zip(seconds, measured["actions"], strict=True), 1):
            summary = ", ".join(f"{count} {action}" for action, count in sorted(actions.items()))
            lines.append(f"  run {index}: {took:6.2f} s   {summary}")
        lines.append(
            f"  one analysis run: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s "
            f"({statistics.median(seconds) / result['models']:.2f} s per model)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--parallel", type=int, action="append", help="the CLI's --parallel; repeat to compare")
    options = parser.parse_args(argv)
    parallels = options.parallel or [DEFAULT_PARALLEL_MODELS]
    if options.models < 1 or options.runs < 1 or min(parallels) < 1:
        parser.error("--models, --runs and --parallel must be at least 1")
    print(render(measure(options.models, options.runs, parallels)), flush=True)
    print(f"load average: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
