"""What the webhook receiver needs to serve the teams' hooks (`/hooks/<team>`, rollout/team_hooks.py).

Declared by `components.cluster.webhook_receiver.WebhookReceiver` when teams are given, as its
children, only from each team's name and Stack (adding a team adds its name to these lists and
nothing else):

- the team's webhook secret `<t>-webhook-secret` among the files of the receiver's Key Vault mount
  (the receiver's identity is granted Key Vault Secrets User on exactly those secrets, with each
  team: `components.azure.team_identities`, `TeamAzure.receiver_ready`), and the receiver's pods
  wait for the secrets and the grants;
- the arguments `--team <t>=<t>-<env>` (`mlopsctl.webhook_teams`), the secrets directory and the
  Stacks' namespace; the team's managed models are read by the receiver from the team's models
  stack file in its image (why there: `mlopsctl.webhook_teams`);
- RBAC: a Role in the automation namespace that may `patch` the teams' Stacks by `resourceNames`
  and nothing else (the receiver's one call is a JSON merge PATCH of the reconcile annotation: no
  `get` is needed), bound to the receiver's ServiceAccount. A separate Role from the single models
  Stack's, so the single-tenant Role is unchanged when teams come and go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.webhook_network import RECEIVER, labels
from layout import cluster_layout, team_layout

TEAM_RECONCILE_ROLE: Final = f"{RECEIVER}-team-reconcile"


@dataclass(frozen=True)
class TeamHook:
    """One team whose registry events the receiver routes to the team's Stack."""

    team: str
    stack: str
    """The team's Stack CR (`<team>-<env>`, in the automation namespace)."""
    ready: Sequence[pulumi.Resource] = ()
    """The team's webhook secret in Key Vault and the receiver identity's grant on it."""


def receiver_base_url(namespace: str) -> str:
    """The receiver's address in the cluster (the Service listens on 80): teams' hooks are `<base>/hooks/<t>`."""
    return f"http://{RECEIVER}.{namespace}.svc.cluster.local"


def team_secrets(teams: Sequence[TeamHook]) -> list[str]:
    return [team_layout.webhook_secret(hook.team) for hook in teams]


def team_serve_args(teams: Sequence[TeamHook], secrets_dir: str) -> list[str]:
    """`mlopsctl webhook serve` arguments for the teams' hooks (none without teams)."""
    if not teams:
        return []
    args = ["--team-secrets-dir", secrets_dir, "--team-stack-namespace", cluster_layout.AUTOMATION_NAMESPACE]
    for hook in teams:
        args += ["--team", f"{hook.team}={hook.stack}"]
    return args


def declare_team_rbac(
    name: str,
    teams: Sequence[TeamHook],
    *,
    receiver_namespace: str,
    service_account: pulumi.Resource,
    automation: pulumi.Resource,
    opts: Callable[[Sequence[pulumi.Resource]], pulumi.ResourceOptions],
) -> list[pulumi.Resource]:
    """The Role (patch the teams' Stacks by name) and its binding; nothing without teams."""
    if not teams:
        return []
    namespace = cluster_layout.AUTOMATION_NAMESPACE
    metadata = k8s.meta.v1.ObjectMetaArgs(name=TEAM_RECONCILE_ROLE, namespace=namespace, labels=labels(RECEIVER))
    role = k8s.rbac.v1.Role(
        f"{name}-team-reconcile-role",
        metadata=metadata,
        rules=[
            k8s.rbac.v1.PolicyRuleArgs(
                api_groups=["pulumi.com"],
                resources=["stacks"],
                resource_names=sorted(hook.stack for hook in teams),
                verbs=["patch"],
            )
        ],
        opts=opts([automation]),
    )
    binding = k8s.rbac.v1.RoleBinding(
        f"{name}-team-reconcile-binding",
        metadata=metadata,
        role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=TEAM_RECONCILE_ROLE),
        subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=RECEIVER, namespace=receiver_namespace)],
        opts=opts([role, service_account]),
    )
    return [binding]
