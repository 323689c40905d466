"""kube-prometheus-stack with the platform's scraping, alerts and dashboards, all as code.

- Prometheus keeps `retention_days` of metrics on a persistent volume; Alertmanager too.
  Every PodMonitor, ServiceMonitor and PrometheusRule in the cluster is picked up (no
  `release` label needed), so other components (MLflow) only declare their monitors.
- Models run under strict mTLS. Prometheus gets an Istio sidecar that only writes its workload
  certificate to a shared in-memory volume (no traffic interception), and the scrape class
  `ISTIO_MTLS_SCRAPE_CLASS` presents it: Istio's documented way for Prometheus to scrape meshed
  pods without weakening mTLS.
- Grafana's admin credentials come from Key Vault: the SecretProviderClass syncs the Key Vault
  secrets into the Kubernetes Secret `GRAFANA_ADMIN_SECRET` while a pod mounts them. The chart
  only takes an existing Secret (`grafana.admin.existingSecret`), so a tiny pod running as the
  workload-identity service account `grafana` keeps the mount (and the Secret) alive; Grafana
  is installed after it is Ready, i.e. after the Secret exists.
- Dashboards (`observability.dashboards`) are ConfigMaps labelled for Grafana's sidecar;
  rules (`observability.alerts`) are one PrometheusRule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_kubernetes as kubernetes
from pulumi_kubernetes.helm.v3 import Release, ReleaseArgs, RepositoryOptsArgs

from components.cluster.pod_security import restricted_container, restricted_pod
from components.cluster.seldon_core import EXECUTOR_METRICS_PATH, EXECUTOR_METRICS_PORT_NAME, SELDON_POD_LABEL
from components.cluster.workload_identity import (
    KeyVault,
    PodIdentity,
    secret_provider_class,
    secrets_mount,
    secrets_volume,
    service_account,
    uses_identity,
)
from layout import cluster_layout
from layout.images import DIGEST_PULL_POLICY, UPSTREAM_IMAGES
from observability import alerts, dashboards, stack_metrics

KUBE_PROMETHEUS_STACK_REPOSITORY: Final = "https://prometheus-community.github.io/helm-charts"
RELEASE_NAME: Final = "kube-prometheus-stack"
PROMETHEUS_SERVICE: Final = f"{RELEASE_NAME}-prometheus"
GRAFANA_SERVICE: Final = f"{RELEASE_NAME}-grafana"
ISTIO_MTLS_SCRAPE_CLASS: Final = "istio-mtls"
"""Scrape class for PodMonitors/ServiceMonitors of meshed pods under strict mTLS."""
GRAFANA_ADMIN_SECRET: Final = "grafana-admin"
GRAFANA_USER_KEY: Final = "admin-user"
GRAFANA_PASSWORD_KEY: Final = "admin-password"
DASHBOARD_LABEL: Final = "grafana_dashboard"
SECRET_SYNC_IMAGE: Final = UPSTREAM_IMAGES["pause"]
_ISTIO_CERTS_VOLUME: Final = "istio-certs"
_PROM_CERTS_DIR: Final = "/etc/prom-certs"


def prometheus_url(namespace: str = cluster_layout.MONITORING_NAMESPACE) -> str:
    """In-cluster URL of Prometheus' API (the rollout analysis CLI queries it)."""
    return f"http://{PROMETHEUS_SERVICE}.{namespace}.svc.cluster.local:9090"


def _volume_claim(storage_class: str, size_gb: int) -> dict[str, Any]:
    return {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": storage_class,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{size_gb}Gi"}},
            }
        }
    }


def istio_certificate_pod_metadata() -> dict[str, Any]:
    """Inject an Istio sidecar that writes certificates for Prometheus and intercepts nothing."""
    return {
        "labels": {"sidecar.istio.io/inject": "true"},
        "annotations": {
            "traffic.sidecar.istio.io/includeInboundPorts": "",
            "traffic.sidecar.istio.io/includeOutboundIPRanges": "",
            "proxy.istio.io/config": json.dumps({"proxyMetadata": {"OUTPUT_CERTS": "/etc/istio-output-certs"}}),
            "sidecar.istio.io/userVolumeMount": json.dumps(
                [{"name": _ISTIO_CERTS_VOLUME, "mountPath": "/etc/istio-output-certs"}]
            ),
        },
    }


