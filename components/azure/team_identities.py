"""A team's Azure side: its secrets, its three workload identities and its Entra groups' namespace rights.

One component per team (`team-<name>`), every child named after the team only, so adding or
removing a team declares or deletes that team's resources and changes nothing of another's.

- Key Vault secrets (`layout.team_layout.team_secrets`), in the platform's one vault: the MLflow
  users' passwords (rotated with the platform's credentials: `mlopsctl teams ensure` resets a
  password that no longer logs in), the webhook secret and the models stack passphrase (generated
  once: MLflow stores the first, the second encrypts the team's stack state).
- Who reads them: the team's deployer identity reads the reader password and the passphrase; the
  team's admin groups read the automation password (their CI logs runs and registers models with
  it: the platform issues it, the team uses it); the platform's teams registrar reads them all
  (granted by the cluster side's `TeamsEnsureJob` identity, see layers/teams.py); the platform's
  webhook receiver reads the team's webhook secret (`receiver_principal_id`: granted here, with
  the secret, so the receiver's pods can wait for both). No other team, and no member group, reads
  any of them.
- Identities: `<t>-model-reader` (service account `model-storage-reader` in the team's serving
  namespace) and `<t>-job-runner` (`mlflow-job-runner` in its jobs namespace) with Storage Blob Data
  Reader on the artifact container under the ABAC condition of `layout.storage_abac` (the team's
  `workspaces/<t>/` prefix only); `<t>-deployer` (`<t>-models-deployer` in the automation namespace).
- Azure RBAC for Kubernetes on the team's two namespaces (`<cluster id>/namespaces/<ns>`): AKS RBAC
  Writer for the admin groups, AKS RBAC Reader for the member groups (principal type Group).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, keyvault

from components.azure import azure_roles
from components.azure.passwords import generated_password
from components.azure.workload_identity import RoleGrant, WorkloadIdentity, WorkloadIdentityArgs
from layout import cluster_layout, team_layout
from layout.azure_roles import namespace_scope
from layout.storage_abac import team_blob_read_condition
from settings.teams import Team


def _scope(namespace: str, cluster_id: str) -> str:
    return namespace_scope(cluster_id, namespace)


@dataclass(frozen=True)
class TeamAzureArgs:
    team: Team
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    cluster_id: pulumi.Input[str]
    vault_name: pulumi.Input[str]
    artifact_container_id: pulumi.Input[str]
    artifact_container_name: str
    identity_names: Mapping[str, str]
    """Azure name per purpose (`model-reader`, `job-runner`, `deployer`)."""
    password_keepers: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    expires: pulumi.Input[int] | None = None
    receiver_principal_id: pulumi.Input[str] | None = None
    """The platform's webhook receiver identity (object id): it verifies the team's deliveries with
    the team's webhook secret. None: no receiver, or the team's webhook is off."""
    tags: dict[str, str] = field(default_factory=dict)


class TeamAzure(pulumi.ComponentResource):
    secret_ids: dict[str, pulumi.Output[str]]
    client_ids: dict[str, pulumi.Output[str]]
    """Per purpose (`model-reader`, `job-runner`, `deployer`)."""
    ready: dict[str, list[pulumi.Resource]]
    secrets_written: list[pulumi.Resource]
    """The vault secrets: whatever mounts them waits for them."""
    receiver_ready: list[pulumi.Resource]
    """The team's webhook secret and the receiver's grant on it (empty without `receiver_principal_id`):
    the receiver's pods mount the secret, so they wait for both."""

    def __init__(self, name: str, args: TeamAzureArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:TeamAzure", name, None, opts)
        team = args.team.name
        self.secret_ids = {}
        self.secrets_written = []
        rotated = {team_layout.automation_password(team), team_layout.reader_password(team)}
        for secret_name in team_layout.team_secrets(team):
            keepers = args.password_keepers if secret_name in rotated else None
            label = f"{name}-{secret_name.removeprefix(team + '-')}"
            password = generated_password(label, self, keepers)
            secret = keyvault.Secret(
                label,
                secret_name=secret_name,
                vault_name=args.vault_name,
                resource_group_name=args.resource_group_name,
                properties=keyvault.SecretPropertiesArgs(
                    value=pulumi.Output.secret(password.result),
                    content_type="password",
                    attributes=keyvault.SecretAttributesArgs(enabled=True, expires=args.expires),
                ),
                tags={**args.tags, "team": team},
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["properties"]),
            )
            self.secret_ids[secret_name] = secret.id
            self.secrets_written.append(secret)

        condition = team_blob_read_condition(args.artifact_container_name, team)
        reads = RoleGrant(azure_roles.STORAGE_BLOB_DATA_READER, args.artifact_container_id, "container", condition)
        accounts: dict[str, tuple[str, str, Sequence[RoleGrant], str]] = {
            "model-reader": (
                args.team.namespace,
                team_layout.STORAGE_READER_SERVICE_ACCOUNT,
                [reads],
                f"Seldon storage initializer of team {team} reads its models (workspaces/{team}/ only)",
            ),
            "job-runner": (
                args.team.jobs_namespace,
                team_layout.JOB_RUNNER_SERVICE_ACCOUNT,
                [reads],
                f"MLflow Projects jobs of team {team} read its artifacts (workspaces/{team}/ only)",
            ),
            "deployer": (
                cluster_layout.AUTOMATION_NAMESPACE,
                team_layout.deployer_service_account(team),
                [
                    RoleGrant(azure_roles.KEY_VAULT_SECRETS_USER, self.secret_ids[secret], f"secret-{secret}")
                    for secret in (team_layout.reader_password(team), team_layout.stack_passphrase(team))
                ],
                f"The operator's workspace of team {team}'s models stack reads the team's registry reader "
                "password and stack passphrase",
            ),
        }
        self.client_ids = {}
        self.ready = {}
        for purpose, (namespace, service_account, grants, description) in accounts.items():
            identity = WorkloadIdentity(
                f"{name}-{purpose}",
                WorkloadIdentityArgs(
                    resource_group_name=args.resource_group_name,
                    location=args.location,
                    identity_name=args.identity_names[purpose],
                    subscription_id=args.subscription_id,
                    oidc_issuer_url=args.oidc_issuer_url,
                    namespace=namespace,
                    service_account=service_account,
                    grants=grants,
                    purpose=description,
                    tags={**args.tags, "team": team},
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.client_ids[purpose] = identity.client_id
            self.ready[purpose] = identity.ready

        def group_grant(label: str, group: str, role: str, scope: pulumi.Input[str], what: str) -> None:
            authorization.RoleAssignment(
                f"{name}-{label}-{group}",
                principal_id=group,
                principal_type="Group",
                role_definition_id=azure_roles.role_definition(args.subscription_id, role),
                scope=scope,
                description=f"team {team}: {what}"[:1024],
                opts=pulumi.ResourceOptions(parent=self),
            )

        for namespace in (args.team.namespace, args.team.jobs_namespace):
            scope = pulumi.Output.from_input(args.cluster_id).apply(functools.partial(_scope, namespace))
            for group in args.team.admin_groups:
                group_grant(f"writer-{namespace}", group, azure_roles.AKS_RBAC_WRITER, scope, f"writes {namespace}")
            for group in args.team.member_groups:
                group_grant(f"reader-{namespace}", group, azure_roles.AKS_RBAC_READER, scope, f"reads {namespace}")
        for group in args.team.admin_groups:
            group_grant(
                "automation-password",
                group,
                azure_roles.KEY_VAULT_SECRETS_USER,
                self.secret_ids[team_layout.automation_password(team)],
                "admins read the team's MLflow automation password",
            )
        self.receiver_ready = []
        if args.receiver_principal_id is not None:
            hook_secret = team_layout.webhook_secret(team)
            receiver_grant = authorization.RoleAssignment(
                f"{name}-webhook-receiver-{hook_secret.removeprefix(team + '-')}",
                principal_id=args.receiver_principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=azure_roles.role_definition(
                    args.subscription_id, azure_roles.KEY_VAULT_SECRETS_USER
                ),
                scope=self.secret_ids[hook_secret],
                description=f"team {team}: the platform's webhook receiver verifies the team's deliveries",
                opts=pulumi.ResourceOptions(parent=self),
            )
            written = self.secrets_written[team_layout.team_secrets(team).index(hook_secret)]
            self.receiver_ready = [written, receiver_grant]
        self.register_outputs({"clientIds": self.client_ids})
