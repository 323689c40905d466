"""Per-predictor autoscaling: what each predictor's scaler is told, as pure data.

Mechanism: KEDA, through the Seldon operator. Seldon Core v1.17.1 turns a componentSpec's
`kedaSpec` into a KEDA `ScaledObject` (keda.sh/v1alpha1) named after the predictor's Deployment
and targeting it, and then stops resetting that Deployment's replicas (operator/controllers/
seldondeployment_controller.go: `createKeda`, and `IgnoreReplicas()` when `deploymentHasKeda`).
A ScaledObject or HPA declared next to the SeldonDeployment instead would fight the operator,
which writes the predictor's `replicas` (default 1) into the Deployment on every reconcile. KEDA
itself comes from the AKS add-on (`workloadAutoScalerProfile.keda.enabled`), and the operator
acts on `kedaSpec` only with its chart value `keda.enabled` (env `KEDA_ENABLED`).

Why KEDA and not Seldon's `hpaSpec`: an HPA scales on CPU/memory out of the box, but request rate
per predictor is a Prometheus series (the executor's request counter), which an HPA reads only
through an external-metrics adapter. KEDA's Prometheus scaler is that adapter, with the PromQL in
the object itself, and it also has a CPU trigger (a `ContainerResource` metric on the `model`
container). KEDA drives an ordinary HPA, so `rollout/hpa.py` (the HPA algorithm) predicts what
happens with KEDA's metric.

Canary-aware sizing, per predictor (each has its own scaler on its own load):
- **stable** keeps the model's `minReplicas` throughout a rollout: a rollback or a promotion
  sends all traffic back to it. At the *last* canary step (the next decision is promotion, and
  the stable's own traffic may be 0) it scales on the whole model's traffic instead of its own:
  the pre-scale step, so the promoted version rolls into a stable sized for the full load.
- **canary / A/B candidate** at share s: minimum `ceil(minReplicas x s / 100)` (at least 1): a
  10 % canary does not hold the stable's pods; its own request rate scales it above that.
- **shadow / mirrored candidate**: the mirrored share is its traffic (the executor counts
  mirrored requests under its predictor name), so the same rule with s = the mirror percent.
- A candidate without traffic yet (held before a gate) keeps 1 warm replica.
The maximum is the model's `maxReplicas` for every predictor: load decides within it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

from observability import promql
from settings.rollout import AutoscalingSettings

SCALING_WINDOW: Final = "2m"
"""Rate window of the request-rate trigger: eight scrapes at the executor PodMonitor's 15 s interval."""
SCALE_UP_POLICIES: Final = (("Percent", 100, 15), ("Pods", 4, 15))
"""Double, or add 4 pods, every 15 s, whichever is more: the HPA's documented defaults, written out."""
SCALE_DOWN_POLICY: Final = ("Percent", 50, 60)
"""Remove at most half of the pods per minute after the stabilisation window: a slow descent."""
SELDON_LABEL_ID: Final = "seldon-deployment-id"
SELDON_LABEL_APP: Final = "app"
"""Pod labels the operator sets: the SeldonDeployment's name, and the predictor Deployment's name."""
KEDA_HPA_PREFIX: Final = "keda-hpa-"
"""KEDA names the HPA it drives `keda-hpa-<ScaledObject name>` (kedacore/keda controllers/keda/hpa.go)."""

Load = Literal["predictor", "model"]


@dataclass(frozen=True)
class PredictorScaling:
    min_replicas: int
    max_replicas: int
    target_cpu_percent: int | None
    target_requests_per_second: float | None
    scale_down_stabilization_seconds: int
    polling_interval_seconds: int
    load: Load = "predictor"
    """`model`: the pre-scale step, the stable scales on the whole model's traffic."""


def share_minimum(min_replicas: int, share_percent: int) -> int:
    """The minimum of a predictor carrying `share_percent` of the model's traffic (at least 1)."""
    return max(1, math.ceil(min_replicas * share_percent / 100))


