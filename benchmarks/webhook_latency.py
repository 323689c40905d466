"""Registry change → reconcile request: how long the webhook path takes, beside the resync it replaces.

Not a test: a measurement. It starts, on 127.0.0.1, the platform's MLflow deployment exactly as
the integration tests run it (tests/services/stack.py: PostgreSQL, Azurite, the three roles with
the committed stack's command lines, basic-auth, nginx), the real receiver (`mlopsctl webhook
serve`, its own process) and a local HTTP endpoint standing in for the Kubernetes API server (no
cluster here; it records when the receiver's PATCH of the models Stack arrives). The webhook is
registered with `mlopsctl webhook ensure`'s function.

Then it moves the `champion` alias N times (default 50), one change at a time, and times each
change to the arrival of its reconcile request at the stand-in API server, two ways:

- from `set_registered_model_alias` returning (what the issue asks): MLflow's delivery runs on a
  thread pool and often arrives *before* the call returns, so this can be negative;
- from the call starting (the full registry → reconcile-request latency a user sees).

Printed beside the operator's resync interval (`pulumiOperatorResyncSeconds`), which is what a
registry change waited for without webhooks: on average half an interval, at worst a whole one.

    .venv/bin/python -m benchmarks.webhook_latency --changes 50 [--stack dev]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mlflow import MlflowClient  # noqa: E402

from mlopsctl.webhook_cli import ensure_webhook  # noqa: E402
from tests.services import processes  # noqa: E402
from tests.services.registry import register_run_versions  # noqa: E402
from tests.services.stack import committed_settings, mlflow_deployment  # noqa: E402
from tests.services.webhooks import StandInApiServer, receiver  # noqa: E402

MODEL = "latency-model"
SECRET = "benchmark-webhook-signing-secret-0123456789"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def _register(client: MlflowClient) -> None:
    register_run_versions(client, MODEL)


def measure(changes: int, stack: str, timeout: float) -> dict[str, object]:
    with contextlib.ExitStack() as stack_context:
        workdir = stack_context.enter_context(processes.temporary_directory("mlops-webhook-bench-"))
        deployment = stack_context.enter_context(mlflow_deployment(workdir, stack))
        api = StandInApiServer().start()
        stack_context.callback(api.stop)
        running = stack_context.enter_context(
            receiver(workdir, SECRET, [f"{MODEL}=champion,challenger"], api.kubeconfig(workdir / "kubeconfig"))
        )
        os.environ["MLFLOW_TRACKING_USERNAME"] = deployment.admin_username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = deployment.admin_password
        client = MlflowClient(tracking_uri=deployment.tracking_uri, registry_uri=deployment.tracking_uri)
        _register(client)
        ensure_webhook(client, "benchmark", running.url, SECRET)
        time.sleep(deployment.settings.webhook_cache_ttl_seconds + 1)  # no stale empty cache entry

        from_return: list[float] = []
        from_start: list[float] = []
        call: list[float] = []
        lost = 0
        for index in range(changes):
            expected = api.count() + 1
            started = time.perf_counter()
            client.set_registered_model_alias(MODEL, "champion", str(index % 2 + 1))
            returned = time.perf_counter()
            try:
                arrived = api.wait_for(expected, timeout)[expected - 1].arrived
            except TimeoutError:
                lost += 1
                continue
            from_return.append(arrived - returned)
            from_start.append(arrived - started)
            call.append(returned - started)
        time.sleep(1.0)
        return {
            "changes": changes,
            "requests": api.count(),
            "lost": lost,
            "from_return": from_return,
            "from_start": from_start,
            "call": call,
            "workers": deployment.settings.workers,
            "cache_ttl": deployment.settings.webhook_cache_ttl_seconds,
        }


def render(result: dict[str, object], resync_seconds: int) -> str:
    def row(name: str, values: list[float]) -> str:
        ms = [v * 1000 for v in values]
        return (
            f"{name:<44} p50 {percentile(ms, 50):8.1f} ms   p95 {percentile(ms, 95):8.1f} ms   "
            f"max {max(ms):8.1f} ms   mean {statistics.fmean(ms):8.1f} ms"
        )

    from_return = result["from_return"]
    from_start = result["from_start"]
    call = result["call"]
    assert isinstance(from_return, list) and isinstance(from_start, list) and isinstance(call, list)
    early = sum(1 for v in from_return if v < 0)
    p95 = percentile(from_start, 95)
    lines = [
        f"alias changes: {result['changes']}, reconcile requests received: {result['requests']}, "
        f"lost (no request within the timeout): {result['lost']}",
        f"MLflow registry role: {result['workers']} workers, MLFLOW_WEBHOOK_CACHE_TTL={result['cache_ttl']} s",
        row("set_registered_model_alias call", call),
        row("call returned → reconcile request arrived", from_return),
        row("call started  → reconcile request arrived", from_start),
        f"requests that arrived before the call returned: {early} of {len(from_return)}",
        f"goal p95 ≤ 2 s: {'met' if p95 <= 2.0 else 'NOT met'} (p95 from call start {p95 * 1000:.1f} ms)",
        f"replaces: operator resync every {resync_seconds} s (pulumiOperatorResyncSeconds) → a change waited "
        f"{resync_seconds / 2:.0f} s on average, up to {resync_seconds} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--stack", default="dev", help="committed stack whose MLflow settings are run")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for each reconcile request")
    options = parser.parse_args(argv)
    if options.changes < 1:
        parser.error("--changes must be at least 1")
    result = measure(options.changes, options.stack, options.timeout)
    print(render(result, committed_settings(options.stack).pulumi_operator_resync_seconds), flush=True)
    return 0 if result["lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
