"""MLflow Tracking, Model Registry and artifacts proxy on AKS: three roles, one image, one routing table.

In the MLflow namespace (Pod Security `restricted`):

- a migration Job (`mlflow db upgrade` for the tracking and registry databases, auth schema
  upgrade) that every Deployment waits for, so replicas never race on migrations;
- Deployments `mlflow-tracking`, `mlflow-registry` and `mlflow-artifacts`, each with the command
  line of `layout.mlflow_server.server_command`, non-root, read-only root filesystem,
  no capabilities, RuntimeDefault seccomp, `/health` probes, zone spread in prod, a
  PodDisruptionBudget, and HorizontalPodAutoscalers for tracking and registry;
- Services and an Istio VirtualService on the platform gateway rendered from
  `layout.mlflow_routing.ROUTES`;
- Key Vault secrets through the CSI driver (SecretProviderClass, workload identity) as files that
  the launcher of `layout.mlflow_server` reads (no secret in any container's environment); only the
  admin password is synced into a Kubernetes Secret, for Prometheus' basic-auth scrapes; blob
  access by workload identity only;
- basic-auth configured by a ConfigMap (`basic_auth.ini` via `MLFLOW_AUTH_CONFIG_PATH`);
- NetworkPolicies: default deny, then the gateway, the monitoring namespace (metrics), the models
  namespace (artifact reads) and the egress the servers need;
- a PodMonitor per role that copies `app.kubernetes.io/component` into the `role` label;
- a CronJob running `mlflow gc` (`layout.mlflow_server.gc_command`) on `gc_schedule`: what was
  deleted longer ago than `gc_older_than` leaves the database, its artifacts leave blob storage
  through the artifacts role.

In the jobs namespace: the service account and job template of `mlflow run --backend kubernetes`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.cluster.pod_security import restricted_container, restricted_pod
from layout import cluster_layout, mlflow_routing
from layout.images import DIGEST_PULL_POLICY
from layout.key_vault_csi import key_vault_provider_parameters
from layout.mlflow_server import (
    DEFAULT_SECRETS_DIR,
    PGBOUNCER_PORT,
    POSTGRES_PORT,
    ROLES,
    Role,
    ServerCommand,
    ServerSettings,
    auth_config,
    gc_command,
    migration_commands,
    migration_database,
    migration_env,
    server_command,
    service_name,
)

SECRETS_MOUNT = DEFAULT_SECRETS_DIR
MLFLOW_UID = 10001
"""The non-root user of images/mlflow."""
AUTH_CONFIG_DIR = "/etc/mlflow"
WORKLOAD_IDENTITY_LABEL = cluster_layout.WORKLOAD_IDENTITY_USE
CLIENT_ID_ANNOTATION = cluster_layout.WORKLOAD_IDENTITY_CLIENT_ID
PART_OF = "mlops-platform"
METRICS_CREDENTIALS_SECRET = "mlflow-metrics-username"
METRICS_PASSWORD_SECRET = "mlflow-metrics-password"
"""The one Secret the CSI driver syncs in the namespace: the admin password Prometheus scrapes
`/metrics` with (PodMonitor basic-auth reads Secrets only). No pod reads it."""


@dataclass(frozen=True)
class RoleScaling:
    min_replicas: int
    max_replicas: int
    """Equal to `min_replicas`: fixed size, no HorizontalPodAutoscaler."""


@dataclass(frozen=True)
class PodResources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class MlflowStackArgs:
    namespace: str
    jobs_namespace: str
    models_namespace: str
    monitoring_namespace: str
    image: pulumi.Output[str]
    """`<registry>/<repository>@sha256:<digest>` from `PlatformImages.refs` (the pods wait for the build)."""
    server: ServerSettings
    """The servers' settings; the database host and the artifacts destination are replaced below."""
    database_host: pulumi.Input[str]
    artifacts_destination: pulumi.Input[str]
    public_host: str
    gateway: str
    """`<namespace>/<name>` of the Istio Gateway the VirtualService binds to."""
    tenant_id: pulumi.Input[str]
    key_vault_name: pulumi.Input[str]
    client_ids: Mapping[str, pulumi.Input[str]]
    """Workload-identity client id per `cluster_layout.WORKLOAD_SERVICE_ACCOUNTS` key."""
    scaling: Mapping[str, RoleScaling]
    resources: PodResources
    zone_spread: bool
    postgres_subnet: str
    """CIDR the database is reached in (egress rule on 5432 and PgBouncer's 6432)."""
    node_pools: Sequence[pulumi.Resource]
    """User node pools: the migration Job and the Deployments are scheduled there."""
    databases: Sequence[pulumi.Resource]
    """The databases the migration Job migrates and the network path to them (server, DNS link)."""
    identities_ready: Mapping[str, Sequence[pulumi.Resource]]
    """Per `WORKLOAD_SERVICE_ACCOUNTS` key: federated credential and role grants its pods need."""
    istio_crds: pulumi.Resource
    """The Istio release installing `VirtualService`."""
    monitoring_crds: pulumi.Resource
    """The kube-prometheus-stack release installing `PodMonitor`."""
    image_pull_ready: Sequence[pulumi.Resource] = ()
    """The nodes' pull grant on the registry `image` lives in (empty: a public image)."""
    gc_schedule: str = "30 3 * * *"
    gc_older_than: str = "30d"
    deleted_with: pulumi.Resource | None = None
    """The cluster: its deletion takes these objects along, so they are not deleted one by one."""
    credentials_generation: pulumi.Input[str] | None = None
    """Generation of the rotated credentials (CredentialRotation.generation, carrying the Key Vault
    secrets as dependencies). A rotation changes it, and with it the server pods' annotation: the
    Deployments roll after the vault write, and each new pod's CSI mount fetches the new values
    (the secrets the launcher exports, such as the CSRF key, are read only at start). Running pods
    do not wait for that for the database: the driver rewrites their mounted files on its rotation
    poll and the launcher copies the password into the password file within a minute."""


