"""MLflow Tracking, Model Registry and artifacts proxy on AKS: three roles, one image, one routing table.

In the MLflow namespace (Pod Security `restricted`), declared by this package's modules:

- `migration`: the Job every Deployment waits for (tracking, registry and auth schemas);
- `server`: per role (`layout.mlflow_server.ROLES`) a Deployment with the command line of
  `layout.mlflow_server.server_command` (non-root, read-only root filesystem, no capabilities,
  RuntimeDefault seccomp, `/health` probes, zone spread in prod), a Service, a PodDisruptionBudget
  and, for tracking and registry, a HorizontalPodAutoscaler;
- here: the namespace, the two workload identities (`components.cluster.workload_identity`: Key
  Vault secrets as files the launcher of `layout.mlflow_server` reads, no secret in any container's
  environment; only the admin password is synced into a Kubernetes Secret, for Prometheus'
  basic-auth scrapes; blob access by workload identity only), the basic-auth ConfigMap
  (`basic_auth.ini` via `MLFLOW_AUTH_CONFIG_PATH`) and the Istio VirtualService on the platform
  gateway rendered from `layout.mlflow_routing.ROUTES`;
- `network`: NetworkPolicies, and the pod selectors neighbours use (`MlflowStack.selectors`);
- `monitoring`: a PodMonitor per role;
- `gc`: the `mlflow gc` CronJob.

The namespace of MLflow Projects jobs is its own component (`components.cluster.mlflow_projects`).
"""

from __future__ import annotations

import functools
from dataclasses import replace

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.mlflow import server
from components.cluster.mlflow.args import MlflowStackArgs
from components.cluster.mlflow.gc import gc_cronjob
from components.cluster.mlflow.migration import migration_job
from components.cluster.mlflow.monitoring import metrics_password_secret_objects, pod_monitors
from components.cluster.mlflow.network import network_policies, selectors
from components.cluster.mlflow.pods import (
    ARTIFACTS_IDENTITY,
    AUTH_CONFIG_DIR,
    PART_OF,
    SECRETS_MOUNT,
    SERVER_IDENTITY,
    Scope,
    provider_class,
)
from components.cluster.workload_identity import KeyVault, secret_provider_class, service_account
from layout import cluster_layout, mlflow_routing
from layout.mlflow_server import ROLES, ServerSettings, auth_config, server_command, service_name


class MlflowStack(pulumi.ComponentResource):
    tracking_uri: pulumi.Output[str]
    registry_uri: pulumi.Output[str]
    artifacts_destination: pulumi.Output[str]
    deployments: dict[str, k8s.apps.v1.Deployment]
    """The servers per role: what waits for MLflow to answer depends on these (the SDK does not
    expand a dependency on this component to them, they are children of the namespace)."""
    selectors: dict[str, k8s.meta.v1.LabelSelectorArgs]
    """MLflow's pods by name (`network.selectors`): for neighbours' NetworkPolicies."""

    def __init__(self, name: str, args: MlflowStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:mlflow:MlflowStack", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                labels={
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                    "app.kubernetes.io/part-of": PART_OF,
                },
            ),
            opts=pulumi.ResourceOptions(parent=self, deleted_with=args.deleted_with),
        )
        scope = Scope(name, args, namespace)
        self._identities(scope)
        settings: pulumi.Output[ServerSettings] = pulumi.Output.all(
            args.database_host, args.artifacts_destination
        ).apply(
            lambda v: replace(
                args.server,
                database=replace(args.server.database, host=v[0]),
                artifacts_destination=v[1],
                auth_config_path=f"{AUTH_CONFIG_DIR}/basic_auth.ini",
                secrets_dir=SECRETS_MOUNT,
            )
        )
        auth_map = k8s.core.v1.ConfigMap(
            f"{name}-auth-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=args.namespace, labels={"app.kubernetes.io/part-of": PART_OF}
            ),
            data={"basic_auth.ini": settings.apply(auth_config)},
            opts=scope.opts(),
        )
        # The schema the servers start on: migrated by the Job, or (a restore that did not ask for a
        # migration) the restored databases as they are; MLflow refuses an out-of-date schema.
        migration: list[pulumi.Resource] = (
            [migration_job(scope, settings)] if args.run_migrations else list(args.databases)
        )

        hosts: dict[str, str] = {}
        self.deployments = {}
        for role in ROLES:
            deployment = server.deployment(
                scope,
                role,
                settings.apply(functools.partial(server_command, role)),
                identity_key=ARTIFACTS_IDENTITY if role == "artifacts" else SERVER_IDENTITY,
                auth_config_map=auth_map.metadata.name,
                migration=migration,
            )
            server.service(scope, role)
            server.availability(scope, role, deployment)
            self.deployments[role] = deployment
            hosts[role] = f"{service_name(role)}.{args.namespace}.svc.cluster.local"

        k8s.apiextensions.CustomResource(
            f"{name}-routes",
            api_version="networking.istio.io/v1",
            kind="VirtualService",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="mlflow", namespace=args.namespace),
            spec={
                "hosts": [args.public_host],
                "gateways": [args.gateway],
                "http": mlflow_routing.virtual_service_http(
                    hosts, cluster_layout.MLFLOW_SERVER_PORT, mlflow_routing.routes(args.server.workspaces)
                ),
            },
            opts=scope.opts(depends_on=[args.istio_crds]),
        )
        network_policies(scope)
        pod_monitors(scope)
        gc_cronjob(scope, settings, hosts["artifacts"], migration)

        self.selectors = selectors()
        self.tracking_uri = pulumi.Output.from_input(f"https://{args.public_host}")
        self.registry_uri = self.tracking_uri
        self.artifacts_destination = pulumi.Output.from_input(args.artifacts_destination)
        self.register_outputs(
            {
                "trackingUri": self.tracking_uri,
                "registryUri": self.registry_uri,
                "artifactsDestination": self.artifacts_destination,
            }
        )

    @staticmethod
    def _identities(scope: Scope) -> None:
        """The servers' and the artifacts role's service accounts and Key Vault secret classes."""
        args = scope.args
        vault = KeyVault(args.key_vault_name, args.tenant_id)
        for key in (SERVER_IDENTITY, ARTIFACTS_IDENTITY):
            account = cluster_layout.workload_service_account(key)
            service_account(
                f"{scope.name}-sa-{key}",
                name=account.service_account,
                namespace=args.namespace,
                identity=args.identities[key],
                labels={"app.kubernetes.io/part-of": PART_OF},
                opts=scope.opts(),
            )
            secret_provider_class(
                f"{scope.name}-secret-provider-{key}",
                name=provider_class(key),
                namespace=args.namespace,
                identity=args.identities[key],
                vault=vault,
                secrets=account.secrets,
                secret_objects=metrics_password_secret_objects() if key == SERVER_IDENTITY else None,
                opts=scope.opts(),
            )
