"""Key Vault holding every generated secret of the platform (RBAC, soft delete, network ACLs).

Secrets are written through ARM (the control plane), so the deployer needs no data-plane role
and the vault can deny its public network. Pods read them through the Key Vault CSI driver with
workload identity, scoped secret by secret (`secret_ids`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import keyvault

from components.azure.passwords import generated_fernet_key, generated_password
from components.azure.private_link import PrivateEndpointPlacement, private_link
from layout.firewall import PublicExposure


@dataclass(frozen=True)
class KeyVaultArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    vault_name: str
    tenant_id: pulumi.Input[str]
    soft_delete_days: int
    purge_protection: bool
    exposure: PublicExposure
    private_endpoint: PrivateEndpointPlacement | None
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Secrets computed elsewhere (database URIs), stored as given."""
    generated_passwords: Sequence[str] = ()
    """Names of passwords to generate here (32 characters, letters and digits), regenerated when
    `password_keepers` change (credential rotation)."""
    bootstrap_passwords: Sequence[str] = ()
    """Passwords generated once: their application stores them at first start and would not take a
    new value from the vault (MLflow's and Grafana's bootstrap admins)."""
    password_keepers: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    content_types: Mapping[str, str] = field(default_factory=dict)
    """`contentType` of each secret (default `text/plain`)."""
    expires: pulumi.Input[int] | None = None
    """Unix seconds at which every secret expires (`attributes.expires`)."""
    generated_fernet_keys: Sequence[str] = ()
    """Names of Fernet keys to generate here, once (32 random bytes, url-safe base64): never rotated,
    what they encrypted would stop decrypting."""
    tags: dict[str, str] = field(default_factory=dict)
    protect: bool = False


class KeyVault(pulumi.ComponentResource):
    vault_id: pulumi.Output[str]
    vault_uri: pulumi.Output[str]
    vault_name: pulumi.Output[str]
    secret_ids: dict[str, pulumi.Output[str]]
    """Resource id of each secret, for role assignments scoped to one secret."""

    def __init__(self, name: str, args: KeyVaultArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:KeyVault", name, None, opts)
        vault = keyvault.Vault(
            f"{name}-vault",
            vault_name=args.vault_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=args.soft_delete_days,
                # Azure accepts only `true` or an absent value: purge protection cannot be switched off.
                enable_purge_protection=True if args.purge_protection else None,
                enabled_for_deployment=False,
                enabled_for_disk_encryption=False,
                enabled_for_template_deployment=False,
                public_network_access=args.exposure.public_network_access,
                network_acls=keyvault.NetworkRuleSetArgs(
                    default_action=args.exposure.default_action,
                    bypass="None",
                    ip_rules=[keyvault.IPRuleArgs(value=cidr) for cidr in args.exposure.allowed_ip_ranges],
                ),
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        private_link(
            self, name, args, endpoint_name=f"{args.vault_name}-pe", target_resource_id=vault.id, group_id="vault"
        )

        values: dict[str, pulumi.Input[str]] = dict(args.secrets)
        for password_name in args.generated_passwords:
            password = generated_password(f"{name}-{password_name}", self, args.password_keepers)
            values[password_name] = password.result
        for password_name in args.bootstrap_passwords:
            values[password_name] = generated_password(f"{name}-{password_name}", self).result
        for key_name in args.generated_fernet_keys:
            values[key_name] = generated_fernet_key(f"{name}-{key_name}", self)

        self.secret_ids = {}
        for secret_name, value in values.items():
            secret = keyvault.Secret(
                f"{name}-{secret_name}",
                secret_name=secret_name,
                vault_name=vault.name,
                resource_group_name=args.resource_group_name,
                properties=keyvault.SecretPropertiesArgs(
                    value=pulumi.Output.secret(value),
                    content_type=args.content_types.get(secret_name, "text/plain"),
                    attributes=keyvault.SecretAttributesArgs(enabled=True, expires=args.expires),
                ),
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["properties"]),
            )
            self.secret_ids[secret_name] = secret.id

        self.vault_id = vault.id
        self.vault_name = vault.name
        self.vault_uri = vault.properties.apply(lambda p: p.vault_uri or "")
        self.register_outputs({"vaultId": self.vault_id, "vaultUri": self.vault_uri})
