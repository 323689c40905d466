"""Prometheus scrapes of MLflow: a PodMonitor per role that copies `app.kubernetes.io/component`
into the `role` label, authenticated as the admin (basic-auth protects `/metrics` too)."""

from __future__ import annotations

from typing import Final

import pulumi_kubernetes as k8s

from components.cluster.mlflow.pods import Scope, labels, selector
from layout import cluster_layout
from layout.mlflow_server import ROLES, service_name

METRICS_CREDENTIALS_SECRET: Final = "mlflow-metrics-username"
METRICS_PASSWORD_SECRET: Final = "mlflow-metrics-password"
"""The one Secret the CSI driver syncs in the namespace: the admin password Prometheus scrapes
`/metrics` with (PodMonitor basic-auth reads Secrets only). No pod reads it."""


def metrics_password_secret_objects() -> list[dict[str, object]]:
    """`secretObjects` of the server identity's SecretProviderClass: synced while a tracking or
    registry pod mounts the class; the admin password is a bootstrap credential (not rotated), so
    one fixed name serves every generation."""
    return [
        {
            "secretName": METRICS_PASSWORD_SECRET,
            "type": "Opaque",
            "data": [{"objectName": cluster_layout.MLFLOW_ADMIN_PASSWORD, "key": cluster_layout.MLFLOW_ADMIN_PASSWORD}],
        }
    ]


def pod_monitors(scope: Scope) -> None:
    args, ns = scope.args, scope.args.namespace
    # Prometheus scrapes as the admin (the password in the CSI-synced Secret); the user name
    # is not secret but PodMonitor reads it from a Secret.
    k8s.core.v1.Secret(
        f"{scope.name}-metrics-username",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=METRICS_CREDENTIALS_SECRET, namespace=ns),
        type="Opaque",
        string_data={"username": args.server.admin_username},
        opts=scope.opts(),
    )
    component = "__meta_kubernetes_pod_label_" + "".join(
        c if c.isalnum() else "_" for c in cluster_layout.COMPONENT_LABEL
    )
    for role in ROLES:
        k8s.apiextensions.CustomResource(
            f"{scope.name}-{role}-pod-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service_name(role), namespace=ns, labels=labels(role)),
            spec={
                "selector": {"matchLabels": selector(role)},
                "namespaceSelector": {"matchNames": [ns]},
                "podMetricsEndpoints": [
                    {
                        "port": cluster_layout.MLFLOW_METRICS_PORT_NAME,
                        "path": "/metrics",
                        "interval": "30s",
                        # basic-auth protects /metrics too.
                        "basicAuth": {
                            "username": {"name": METRICS_CREDENTIALS_SECRET, "key": "username"},
                            "password": {"name": METRICS_PASSWORD_SECRET, "key": cluster_layout.MLFLOW_ADMIN_PASSWORD},
                        },
                        "relabelings": [
                            {
                                "sourceLabels": [component],
                                "targetLabel": cluster_layout.MLFLOW_ROLE_METRIC_LABEL,
                                "action": "replace",
                            }
                        ],
                    }
                ],
            },
            opts=scope.opts(depends_on=[args.monitoring_crds]),
        )
