"""Names of a team's pieces, one place for the Azure side, the cluster side, the outputs and the policies.

A team `<t>` (settings.teams.Team) gets, besides its MLflow workspace:

- Key Vault secrets `<t>-automation-password`, `<t>-reader-password` (the MLflow users
  `mlopsctl teams ensure` keeps; the file names it reads), `<t>-webhook-secret` (its registry
  webhook's HMAC secret) and `<t>-stack-passphrase` (its models stack's secrets provider);
- identities `<t>-model-reader` (the Seldon storage initializer in the team's namespace, blob
  reads under `workspaces/<t>/` only), `<t>-job-runner` (its MLflow Projects jobs, the same
  condition) and `<t>-deployer` (the operator's workspace of the team's models Stack);
- the models Stack `<t>-<env>` in the automation namespace, run as service account
  `<t>-models-deployer`, whose Kubernetes rights are a Role and RoleBinding in the team's
  serving namespace only.
"""

from __future__ import annotations

from typing import Final

from layout import cluster_layout

STORAGE_READER_SERVICE_ACCOUNT: Final = cluster_layout.workload_service_account("model-reader").service_account
"""The storage initializer's service account: the same name in every serving namespace (the models
program names it in each SeldonDeployment), federated with the namespace's own identity."""
JOB_RUNNER_SERVICE_ACCOUNT: Final = cluster_layout.workload_service_account("ml-jobs").service_account
TEAM_LABEL: Final = "mlops.platform/team"
"""Label on every namespace a team owns (the policies find team namespaces by it)."""
TEAM_NAMESPACE_KIND_LABEL: Final = "mlops.platform/team-namespace"
"""`serving` or `jobs`."""


def automation_password(team: str) -> str:
    return f"{team}-automation-password"


def reader_password(team: str) -> str:
    return f"{team}-reader-password"


def webhook_secret(team: str) -> str:
    return f"{team}-webhook-secret"


def stack_passphrase(team: str) -> str:
    return f"{team}-stack-passphrase"


def team_secrets(team: str) -> tuple[str, ...]:
    """Every Key Vault secret of a team, in declaration order."""
    return (automation_password(team), reader_password(team), webhook_secret(team), stack_passphrase(team))


def identity_key(team: str, purpose: str) -> str:
    """`fraud` + `model-reader` → `fraud-model-reader` (the Azure identity's key, `PlatformNames.identity`)."""
    return f"{team}-{purpose}"


def deployer_service_account(team: str) -> str:
    """The team's models Stack's service account, in the automation namespace."""
    return f"{team}-models-deployer"


def stack_cr_name(team: str, environment: str) -> str:
    """The team's Stack CR (`<team>-<env>`), in `cluster_layout.AUTOMATION_NAMESPACE`."""
    return f"{team}-{environment}"


def models_stack_name(platform_stack_name: str, team: str, environment: str) -> str:
    """`<org>/mlops-models/<env>` → `<org>/mlops-models/<team>-<env>`: the team's models stack."""
    head, _, _ = platform_stack_name.rpartition("/")
    stack = stack_cr_name(team, environment)
    return f"{head}/{stack}" if head else stack
