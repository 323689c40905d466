"""What a model's scaler does under a step, a spike, a dip and a canary at 10/50/100 %.

Not a test: figures. No cluster runs here, so the declared scaler (the `kedaSpec` the models
program writes for a stack's model, read back as the HPA KEDA makes of it) is replayed by the HPA
algorithm (`rollout/hpa.py`, the Kubernetes controller's formula, tolerance, stabilisation and
policies) over synthetic request rates, one sync every 15 s. `--startup SECONDS` adds a pod
start-up time (image pull, model download and load) before a new pod serves: the per-replica load
is then computed over ready pods only.

    .venv/bin/python -m benchmarks.autoscaling [--stack prod] [--model fraud-detector] [--startup 60]
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from rollout import autoscaling, hpa
from settings.rollout import AutoscalingSettings, RolloutSettings

ROOT = Path(__file__).resolve().parent.parent


def _settings(stack: str, model: str) -> AutoscalingSettings:
    config = yaml.safe_load((ROOT / "models" / f"Pulumi.{stack}.yaml").read_text())["config"]
    rollout = RolloutSettings.model_validate(config["mlops-models:rollout"])
    for entry in rollout.models:
        if entry.name == model and entry.autoscaling is not None:
            return entry.autoscaling
    raise SystemExit(f"model {model!r} has no autoscaling in models/Pulumi.{stack}.yaml")


def _scaler(settings: AutoscalingSettings, role: str, share: int) -> hpa.Scaler:
    scaling = autoscaling.predictor_scaling(settings, role=role, share_percent=share)
    spec = autoscaling.keda_spec(
        scaling, prometheus_url="http://prometheus", namespace="m", deployment="d", predictor=role, container="model"
    )
    return hpa.from_keda_spec(spec)


def _ready(samples: list[hpa.Sample], startup: float) -> list[int]:
    """Pods serving at each sample: a pod added at t serves from t + startup."""
    ready = []
    for sample in samples:
        earlier = [s.replicas for s in samples if s.at <= sample.at - startup]
        ready.append(min(sample.replicas, earlier[-1] if earlier else samples[0].replicas))
    return ready


def _report(name: str, samples: list[hpa.Sample], target: float, startup: float) -> None:
    ready = _ready(samples, startup)
    over = [s for s, r in zip(samples, ready, strict=True) if s.requests_per_second / r > target * 1.1]
    peak_load = max(s.requests_per_second / r for s, r in zip(samples, ready, strict=True))
    replica_minutes = sum(s.replicas for s in samples) * hpa.SYNC_SECONDS / 60
    print(
        f"{name:<34} replicas {min(s.replicas for s in samples):>2}..{max(s.replicas for s in samples):<2} "
        f"peak load/ready pod {peak_load:7.1f} req/s (target {target:g})  "
        f"over target+10% for {len(over) * hpa.SYNC_SECONDS:>4} s  "
        f"reversals {hpa.direction_changes(samples)}  pod-minutes {replica_minutes:6.1f}"
    )


def _load(profile: Callable[[float], float]) -> Callable[[float], hpa.Load]:
    return lambda t: hpa.Load(profile(t))


def _constant(value: float, _t: float) -> float:
    return value


def _curve(samples: list[hpa.Sample], every: int = 4) -> str:
    return " ".join(f"{int(s.at)}s:{s.replicas}" for s in samples[::every])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--model", default="fraud-detector")
    parser.add_argument("--startup", type=float, default=60.0, help="seconds before a new pod serves")
    args = parser.parse_args(argv)
    settings = _settings(args.stack, args.model)
    target = settings.target_requests_per_second or 0.0
    if not target:
        raise SystemExit("the benchmark drives the request-rate target; this model scales on CPU only")
    base = target * settings.min_replicas * 0.8
    scenarios: dict[str, tuple[Callable[[float], float], float, int | None]] = {
        "step x4 at 5m": (lambda t: base if t < 300 else base * 4, 1800, None),
        "spike x8 for 2m at 5m": (lambda t: base * 8 if 300 <= t < 420 else base, 2400, None),
        "dip to 20% for 4m (warm)": (lambda t: base * 0.8 if 600 <= t < 840 else base * 4, 1800, None),
        "dip to 20% for 15m (warm)": (lambda t: base * 0.8 if 600 <= t < 1500 else base * 4, 2700, None),
    }
    print(
        f"{args.model} in {args.stack}: minReplicas {settings.min_replicas}, maxReplicas {settings.max_replicas}, "
        f"target {target:g} req/s per replica, scale-down window {settings.scale_down_stabilization_seconds} s, "
        f"pod start-up {args.startup:g} s; base load {base:g} req/s"
    )
    for name, (profile, seconds, start) in scenarios.items():
        scaler = _scaler(settings, "stable", 100)
        warm = math.ceil(base * 4 / target) if "warm" in name else start
        samples = hpa.simulate(scaler, _load(profile), seconds, start_replicas=warm)
        _report(name, samples, target, args.startup)
        print("    " + _curve(samples))
    total = base * 4
    for share in (10, 50, 100):
        canary = hpa.simulate(
            _scaler(settings, "canary", share), _load(functools.partial(_constant, total * share / 100)), 900
        )
        _report(f"canary at {share:>3}% of {total:g} req/s", canary, target, args.startup)
        print("    " + _curve(canary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
