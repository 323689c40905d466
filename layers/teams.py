"""The teams layer: per entry of the `teams` setting its Azure side and its corner of the cluster, and the
one Job that keeps every team's MLflow workspace, users, grants and webhook in step (docs/teams.md).

Nothing is declared without teams: a stack that declares none is exactly the single-tenant platform.
Each team's resources are named after the team only, so adding or removing one leaves every other
team's resources (URNs and inputs) as they were.

Two steps around the cluster layer: `declare_azure` (each team's secrets, identities and grants,
among them the webhook receiver's read of the team's webhook secret) comes first, because the
receiver in the cluster layer mounts those secrets and waits for the grants (`receiver_hooks`);
`declare` (namespaces, Stacks, the registration Job) needs the cluster layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.azure import azure_roles
from components.azure.team_identities import TeamAzure, TeamAzureArgs
from components.azure.workload_identity import RoleGrant, WorkloadIdentity, WorkloadIdentityArgs
from components.cluster.team_tenancy import TeamStackArgs, TeamTenancy, TeamTenancyArgs
from components.cluster.teams_registration import (
    REGISTRAR,
    TeamsRegistration,
    TeamsRegistrationArgs,
    hooked_teams,
    registrar_secrets,
)
from components.cluster.webhook_teams import TeamHook
from components.cluster.workload_identity import PodIdentity
from layers.azure import AzureLayer
from layers.cluster import ClusterLayer
from layout import cluster_layout, team_layout
from settings.model import PlatformSettings
from settings.teams import Team

PURPOSES = ("model-reader", "job-runner", "deployer")


@dataclass(frozen=True)
class DeclaredTeam:
    team: Team
    azure: TeamAzure
    tenancy: TeamTenancy


@dataclass(frozen=True)
class TeamsLayer:
    teams: list[DeclaredTeam]
    registration: TeamsRegistration | None


def _receives_hooks(settings: PlatformSettings, team: Team) -> bool:
    """The platform's receiver serves the team's webhook: a receiver exists and the team's webhook is on."""
    return settings.webhook_receiver and team.overrides.webhook


def _team_azure(settings: PlatformSettings, azure: AzureLayer, team: Team) -> TeamAzure:
    receiver = cluster_layout.workload_service_account("webhook-receiver").key
    return TeamAzure(
        f"team-{team.name}",
        TeamAzureArgs(
            team=team,
            resource_group_name=azure.resource_group.name,
            location=settings.location,
            subscription_id=azure.client.subscription_id,
            oidc_issuer_url=azure.aks.oidc_issuer_url,
            cluster_id=azure.aks.cluster_id,
            vault_name=azure.vault.vault_name,
            artifact_container_id=azure.storage.container_id,
            artifact_container_name=settings.artifact_container,
            identity_names={p: azure.names.identity(team_layout.identity_key(team.name, p)) for p in PURPOSES},
            password_keepers=azure.rotation.keepers,
            expires=azure.rotation.expires,
            receiver_principal_id=azure.identities.principal_ids[receiver] if _receives_hooks(settings, team) else None,
            tags=settings.tags,
        ),
    )


def declare_azure(settings: PlatformSettings, azure: AzureLayer) -> dict[str, TeamAzure]:
    """Each team's Azure side (team name → component), before the cluster layer; nothing without teams."""
    return {team.name: _team_azure(settings, azure, team) for team in settings.teams}


def receiver_hooks(settings: PlatformSettings, sides: dict[str, TeamAzure]) -> list[TeamHook]:
    """The teams the webhook receiver routes: name, Stack `<t>-<env>`, and the secret and grant its pods wait for."""
    return [
        TeamHook(team.name, team_layout.stack_cr_name(team.name, settings.environment), sides[team.name].receiver_ready)
        for team in settings.teams
        if _receives_hooks(settings, team)
    ]


