"""The Horizontal Pod Autoscaler's algorithm as a pure simulator, to show what a scaler will do.

No cluster runs here, so the declared scaling (`rollout.autoscaling`: KEDA drives an ordinary HPA
with its metric) is shown by replaying the HPA controller's own algorithm over synthetic load.
Read from kubernetes/kubernetes `pkg/controller/podautoscaler/` (stored version at commit
00067268967ec95a40035bd666374a1caf48dd1a; the functions named are unchanged in release-1.34):

- `replica_calculator.go`: `GetExternalPerPodMetricReplicas` (KEDA's Prometheus trigger with
  `AverageValue`): usage ratio = total / (target x current); within the tolerance (0.1, the
  controller flag `--horizontal-pod-autoscaler-tolerance`) nothing changes, else
  desired = ceil(total / target). `GetResourceReplicas` (CPU `Utilization`): ratio =
  utilisation / target, desired = ceil(ratio x ready pods), same tolerance.
- `horizontal.go` `computeReplicasForMetrics`: with several metrics the largest proposal wins.
- `horizontal.go` `normalizeDesiredReplicasWithBehaviors`, `stabilizeRecommendationWithBehaviors`:
  scaling up takes the *lowest* recommendation of the scale-up window, scaling down the *highest*
  of the scale-down window (recommendations are recorded every sync, each with its time);
  then `convertDesiredReplicasWithBehaviorRate` caps the change by the policies
  (`calculateScaleUpLimitWithScalingRules`: per policy, replicas at the period's start + Pods, or
  ceil(start x (1 + Percent/100)); `Max` takes the largest; `calculateScaleDownLimitWithBehaviors`:
  start - Pods or int(start x (1 - Percent/100)), `Max` the smallest count) and clamps to
  [min, max]. Scale events (replica changes with their time) are kept per direction.
- Sync period 15 s (`--horizontal-pod-autoscaler-sync-period`).

Simplifications, stated: pods are ready at once (no readiness delay, no missing-metric pods), and
a metric is read without delay; `benchmarks/autoscaling.py` adds a pod start-up time on top.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

TOLERANCE = 0.1
SYNC_SECONDS = 15

PolicyType = Literal["Pods", "Percent"]
Select = Literal["Max", "Min", "Disabled"]


@dataclass(frozen=True)
class Policy:
    type: PolicyType
    value: int
    period_seconds: int


@dataclass(frozen=True)
class Rules:
    stabilization_seconds: int
    policies: tuple[Policy, ...]
    select: Select = "Max"


@dataclass(frozen=True)
class Scaler:
    """What an HPA (KEDA's) is given: bounds, targets, behaviour."""

    min_replicas: int
    max_replicas: int
    scale_up: Rules
    scale_down: Rules
    target_requests_per_second: float | None = None
    target_cpu_percent: int | None = None


def from_keda_spec(spec: Mapping[str, Any]) -> Scaler:
    """The HPA KEDA makes of a predictor's `kedaSpec` (`rollout.autoscaling.keda_spec`): same bounds,
    behaviour and targets, read back from the declared object."""
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]

    def rules(raw: Mapping[str, Any]) -> Rules:
        policies = tuple(Policy(p["type"], int(p["value"]), int(p["periodSeconds"])) for p in raw["policies"])
        return Rules(int(raw["stabilizationWindowSeconds"]), policies, raw.get("selectPolicy", "Max"))

    rps: float | None = None
    cpu: int | None = None
    for trigger in spec["triggers"]:
        if trigger["type"] == "prometheus":
            rps = float(trigger["metadata"]["threshold"])
        elif trigger["type"] == "cpu":
            cpu = int(trigger["metadata"]["value"])
    return Scaler(
        min_replicas=int(spec["minReplicaCount"]),
        max_replicas=int(spec["maxReplicaCount"]),
        scale_up=rules(behavior["scaleUp"]),
        scale_down=rules(behavior["scaleDown"]),
        target_requests_per_second=rps,
        target_cpu_percent=cpu,
    )


@dataclass(frozen=True)
class Load:
    """One observation at a sync: the predictor's request rate, and the CPU one replica needs per request/s."""

    requests_per_second: float
    cpu_percent_per_request: float = 0.0
    """CPU (% of the request) one replica uses per request/s it serves; utilisation = this x rps / replicas."""


@dataclass
class _Event:
    change: int
    at: float


