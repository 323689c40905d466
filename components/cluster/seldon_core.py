"""Seldon Core v1 operator and the `models` namespace its SeldonDeployments run in.

seldon-core-operator 1.17.1 is the last Apache-2.0 release of Seldon Core v1 (1.18 and later
are under the Business Source License). It runs in `seldon-system` with Istio enabled: every
SeldonDeployment gets a VirtualService on the platform gateway, with mutual TLS to the pods.
The models namespace has sidecar injection and *strict* mTLS: only meshed clients reach models
(Prometheus scrapes them with Istio certificates, see `components.cluster.monitoring`).

Predictors run the platform's own images: the model server (images/model-server: MLServer, the
MLflow runtime and the registry's MLflow) is the operator's predictor server for `MLFLOW_SERVER`
on protocol v2, and the storage initializer (images/storage-initializer: rclone >= 1.63 with
workload identity) its default initializer. Seldon's defaults (MLServer 1.3.5 on Python 3.8,
rclone 1.59) can neither load MLflow 3 models nor authenticate without a storage key.

Pod Security of the models namespace (`MODELS_POD_SECURITY`): it *enforces* `privileged`, and warns
and audits at `baseline`. Neither stricter profile admits a predictor pod as this platform builds it:
- `baseline` forbids added capabilities other than its short list. Sidecar injection without the
  Istio CNI plugin (istiod's `istio_cni.enabled` is false here, and no `cni` chart is installed)
  adds `istio-init`, which runs as root with NET_ADMIN and NET_RAW to write the pod's iptables
  rules (istio-discovery's injection template; Istio's "Install Istio with Pod Security Admission"
  requires the CNI plugin for `baseline`). Enforcing `baseline` would reject every predictor pod.
- `restricted` also needs `allowPrivilegeEscalation: false`, all capabilities dropped and a seccomp
  profile on every container. Seldon Core 1.17.1 injects the executor (`seldon-container-engine`,
  only `runAsUser` from `executor.user`) and the storage initializer (no securityContext at all)
  itself (seldondeployment_engine.go, model_initializer_injector.go); no SeldonDeployment field
  sets their security context. MLServer's `model` container gets only the pod's `runAsUser` 8888.
The warnings and audit events name what stands between the namespace and `baseline` (istio-init);
installing the Istio CNI plugin is the step that lets it enforce `baseline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_kubernetes as kubernetes
from pulumi_kubernetes.helm.v3 import Release, ReleaseArgs, RepositoryOptsArgs

from layout import cluster_layout, model_serving

SELDON_REPOSITORY: Final = "https://storage.googleapis.com/seldon-charts"
EXECUTOR_METRICS_PORT_NAME: Final = "metrics"
"""Name of the executor's metrics container port (same number as its HTTP port, 8000)."""
EXECUTOR_METRICS_PATH: Final = "/prometheus"
SELDON_POD_LABEL: Final = "seldon-deployment-id"
"""Label the operator puts on every pod of a SeldonDeployment."""
MODELS_POD_SECURITY: Final = {
    "pod-security.kubernetes.io/enforce": "privileged",
    "pod-security.kubernetes.io/warn": "baseline",
    "pod-security.kubernetes.io/audit": "baseline",
}
"""Pod Security admission labels of the models namespace: why not stricter, see the module docstring."""


def seldon_operator_values(
    gateway: str, model_server_image: pulumi.Input[str], storage_initializer_image: pulumi.Input[str]
) -> dict[str, Any]:
    """Istio on and pointed at the platform gateway; executor metrics where the PodMonitor looks;
    the platform's model server and storage initializer images.

    The operator builds a predictor image as `<image>:<defaultImageVersion>`, or `<image>` alone
    when the version is empty (PrepackImageName in apis/.../prepack.go, getMLServerImage in
    controllers/mlserver.go): an empty version lets a digest reference through unchanged.

    `keda.enabled` (env `KEDA_ENABLED`): the operator turns a predictor's `kedaSpec` into a KEDA
    ScaledObject (model autoscaling, `rollout/autoscaling.py`); KEDA is the AKS add-on, whose CRDs
    exist once the cluster does.
    """
    return {
        "istio": {"enabled": True, "gateway": gateway, "tlsMode": "ISTIO_MUTUAL"},
        "keda": {"enabled": True},
        "executor": {
            "metricsPortName": EXECUTOR_METRICS_PORT_NAME,
            "prometheus": {"path": EXECUTOR_METRICS_PATH},
        },
        "predictor_servers": {
            model_serving.IMPLEMENTATION: {
                "protocols": {model_serving.PROTOCOL: {"image": model_server_image, "defaultImageVersion": ""}}
            }
        },
        "storageInitializer": {"image": storage_initializer_image},
        "usageMetrics": {"enabled": False},
        "crd": {"create": True},
    }


@dataclass(frozen=True)
class SeldonCoreArgs:
    provider: kubernetes.Provider
    cluster: pulumi.Resource
    chart_version: str
    models_namespace: str
    istio_crds: pulumi.Resource
    """The Istio `base` release: the operator creates VirtualServices and DestinationRules."""
    node_pools: Sequence[pulumi.Resource]
    """User node pools: the operator's pod (and so every SeldonDeployment) runs there."""
    model_server_image: pulumi.Input[str]
    """images/model-server, by digest: the predictor server for MLFLOW_SERVER on protocol v2."""
    storage_initializer_image: pulumi.Input[str]
    """images/storage-initializer, by digest: the init container that copies every model."""


class SeldonCore(pulumi.ComponentResource):
    operator: Release
    models_namespace: pulumi.Output[str]

    def __init__(self, name: str, args: SeldonCoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:serving:SeldonCore", name, None, opts)

        def child(*depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self, provider=args.provider, deleted_with=args.cluster, depends_on=list(depends_on)
            )

        system = kubernetes.core.v1.Namespace(
            f"{name}-system-namespace",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(name=cluster_layout.SELDON_NAMESPACE),
            opts=child(),
        )
        self.operator = Release(
            f"{name}-operator",
            ReleaseArgs(
                name="seldon-core",
                chart="seldon-core-operator",
                version=args.chart_version,
                repository_opts=RepositoryOptsArgs(repo=SELDON_REPOSITORY),
                namespace=cluster_layout.SELDON_NAMESPACE,
                values=seldon_operator_values(
                    cluster_layout.PLATFORM_GATEWAY, args.model_server_image, args.storage_initializer_image
                ),
                atomic=True,
                cleanup_on_fail=True,
            ),
            opts=child(system, args.istio_crds, *args.node_pools),
        )
        models = kubernetes.core.v1.Namespace(
            f"{name}-models-namespace",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(
                name=args.models_namespace, labels={"istio-injection": "enabled", **MODELS_POD_SECURITY}
            ),
            opts=child(),
        )
        kubernetes.apiextensions.CustomResource(
            f"{name}-models-strict-mtls",
            api_version="security.istio.io/v1",
            kind="PeerAuthentication",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(name="default", namespace=args.models_namespace),
            spec={"mtls": {"mode": "STRICT"}},
            opts=child(models, args.istio_crds),
        )
        self.models_namespace = models.metadata.name
        self.register_outputs({"modelsNamespace": self.models_namespace})
