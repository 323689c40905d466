"""Istio: CRDs (`base`), control plane (`istiod`), the ingress gateway and the platform `Gateway`.

Install order is the one Istio requires and nothing more: `istiod` after `base`, the gateway
after `istiod` (its pods are injected with the gateway template). The platform `Gateway`
(`istio-system/platform-gateway`) needs only the CRDs. It serves every host under the
platform domain over HTTPS with the certificate secret named in settings, and redirects HTTP.
MLflow, Seldon and Grafana route through it with VirtualServices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_kubernetes as kubernetes
from pulumi_kubernetes.helm.v3 import Release, ReleaseArgs, RepositoryOptsArgs

from layout import cluster_layout

ISTIO_REPOSITORY: Final = "https://istio-release.storage.googleapis.com/charts"
INGRESS_GATEWAY_RELEASE: Final = "istio-ingressgateway"
INGRESS_GATEWAY_SELECTOR: Final = {"istio": "ingressgateway"}
"""Pod labels the gateway chart gives a release named `istio-ingressgateway` (`istio: <name without istio->`)."""
AZURE_INTERNAL_LB_ANNOTATION: Final = "service.beta.kubernetes.io/azure-load-balancer-internal"
NATIVE_SIDECARS_ENV: Final = {"ENABLE_NATIVE_SIDECARS": "true"}
"""Native sidecars on, said explicitly. Istio 1.30's default `auto` turns them on only when the
pod's node (for a pod not yet scheduled: every node) runs kubelet >= 1.33, so one older node would
silently change how every predictor pod starts. With them, istio-proxy starts before the pod's own
init containers, so Seldon's storage initializer (rclone, downloading the model from Blob Storage
with its workload-identity token) runs inside the mesh and the mesh's egress rules apply to it;
without them (and without the CNI plugin, which this platform does not install) istio-init is moved
last and the download bypasses the mesh. Sidecar containers are on by default from Kubernetes
1.29 (GA in 1.33); the cluster is pinned to `aksKubernetesVersion` (1.34 in both stacks)."""


def istiod_values(high_availability: bool) -> dict[str, Any]:
    """Values of the `istiod` chart (top level: the chart's `_internal_defaults_do_not_set` are defaults)."""
    replicas = 2 if high_availability else 1
    return {
        "autoscaleMin": replicas,
        "replicaCount": replicas,
        "meshConfig": {"enablePrometheusMerge": True},
        "env": dict(NATIVE_SIDECARS_ENV),
        # The chart's PDB is `minAvailable: 1`: with one istiod (dev) no node drain could ever
        # evict it, so AKS node-image upgrades would stall on that node. Only with two or more.
        "global": {"defaultPodDisruptionBudget": {"enabled": high_availability}},
    }


def gateway_values(internal_load_balancer: bool, high_availability: bool) -> dict[str, Any]:
    """Values of the `gateway` chart: a LoadBalancer Service, internal to the VNet when asked."""
    annotations = {AZURE_INTERNAL_LB_ANNOTATION: "true"} if internal_load_balancer else {}
    return {
        "service": {"type": "LoadBalancer", "annotations": annotations},
        "autoscaling": {"enabled": True, "minReplicas": 2 if high_availability else 1, "maxReplicas": 5},
        "podDisruptionBudget": {"minAvailable": 1} if high_availability else {},
    }


def platform_gateway_spec(domain: str, tls_secret_name: str) -> dict[str, Any]:
    """HTTPS for `*.<domain>` and `<domain>` with the given certificate; HTTP only redirects."""
    hosts = [domain, f"*.{domain}"]
    return {
        "selector": dict(INGRESS_GATEWAY_SELECTOR),
        "servers": [
            {
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": hosts,
                "tls": {"mode": "SIMPLE", "credentialName": tls_secret_name, "minProtocolVersion": "TLSV1_2"},
            },
            {
                "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                "hosts": hosts,
                "tls": {"httpsRedirect": True},
            },
        ],
    }


@dataclass(frozen=True)
class IstioMeshArgs:
    provider: kubernetes.Provider
    cluster: pulumi.Resource
    """In-cluster objects are deleted with it (`deleted_with`), not one by one."""
    chart_version: str
    domain: str
    tls_secret_name: str
    internal_load_balancer: bool
    high_availability: bool
    node_pools: Sequence[pulumi.Resource]
    """User node pools: the releases' pods (istiod, gateways) have nowhere to run before them."""


class IstioMesh(pulumi.ComponentResource):
    base: Release
    """The CRDs: objects of Istio kinds depend on it."""
    istiod: Release
    """The control plane: workloads that need sidecar injection depend on it."""
    gateway_address: pulumi.Output[str | None]
    """IP of the ingress gateway's load balancer (VNet address when internal)."""

    def __init__(self, name: str, args: IstioMeshArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:serving:IstioMesh", name, None, opts)
        self._args = args
        namespace = kubernetes.core.v1.Namespace(
            f"{name}-namespace",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(name=cluster_layout.ISTIO_NAMESPACE),
            opts=self._child_opts(),
        )
        self.base = self._release(
            f"{name}-base", "base", "istio-base", {"defaultRevision": "default"}, depends_on=[namespace]
        )
        self.istiod = self._release(
            f"{name}-istiod", "istiod", "istiod", istiod_values(args.high_availability), depends_on=[self.base]
        )
        gateway = self._release(
            f"{name}-ingress-gateway",
            "gateway",
            INGRESS_GATEWAY_RELEASE,
            gateway_values(args.internal_load_balancer, args.high_availability),
            depends_on=[self.istiod],
        )
        kubernetes.apiextensions.CustomResource(
            f"{name}-platform-gateway",
            api_version="networking.istio.io/v1",
            kind="Gateway",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(
                name=cluster_layout.PLATFORM_GATEWAY_NAME, namespace=cluster_layout.ISTIO_NAMESPACE
            ),
            spec=platform_gateway_spec(args.domain, args.tls_secret_name),
            opts=self._child_opts(depends_on=[self.base]),
        )
        # The chart's Service is named after the release; read it once the release is deployed.
        service = kubernetes.core.v1.Service.get(
            f"{name}-ingress-gateway-service",
            pulumi.Output.concat(gateway.status.namespace, "/", gateway.status.name),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.gateway_address = service.status.apply(_load_balancer_ip)
        self.register_outputs({"gatewayAddress": self.gateway_address})

    def _child_opts(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self, provider=self._args.provider, deleted_with=self._args.cluster, depends_on=list(depends_on)
        )

    def _release(
        self, resource_name: str, chart: str, release_name: str, values: dict[str, Any], depends_on: list[Any]
    ) -> Release:
        return Release(
            resource_name,
            ReleaseArgs(
                name=release_name,
                chart=chart,
                version=self._args.chart_version,
                repository_opts=RepositoryOptsArgs(repo=ISTIO_REPOSITORY),
                namespace=cluster_layout.ISTIO_NAMESPACE,
                values=values,
                atomic=True,
                cleanup_on_fail=True,
            ),
            opts=self._child_opts([*depends_on, *self._args.node_pools]),
        )


def _load_balancer_ip(status: Any) -> str | None:
    ingress = getattr(getattr(status, "load_balancer", None), "ingress", None) or []
    return next((entry.ip or entry.hostname for entry in ingress if entry.ip or entry.hostname), None)
