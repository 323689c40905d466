"""`mlflow gc` on a schedule (`layout.mlflow_server.gc_command`): what was deleted longer ago than
`gc_older_than` leaves the database, and its artifacts leave blob storage through the artifacts role."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.mlflow.pods import MLFLOW_UID, SERVER_IDENTITY, Scope, env, labels, mounts, volumes
from components.cluster.pod_security import restricted_container, restricted_pod
from components.cluster.workload_identity import uses_identity
from layout import cluster_layout
from layout.images import DIGEST_PULL_POLICY
from layout.mlflow_server import ServerSettings, gc_command


def gc_cronjob(
    scope: Scope, settings: pulumi.Output[ServerSettings], artifacts_host: str, migration: Sequence[pulumi.Resource]
) -> k8s.batch.v1.CronJob:
    args, ns = scope.args, scope.args.namespace
    artifacts_url = f"http://{artifacts_host}:{cluster_layout.MLFLOW_SERVER_PORT}"
    command = settings.apply(lambda s: gc_command(s, args.gc_older_than, artifacts_url))
    return k8s.batch.v1.CronJob(
        f"{scope.name}-gc",
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
                        metadata=k8s.meta.v1.ObjectMetaArgs(labels=uses_identity(labels("gc"))),
                        spec=k8s.core.v1.PodSpecArgs(
                            service_account_name=cluster_layout.workload_service_account(
                                SERVER_IDENTITY
                            ).service_account,
                            automount_service_account_token=False,
                            restart_policy="Never",
                            security_context=restricted_pod(MLFLOW_UID, group=MLFLOW_UID, fs_group=MLFLOW_UID),
                            containers=[
                                k8s.core.v1.ContainerArgs(
                                    name="gc",
                                    image=args.image,
                                    image_pull_policy=DIGEST_PULL_POLICY,
                                    command=command.apply(lambda c: list(c.args)),
                                    env=command.apply(lambda c: env(c.env)),
                                    resources=k8s.core.v1.ResourceRequirementsArgs(
                                        requests={"cpu": "100m", "memory": "512Mi"},
                                        limits={"cpu": "1", "memory": "1Gi"},
                                    ),
                                    security_context=restricted_container(MLFLOW_UID),
                                    volume_mounts=mounts(auth_config=False),
                                )
                            ],
                            volumes=volumes(SERVER_IDENTITY, None),
                        ),
                    ),
                )
            ),
        ),
        # The schema it cleans must be migrated (or restored) first; without the Job it waits for
        # what the Job would have waited for.
        opts=scope.opts(
            depends_on=[
                *migration,
                *scope.args.node_pools,
                *scope.args.image_pull_ready,
                *scope.args.identities[SERVER_IDENTITY].ready,
            ]
        ),
    )
