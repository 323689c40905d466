"""The Jobs that act on MLflow as its basic-auth admin: `mlopsctl webhook ensure`
(components/cluster/webhook_receiver.py), `mlopsctl registry ensure-reader`
(components/cluster/models_reader.py) and `mlopsctl teams ensure` (components/cluster/teams_registration.py).

One pod template for the three, so how they run (the admin password as a CSI-mounted file, never a
variable; a restricted sandbox with a small writable /tmp; bounded retries and run time) is decided
once. What differs is the account, the command line and, for teams, one more mounted volume.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.pod_security import restricted_container, restricted_pod
from components.cluster.workload_identity import secrets_mount, secrets_volume, uses_identity
from layout import cluster_layout
from layout.images import DIGEST_PULL_POLICY

UID: Final = 10001
SECRETS_MOUNT: Final = "/mnt/secrets"
"""Where the Key Vault CSI volume is mounted in these Jobs (and the other mlopsctl pods)."""


def mlflow_admin_job(
    resource_name: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    service_account: str,
    secret_class: str,
    container: str,
    image: pulumi.Input[str],
    args: pulumi.Input[Sequence[pulumi.Input[str]]],
    mlflow_username: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    annotations: pulumi.Input[Mapping[str, str]] | None = None,
    extra_volumes: Sequence[tuple[k8s.core.v1.VolumeMountArgs, k8s.core.v1.VolumeArgs]] = (),
) -> k8s.batch.v1.Job:
    """A run-to-completion `mlopsctl` Job as the MLflow admin, mounting `secret_class` at `SECRETS_MOUNT`
    (which must hold `mlflow-admin-password`) and each of `extra_volumes` between it and /tmp."""
    return k8s.batch.v1.Job(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(labels)),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=6,
            active_deadline_seconds=900,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=uses_identity(dict(labels)), annotations=annotations),
                spec=k8s.core.v1.PodSpecArgs(
                    service_account_name=service_account,
                    automount_service_account_token=False,
                    restart_policy="OnFailure",
                    security_context=restricted_pod(UID, group=UID),
                    containers=[
                        k8s.core.v1.ContainerArgs(
                            name=container,
                            image=image,
                            image_pull_policy=DIGEST_PULL_POLICY,
                            args=args,
                            env=[
                                k8s.core.v1.EnvVarArgs(name="MLFLOW_TRACKING_USERNAME", value=mlflow_username),
                                k8s.core.v1.EnvVarArgs(
                                    name="MLFLOW_TRACKING_PASSWORD_FILE",
                                    value=f"{SECRETS_MOUNT}/{cluster_layout.MLFLOW_ADMIN_PASSWORD}",
                                ),
                                k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp"),
                            ],
                            resources=k8s.core.v1.ResourceRequirementsArgs(
                                requests={"cpu": "100m", "memory": "256Mi"},
                                limits={"cpu": "500m", "memory": "512Mi"},
                            ),
                            security_context=restricted_container(),
                            volume_mounts=[
                                secrets_mount("secrets", SECRETS_MOUNT),
                                *(mount for mount, _ in extra_volumes),
                                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
                            ],
                        )
                    ],
                    volumes=[
                        secrets_volume("secrets", secret_class),
                        *(volume for _, volume in extra_volumes),
                        k8s.core.v1.VolumeArgs(
                            name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")
                        ),
                    ],
                ),
            ),
        ),
        opts=opts,
    )
