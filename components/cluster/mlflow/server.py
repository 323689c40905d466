"""The three MLflow roles: per role a Deployment (the command line of `layout.mlflow_server`),
a Service, a PodDisruptionBudget and, for autoscaled roles, a HorizontalPodAutoscaler."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.mlflow.pods import MLFLOW_UID, Scope, env, labels, mounts, selector, volumes
from components.cluster.pod_security import restricted_container, restricted_pod
from components.cluster.workload_identity import uses_identity
from layout import cluster_layout
from layout.images import DIGEST_PULL_POLICY
from layout.mlflow_server import Role, ServerCommand, service_name

CREDENTIALS_GENERATION_ANNOTATION = "mlops.io/credentials-generation"


def deployment(
    scope: Scope,
    role: Role,
    command: pulumi.Output[ServerCommand],
    *,
    identity_key: str,
    auth_config_map: pulumi.Output[str],
    migration: Sequence[pulumi.Resource],
) -> k8s.apps.v1.Deployment:
    args, ns = scope.args, scope.args.namespace
    container_env = command.apply(lambda c: env(c.env))
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
        f"{scope.name}-{role}",
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
                    labels=uses_identity(labels(role)),
                    annotations=(
                        {CREDENTIALS_GENERATION_ANNOTATION: args.credentials_generation}
                        if args.credentials_generation is not None
                        else None
                    ),
                ),
                spec=k8s.core.v1.PodSpecArgs(
                    service_account_name=cluster_layout.workload_service_account(identity_key).service_account,
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
                            env=container_env,
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
                            volume_mounts=mounts(auth_config=True),
                        )
                    ],
                    volumes=volumes(identity_key, auth_config_map),
                ),
            ),
        ),
        opts=scope.opts(
            depends_on=[*migration, *args.node_pools, *args.image_pull_ready, *args.identities[identity_key].ready],
            # Replicas of autoscaled roles belong to the HPA after the first rollout.
            ignore_changes=["spec.replicas"] if scaling.max_replicas > scaling.min_replicas else None,
        ),
    )


def service(scope: Scope, role: Role) -> k8s.core.v1.Service:
    return k8s.core.v1.Service(
        f"{scope.name}-{role}-service",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=service_name(role), namespace=scope.args.namespace, labels=labels(role)
        ),
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
        opts=scope.opts(),
    )


def availability(scope: Scope, role: Role, deployment: k8s.apps.v1.Deployment) -> None:
    """A PodDisruptionBudget, and an HPA on CPU for a role whose maximum exceeds its minimum."""
    ns, scaling = scope.args.namespace, scope.args.scaling[role]
    k8s.policy.v1.PodDisruptionBudget(
        f"{scope.name}-{role}-pdb",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=service_name(role), namespace=ns, labels=labels(role)),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            # One replica may go at a time; a single-replica role (dev) still allows node drains.
            max_unavailable=1,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(role)),
        ),
        opts=scope.opts(),
    )
    if scaling.max_replicas <= scaling.min_replicas:
        return
    k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{scope.name}-{role}-hpa",
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
        opts=scope.opts(),
    )
