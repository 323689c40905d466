"""The migration Job every MLflow Deployment waits for, so replicas never race on migrations:
`mlflow db upgrade` for the tracking and registry databases, then the auth schema, in order."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.mlflow.pods import MLFLOW_UID, SERVER_IDENTITY, Scope, env, labels, mounts, volumes
from components.cluster.pod_security import restricted_container, restricted_pod
from components.cluster.workload_identity import uses_identity
from layout import cluster_layout
from layout.images import DIGEST_PULL_POLICY
from layout.mlflow_server import ServerSettings, migration_commands, migration_database, migration_env


def migration_job(scope: Scope, settings: pulumi.Output[ServerSettings]) -> k8s.batch.v1.Job:
    args, ns = scope.args, scope.args.namespace
    container_env = env(migration_env())
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
            env=container_env,
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "100m", "memory": "512Mi"}, limits={"cpu": "1", "memory": "1Gi"}
            ),
            security_context=restricted_container(MLFLOW_UID),
            volume_mounts=mounts(auth_config=False),
        )

    return k8s.batch.v1.Job(
        f"{scope.name}-migrate",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="mlflow-migrate", namespace=ns, labels=labels("migrate")),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=3,
            active_deadline_seconds=1800,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=uses_identity(labels("migrate"))),
                spec=k8s.core.v1.PodSpecArgs(
                    service_account_name=cluster_layout.workload_service_account(SERVER_IDENTITY).service_account,
                    automount_service_account_token=False,
                    restart_policy="OnFailure",
                    security_context=restricted_pod(MLFLOW_UID, group=MLFLOW_UID, fs_group=MLFLOW_UID),
                    # One schema at a time, in order; the last one is the Job's container.
                    init_containers=[container(0), container(1)],
                    containers=[container(2)],
                    volumes=volumes(SERVER_IDENTITY, None),
                ),
            ),
        ),
        # A Job's pod template is immutable: a new image or URI replaces the Job, which
        # reruns the (idempotent) migrations before the Deployments roll.
        opts=scope.opts(
            replace_on_changes=["spec"],
            delete_before_replace=True,
            depends_on=[
                *args.node_pools,
                *args.image_pull_ready,
                *args.databases,
                *args.identities[SERVER_IDENTITY].ready,
            ],
        ),
    )