CREDENTIALS_GENERATION_ANNOTATION = "mlops.io/credentials-generation"


def labels(role: str) -> dict[str, str]:
    return {
        cluster_layout.APP_NAME_LABEL: cluster_layout.MLFLOW_APP_LABEL_VALUE,
        cluster_layout.COMPONENT_LABEL: role,
        "app.kubernetes.io/part-of": PART_OF,
    }


def selector(role: str) -> dict[str, str]:
    return {
        cluster_layout.APP_NAME_LABEL: cluster_layout.MLFLOW_APP_LABEL_VALUE,
        cluster_layout.COMPONENT_LABEL: role,
    }


def _account(key: str) -> cluster_layout.WorkloadServiceAccount:
    return next(a for a in cluster_layout.WORKLOAD_SERVICE_ACCOUNTS if a.key == key)


def secret_provider_parameters(
    account: cluster_layout.WorkloadServiceAccount, client_id: str, vault: str, tenant: str
) -> dict[str, str]:
    return key_vault_provider_parameters(client_id, vault, tenant, account.secrets)


def _provider_parameters(account: cluster_layout.WorkloadServiceAccount, values: list[str]) -> dict[str, str]:
    client_id, vault, tenant = values
    return secret_provider_parameters(account, client_id, vault, tenant)