@dataclass(frozen=True)
class MonitoringValues:
    retention_days: int
    prometheus_storage_gb: int
    alertmanager_storage_gb: int
    storage_class: str
    high_availability: bool
    domain: str


AKS_HIDDEN_COMPONENTS: Final = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")
"""Components the chart scrapes by default that an AKS cluster does not expose: the controller
manager, scheduler and etcd run in the managed control plane, and the Cilium dataplane replaces
kube-proxy. Scraping them yields `up == 0` targets, or none at all, and their `*Down` alerts fire
forever on a healthy cluster."""
AKS_HIDDEN_RULE_GROUPS: Final = (
    "kubeControllerManager",
    "kubeSchedulerAlerting",
    "kubeSchedulerRecording",
    "etcd",
    "kubeProxy",
)
"""`defaultRules.rules` groups about those components (alerts and recordings), off with them."""


def aks_control_plane_values() -> dict[str, Any]:
    """No scraping of, and no rules about, what AKS hides; the API server and kubelets stay."""
    return {
        **{component: {"enabled": False} for component in AKS_HIDDEN_COMPONENTS},
        "defaultRules": {"rules": {group: False for group in AKS_HIDDEN_RULE_GROUPS}},
    }


def kube_prometheus_stack_values(v: MonitoringValues) -> dict[str, Any]:
    """Values of kube-prometheus-stack; every path exists in the chart's defaults."""
    replicas = 2 if v.high_availability else 1
    return {
        "fullnameOverride": RELEASE_NAME,
        "crds": {"enabled": True},
        **aks_control_plane_values(),
        "prometheus": {
            "prometheusSpec": {
                "replicas": replicas,
                "retention": f"{v.retention_days}d",
                "storageSpec": _volume_claim(v.storage_class, v.prometheus_storage_gb),
                "podMonitorSelectorNilUsesHelmValues": False,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "probeSelectorNilUsesHelmValues": False,
                "podMetadata": istio_certificate_pod_metadata(),
                "volumes": [{"name": _ISTIO_CERTS_VOLUME, "emptyDir": {"medium": "Memory"}}],
                "volumeMounts": [{"name": _ISTIO_CERTS_VOLUME, "mountPath": _PROM_CERTS_DIR}],
                "scrapeClasses": [
                    {
                        "name": ISTIO_MTLS_SCRAPE_CLASS,
                        "tlsConfig": {
                            "caFile": f"{_PROM_CERTS_DIR}/root-cert.pem",
                            "certFile": f"{_PROM_CERTS_DIR}/cert-chain.pem",
                            "keyFile": f"{_PROM_CERTS_DIR}/key.pem",
                            # Workload certificates name SPIFFE ids, not host names.
                            "insecureSkipVerify": True,
                        },
                    }
                ],
            }
        },
        "alertmanager": {
            "alertmanagerSpec": {
                "replicas": replicas,
                "storage": _volume_claim(v.storage_class, v.alertmanager_storage_gb),
            }
        },
        "grafana": {
            "enabled": True,
            "admin": {
                "existingSecret": GRAFANA_ADMIN_SECRET,
                "userKey": GRAFANA_USER_KEY,
                "passwordKey": GRAFANA_PASSWORD_KEY,
            },
            "defaultDashboardsEnabled": True,
            "sidecar": {
                "dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1", "searchNamespace": "ALL"}
            },
        },
    }


def release_values(args: MonitoringArgs) -> dict[str, Any]:
    """The chart's values; with Stacks to watch, kube-state-metrics exports their `Stalled` condition."""
    values = kube_prometheus_stack_values(args.values)
    if args.watched_stacks:
        values["kube-state-metrics"] = stack_metrics.kube_state_metrics_values()
    return values


GRAFANA_SECRETS: Final = (cluster_layout.GRAFANA_ADMIN_USER, cluster_layout.GRAFANA_ADMIN_PASSWORD)
"""Key Vault secrets (workload identity of `grafana`) → files in the pod → Kubernetes Secret `grafana-admin`."""