def _team(
    settings: PlatformSettings, azure: AzureLayer, cluster: ClusterLayer, side: TeamAzure, team: Team
) -> DeclaredTeam:
    operator = cluster.automation.operator
    stack = (
        TeamStackArgs(
            operator=operator,
            environment=settings.environment,
            platform_stack_name=settings.pulumi_stack_name,
            identity=PodIdentity(side.client_ids["deployer"], tuple(side.ready["deployer"])),
            operator_ready=[r for r in (cluster.automation.operator_release,) if r is not None],
            image_pull_ready=azure.aks.image_pull_ready,
        )
        if operator is not None
        else None
    )
    tenancy = TeamTenancy(
        f"team-{team.name}",
        TeamTenancyArgs(
            team=team,
            provider=azure.aks.provider,
            cluster=azure.aks.cluster,
            istio_crds=cluster.mesh.base,
            job_identity=PodIdentity(side.client_ids["job-runner"], tuple(side.ready["job-runner"])),
            key_vault_name=azure.vault.vault_name,
            tenant_id=azure.client.tenant_id,
            secrets_written=side.secrets_written,
            stack=stack,
        ),
    )
    return DeclaredTeam(team, side, tenancy)


def _registrar_identity(
    settings: PlatformSettings, azure: AzureLayer, teams: list[DeclaredTeam], webhooks: bool
) -> PodIdentity:
    """`teams-registrar`: Key Vault Secrets User on the admin password, each team's user passwords and, with
    the receiver, the webhook secrets of the teams whose webhook is on."""
    secret_ids = dict(azure.vault.secret_ids)
    for declared in teams:
        secret_ids.update(declared.azure.secret_ids)
    identity = WorkloadIdentity(
        f"identities-{REGISTRAR}",
        WorkloadIdentityArgs(
            resource_group_name=azure.resource_group.name,
            location=settings.location,
            identity_name=azure.names.identity(REGISTRAR),
            subscription_id=azure.client.subscription_id,
            oidc_issuer_url=azure.aks.oidc_issuer_url,
            namespace=cluster_layout.AUTOMATION_NAMESPACE,
            service_account=REGISTRAR,
            grants=[
                RoleGrant(azure_roles.KEY_VAULT_SECRETS_USER, secret_ids[secret], f"secret-{secret}")
                for secret in registrar_secrets([d.team for d in teams], webhooks)
            ],
            purpose="Job `mlopsctl teams ensure` keeps the teams' MLflow workspaces, users and grants "
            "(admin password, each team's user passwords)",
            tags=settings.tags,
        ),
    )
    return PodIdentity(identity.client_id, tuple(identity.ready))


def declare(
    settings: PlatformSettings, azure: AzureLayer, cluster: ClusterLayer, sides: dict[str, TeamAzure]
) -> TeamsLayer:
    """Every team's cluster side (its Azure side is `sides`, from `declare_azure`), and the registration Job;
    nothing when no team is declared."""
    if not settings.teams:
        return TeamsLayer([], None)
    teams = [_team(settings, azure, cluster, sides[team.name], team) for team in settings.teams]
    receiver = cluster.webhooks
    # The teams' webhooks are registered with the receiver when there is one and a team wants one.
    webhooks = receiver is not None and bool(hooked_teams(settings.teams))
    registration = TeamsRegistration(
        "teams",
        TeamsRegistrationArgs(
            teams=settings.teams,
            mlflow_namespace=settings.mlflow_namespace,
            mlflow_username=settings.mlflow_admin_username,
            image=azure.images.refs["mlopsctl"],
            identity=_registrar_identity(settings, azure, teams, webhooks),
            key_vault_name=azure.vault.vault_name,
            tenant_id=azure.client.tenant_id,
            credentials_generation=azure.rotation.generation,
            provider=azure.aks.provider,
            cluster=azure.aks.cluster,
            automation=cluster.automation,
            mlflow=list(cluster.mlflow.deployments.values()),
            secrets=[s for d in teams for s in d.azure.secrets_written],
            node_pools=azure.aks.user_node_pools,
            image_pull_ready=azure.aks.image_pull_ready,
            webhook_base_url=receiver.base_url if receiver is not None and webhooks else None,
            receiver=receiver.ready if receiver is not None and webhooks else (),
        ),
    )
    return TeamsLayer(teams, registration)


def team_stack_names(layer: TeamsLayer) -> dict[str, str | None]:
    return {d.team.name: d.tenancy.stack_name for d in layer.teams}
