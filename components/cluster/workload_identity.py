"""A pod's side of Azure workload identity, declared one way for every workload that has one.

The Azure side (`components.azure.workload_identity`) makes an identity that one service account
may use; a workload then needs, in its namespace:

- the ServiceAccount carrying the identity's client id (`azure.workload.identity/client-id`), which
  the pods run as, labelled `azure.workload.identity/use: "true"` (`cluster_layout.WORKLOAD_IDENTITY_USE`);
- for Key Vault secrets as files: a SecretProviderClass (Secrets Store CSI driver, provider `azure`,
  parameters from `layout.key_vault_csi`) and a CSI volume naming it, mounted read-only;
- to wait for `PodIdentity.ready` (federated credential and role grants): without them the pod's
  first token exchange, or first secret read, fails.

MLflow, the webhook receiver and registrar, the rollout analysis and the operator's workspace,
Grafana's secret sync, cert-manager and the model storage reader use these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from layout import cluster_layout
from layout.key_vault_csi import key_vault_provider_parameters

CSI_DRIVER: Final = "secrets-store.csi.k8s.io"
SECRET_PROVIDER_CLASS_API: Final = "secrets-store.csi.x-k8s.io/v1"


@dataclass(frozen=True)
class PodIdentity:
    """What a workload needs of its Azure identity: the client id, and what to wait for."""

    client_id: pulumi.Input[str]
    ready: Sequence[pulumi.Resource] = ()
    """Federated credential and role grants (`WorkloadIdentity.ready`); empty when another program
    (the platform, for the models project) declared and deployed them."""


def pod_identities(
    client_ids: Mapping[str, pulumi.Input[str]], ready: Mapping[str, Sequence[pulumi.Resource]]
) -> dict[str, PodIdentity]:
    """Per `cluster_layout.WORKLOAD_SERVICE_ACCOUNTS` key: client id and readiness together."""
    return {key: PodIdentity(client_id, tuple(ready.get(key, ()))) for key, client_id in client_ids.items()}


@dataclass(frozen=True)
class KeyVault:
    """The vault a SecretProviderClass reads from."""

    name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]


def service_account(
    resource_name: str,
    *,
    name: str,
    namespace: str,
    identity: PodIdentity,
    opts: pulumi.ResourceOptions,
    labels: Mapping[str, str] | None = None,
    automount_token: bool | None = False,
) -> k8s.core.v1.ServiceAccount:
    """The ServiceAccount federated with `identity` (None for `automount_token`: the API default)."""
    return k8s.core.v1.ServiceAccount(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name,
            namespace=namespace,
            annotations={cluster_layout.WORKLOAD_IDENTITY_CLIENT_ID: identity.client_id},
            labels=dict(labels) if labels is not None else None,
        ),
        automount_service_account_token=automount_token,
        opts=opts,
    )


def key_vault_parameters(
    identity: PodIdentity, vault: KeyVault, secrets: Sequence[str]
) -> pulumi.Output[dict[str, str]]:
    """The SecretProviderClass `parameters`: `secrets` of `vault`, read as `identity`."""
    return pulumi.Output.all(identity.client_id, vault.name, vault.tenant_id).apply(
        lambda v: key_vault_provider_parameters(v[0], v[1], v[2], list(secrets))
    )


def secret_provider_class(
    resource_name: str,
    *,
    name: str,
    namespace: str,
    identity: PodIdentity,
    vault: KeyVault,
    secrets: Sequence[str],
    opts: pulumi.ResourceOptions,
    secret_objects: Sequence[Mapping[str, Any]] | None = None,
) -> k8s.apiextensions.CustomResource:
    """Key Vault `secrets` as files in the pods that mount class `name`; `secret_objects` also syncs
    some into Kubernetes Secrets while a pod mounts them (for consumers that read Secrets only)."""
    spec: dict[str, Any] = {"provider": "azure", "parameters": key_vault_parameters(identity, vault, secrets)}
    if secret_objects is not None:
        spec["secretObjects"] = [dict(o) for o in secret_objects]
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=SECRET_PROVIDER_CLASS_API,
        kind="SecretProviderClass",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace),
        spec=spec,
        opts=opts,
    )


def secrets_volume(volume: str, provider_class: str) -> k8s.core.v1.VolumeArgs:
    """The CSI volume of SecretProviderClass `provider_class` (read-only)."""
    return k8s.core.v1.VolumeArgs(
        name=volume,
        csi=k8s.core.v1.CSIVolumeSourceArgs(
            driver=CSI_DRIVER, read_only=True, volume_attributes={"secretProviderClass": provider_class}
        ),
    )


def secrets_mount(volume: str, path: str) -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name=volume, mount_path=path, read_only=True)


def secrets_volume_manifest(volume: str, provider_class: str) -> dict[str, Any]:
    """`secrets_volume` as a plain manifest, for pod templates inside custom resources (PKO's workspace)."""
    return {
        "name": volume,
        "csi": {"driver": CSI_DRIVER, "readOnly": True, "volumeAttributes": {"secretProviderClass": provider_class}},
    }


def secrets_mount_manifest(volume: str, path: str) -> dict[str, Any]:
    return {"name": volume, "mountPath": path, "readOnly": True}


def uses_identity(labels: Mapping[str, str]) -> dict[str, str]:
    """Pod labels plus the webhook's opt-in label: the pod gets the projected token and Azure env."""
    return {**labels, cluster_layout.WORKLOAD_IDENTITY_USE: "true"}