@dataclass
class HpaSimulator:
    scaler: Scaler
    replicas: int
    _recommendations: list[tuple[int, float]] = field(default_factory=list)
    _up_events: list[_Event] = field(default_factory=list)
    _down_events: list[_Event] = field(default_factory=list)

    def _proposal(self, load: Load) -> int:
        """`computeReplicasForMetrics`: the largest of each metric's proposal."""
        proposals = []
        current = self.replicas
        target = self.scaler.target_requests_per_second
        if target is not None:
            ratio = load.requests_per_second / (target * current)
            proposals.append(current if abs(1 - ratio) <= TOLERANCE else math.ceil(load.requests_per_second / target))
        cpu = self.scaler.target_cpu_percent
        if cpu is not None:
            utilisation = load.cpu_percent_per_request * load.requests_per_second / current
            ratio = utilisation / cpu
            proposals.append(current if abs(1 - ratio) <= TOLERANCE else math.ceil(ratio * current))
        return max(proposals) if proposals else current

    def _stabilise(self, desired: int, now: float) -> int:
        """`stabilizeRecommendationWithBehaviors`."""
        up, down = self.scaler.scale_up.stabilization_seconds, self.scaler.scale_down.stabilization_seconds
        if desired >= self.replicas:
            window, better = up, min
        else:
            window, better = down, max
        recommendation = desired
        for value, at in self._recommendations:
            if at > now - window:
                recommendation = better(value, recommendation)
        horizon = now - max(up, down)
        self._recommendations = [(v, t) for v, t in self._recommendations if t >= horizon]
        self._recommendations.append((desired, now))
        return recommendation

    @staticmethod
    def _changed(events: Sequence[_Event], period: int, now: float) -> int:
        """`getReplicasChangePerPeriod`."""
        return sum(e.change for e in events if e.at > now - period)

    def _rate_limit(self, desired: int, now: float) -> int:
        """`convertDesiredReplicasWithBehaviorRate` with the two limit functions, then [min, max]."""
        current, scaler = self.replicas, self.scaler
        if desired > current:
            rules = scaler.scale_up
            if rules.select == "Disabled":
                limit = current
            else:
                pick: Callable[[int, int], int] = min if rules.select == "Min" else max
                limit = 0  # upstream: `var result int32`
                for policy in rules.policies:
                    start = current - self._changed(self._up_events, policy.period_seconds, now)
                    if policy.type == "Pods":
                        proposed = start + policy.value
                    else:
                        proposed = math.ceil(start * (1 + policy.value / 100))
                    limit = pick(limit, proposed)
            limit = max(limit, current)
            return min(desired, scaler.max_replicas, limit)
        if desired < current:
            rules = scaler.scale_down
            if rules.select == "Disabled":
                limit = current
            else:
                pick = max if rules.select == "Min" else min
                limit = 2**31 - 1  # upstream: `var result int32 = math.MaxInt32`
                for policy in rules.policies:
                    start = current + self._changed(self._down_events, policy.period_seconds, now)
                    proposed = start - policy.value if policy.type == "Pods" else int(start * (1 - policy.value / 100))
                    limit = pick(limit, proposed)
            limit = min(limit, current)
            return max(desired, scaler.min_replicas, limit)
        return desired

    def sync(self, load: Load, now: float) -> int:
        """One HPA sync at time `now` (seconds): the replicas afterwards."""
        if self.replicas > self.scaler.max_replicas:  # `reconcileAutoscaler`: out of bounds → the bound
            desired = self.scaler.max_replicas
        elif self.replicas < self.scaler.min_replicas:
            desired = self.scaler.min_replicas
        else:
            desired = self._rate_limit(self._stabilise(self._proposal(load), now), now)
        if desired > self.replicas:
            self._up_events.append(_Event(desired - self.replicas, now))
        elif desired < self.replicas:
            self._down_events.append(_Event(self.replicas - desired, now))
        self.replicas = desired
        return desired


@dataclass(frozen=True)
class Sample:
    at: float
    requests_per_second: float
    replicas: int

    @property
    def per_replica(self) -> float:
        return self.requests_per_second / self.replicas


def simulate(
    scaler: Scaler | Callable[[float], Scaler],
    load: Callable[[float], Load],
    seconds: float,
    *,
    start_replicas: int | None = None,
) -> list[Sample]:
    """Replay `load(t)` for `seconds`, one HPA sync every 15 s; the replicas after each sync.

    `scaler` may change over time (a function of t): a canary's minimum follows its step.
    """
    scaler_at = scaler if callable(scaler) else (lambda _t, fixed=scaler: fixed)
    first = scaler_at(0.0)
    simulator = HpaSimulator(first, start_replicas if start_replicas is not None else first.min_replicas)
    samples = []
    steps = int(seconds // SYNC_SECONDS)
    for step in range(steps + 1):
        now = float(step * SYNC_SECONDS)
        simulator.scaler = scaler_at(now)
        observed = load(now)
        samples.append(Sample(now, observed.requests_per_second, simulator.sync(observed, now)))
    return samples


def direction_changes(samples: Sequence[Sample]) -> int:
    """How often the replica count reversed direction (up then down, or down then up): flapping."""
    changes = [b.replicas - a.replicas for a, b in itertools.pairwise(samples) if b.replicas != a.replicas]
    return sum(1 for a, b in itertools.pairwise(changes) if (a > 0) != (b > 0))
