"""The gateway's certificate, issued and renewed in the cluster: cert-manager, ACME DNS-01 on Azure DNS.

- The jetstack `cert-manager` chart (pinned) with its CRDs, in namespace `cert-manager`; the
  controller pod carries the workload-identity label, and its service account is federated with
  its own user-assigned identity, which holds *DNS Zone Contributor* on the public zone only.
- A ClusterIssuer orders from an ACME directory (Let's Encrypt by default) and answers DNS-01
  challenges by writing TXT records in the public zone (`azureDNS` solver, `managedIdentity`
  client id: workload identity, no secret). DNS-01 works for prod's internal load balancer too:
  the CA never has to reach the gateway.
- The controller checks challenge propagation against public resolvers only
  (`dns01RecursiveNameservers`): inside the VNet the domain resolves through the private zone
  (split horizon), which does not carry the challenge records, so the self-check would otherwise
  wait forever.
- A Certificate for `<domain>` and `*.<domain>` whose Secret is the one the Istio Gateway serves
  (`gatewayTlsSecretName` in `istio-system`); cert-manager renews it 30 days before expiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_kubernetes as kubernetes
from pulumi_kubernetes.helm.v3 import Release, ReleaseArgs, RepositoryOptsArgs

from components.cluster.workload_identity import PodIdentity
from layout import cluster_layout

CERT_MANAGER_REPOSITORY: Final = "https://charts.jetstack.io"
CERT_MANAGER_RELEASE: Final = "cert-manager"
CLUSTER_ISSUER: Final = "acme-azure-dns"
PUBLIC_RESOLVERS: Final = "1.1.1.1:53,8.8.8.8:53"
"""Resolvers of the DNS-01 self-check: public, so the private (split-horizon) zone is not consulted."""
AZURE_ENVIRONMENT: Final = "AzurePublicCloud"


def _resources(cpu: str, memory: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": "500m", "memory": "256Mi"}}


def cert_manager_values(high_availability: bool) -> dict[str, Any]:
    """Values of the jetstack chart; every path is in `schemas/cert-manager-v1.19.1.values-subset.yaml`."""
    replicas = 2 if high_availability else 1
    return {
        "crds": {"enabled": True, "keep": True},
        "replicaCount": replicas,
        # A budget only with a replica to spare: one replica under `minAvailable: 1` blocks drains.
        "podDisruptionBudget": {"enabled": high_availability},
        "podLabels": {cluster_layout.WORKLOAD_IDENTITY_USE: "true"},
        "dns01RecursiveNameservers": PUBLIC_RESOLVERS,
        "dns01RecursiveNameserversOnly": True,
        "resources": _resources("50m", "128Mi"),
        "webhook": {
            "replicaCount": replicas,
            "podDisruptionBudget": {"enabled": high_availability},
            "resources": _resources("20m", "64Mi"),
        },
        "cainjector": {
            "replicaCount": replicas,
            "podDisruptionBudget": {"enabled": high_availability},
            "resources": _resources("20m", "128Mi"),
        },
        "startupapicheck": {"resources": _resources("10m", "64Mi")},
    }


def cluster_issuer_spec(
    *, acme_server: str, acme_email: str, subscription_id: str, zone_resource_group: str, zone: str, client_id: str
) -> dict[str, Any]:
    """ACME with the Azure DNS DNS-01 solver, authenticated by workload identity (no secret)."""
    acme: dict[str, Any] = {
        "server": acme_server,
        "privateKeySecretRef": {"name": f"{CLUSTER_ISSUER}-account-key"},
        "solvers": [
            {
                "dns01": {
                    "azureDNS": {
                        "subscriptionID": subscription_id,
                        "resourceGroupName": zone_resource_group,
                        "hostedZoneName": zone,
                        "environment": AZURE_ENVIRONMENT,
                        "managedIdentity": {"clientID": client_id},
                    }
                }
            }
        ],
    }
    if acme_email:
        acme["email"] = acme_email
    return {"acme": acme}


def gateway_certificate_spec(domain: str, secret_name: str) -> dict[str, Any]:
    """`<domain>` and `*.<domain>` (every platform host) into the Secret the Gateway serves."""
    return {
        "secretName": secret_name,
        "dnsNames": [domain, f"*.{domain}"],
        "issuerRef": {"name": CLUSTER_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"},
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "duration": "2160h",
        "renewBefore": "720h",
    }


@dataclass(frozen=True)
class GatewayCertificateArgs:
    provider: kubernetes.Provider
    cluster: pulumi.Resource
    chart_version: str
    high_availability: bool
    domain: str
    tls_secret_name: str
    acme_server: str
    acme_email: str
    subscription_id: pulumi.Input[str]
    zone_name: str
    zone_resource_group: pulumi.Input[str]
    identity: PodIdentity
    """cert-manager's workload identity (DNS Zone Contributor on the zone); its federated credential
    and DNS role assignment (`ready`): the first challenge needs both."""
    node_pools: Sequence[pulumi.Resource]
    """User node pools: the release's pods (an atomic release) have nowhere to run before them."""


class GatewayCertificate(pulumi.ComponentResource):
    release: Release
    secret_name: str

    def __init__(self, name: str, args: GatewayCertificateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:cluster:GatewayCertificate", name, None, opts)
        k8s = pulumi.ResourceOptions(parent=self, provider=args.provider, deleted_with=args.cluster)
        self.release = Release(
            f"{name}-cert-manager",
            ReleaseArgs(
                name=CERT_MANAGER_RELEASE,
                chart="cert-manager",
                version=args.chart_version,
                repository_opts=RepositoryOptsArgs(repo=CERT_MANAGER_REPOSITORY),
                namespace=cluster_layout.CERT_MANAGER_NAMESPACE,
                create_namespace=True,
                atomic=True,
                values=cert_manager_values(args.high_availability),
            ),
            opts=pulumi.ResourceOptions.merge(k8s, pulumi.ResourceOptions(depends_on=list(args.node_pools))),
        )
        # The issuer needs the CRDs (the release) and a working token exchange for its solver.
        issuer_deps: list[pulumi.Resource] = [self.release, *args.identity.ready]
        issuer = kubernetes.apiextensions.CustomResource(
            f"{name}-cluster-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(name=CLUSTER_ISSUER),
            spec=pulumi.Output.all(args.subscription_id, args.zone_resource_group, args.identity.client_id).apply(
                lambda v: cluster_issuer_spec(
                    acme_server=args.acme_server,
                    acme_email=args.acme_email,
                    subscription_id=v[0],
                    zone_resource_group=v[1],
                    zone=args.zone_name,
                    client_id=v[2],
                )
            ),
            opts=pulumi.ResourceOptions.merge(k8s, pulumi.ResourceOptions(depends_on=issuer_deps)),
        )
        self.secret_name = args.tls_secret_name
        kubernetes.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(
                name=args.tls_secret_name, namespace=cluster_layout.ISTIO_NAMESPACE
            ),
            spec=gateway_certificate_spec(args.domain, args.tls_secret_name),
            opts=pulumi.ResourceOptions.merge(k8s, pulumi.ResourceOptions(depends_on=[self.release, issuer])),
        )
        self.register_outputs({"secretName": self.secret_name})
