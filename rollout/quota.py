"""Does a team's planned model delivery fit its quota? Checked before anything is declared.

A team's serving namespace has a ResourceQuota (`requests.cpu`, `requests.memory`, `pods`, from
the platform's `teams[].quota`; components/cluster/team_tenancy.py). The API server enforces it
only when a pod is created: a `pulumi up` whose SeldonDeployments cannot all be scheduled would
succeed, and the pods beyond the quota would be refused later, one ReplicaSet event at a time,
at the moment load (KEDA) or a canary needs them. So the models program compares the team's
worst case with its quota first and fails with one line naming the team, the figures and the
models, before it declares anything.

Worst case, per model: every predictor its strategy can run at once (the stable, and for every
strategy but `single` a candidate, whether or not the registry has one now: moving an alias
needs no commit, so the check must not pass today and fail at the next canary) at its largest
size (the autoscaling `maxReplicas`, else the fixed `replicas`), each replica one pod requesting:

- the `model` container: the model's `resources` (requests = limits);
- the Seldon executor (`seldon-container-engine`): Seldon Core v1.17.1's chart default
  `executor.resources` (cpuRequest 500m, memoryRequest 512Mi; the platform does not override it);
- the Istio sidecar: Istio's `global.proxy.resources.requests` (100m, 128Mi; not overridden).

The storage initializer (init container, 100m / 100Mi) needs less than these together, and a pod's
effective request is the larger of its init containers and the sum of the others, so it adds
nothing. The quota's `maxReplicas` (per model) and `models` (per stack) are checked as written.
A rolling update's surge pods are not counted: they are brief and the Deployment waits for room.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from layout.platform_outputs import TeamQuotaContract
from rollout.planner import DeploymentPlan, PlanError

EXECUTOR_REQUESTS: Final = ("500m", "512Mi")
"""Seldon Core v1.17.1 helm-charts/seldon-core-operator/values.yaml `executor.resources` requests."""
SIDECAR_REQUESTS: Final = ("100m", "128Mi")
"""Istio's istiod chart `global.proxy.resources.requests` (the injected istio-proxy)."""
SINGLE_PREDICTOR_STRATEGIES: Final = frozenset({"single"})
"""Strategies that never run a candidate beside the stable."""
_SUFFIX: Final = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
}
_QUANTITY: Final = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


class QuotaError(PlanError):
    """The team's models, at their largest, would request more than the team's quota."""


def quantity(value: str) -> Decimal:
    """A Kubernetes quantity (`500m`, `2`, `1.5Gi`) as a number of units (cores, bytes)."""
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return Decimal(match[1]) * _SUFFIX[match[2] or ""]


def cpu_text(cores: Decimal) -> str:
    return f"{cores.normalize():f}" if cores == cores.to_integral_value() else f"{int(cores * 1000)}m"


def memory_text(size: Decimal) -> str:
    gib = size / _SUFFIX["Gi"]
    return f"{gib.normalize():f}Gi" if gib == gib.to_integral_value() else f"{int(size / _SUFFIX['Mi'])}Mi"


@dataclass(frozen=True)
class ModelWorstCase:
    """One model at its largest: `predictors` x `replicas` pods, each requesting `cpu` cores and `memory` bytes."""

    model: str
    predictors: int
    replicas: int
    cpu: Decimal
    memory: Decimal

    @property
    def pods(self) -> int:
        return self.predictors * self.replicas

    def describe(self) -> str:
        return f"{self.model} {self.predictors}x{self.replicas}x({cpu_text(self.cpu)}, {memory_text(self.memory)})"


def worst_case(plan: DeploymentPlan) -> ModelWorstCase:
    """The model of `plan` at its largest (see the module docstring for what a replica requests)."""
    scaled = [p.scaling.max_replicas for p in plan.predictors if p.scaling is not None]
    replicas = max(scaled) if scaled else plan.replicas
    predictors = 1 if plan.strategy in SINGLE_PREDICTOR_STRATEGIES else max(2, len(plan.predictors))
    cpu = quantity(plan.cpu) + quantity(EXECUTOR_REQUESTS[0]) + quantity(SIDECAR_REQUESTS[0])
    memory = quantity(plan.memory) + quantity(EXECUTOR_REQUESTS[1]) + quantity(SIDECAR_REQUESTS[1])
    return ModelWorstCase(plan.model, predictors, replicas, cpu, memory)


def quota_problems(plans: Sequence[DeploymentPlan], quota: TeamQuotaContract) -> list[str]:
    """Every bound of `quota` the plans' worst case crosses, with the figures (empty: it fits)."""
    cases = [worst_case(plan) for plan in plans]
    problems = []
    if len(cases) > quota.models:
        problems.append(f"models {len(cases)} > {quota.models}")
    over = [f"{c.model} ({c.replicas})" for c in cases if c.replicas > quota.max_replicas]
    if over:
        problems.append(f"replicas per predictor above maxReplicas {quota.max_replicas}: {', '.join(over)}")
    pods = sum(c.pods for c in cases)
    cpu = sum((c.cpu * c.pods for c in cases), Decimal(0))
    memory = sum((c.memory * c.pods for c in cases), Decimal(0))
    if cpu > quantity(quota.cpu):
        problems.append(f"requests.cpu {cpu_text(cpu)} > {quota.cpu}")
    if memory > quantity(quota.memory):
        problems.append(f"requests.memory {memory_text(memory)} > {quota.memory}")
    if pods > quota.pods:
        problems.append(f"pods {pods} > {quota.pods}")
    return problems


def check_team_quota(team: str, plans: Sequence[DeploymentPlan], quota: TeamQuotaContract) -> None:
    """Raise QuotaError, one line naming the team, the crossed bounds and every model's worst case
    (predictors x replicas x per-pod requests, largest first), when the plans do not fit `quota`."""
    problems = quota_problems(plans, quota)
    if not problems:
        return
    cases = sorted((worst_case(plan) for plan in plans), key=lambda c: (-c.cpu * c.pods, c.model))
    raise QuotaError(
        f"team {team!r}: its models at their largest exceed the team's quota: {'; '.join(problems)} "
        f"[models: {', '.join(c.describe() for c in cases)}]; lower the models' autoscaling.maxReplicas, "
        "replicas or resources, or raise the team's quota in the platform's `teams`"
    )
