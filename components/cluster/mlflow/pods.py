"""What every MLflow pod shares: labels and selectors, the non-root user, volumes and mounts, and
the options of the objects declared in MLflow's namespace."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.mlflow.args import MlflowStackArgs
from components.cluster.workload_identity import secrets_mount, secrets_volume
from layout import cluster_layout
from layout.mlflow_server import DEFAULT_SECRETS_DIR

SECRETS_MOUNT: Final = DEFAULT_SECRETS_DIR
MLFLOW_UID: Final = 10001
"""The non-root user of images/mlflow."""
AUTH_CONFIG_DIR: Final = "/etc/mlflow"
PART_OF: Final = "mlops-platform"
SERVER_IDENTITY: Final = "mlflow-server"
"""The `WORKLOAD_SERVICE_ACCOUNTS` key of tracking, registry, migrations and gc."""
ARTIFACTS_IDENTITY: Final = "mlflow-artifacts"
"""The `WORKLOAD_SERVICE_ACCOUNTS` key of the artifacts role (the only blob writer)."""


def labels(role: str) -> dict[str, str]:
    return {
        cluster_layout.APP_NAME_LABEL: cluster_layout.MLFLOW_APP_LABEL_VALUE,
        cluster_layout.COMPONENT_LABEL: role,
        "app.kubernetes.io/part-of": PART_OF,
    }


def selector(role: str) -> dict[str, str]:
    """The pods of one role (`tracking`, `registry`, `artifacts`, `migrate`, `gc`)."""
    return {
        cluster_layout.APP_NAME_LABEL: cluster_layout.MLFLOW_APP_LABEL_VALUE,
        cluster_layout.COMPONENT_LABEL: role,
    }


def provider_class(identity_key: str) -> str:
    """The SecretProviderClass of an MLflow identity."""
    return f"{identity_key}-key-vault"


def env(plain: Mapping[str, str]) -> list[k8s.core.v1.EnvVarArgs]:
    """Plain values only: secrets are mounted files the launcher reads (`layout.mlflow_server.launch`)."""
    return [k8s.core.v1.EnvVarArgs(name=name, value=value) for name, value in plain.items()]


def volumes(identity_key: str, auth_config_map: pulumi.Input[str] | None) -> list[k8s.core.v1.VolumeArgs]:
    result = [
        k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="1Gi")),
        secrets_volume("secrets-store", provider_class(identity_key)),
    ]
    if auth_config_map is not None:
        result.append(
            k8s.core.v1.VolumeArgs(
                name="auth-config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=auth_config_map)
            )
        )
    return result


def mounts(auth_config: bool) -> list[k8s.core.v1.VolumeMountArgs]:
    result = [
        k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        secrets_mount("secrets-store", SECRETS_MOUNT),
    ]
    if auth_config:
        result.append(k8s.core.v1.VolumeMountArgs(name="auth-config", mount_path=AUTH_CONFIG_DIR, read_only=True))
    return result


@dataclass(frozen=True)
class Scope:
    """Where the modules of the MLflow component declare: its name (the prefix of every resource
    name), its arguments, and the namespace every object in it is a child of."""

    name: str
    args: MlflowStackArgs
    namespace: pulumi.Resource

    def opts(self, **extra: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.namespace, deleted_with=self.args.deleted_with, **extra)
