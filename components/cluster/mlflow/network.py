"""MLflow's NetworkPolicies: default deny, then the gateway, the monitoring namespace (metrics), the
automation namespace, the models namespace (artifact reads), the egress the servers need, and gc's
path to the artifacts role; and the selectors MLflow's neighbours write their own policies with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pulumi_kubernetes as k8s

from components.cluster.mlflow.pods import Scope, selector
from layout import cluster_layout
from layout.mlflow_server import PGBOUNCER_PORT, POSTGRES_PORT, ROLES, Role

WEBHOOK_SENDERS: Final[tuple[Role, ...]] = ("tracking", "registry")
"""The roles with the registry store: `layout.mlflow_server.server_command` gives them the webhook
settings, and they deliver webhooks (a test keeps the two in step)."""


def selectors() -> dict[str, k8s.meta.v1.LabelSelectorArgs]:
    """Pod selectors by name: each role, `gc`, `migrate`, `servers` (all three roles) and
    `webhook-senders`. Neighbours that admit or reach MLflow's pods use these, never copies."""
    result = {role: k8s.meta.v1.LabelSelectorArgs(match_labels=selector(role)) for role in (*ROLES, "gc", "migrate")}
    app = {cluster_layout.APP_NAME_LABEL: cluster_layout.MLFLOW_APP_LABEL_VALUE}
    result["servers"] = k8s.meta.v1.LabelSelectorArgs(match_labels=app)
    result["webhook-senders"] = k8s.meta.v1.LabelSelectorArgs(
        match_labels=app,
        match_expressions=[
            k8s.meta.v1.LabelSelectorRequirementArgs(
                key=cluster_layout.COMPONENT_LABEL, operator="In", values=list(WEBHOOK_SENDERS)
            )
        ],
    )
    return result


def from_namespace(namespace: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace})
    )


def network_policies(scope: Scope) -> None:
    args, ns = scope.args, scope.args.namespace
    port = [k8s.networking.v1.NetworkPolicyPortArgs(port=cluster_layout.MLFLOW_SERVER_PORT, protocol="TCP")]

    def policy(
        suffix: str,
        pod_selector: dict[str, str],
        ingress: Sequence[k8s.networking.v1.NetworkPolicyIngressRuleArgs] | None = None,
        egress: Sequence[k8s.networking.v1.NetworkPolicyEgressRuleArgs] | None = None,
        types: Sequence[str] = ("Ingress",),
    ) -> None:
        k8s.networking.v1.NetworkPolicy(
            f"{scope.name}-netpol-{suffix}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=suffix, namespace=ns),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_selector),
                policy_types=list(types),
                ingress=list(ingress) if ingress is not None else None,
                egress=list(egress) if egress is not None else None,
            ),
            opts=scope.opts(),
        )

    def ingress_from(
        *peers: k8s.networking.v1.NetworkPolicyPeerArgs,
    ) -> list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]:
        return [k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=list(peers), ports=port)]

    app = {cluster_layout.APP_NAME_LABEL: cluster_layout.MLFLOW_APP_LABEL_VALUE}
    policy("default-deny", {}, types=("Ingress", "Egress"))
    policy("allow-gateway", app, ingress=ingress_from(from_namespace(cluster_layout.ISTIO_NAMESPACE)))
    policy("allow-metrics", app, ingress=ingress_from(from_namespace(args.monitoring_namespace)))
    # The rollout analysis writes decisions and the operator's models workspace reads the
    # registry, both from the automation namespace, in-cluster (layout/platform_outputs.py).
    policy("allow-automation", app, ingress=ingress_from(from_namespace(cluster_layout.AUTOMATION_NAMESPACE)))
    policy(
        "allow-model-artifact-reads", selector("artifacts"), ingress=ingress_from(from_namespace(args.models_namespace))
    )
    dns = k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[from_namespace("kube-system")],
        ports=[
            k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="UDP"),
            k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="TCP"),
        ],
    )
    database = k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=args.postgres_subnet))],
        # PostgreSQL (migrations, or everything without PgBouncer) and the built-in PgBouncer.
        ports=[
            k8s.networking.v1.NetworkPolicyPortArgs(port=number, protocol="TCP")
            for number in (POSTGRES_PORT, PGBOUNCER_PORT)
        ],
    )
    # Entra ID token exchange, Key Vault and Blob storage (private endpoints or public) on 443.
    https = k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=443, protocol="TCP")]
    )
    policy("allow-server-egress", app, egress=[dns, database, https], types=("Egress",))
    # `mlflow gc` deletes artifacts through the artifacts role.
    gc_pods = k8s.networking.v1.NetworkPolicyPeerArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector("gc"))
    )
    policy("allow-gc-to-artifacts", selector("artifacts"), ingress=ingress_from(gc_pods))
    artifacts_pods = k8s.networking.v1.NetworkPolicyPeerArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector("artifacts"))
    )
    policy(
        "allow-gc-egress",
        selector("gc"),
        egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[artifacts_pods], ports=port)],
        types=("Egress",),
    )
