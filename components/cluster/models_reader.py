"""The models stack's own MLflow user, kept in step by a Job: the operator's workspace never holds the admin password.

In the automation namespace (Pod Security `restricted`): a ServiceAccount federated with the
`models-reader-registrar` identity, a SecretProviderClass for the two Key Vault secrets it reads
(the reader's password and the MLflow admin password: user and grant APIs are admin-only), and the
Job `mlopsctl registry ensure-reader`, created once MLflow's servers are ready and the identity's
federated credential and Key Vault grants exist (which themselves wait for the secrets). MLflow
admits pods of the automation namespace already (its `allow-automation` NetworkPolicy).

The Job's arguments name every managed model (`rollout.models` of `models/Pulumi.<stack>.yaml`,
read by the platform at plan time), so a change of that list changes the Job's spec and the Job
is replaced, i.e. re-run: new models get READ, dropped ones lose it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.mlflow_admin_job import SECRETS_MOUNT, mlflow_admin_job
from components.cluster.workload_identity import (
    KeyVault,
    PodIdentity,
    secret_provider_class,
    service_account,
)
from layout import cluster_layout
from layout.mlflow_server import service_name

KEY: Final = "models-reader-registrar"
"""Its `cluster_layout.WORKLOAD_SERVICE_ACCOUNTS` key (and ServiceAccount, Job and label name)."""
"""The non-root user of images/mlopsctl."""


def ensure_reader_args(mlflow_namespace: str, models: Sequence[str]) -> list[str]:
    registry = f"http://{service_name('registry')}.{mlflow_namespace}.svc.cluster.local"
    args = ["registry", "ensure-reader", "--username", cluster_layout.MODELS_READER_USER]
    args += ["--password-file", f"{SECRETS_MOUNT}/{cluster_layout.MODELS_READER_PASSWORD}"]
    args += ["--tracking-uri", f"{registry}:{cluster_layout.MLFLOW_SERVER_PORT}"]
    for model in models:
        args += ["--model", model]
    return args


def labels() -> dict[str, str]:
    return {cluster_layout.APP_NAME_LABEL: KEY, "app.kubernetes.io/part-of": "mlops-platform"}


@dataclass(frozen=True)
class ModelsReaderArgs:
    namespace: str
    mlflow_namespace: str
    models: Sequence[str]
    """The managed models (the models stack's `rollout.models` names): the reader gets READ on these."""
    image: pulumi.Input[str]
    identity: PodIdentity
    tenant_id: pulumi.Input[str]
    key_vault_name: pulumi.Input[str]
    mlflow_username: str
    """The MLflow admin the Job acts as."""
    provider: k8s.Provider
    cluster: pulumi.Resource
    automation: pulumi.Resource
    """Creates the automation namespace."""
    mlflow: Sequence[pulumi.Resource]
    """MLflow's server Deployments: the Job runs once they are ready."""
    node_pools: Sequence[pulumi.Resource] = ()
    image_pull_ready: Sequence[pulumi.Resource] = ()


class ModelsReader(pulumi.ComponentResource):
    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: ModelsReaderArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:serving:ModelsReader", name, None, opts)
        account = cluster_layout.workload_service_account(KEY)

        def options(*depends_on: pulumi.Resource, **extra: object) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=list(depends_on),
                deleted_with=args.cluster,
                **extra,  # type: ignore[arg-type]
            )

        sa = service_account(
            f"{name}-account",
            name=account.service_account,
            namespace=args.namespace,
            identity=args.identity,
            labels=labels(),
            opts=options(args.automation),
        )
        provider_class = secret_provider_class(
            f"{name}-secrets",
            name=f"{KEY}-key-vault",
            namespace=args.namespace,
            identity=args.identity,
            vault=KeyVault(args.key_vault_name, args.tenant_id),
            secrets=account.secrets,
            opts=options(args.automation),
        )
        self.job = mlflow_admin_job(
            f"{name}-ensure",
            name=f"{KEY}-ensure",
            namespace=args.namespace,
            labels=labels(),
            service_account=account.service_account,
            secret_class=f"{KEY}-key-vault",
            container="ensure-reader",
            image=args.image,
            args=ensure_reader_args(args.mlflow_namespace, args.models),
            mlflow_username=args.mlflow_username,
            # A Job's template is immutable: another model list, image or secret mount replaces (reruns) it.
            opts=options(
                args.automation,
                *args.mlflow,
                sa,
                provider_class,
                *args.identity.ready,
                *args.node_pools,
                *args.image_pull_ready,
                replace_on_changes=["spec"],
                delete_before_replace=True,
            ),
        )
        self.register_outputs({})
