"""The Job that keeps every team's MLflow workspace, users and grants in step: `mlopsctl teams ensure`.

Like the webhook registration Job (components/cluster/webhook_receiver.py): it runs in the
automation namespace (MLflow's `allow-automation` policy admits it) as `teams-registrar`, the
MLflow admin password and every team's automation and reader password mounted from Key Vault as
files (`--secrets-dir`, the names `mlopsctl teams ensure` reads), after the MLflow servers run and
after the secrets exist. The teams document (`--teams-file`) is a ConfigMap of the `teams` setting.

With the platform's webhook receiver, the Job also registers each team's webhook in the team's
workspace (`--webhook-base-url`, the receiver's in-cluster address: hooks at `<base>/hooks/<team>`,
signed with the team's `<t>-webhook-secret`, mounted for the teams whose webhook is on), so it runs
only once the receiver is ready (`TeamsRegistrationArgs.receiver`): a webhook registered while no
receiver answers would see its first deliveries fail.

A Job's template is immutable and a finished Job does not run again: the pod template carries the
hash of the teams document and the credentials' generation as annotations, and a change of the spec
replaces the Job, so it reruns exactly when a team is added, changed or removed, or the passwords
rotate (`teams ensure` then resets them in MLflow).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.mlflow_admin_job import SECRETS_MOUNT, mlflow_admin_job
from components.cluster.workload_identity import (
    KeyVault,
    PodIdentity,
    secret_provider_class,
    service_account,
)
from layout import cluster_layout, team_layout
from layout.mlflow_server import service_name
from settings.teams import Team

REGISTRAR: Final = "teams-registrar"
TEAMS_MOUNT: Final = "/etc/mlops-teams"
TEAMS_FILE: Final = "teams.json"
HASH_ANNOTATION: Final = "mlops.platform/teams-hash"
GENERATION_ANNOTATION: Final = "mlops.platform/credentials-generation"


def teams_document(teams: Sequence[Team]) -> str:
    """The `teams` setting as `mlopsctl teams ensure --teams-file` reads it (stack-file keys)."""
    return json.dumps([t.model_dump(by_alias=True, mode="json") for t in teams], sort_keys=True, indent=1)


def teams_hash(teams: Sequence[Team]) -> str:
    return hashlib.sha256(teams_document(teams).encode()).hexdigest()[:16]


def hooked_teams(teams: Sequence[Team]) -> list[Team]:
    """The teams whose registry webhook is on (`overrides.webhook`)."""
    return [team for team in teams if team.overrides.webhook]


def registrar_secrets(teams: Sequence[Team], webhooks: bool = False) -> list[str]:
    """The admin password, every team's two user passwords and, with `webhooks` (a receiver to
    register with), the webhook secret of each team whose webhook is on."""
    secrets = [cluster_layout.MLFLOW_ADMIN_PASSWORD]
    for team in teams:
        secrets += [team_layout.automation_password(team.name), team_layout.reader_password(team.name)]
    if webhooks:
        secrets += [team_layout.webhook_secret(team.name) for team in hooked_teams(teams)]
    return secrets


def ensure_args(mlflow_namespace: str, webhook_base_url: str | None = None) -> list[str]:
    registry = f"http://{service_name('registry')}.{mlflow_namespace}.svc.cluster.local"
    args = [
        "teams",
        "ensure",
        "--teams-file",
        f"{TEAMS_MOUNT}/{TEAMS_FILE}",
        "--secrets-dir",
        SECRETS_MOUNT,
        "--tracking-uri",
        f"{registry}:{cluster_layout.MLFLOW_SERVER_PORT}",
    ]
    return [*args, "--webhook-base-url", webhook_base_url] if webhook_base_url else args


@dataclass(frozen=True)
class TeamsRegistrationArgs:
    teams: Sequence[Team]
    mlflow_namespace: str
    mlflow_username: str
    image: pulumi.Input[str]
    identity: PodIdentity
    key_vault_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    credentials_generation: pulumi.Input[str]
    provider: k8s.Provider
    cluster: pulumi.Resource
    automation: pulumi.Resource
    """The automation namespace's owner (RolloutAutomation)."""
    mlflow: Sequence[pulumi.Resource]
    """The MLflow servers: the Job runs once they are ready."""
    secrets: Sequence[pulumi.Resource]
    """The teams' Key Vault secrets: the CSI mount fails without them."""
    node_pools: Sequence[pulumi.Resource] = ()
    image_pull_ready: Sequence[pulumi.Resource] = ()
    webhook_base_url: str | None = None
    """The webhook receiver's in-cluster address; None: no receiver, no team webhooks registered."""
    receiver: Sequence[pulumi.Resource] = ()
    """The receiver's Deployment and Service (`WebhookReceiver.ready`): the Job waits for them."""


class TeamsRegistration(pulumi.ComponentResource):
    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: TeamsRegistrationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:cluster:TeamsRegistration", name, None, opts)
        namespace = cluster_layout.AUTOMATION_NAMESPACE
        labels = {"app.kubernetes.io/name": REGISTRAR, "app.kubernetes.io/part-of": "mlops-platform"}

        def opts_(*depends_on: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self, provider=args.provider, deleted_with=args.cluster, depends_on=list(depends_on), **extra
            )

        account = service_account(
            f"{name}-account", name=REGISTRAR, namespace=namespace, identity=args.identity, opts=opts_(args.automation)
        )
        secret_class = secret_provider_class(
            f"{name}-secrets",
            name=f"{REGISTRAR}-key-vault",
            namespace=namespace,
            identity=args.identity,
            vault=KeyVault(args.key_vault_name, args.tenant_id),
            secrets=registrar_secrets(args.teams, webhooks=args.webhook_base_url is not None),
            opts=opts_(args.automation, *args.secrets),
        )
        document = k8s.core.v1.ConfigMap(
            f"{name}-teams",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{REGISTRAR}-teams", namespace=namespace, labels=labels),
            data={TEAMS_FILE: teams_document(args.teams)},
            opts=opts_(args.automation),
        )
        annotations = pulumi.Output.from_input(args.credentials_generation).apply(
            lambda generation: {HASH_ANNOTATION: teams_hash(args.teams), GENERATION_ANNOTATION: generation}
        )
        self.job = mlflow_admin_job(
            f"{name}-ensure",
            name=f"{REGISTRAR}-ensure",
            namespace=namespace,
            labels=labels,
            annotations=annotations,
            service_account=REGISTRAR,
            secret_class=f"{REGISTRAR}-key-vault",
            container="ensure",
            image=args.image,
            args=ensure_args(args.mlflow_namespace, args.webhook_base_url),
            mlflow_username=args.mlflow_username,
            extra_volumes=[
                (
                    k8s.core.v1.VolumeMountArgs(name="teams", mount_path=TEAMS_MOUNT, read_only=True),
                    k8s.core.v1.VolumeArgs(
                        name="teams", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=f"{REGISTRAR}-teams")
                    ),
                )
            ],
            # A Job's template is immutable: new teams, a new image or rotated passwords replace (rerun) it.
            opts=opts_(
                args.automation,
                *args.mlflow,
                *args.secrets,
                account,
                secret_class,
                document,
                *args.identity.ready,
                *args.node_pools,
                *args.image_pull_ready,
                *args.receiver,
                replace_on_changes=["spec"],
                delete_before_replace=True,
            ),
        )
        self.register_outputs({})