def grafana_secret_objects() -> list[dict[str, Any]]:
    """`secretObjects` of Grafana's SecretProviderClass: the chart reads only the Secret."""
    return [
        {
            "secretName": GRAFANA_ADMIN_SECRET,
            "type": "Opaque",
            "data": [
                {"objectName": cluster_layout.GRAFANA_ADMIN_USER, "key": GRAFANA_USER_KEY},
                {"objectName": cluster_layout.GRAFANA_ADMIN_PASSWORD, "key": GRAFANA_PASSWORD_KEY},
            ],
        }
    ]


def executor_pod_monitor_spec(models_namespace: str) -> dict[str, Any]:
    """Every Seldon pod in the models namespace, on the ports the operator names `metrics`."""
    return {
        "selector": {"matchExpressions": [{"key": SELDON_POD_LABEL, "operator": "Exists"}]},
        "namespaceSelector": {"matchNames": [models_namespace]},
        "scrapeClass": ISTIO_MTLS_SCRAPE_CLASS,
        "podMetricsEndpoints": [
            {"port": EXECUTOR_METRICS_PORT_NAME, "path": EXECUTOR_METRICS_PATH, "scheme": "https", "interval": "15s"}
        ],
    }


@dataclass(frozen=True)
class MonitoringArgs:
    provider: kubernetes.Provider
    cluster: pulumi.Resource
    chart_version: str
    values: MonitoringValues
    models_namespace: str
    mlflow_namespace: str
    vault_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    grafana_identity: PodIdentity
    """The `grafana` identity: the secret-sync pod reads the admin credentials with it, after its
    federated credential and Key Vault grants exist."""
    istio_crds: pulumi.Resource
    """Istio `base`: the Grafana VirtualService is an Istio object."""
    istiod: pulumi.Resource
    """Prometheus pods need sidecar injection for their mTLS certificates."""
    node_pools: Sequence[pulumi.Resource]
    """User node pools: the chart's pods and the secret-sync pod run there."""
    thresholds: alerts.AlertThresholds = field(default_factory=alerts.AlertThresholds)
    declared_predictors: Sequence[alerts.DeclaredPredictor] = ()
    watched_stacks: alerts.WatchedStacks | None = None
    """Operator Stacks alerted on when failing or stalled (their operator's monitor is declared by its
    owner); kube-state-metrics then also exports the Stacks' conditions."""