def job_template(namespace: str, service_account: str) -> dict[str, Any]:
    """The Job template of `mlflow run --backend kubernetes` (MLflow fills the `{replaced ...}`
    fields). The tracking URI and credentials come from the submitting environment."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "{replaced with MLflow Project name}", "namespace": namespace},
        "spec": {
            "ttlSecondsAfterFinished": 86400,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {WORKLOAD_IDENTITY_LABEL: "true", "app.kubernetes.io/part-of": PART_OF}},
                "spec": {
                    "serviceAccountName": service_account,
                    "restartPolicy": "Never",
                    # The namespace enforces Pod Security `restricted`; project images built by
                    # MLflow default to root, so the template sets a user.
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "{replaced with MLflow Project name}",
                            "image": "{replaced with URI of Docker image created during Project execution}",
                            "command": ["{replaced with MLflow Project entry point command}"],
                            "env": [{"name": "HOME", "value": "/tmp"}],
                            "resources": {
                                "requests": {"cpu": "1", "memory": "2Gi"},
                                "limits": {"cpu": "4", "memory": "8Gi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def _env(plain: Mapping[str, str]) -> list[k8s.core.v1.EnvVarArgs]:
    """Plain values only: secrets are mounted files the launcher reads (`layout.mlflow_server.launch`)."""
    return [k8s.core.v1.EnvVarArgs(name=name, value=value) for name, value in plain.items()]


def _volumes(provider_class: str, auth_config_map: pulumi.Input[str] | None) -> list[k8s.core.v1.VolumeArgs]:
    volumes = [
        k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="1Gi")),
        k8s.core.v1.VolumeArgs(
            name="secrets-store",
            csi=k8s.core.v1.CSIVolumeSourceArgs(
                driver="secrets-store.csi.k8s.io",
                read_only=True,
                volume_attributes={"secretProviderClass": provider_class},
            ),
        ),
    ]
    if auth_config_map is not None:
        volumes.append(
            k8s.core.v1.VolumeArgs(
                name="auth-config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=auth_config_map)
            )
        )
    return volumes


def _mounts(auth_config: bool) -> list[k8s.core.v1.VolumeMountArgs]:
    mounts = [
        k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        k8s.core.v1.VolumeMountArgs(name="secrets-store", mount_path=SECRETS_MOUNT, read_only=True),
    ]
    if auth_config:
        mounts.append(k8s.core.v1.VolumeMountArgs(name="auth-config", mount_path=AUTH_CONFIG_DIR, read_only=True))
    return mounts


class MlflowStack(pulumi.ComponentResource):
    tracking_uri: pulumi.Output[str]
    registry_uri: pulumi.Output[str]
    artifacts_destination: pulumi.Output[str]
    jobs_namespace: pulumi.Output[str]
    job_template_config_map: pulumi.Output[str]

    def __init__(self, name: str, args: MlflowStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:mlflow:MlflowStack", name, None, opts)
        self._args = args
        self._name = name
        ns = args.namespace

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ns,
                labels={
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                    "app.kubernetes.io/part-of": PART_OF,
                },
            ),
            opts=self._opts(),
        )
        in_ns = pulumi.ResourceOptions(parent=namespace)

        # --- identities and secrets ---------------------------------------------------------
        provider_classes: dict[str, str] = {}
        for key in ("mlflow-server", "mlflow-artifacts"):
            account = _account(key)
            k8s.core.v1.ServiceAccount(
                f"{name}-sa-{key}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=account.service_account,
                    namespace=ns,
                    annotations={CLIENT_ID_ANNOTATION: args.client_ids[key]},
                    labels={"app.kubernetes.io/part-of": PART_OF},
                ),
                automount_service_account_token=False,
                opts=self._opts(in_ns),
            )
            provider_classes[key] = f"{key}-key-vault"
            parameters = pulumi.Output.all(args.client_ids[key], args.key_vault_name, args.tenant_id).apply(
                functools.partial(_provider_parameters, account)
            )
            spec: dict[str, Any] = {"provider": "azure", "parameters": parameters}
            if key == "mlflow-server":
                # Synced while a tracking or registry pod mounts the class; the admin password is a
                # bootstrap credential (not rotated), so one fixed name serves every generation.
                spec["secretObjects"] = [
                    {
                        "secretName": METRICS_PASSWORD_SECRET,
                        "type": "Opaque",
                        "data": [
                            {
                                "objectName": cluster_layout.MLFLOW_ADMIN_PASSWORD,
                                "key": cluster_layout.MLFLOW_ADMIN_PASSWORD,
                            }
                        ],
                    }
                ]
            k8s.apiextensions.CustomResource(
                f"{name}-secret-provider-{key}",
                api_version="secrets-store.csi.x-k8s.io/v1",
                kind="SecretProviderClass",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=provider_classes[key], namespace=ns),
                spec=spec,
                opts=self._opts(in_ns),
            )

        # --- configuration ------------------------------------------------------------------
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
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=ns, labels={"app.kubernetes.io/part-of": PART_OF}),
            data={"basic_auth.ini": settings.apply(auth_config)},
            opts=self._opts(in_ns),
        )

        migration = self._migration_job(settings, provider_classes["mlflow-server"], in_ns)

        # --- the three roles ----------------------------------------------------------------
        hosts: dict[str, str] = {}
        self.deployments: dict[str, k8s.apps.v1.Deployment] = {}
        """The servers per role: what waits for MLflow to answer depends on these (the SDK does not
        expand a dependency on this component to them, they are children of the namespace)."""
        for role in ROLES:
            key = "mlflow-artifacts" if role == "artifacts" else "mlflow-server"
            command = settings.apply(functools.partial(server_command, role))
            deployment = self._deployment(
                role,
                command,
                account_key=key,
                provider_class=provider_classes[key],
                auth_config_map=auth_map.metadata.name,
                migration=migration,
                opts=in_ns,
            )
            service = k8s.core.v1.Service(
                f"{name}-{role}-service",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=service_name(role), namespace=ns, labels=labels(role)),
                spec=k8s.core.v1.ServiceSpecArgs(
                    selector=selector(role),
                    ports=[
                        k8s.core.v1.ServicePortArgs(
                            name="http",
                            port=cluster_layout.MLFLOW_SERVER_PORT,
                            target_port=cluster_layout.MLFLOW_METRICS_PORT_NAME,
                            app_protocol="http",
                        )
                    ],
                ),
                opts=self._opts(in_ns),
            )
            self.deployments[role] = deployment
            hosts[role] = f"{service_name(role)}.{ns}.svc.cluster.local"
            self._availability(role, deployment, service, in_ns)

        # --- routing ------------------------------------------------------------------------
        k8s.apiextensions.CustomResource(
            f"{name}-routes",
            api_version="networking.istio.io/v1",
            kind="VirtualService",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="mlflow", namespace=ns),
            spec={
                "hosts": [args.public_host],
                "gateways": [args.gateway],
                "http": mlflow_routing.virtual_service_http(hosts, cluster_layout.MLFLOW_SERVER_PORT),
            },
            opts=self._opts(in_ns, depends_on=[args.istio_crds]),
        )
        self._network_policies(in_ns)
        self._pod_monitors(in_ns)
        self._gc_cronjob(settings, hosts["artifacts"], provider_classes["mlflow-server"], migration, in_ns)

        # --- MLflow Projects jobs -----------------------------------------------------------
        jobs_account = _account("ml-jobs")
        jobs_namespace = k8s.core.v1.Namespace(
            f"{name}-jobs-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.jobs_namespace,
                labels={
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "app.kubernetes.io/part-of": PART_OF,
                },
            ),
            opts=self._opts(),
        )
        in_jobs = pulumi.ResourceOptions(parent=jobs_namespace)
        k8s.core.v1.ServiceAccount(
            f"{name}-sa-ml-jobs",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=jobs_account.service_account,
                namespace=args.jobs_namespace,
                annotations={CLIENT_ID_ANNOTATION: args.client_ids[jobs_account.key]},
            ),
            automount_service_account_token=False,
            opts=self._opts(in_jobs),
        )
        template = k8s.core.v1.ConfigMap(
            f"{name}-job-template",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="mlflow-job-template", namespace=args.jobs_namespace),
            data={
                "job-template.yaml": yaml.safe_dump(
                    job_template(args.jobs_namespace, jobs_account.service_account), sort_keys=False
                ),
            },
            opts=self._opts(in_jobs),
        )

        self.tracking_uri = pulumi.Output.from_input(f"https://{args.public_host}")
        self.registry_uri = self.tracking_uri
        self.artifacts_destination = pulumi.Output.from_input(args.artifacts_destination)
        self.jobs_namespace = jobs_namespace.metadata.apply(lambda m: m.name or args.jobs_namespace)
        self.job_template_config_map = template.metadata.apply(lambda m: m.name or "")
        self.register_outputs(
            {
                "trackingUri": self.tracking_uri,
                "registryUri": self.registry_uri,
                "artifactsDestination": self.artifacts_destination,
                "jobsNamespace": self.jobs_namespace,
            }
        )

    def _opts(self, base: pulumi.ResourceOptions | None = None, **extra: Any) -> pulumi.ResourceOptions:
        parent = base.parent if base is not None and base.parent is not None else self
        return pulumi.ResourceOptions(parent=parent, deleted_with=self._args.deleted_with, **extra)

    def _migration_job(
        self, settings: pulumi.Output[ServerSettings], provider_class: str, opts: pulumi.ResourceOptions
    ) -> k8s.batch.v1.Job:
        args, ns = self._args, self._args.namespace
        env = _env(migration_env())
        # Directly on PostgreSQL (5432), even when the servers go through PgBouncer.
        commands = settings.apply(
            lambda s: [list(c) for c in migration_commands(migration_database(s.database), s.secrets_dir, s.passfile)]
        )
        names = ("tracking", "registry", "auth")

        def container(index: int) -> k8s.core.v1.ContainerArgs:
            return k8s.core.v1.ContainerArgs(
                name=f"migrate-{names[index]}",
                image=args.image,
                image_pull_policy=DIGEST_PULL_POLICY,
                command=commands.apply(lambda c: c[index]),
                env=env,
                resources=k8s.core.v1.ResourceRequirementsArgs(
                    requests={"cpu": "100m", "memory": "512Mi"}, limits={"cpu": "1", "memory": "1Gi"}
                ),
                security_context=restricted_container(MLFLOW_UID),
                volume_mounts=_mounts(auth_config=False),
            )

        return k8s.batch.v1.Job(
            f"{self._name}-migrate",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="mlflow-migrate", namespace=ns, labels=labels("migrate")),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=3,
                active_deadline_seconds=1800,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels={**labels("migrate"), WORKLOAD_IDENTITY_LABEL: "true"}),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=_account("mlflow-server").service_account,
                        automount_service_account_token=False,
                        restart_policy="OnFailure",
                        security_context=restricted_pod(MLFLOW_UID, group=MLFLOW_UID, fs_group=MLFLOW_UID),
                        # One schema at a time, in order; the last one is the Job's container.
                        init_containers=[container(0), container(1)],
                        containers=[container(2)],
                        volumes=_volumes(provider_class, None),
                    ),
                ),
            ),
            # A Job's pod template is immutable: a new image or URI replaces the Job, which
            # reruns the (idempotent) migrations before the Deployments roll.
            opts=self._opts(
                opts,
                replace_on_changes=["spec"],
                delete_before_replace=True,
                depends_on=[
                    *args.node_pools,
                    *args.image_pull_ready,
                    *args.databases,
                    *args.identities_ready["mlflow-server"],
                ],
            ),
        )

    def _gc_cronjob(
        self,
        settings: pulumi.Output[ServerSettings],
        artifacts_host: str,
        provider_class: str,
        migration: k8s.batch.v1.Job,
        opts: pulumi.ResourceOptions,
    ) -> k8s.batch.v1.CronJob:
        args, ns = self._args, self._args.namespace
        artifacts_url = f"http://{artifacts_host}:{cluster_layout.MLFLOW_SERVER_PORT}"
        command = settings.apply(lambda s: gc_command(s, args.gc_older_than, artifacts_url))
        pod_labels = {**labels("gc"), WORKLOAD_IDENTITY_LABEL: "true"}
        return k8s.batch.v1.CronJob(
            f"{self._name}-gc",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="mlflow-gc", namespace=ns, labels=labels("gc")),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=args.gc_schedule,
                time_zone="Etc/UTC",
                concurrency_policy="Forbid",
                starting_deadline_seconds=3600,
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=3,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    spec=k8s.batch.v1.JobSpecArgs(
                        backoff_limit=2,
                        active_deadline_seconds=6 * 3600,
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=pod_labels),
                            spec=k8s.core.v1.PodSpecArgs(
                                service_account_name=_account("mlflow-server").service_account,
                                automount_service_account_token=False,
                                restart_policy="Never",
                                security_context=restricted_pod(MLFLOW_UID, group=MLFLOW_UID, fs_group=MLFLOW_UID),
                                containers=[
                                    k8s.core.v1.ContainerArgs(
                                        name="gc",
                                        image=args.image,
                                        image_pull_policy=DIGEST_PULL_POLICY,
                                        command=command.apply(lambda c: list(c.args)),
                                        env=command.apply(lambda c: _env(c.env)),
                                        resources=k8s.core.v1.ResourceRequirementsArgs(
                                            requests={"cpu": "100m", "memory": "512Mi"},
                                            limits={"cpu": "1", "memory": "1Gi"},
                                        ),
                                        security_context=restricted_container(MLFLOW_UID),
                                        volume_mounts=_mounts(auth_config=False),
                                    )
                                ],
                                volumes=_volumes(provider_class, None),
                            ),
                        ),
                    )
                ),
            ),
            # The schema it cleans must be migrated first.
            opts=self._opts(opts, depends_on=[migration]),
        )

    def _deployment(
        self,
        role: Role,
        command: pulumi.Output[ServerCommand],
        *,
        account_key: str,
        provider_class: str,
        auth_config_map: pulumi.Output[str],
        migration: k8s.batch.v1.Job,
        opts: pulumi.ResourceOptions,
    ) -> k8s.apps.v1.Deployment:
        args, ns = self._args, self._args.namespace
        env = command.apply(lambda c: _env(c.env))
        probe_port = cluster_layout.MLFLOW_METRICS_PORT_NAME

        def probe(period: int, failures: int) -> k8s.core.v1.ProbeArgs:
            return k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/health", port=probe_port),
                period_seconds=period,
                timeout_seconds=5,
                failure_threshold=failures,
            )

        spread = (
            [
                k8s.core.v1.TopologySpreadConstraintArgs(
                    max_skew=1,
                    topology_key="topology.kubernetes.io/zone",
                    when_unsatisfiable="DoNotSchedule",
                    label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(role)),
                ),
                k8s.core.v1.TopologySpreadConstraintArgs(
                    max_skew=1,
                    topology_key="kubernetes.io/hostname",
                    when_unsatisfiable="ScheduleAnyway",
                    label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(role)),
                ),
            ]
            if args.zone_spread
            else None
        )
        scaling = args.scaling[role]
        resources = args.resources
        return k8s.apps.v1.Deployment(
            f"{self._name}-{role}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service_name(role), namespace=ns, labels=labels(role)),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # The HPA owns the replica count of autoscaled roles after creation.
                replicas=scaling.min_replicas,
                revision_history_limit=5,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(role)),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels={**labels(role), WORKLOAD_IDENTITY_LABEL: "true"},
                        annotations=(
                            {CREDENTIALS_GENERATION_ANNOTATION: self._args.credentials_generation}
                            if self._args.credentials_generation is not None
                            else None
                        ),
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=_account(account_key).service_account,
                        automount_service_account_token=False,
                        security_context=restricted_pod(MLFLOW_UID, group=MLFLOW_UID, fs_group=MLFLOW_UID),
                        termination_grace_period_seconds=30,
                        topology_spread_constraints=spread,
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="mlflow",
                                image=args.image,
                                image_pull_policy=DIGEST_PULL_POLICY,
                                command=command.apply(lambda c: list(c.args)),
                                env=env,
                                # The only writable place (emptyDir): metrics, caches, and the
                                # artifacts role's unused SQLite file.
                                working_dir="/tmp",
                                ports=[
                                    k8s.core.v1.ContainerPortArgs(
                                        name=probe_port,
                                        container_port=cluster_layout.MLFLOW_SERVER_PORT,
                                        protocol="TCP",
                                    )
                                ],
                                startup_probe=probe(5, 36),
                                readiness_probe=probe(10, 3),
                                liveness_probe=probe(20, 3),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": resources.cpu_request, "memory": resources.memory_request},
                                    limits={"cpu": resources.cpu_limit, "memory": resources.memory_limit},
                                ),
                                security_context=restricted_container(MLFLOW_UID),
                                volume_mounts=_mounts(auth_config=True),
                            )
                        ],
                        volumes=_volumes(provider_class, auth_config_map),
                    ),
                ),
            ),
            opts=self._opts(
                opts,
                depends_on=[migration, *args.node_pools, *args.image_pull_ready, *args.identities_ready[account_key]],
                # Replicas of autoscaled roles belong to the HPA after the first rollout.
                ignore_changes=["spec.replicas"] if scaling.max_replicas > scaling.min_replicas else None,
            ),
        )

    def _availability(
        self, role: Role, deployment: k8s.apps.v1.Deployment, service: k8s.core.v1.Service, opts: pulumi.ResourceOptions
    ) -> None:
        ns, scaling = self._args.namespace, self._args.scaling[role]
        k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-{role}-pdb",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service_name(role), namespace=ns, labels=labels(role)),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                # One replica may go at a time; a single-replica role (dev) still allows node drains.
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(role)),
            ),
            opts=self._opts(opts),
        )
        if scaling.max_replicas <= scaling.min_replicas:
            return
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{self._name}-{role}-hpa",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service_name(role), namespace=ns, labels=labels(role)),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=deployment.metadata.apply(lambda m: m.name or "")
                ),
                min_replicas=scaling.min_replicas,
                max_replicas=scaling.max_replicas,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(type="Utilization", average_utilization=70),
                        ),
                    )
                ],
                behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
                    scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
                        stabilization_window_seconds=300,
                        policies=[k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Pods", value=1, period_seconds=120)],
                    )
                ),
            ),
            opts=self._opts(opts),
        )

    def _network_policies(self, opts: pulumi.ResourceOptions) -> None:
        args, ns = self._args, self._args.namespace
        port = [k8s.networking.v1.NetworkPolicyPortArgs(port=cluster_layout.MLFLOW_SERVER_PORT, protocol="TCP")]

        def from_namespace(namespace: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
            return k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"kubernetes.io/metadata.name": namespace}
                )
            )

        def policy(
            suffix: str,
            pod_selector: dict[str, str],
            ingress: Sequence[k8s.networking.v1.NetworkPolicyIngressRuleArgs] | None = None,
            egress: Sequence[k8s.networking.v1.NetworkPolicyEgressRuleArgs] | None = None,
            types: Sequence[str] = ("Ingress",),
        ) -> None:
            k8s.networking.v1.NetworkPolicy(
                f"{self._name}-netpol-{suffix}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=suffix, namespace=ns),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_selector),
                    policy_types=list(types),
                    ingress=list(ingress) if ingress is not None else None,
                    egress=list(egress) if egress is not None else None,
                ),
                opts=self._opts(opts),
            )

        app = {cluster_layout.APP_NAME_LABEL: cluster_layout.MLFLOW_APP_LABEL_VALUE}
        policy("default-deny", {}, types=("Ingress", "Egress"))
        policy(
            "allow-gateway",
            app,
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[from_namespace(cluster_layout.ISTIO_NAMESPACE)], ports=port
                )
            ],
        )
        policy(
            "allow-metrics",
            app,
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[from_namespace(args.monitoring_namespace)], ports=port
                )
            ],
        )
        # The rollout analysis writes decisions and the operator's models workspace reads the
        # registry, both from the automation namespace, in-cluster (layout/platform_outputs.py).
        policy(
            "allow-automation",
            app,
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[from_namespace(cluster_layout.AUTOMATION_NAMESPACE)], ports=port
                )
            ],
        )
        policy(
            "allow-model-artifact-reads",
            selector("artifacts"),
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[from_namespace(args.models_namespace)], ports=port
                )
            ],
        )
        dns = k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=[from_namespace("kube-system")],
            ports=[
                k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="UDP"),
                k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="TCP"),
            ],
        )
        database = k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=[
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    ip_block=k8s.networking.v1.IPBlockArgs(cidr=args.postgres_subnet)
                )
            ],
            # PostgreSQL (migrations, or everything without PgBouncer) and the built-in PgBouncer.
            ports=[
                k8s.networking.v1.NetworkPolicyPortArgs(port=port, protocol="TCP")
                for port in (POSTGRES_PORT, PGBOUNCER_PORT)
            ],
        )
        # Entra ID token exchange, Key Vault and Blob storage (private endpoints or public) on 443.
        https = k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=443, protocol="TCP")]
        )
        policy("allow-server-egress", app, egress=[dns, database, https], types=("Egress",))
        # `mlflow gc` deletes artifacts through the artifacts role.
        policy(
            "allow-gc-to-artifacts",
            selector("artifacts"),
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector("gc"))
                        )
                    ],
                    ports=port,
                )
            ],
        )
        policy(
            "allow-gc-egress",
            selector("gc"),
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector("artifacts"))
                        )
                    ],
                    ports=port,
                )
            ],
            types=("Egress",),
        )

    def _pod_monitors(self, opts: pulumi.ResourceOptions) -> None:
        ns = self._args.namespace
        # Prometheus scrapes as the admin (the password in the CSI-synced Secret); the user name
        # is not secret but PodMonitor reads it from a Secret.
        k8s.core.v1.Secret(
            f"{self._name}-metrics-username",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=METRICS_CREDENTIALS_SECRET, namespace=ns),
            type="Opaque",
            string_data={"username": self._args.server.admin_username},
            opts=self._opts(opts),
        )
        component = "__meta_kubernetes_pod_label_" + "".join(
            c if c.isalnum() else "_" for c in cluster_layout.COMPONENT_LABEL
        )
        for role in ROLES:
            k8s.apiextensions.CustomResource(
                f"{self._name}-{role}-pod-monitor",
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
                                "password": {
                                    "name": METRICS_PASSWORD_SECRET,
                                    "key": cluster_layout.MLFLOW_ADMIN_PASSWORD,
                                },
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
                opts=self._opts(opts, depends_on=[self._args.monitoring_crds]),
            )
