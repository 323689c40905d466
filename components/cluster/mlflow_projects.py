"""The namespace MLflow Projects run in (`mlflow run --backend kubernetes`): Pod Security
`restricted`, the `ml-jobs` workload identity's service account, and the Job template MLflow fills.

Nothing here talks to the MLflow servers' objects: the jobs reach MLflow by its public URI with
the submitter's credentials. Until issue 19 these objects were children of `MlflowStack`; the
aliases keep their URNs, so a running stack sees no replacement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.cluster.workload_identity import PodIdentity, service_account
from layout import cluster_layout

PART_OF = "mlops-platform"
JOBS_IDENTITY = "ml-jobs"
NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"


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
                "metadata": {
                    "labels": {cluster_layout.WORKLOAD_IDENTITY_USE: "true", "app.kubernetes.io/part-of": PART_OF}
                },
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


@dataclass(frozen=True)
class MlflowProjectsArgs:
    namespace: str
    identity: PodIdentity
    """The `ml-jobs` workload identity (artifacts write)."""
    resource_prefix: str
    """The prefix of the resources' Pulumi names (`<prefix>-jobs-namespace`, ...): the name of the
    MLflow component they were declared in, so their names did not change."""
    formerly_in: pulumi.Resource | None = None
    """The MLflow component these objects were children of before: aliases name their old URNs."""
    deleted_with: pulumi.Resource | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    """More namespace labels (a team's jobs namespace carries its team's)."""


class MlflowProjects(pulumi.ComponentResource):
    jobs_namespace: pulumi.Output[str]
    job_template_config_map: pulumi.Output[str]

    def __init__(self, name: str, args: MlflowProjectsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:mlflow:MlflowProjects", name, None, opts)
        prefix = args.resource_prefix
        namespace_name = f"{prefix}-jobs-namespace"
        old_namespace_urn = (
            pulumi.create_urn(namespace_name, NAMESPACE_TYPE, parent=args.formerly_in)
            if args.formerly_in is not None
            else None
        )

        def opts_in(parent: pulumi.Resource, old_parent: Any) -> pulumi.ResourceOptions:
            aliases = [pulumi.Alias(parent=old_parent)] if old_parent is not None else None
            return pulumi.ResourceOptions(parent=parent, deleted_with=args.deleted_with, aliases=aliases)

        namespace = k8s.core.v1.Namespace(
            namespace_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                labels={
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "app.kubernetes.io/part-of": PART_OF,
                    **args.labels,
                },
            ),
            opts=opts_in(self, args.formerly_in),
        )
        account = cluster_layout.workload_service_account(JOBS_IDENTITY)
        service_account(
            f"{prefix}-sa-ml-jobs",
            name=account.service_account,
            namespace=args.namespace,
            identity=args.identity,
            opts=opts_in(namespace, old_namespace_urn),
        )
        template = k8s.core.v1.ConfigMap(
            f"{prefix}-job-template",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="mlflow-job-template", namespace=args.namespace),
            data={
                "job-template.yaml": yaml.safe_dump(
                    job_template(args.namespace, account.service_account), sort_keys=False
                )
            },
            opts=opts_in(namespace, old_namespace_urn),
        )
        self.jobs_namespace = namespace.metadata.apply(lambda m: m.name or args.namespace)
        self.job_template_config_map = template.metadata.apply(lambda m: m.name or "")
        self.register_outputs({"jobsNamespace": self.jobs_namespace})