def predictor_scaling(
    settings: AutoscalingSettings, *, role: str, share_percent: int, pre_scale: bool = False
) -> PredictorScaling:
    """Scaling of one predictor: `role` `stable` keeps the full minimum, every other follows its share."""
    minimum = settings.min_replicas if role == "stable" else share_minimum(settings.min_replicas, share_percent)
    return PredictorScaling(
        min_replicas=minimum,
        max_replicas=settings.max_replicas,
        target_cpu_percent=settings.target_cpu_percent,
        target_requests_per_second=settings.target_requests_per_second,
        scale_down_stabilization_seconds=settings.scale_down_stabilization_seconds,
        polling_interval_seconds=settings.polling_interval_seconds,
        load="model" if pre_scale and role == "stable" else "predictor",
    )


def predictor_deployment_name(deployment: str, predictor: str, container: str) -> str:
    """The Deployment Seldon v1.17.1 creates for a predictor's first componentSpec.

    `GetDeploymentName` (operator/apis/machinelearning.seldon.io/v1/seldondeployment_types.go):
    `<sdep>-<predictor>-<componentSpec index>-<container names>`; above 63 characters it becomes a
    hash, which this platform avoids (deployment names ≤ 40 characters, predictors ≤ 6).
    """
    name = f"{deployment}-{predictor}-0-{container}"
    if len(name) > 63:
        raise ValueError(f"{name!r} is longer than 63 characters: Seldon would hash it")
    return name


def trigger_query(namespace: str, deployment: str, predictor: str, load: Load, window: str = SCALING_WINDOW) -> str:
    """The request rate a predictor's scaler reads: its own, or the whole model's (pre-scale)."""
    target = promql.Target(deployment, predictor if load == "predictor" else None, namespace)
    return promql.scaling_request_rate(target, window)


def keda_spec(
    scaling: PredictorScaling,
    *,
    prometheus_url: str,
    namespace: str,
    deployment: str,
    predictor: str,
    container: str,
) -> dict[str, Any]:
    """The componentSpec `kedaSpec` (Seldon's subset of a ScaledObject spec) of one predictor."""
    triggers: list[dict[str, Any]] = []
    if scaling.target_requests_per_second is not None:
        triggers.append(
            {
                "type": "prometheus",
                "name": "requests-per-second",
                # AverageValue: the HPA divides the query's total by the replicas (the default).
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": prometheus_url,
                    "query": trigger_query(namespace, deployment, predictor, scaling.load),
                    "threshold": f"{scaling.target_requests_per_second:g}",
                },
            }
        )
    if scaling.target_cpu_percent is not None:
        triggers.append(
            {
                "type": "cpu",
                "name": "cpu",
                "metricType": "Utilization",
                "metadata": {"value": str(scaling.target_cpu_percent), "containerName": container},
            }
        )
    up = [{"type": t, "value": v, "periodSeconds": p} for t, v, p in SCALE_UP_POLICIES]
    down_type, down_value, down_period = SCALE_DOWN_POLICY
    return {
        "minReplicaCount": scaling.min_replicas,
        "maxReplicaCount": scaling.max_replicas,
        "pollingInterval": scaling.polling_interval_seconds,
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": up},
                    "scaleDown": {
                        "stabilizationWindowSeconds": scaling.scale_down_stabilization_seconds,
                        "selectPolicy": "Max",
                        "policies": [{"type": down_type, "value": down_value, "periodSeconds": down_period}],
                    },
                }
            }
        },
        "triggers": triggers,
    }


def disruption_budget(namespace: str, deployment: str, predictor_deployment: str) -> dict[str, Any]:
    """A PodDisruptionBudget (policy/v1) for one predictor's pods: one pod may go at a time.

    `maxUnavailable: 1` never blocks a node drain, also at one replica. Not Seldon's `pdbSpec`: the
    operator selects the pods of the PDB by `seldon-deployment-id` only (`createPdb`), i.e. every
    predictor of the model, so a canary's PDB and the stable's would both cover every pod, and the
    eviction API refuses to evict a pod covered by more than one PDB: drains would block.
    """
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": predictor_deployment, "namespace": namespace},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {SELDON_LABEL_ID: deployment, SELDON_LABEL_APP: predictor_deployment}},
        },
    }
