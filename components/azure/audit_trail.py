"""The audit trail outside the cluster: a Log Analytics workspace and one diagnostic setting per source.

"Who did what" after an incident is answered from here, not from the cluster (which an attacker
may control): the AKS API-server audit of every change (`kube-audit-admin`) and Entra sign-ins
to the cluster (`guard`), Key Vault reads and writes (`AuditEvent`), blob reads, writes and
deletes of the artifact store, PostgreSQL server logs, and registry logins and pushes.

Each diagnostic setting takes its source's resource id as `resource_uri`, so the engine creates it
after its source and the workspace. Category names are those of Azure Monitor's "supported
resource logs" reference for each resource type (`layout.audit.AUDIT_SOURCES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import monitor, operationalinsights

from layout.audit import AUDIT_SOURCES, AuditSourceKind


@dataclass(frozen=True)
class AuditTrailArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    workspace_name: str
    retention_days: int
    daily_quota_gb: int
    """0: no cap."""
    sources: Mapping[AuditSourceKind, pulumi.Input[str]]
    """Resource id of each audited resource (for storage: its blob service, `<account>/blobServices/default`)."""
    tags: dict[str, str] = field(default_factory=dict)


class AuditTrail(pulumi.ComponentResource):
    workspace_id: pulumi.Output[str]
    workspace_name: pulumi.Output[str]
    diagnostic_settings: dict[AuditSourceKind, monitor.DiagnosticSetting]

    def __init__(self, name: str, args: AuditTrailArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:AuditTrail", name, None, opts)
        workspace = operationalinsights.Workspace(
            f"{name}-workspace",
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=args.retention_days,
            workspace_capping=(
                operationalinsights.WorkspaceCappingArgs(daily_quota_gb=float(args.daily_quota_gb))
                if args.daily_quota_gb
                else None
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.diagnostic_settings = {}
        for kind, resource_id in args.sources.items():
            source = AUDIT_SOURCES[kind]
            self.diagnostic_settings[kind] = monitor.DiagnosticSetting(
                f"{name}-{kind}",
                name=f"audit-to-{args.workspace_name}",
                resource_uri=resource_id,
                workspace_id=workspace.id,
                # Resource-specific tables (AKSAudit, AZKVAuditLogs, ...) where the type has them:
                # cheaper to query and eligible for the Basic plan.
                log_analytics_destination_type="Dedicated" if source.dedicated_tables else None,
                logs=[
                    monitor.DiagnosticsLogSettingsArgs(category=category, enabled=True)
                    for category in source.categories
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.workspace_id = workspace.id
        self.workspace_name = workspace.name
        self.register_outputs({"workspaceId": self.workspace_id})
