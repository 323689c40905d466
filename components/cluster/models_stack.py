"""The Pulumi Kubernetes Operator's Stack that runs the models project, for the single models
namespace (components.cluster.rollout_automation) and for each team (components.cluster.team_tenancy).

A Stack runs `models/` (`repoDir: models`) every `pulumiOperatorResyncSeconds`, even when Git has
not changed (registry decisions are the change), as its own service account, whose Kubernetes
rights are `MODEL_DELIVERY_RULES` in one serving namespace. The reader's password and the stack
passphrase come from Key Vault as files the CSI driver mounts into the workspace pod at
`SECRETS_MOUNT`; the Stack's `envRefs` are `Literal` file paths
(`PULUMI_CONFIG_PASSPHRASE_FILE`, read by the Pulumi CLI's passphrase secrets manager, and
`MLFLOW_TRACKING_PASSWORD_FILE`, read by `rollout.source`). A `Secret` envRef would become
`env[].valueFrom.secretKeyRef` on the workspace pod (PKO 2.9 `SetEnvRefsForWorkspace`), which
policy `k8s-no-secret-env` forbids for the program's own pods; PKO refuses `FS` and `Env`
references.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as kubernetes

from components.cluster.workload_identity import (
    PodIdentity,
    secrets_mount_manifest,
    secrets_volume_manifest,
    uses_identity,
)

MODELS_PROJECT_DIR = "models"
WORKSPACE_CONTAINER = "pulumi"
"""The workspace's main container in PKO 2.9 (`WorkspacePulumiContainerName`)."""
# What model delivery declares in the models namespace (components/serving/model_rollout.py);
# the operator's workspace may manage these and nothing else.
MODEL_DELIVERY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("machinelearning.seldon.io", ("seldondeployments",)),
    ("networking.istio.io", ("virtualservices", "destinationrules")),
    ("monitoring.coreos.com", ("prometheusrules",)),
    ("policy", ("poddisruptionbudgets",)),
    ("", ("serviceaccounts", "secrets", "services", "configmaps")),
)
MANAGE_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
SECRETS_MOUNT = "/mnt/secrets"


@dataclass(frozen=True)
class OperatorArgs:
    chart_version: str
    resync_seconds: int
    project_repo: str
    branch: str
    backend_url: str
    stack_name: str
    """The models stack (`<org>/mlops-models/<env>`)."""
    workspace_image: pulumi.Output[str]
    """The `operator-workspace` image by digest, from `PlatformImages.refs`: the Stack waits for the build
    (and, through `image_pull_ready`, for the nodes' pull grant) before a workspace pod pulls it."""
    deployer_identity: PodIdentity
    """The `models-deployer` identity; the workspace pod's first token exchange and secret reads
    fail without its federated credential and Key Vault grants, so the Stack waits for `ready`."""
    models_namespace: str
    models_namespace_ready: pulumi.Resource
    """What creates the models namespace: the RoleBinding in it waits for it."""
    monitoring_crds: pulumi.Resource | None = None
    """What installs the PodMonitor kind (kube-prometheus-stack); None: the operator is not scraped."""


@dataclass(frozen=True)
class ModelsStackSpec:
    """What differs between the single models Stack and a team's (`components.cluster.team_tenancy`)."""

    cr_name: str
    namespace: str
    stack_name: str
    service_account: str
    credentials_class: str
    """The SecretProviderClass mounted at `SECRETS_MOUNT` in the workspace pod."""
    env_refs: Mapping[str, Mapping[str, object]]


def literal_env_refs(values: Mapping[str, str]) -> dict[str, dict[str, object]]:
    """PKO `envRefs` of type `Literal` (see the module docstring: files, never Secret references)."""
    return {variable: {"type": "Literal", "literal": {"value": value}} for variable, value in values.items()}


def models_stack(
    resource_name: str, spec: ModelsStackSpec, operator: OperatorArgs, opts: pulumi.ResourceOptions
) -> kubernetes.apiextensions.CustomResource:
    """The PKO Stack that runs the models project (`repoDir: models`) as `spec.service_account`."""
    return kubernetes.apiextensions.CustomResource(
        resource_name,
        api_version="pulumi.com/v1",
        kind="Stack",
        metadata={"name": spec.cr_name, "namespace": spec.namespace},
        spec={
            "stack": spec.stack_name,
            "projectRepo": operator.project_repo,
            "branch": operator.branch,
            "repoDir": MODELS_PROJECT_DIR,
            "backend": operator.backend_url,
            "serviceAccountName": spec.service_account,
            "refresh": True,
            "resyncFrequencySeconds": operator.resync_seconds,
            # Re-run on the interval even when Git is unchanged: registry decisions are the change.
            "continueResyncOnCommitMatch": True,
            "destroyOnFinalize": False,
            "envRefs": {key: dict(value) for key, value in spec.env_refs.items()},
            "workspaceTemplate": {
                "spec": {
                    "securityProfile": "restricted",
                    "image": operator.workspace_image,
                    "podTemplate": {
                        "metadata": {"labels": uses_identity({})},
                        "spec": {
                            # The operator runs the workspace as the Stack's account; said here too, so
                            # the pod template alone names the identity whose federation it waits for.
                            "serviceAccountName": spec.service_account,
                            "containers": [
                                {
                                    "name": WORKSPACE_CONTAINER,
                                    "volumeMounts": [secrets_mount_manifest("credentials", SECRETS_MOUNT)],
                                }
                            ],
                            "volumes": [secrets_volume_manifest("credentials", spec.credentials_class)],
                        },
                    },
                }
            },
        },
        opts=opts,
    )
