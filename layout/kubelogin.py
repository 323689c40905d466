"""The kubelogin arguments of an Entra-only AKS kubeconfig, per non-interactive login mode.

AKS hands out exec kubeconfigs for device-code login (`get-token --environment ... --server-id
<AKS server app> --client-id <Azure CLI app> --tenant-id ... --login devicecode`), which cannot
work in CI or in a pod. The rewrite follows what `kubelogin convert-kubeconfig -l <mode>` writes
(Azure/kubelogin `pkg/internal/converter/convert.go`): `get-token --login <mode> --server-id
<id>`, then only the arguments that mode reads. Above all, the Azure CLI's client id in the AKS
kubeconfig is *not* carried over: it belongs to device-code login only.

- `azurecli`: the signed-in Azure CLI's token (a person after `az login`); its access token is
  not refreshed past its lifetime when the CLI itself logged in with a one-shot OIDC assertion.
- `workloadidentity`: a federated token: in a pod, `AZURE_FEDERATED_TOKEN_FILE`; in GitHub
  Actions with `id-token: write` (kubelogin >= 0.2.0), a fresh GitHub OIDC token on every call,
  so a long `pulumi up` never outlives its credential. Client and tenant from arguments or
  `AZURE_CLIENT_ID` / `AZURE_TENANT_ID`.
- `msi`: a managed identity of the machine (a self-hosted runner VM); the client id picks a
  user-assigned one.
- `spn`: a service principal with a secret or certificate (`AAD_SERVICE_PRINCIPAL_CLIENT_SECRET`
  or `AZURE_CLIENT_SECRET`); client and tenant required.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import yaml

KubeloginMode = Literal["azurecli", "workloadidentity", "spn", "msi"]
"""Non-interactive kubelogin logins (the stack setting `aksKubeloginMode`); `KubeloginLogin` writes their arguments."""

AKS_DEVICE_CODE_CLIENT_ID = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"
"""The public client AKS puts in its device-code kubeconfigs: never valid for the other modes."""


@dataclass(frozen=True)
class KubeloginLogin:
    mode: KubeloginMode
    tenant_id: str = ""
    client_id: str = ""
    """workloadidentity/msi/spn: the identity's client id (empty: kubelogin reads `AZURE_CLIENT_ID`;
    for msi, the machine's only identity)."""

    def arguments(self, server_id: str, environment: str) -> list[str]:
        args = ["get-token", "--login", self.mode, "--server-id", server_id]
        # azurecli: nothing more; the CLI's own login decides the tenant (as convert-kubeconfig,
        # which drops the kubeconfig's tenant for this mode).
        if self.mode == "workloadidentity":
            if self.client_id:
                args += ["--client-id", self.client_id]
            if self.tenant_id:
                args += ["--tenant-id", self.tenant_id]
        elif self.mode == "msi":
            if self.client_id:
                args += ["--client-id", self.client_id]
        elif self.mode == "spn":
            if not self.client_id or not self.tenant_id:
                raise ValueError("spn login needs the service principal's client id and the tenant id")
            args += ["--client-id", self.client_id, "--tenant-id", self.tenant_id]
            if environment:
                args += ["--environment", environment]
        return args


def _arg(args: list[Any], name: str) -> str:
    if name in args and args.index(name) + 1 < len(args):
        return str(args[args.index(name) + 1])
    return ""


def kubeconfig_with_login(kubeconfig: str, login: KubeloginLogin) -> str:
    """Rewrite every kubelogin user of `kubeconfig` for `login`; other users (admin certificates)
    are returned unchanged."""
    document = yaml.safe_load(kubeconfig)
    for user in document.get("users") or []:
        exec_config = (user.get("user") or {}).get("exec")
        if not exec_config or "kubelogin" not in str(exec_config.get("command", "")).lower():
            continue
        args = list(exec_config.get("args") or [])
        server_id = _arg(args, "--server-id")
        if not server_id:
            raise ValueError(f"kubeconfig user {user.get('name')!r} has no --server-id to log in to")
        exec_config["args"] = login.arguments(server_id, _arg(args, "--environment"))
    return yaml.safe_dump(document, sort_keys=False)