class Monitoring(pulumi.ComponentResource):
    release: Release
    grafana_url: str
    prometheus_url: str

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:observability:Monitoring", name, None, opts)
        ns = cluster_layout.MONITORING_NAMESPACE

        def child(*depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self, provider=args.provider, deleted_with=args.cluster, depends_on=list(depends_on)
            )

        def meta(object_name: str, **extra: Any) -> kubernetes.meta.v1.ObjectMetaArgs:
            return kubernetes.meta.v1.ObjectMetaArgs(name=object_name, namespace=ns, **extra)

        namespace = kubernetes.core.v1.Namespace(
            f"{name}-namespace", metadata=kubernetes.meta.v1.ObjectMetaArgs(name=ns), opts=child()
        )
        account = cluster_layout.workload_service_account("grafana")
        service_account_resource = service_account(
            f"{name}-grafana-service-account",
            name=account.service_account,
            namespace=ns,
            identity=args.grafana_identity,
            opts=child(namespace),
        )
        secret_provider = secret_provider_class(
            f"{name}-grafana-secret-provider",
            name=GRAFANA_ADMIN_SECRET,
            namespace=ns,
            identity=args.grafana_identity,
            vault=KeyVault(args.vault_name, args.tenant_id),
            secrets=GRAFANA_SECRETS,
            secret_objects=grafana_secret_objects(),
            opts=child(namespace),
        )
        secret_sync = self._secret_sync_deployment(
            name,
            meta,
            child(service_account_resource, secret_provider, *args.node_pools, *args.grafana_identity.ready),
        )
        self.release = Release(
            f"{name}-kube-prometheus-stack",
            ReleaseArgs(
                name=RELEASE_NAME,
                chart="kube-prometheus-stack",
                version=args.chart_version,
                repository_opts=RepositoryOptsArgs(repo=KUBE_PROMETHEUS_STACK_REPOSITORY),
                namespace=ns,
                values=release_values(args),
                atomic=True,
                cleanup_on_fail=True,
                timeout=900,
            ),
            opts=child(namespace, secret_sync, args.istiod, *args.node_pools),
        )
        kubernetes.apiextensions.CustomResource(
            f"{name}-seldon-executors",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata=meta("seldon-executors"),
            spec=executor_pod_monitor_spec(args.models_namespace),
            opts=child(self.release),
        )
        kubernetes.apiextensions.CustomResource(
            f"{name}-platform-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=meta("mlops-platform"),
            spec={
                "groups": alerts.rule_groups(
                    args.thresholds,
                    args.mlflow_namespace,
                    cluster_layout.MLFLOW_ROLES,
                    args.declared_predictors,
                    args.watched_stacks,
                )
            },
            opts=child(self.release),
        )
        for filename, dashboard in dashboards.platform_dashboards(
            args.mlflow_namespace, cluster_layout.MLFLOW_ROLES
        ).items():
            stem = filename.removesuffix(".json")
            kubernetes.core.v1.ConfigMap(
                f"{name}-dashboard-{stem}",
                metadata=meta(f"dashboard-{stem}", labels={DASHBOARD_LABEL: "1"}),
                data={filename: json.dumps(dashboard, indent=2, sort_keys=True)},
                opts=child(namespace),
            )
        grafana_host = cluster_layout.public_host("grafana", args.values.domain)
        grafana_service = f"{GRAFANA_SERVICE}.{ns}.svc.cluster.local"
        kubernetes.apiextensions.CustomResource(
            f"{name}-grafana-route",
            api_version="networking.istio.io/v1",
            kind="VirtualService",
            metadata=meta("grafana"),
            spec={
                "hosts": [grafana_host],
                "gateways": [cluster_layout.PLATFORM_GATEWAY],
                "http": [{"route": [{"destination": {"host": grafana_service, "port": {"number": 80}}}]}],
            },
            opts=child(namespace, args.istio_crds),
        )
        self.grafana_url = f"https://{grafana_host}"
        self.prometheus_url = prometheus_url(ns)
        self.register_outputs({"grafanaUrl": self.grafana_url, "prometheusUrl": self.prometheus_url})

    def _secret_sync_deployment(
        self, name: str, meta: Callable[..., kubernetes.meta.v1.ObjectMetaArgs], opts: pulumi.ResourceOptions
    ) -> kubernetes.apps.v1.Deployment:
        """A pause container mounting the Key Vault secrets: while it runs, `grafana-admin` exists."""
        labels = {cluster_layout.APP_NAME_LABEL: "grafana-secret-sync"}
        return kubernetes.apps.v1.Deployment(
            f"{name}-grafana-secret-sync",
            metadata=meta(
                "grafana-secret-sync",
                labels=labels,
                annotations={
                    "policy.mlops.io/no-probes": "a pause container only holds the Key Vault CSI mount; "
                    "it serves nothing to probe"
                },
            ),
            spec=kubernetes.apps.v1.DeploymentSpecArgs(
                replicas=1,
                selector=kubernetes.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=kubernetes.core.v1.PodTemplateSpecArgs(
                    metadata=kubernetes.meta.v1.ObjectMetaArgs(labels=uses_identity(labels)),
                    spec=kubernetes.core.v1.PodSpecArgs(
                        service_account_name="grafana",
                        automount_service_account_token=False,
                        security_context=restricted_pod(65535),
                        containers=[
                            kubernetes.core.v1.ContainerArgs(
                                name="pause",
                                image=SECRET_SYNC_IMAGE,
                                image_pull_policy=DIGEST_PULL_POLICY,
                                resources=kubernetes.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "5m", "memory": "8Mi"}, limits={"cpu": "10m", "memory": "16Mi"}
                                ),
                                security_context=restricted_container(),
                                volume_mounts=[secrets_mount("key-vault", "/mnt/key-vault")],
                            )
                        ],
                        volumes=[secrets_volume("key-vault", GRAFANA_ADMIN_SECRET)],
                    ),
                ),
            ),
            opts=opts,
        )
