"""The webhook receiver's network walls (split out of components/cluster/webhook_receiver.py, which
declares them as its children: same names, same parent, so the same URNs).

- in the automation namespace, only MLflow's webhook senders reach the receiver, and the receiver
  reaches only DNS and the API server (443);
- in MLflow's namespace, which denies everything else by default: egress from the senders to the
  receiver, and ingress from the registration Job to the registry role.

Team webhooks change nothing here: every team's deliveries come from the same MLflow servers (one
webhook per workspace, `/hooks/<team>` on the same receiver).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from layout import cluster_layout

RECEIVER: Final = "webhook-receiver"
REGISTRAR: Final = "webhook-registrar"
RECEIVER_PORT: Final = 8080
PART_OF: Final = "mlops-platform"


def labels(name: str) -> dict[str, str]:
    return {cluster_layout.APP_NAME_LABEL: name, "app.kubernetes.io/part-of": PART_OF}


def _namespace_is(namespace: str) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace})


def policy_specs(
    namespace: str, mlflow_namespace: str, mlflow_selectors: Mapping[str, k8s.meta.v1.LabelSelectorArgs]
) -> dict[tuple[str, str], k8s.networking.v1.NetworkPolicySpecArgs]:
    """(namespace, policy name) → spec."""
    mlflow_servers = mlflow_selectors["webhook-senders"]
    receiver_port = [k8s.networking.v1.NetworkPolicyPortArgs(port=RECEIVER_PORT, protocol="TCP")]
    mlflow_port = [k8s.networking.v1.NetworkPolicyPortArgs(port=cluster_layout.MLFLOW_SERVER_PORT, protocol="TCP")]
    return {
        # Only MLflow's servers reach the receiver.
        (namespace, "webhook-receiver-ingress"): k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels(RECEIVER)),
            policy_types=["Ingress", "Egress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            namespace_selector=_namespace_is(mlflow_namespace), pod_selector=mlflow_servers
                        )
                    ],
                    ports=receiver_port,
                )
            ],
            # DNS, and the API server (443 through the kubernetes Service).
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=_namespace_is("kube-system"))],
                    ports=[
                        k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="UDP"),
                        k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="TCP"),
                    ],
                ),
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=443, protocol="TCP")]
                ),
            ],
        ),
        # MLflow's namespace denies all egress by default: let its servers deliver.
        (mlflow_namespace, "allow-webhook-delivery"): k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=mlflow_servers,
            policy_types=["Egress"],
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            namespace_selector=_namespace_is(namespace),
                            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels(RECEIVER)),
                        )
                    ],
                    ports=receiver_port,
                )
            ],
        ),
        # ... and admits the registration Job to the registry role.
        (mlflow_namespace, "allow-webhook-registrar"): k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=mlflow_selectors["registry"],
            policy_types=["Ingress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            namespace_selector=_namespace_is(namespace),
                            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels(REGISTRAR)),
                        )
                    ],
                    ports=mlflow_port,
                )
            ],
        ),
    }


def declare_network_policies(
    name: str,
    *,
    namespace: str,
    mlflow_namespace: str,
    mlflow_selectors: Mapping[str, k8s.meta.v1.LabelSelectorArgs],
    automation: pulumi.Resource,
    mlflow: Sequence[pulumi.Resource],
    opts: Callable[[Sequence[pulumi.Resource]], pulumi.ResourceOptions],
) -> None:
    """The policies as `<name>-netpol-<policy>`; `opts` gives the owning component's options (parent,
    provider) for a dependency list. Policies in MLflow's namespace wait for MLflow too."""
    for (policy_namespace, policy_name), spec in policy_specs(namespace, mlflow_namespace, mlflow_selectors).items():
        k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol-{policy_name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=policy_name, namespace=policy_namespace, labels=labels(RECEIVER)),
            spec=spec,
            opts=opts([automation, *mlflow] if policy_namespace == mlflow_namespace else [automation]),
        )
