"""Parameters of an Azure Key Vault SecretProviderClass (Secrets Store CSI driver, workload identity).

One builder for every pod that mounts Key Vault secrets (MLflow, Grafana, the rollout CronJob):
the `objects` parameter is a YAML document whose `array` holds one YAML document per secret.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml


def key_vault_provider_parameters(
    client_id: str, vault_name: str, tenant_id: str, secret_names: Sequence[str]
) -> dict[str, str]:
    objects = [{"objectName": name, "objectType": "secret"} for name in secret_names]
    return {
        "usePodIdentity": "false",
        "clientID": client_id,
        "keyvaultName": vault_name,
        "tenantId": tenant_id,
        "objects": yaml.safe_dump({"array": [yaml.safe_dump(o, sort_keys=True) for o in objects]}, sort_keys=False),
    }
