"""The Entra kubeconfig is rewritten per login mode with the arguments that mode reads.

Expected arguments follow Azure/kubelogin's `convert-kubeconfig` (pkg/internal/converter/
convert.go): `get-token --login <mode> --server-id <id>`, then per mode only what it reads. The
input is what AKS answers for `format=exec`: device-code login with the AKS public client id,
which must never survive into another mode (the bug this replaces kept it for every mode).
"""

from __future__ import annotations

import pytest
import yaml

from harness.mock_engine import Evaluation
from layout.kubelogin import AKS_DEVICE_CODE_CLIENT_ID, KubeloginLogin, kubeconfig_with_login

SERVER = "6dae42f8-4368-4678-94ff-3960e28e3630"
TENANT = "11111111-1111-4111-8111-111111111111"
CLIENT = "44444444-4444-4444-8444-444444444444"
AKS_EXEC_ARGS = [
    "get-token",
    "--environment",
    "AzurePublicCloud",
    "--server-id",
    SERVER,
    "--client-id",
    AKS_DEVICE_CODE_CLIENT_ID,
    "--tenant-id",
    TENANT,
    "--login",
    "devicecode",
]


def _kubeconfig(args: list[str]) -> str:
    return yaml.safe_dump(
        {
            "users": [
                {"name": "entra", "user": {"exec": {"command": "kubelogin", "args": args}}},
                {"name": "admin", "user": {"token": "t"}},
            ]
        }
    )


def _args(login: KubeloginLogin) -> list[str]:
    users = yaml.safe_load(kubeconfig_with_login(_kubeconfig(AKS_EXEC_ARGS), login))["users"]
    assert users[1] == {"name": "admin", "user": {"token": "t"}}  # certificates are left alone
    return list(users[0]["user"]["exec"]["args"])


BASE = ["get-token", "--login"]


@pytest.mark.parametrize(
    ("login", "expected"),
    [
        pytest.param(
            KubeloginLogin("azurecli", tenant_id=TENANT), [*BASE, "azurecli", "--server-id", SERVER], id="azurecli"
        ),
        pytest.param(
            KubeloginLogin("workloadidentity", tenant_id=TENANT),
            [*BASE, "workloadidentity", "--server-id", SERVER, "--tenant-id", TENANT],
            id="workloadidentity-client-from-env",
        ),
        pytest.param(
            KubeloginLogin("workloadidentity", tenant_id=TENANT, client_id=CLIENT),
            [*BASE, "workloadidentity", "--server-id", SERVER, "--client-id", CLIENT, "--tenant-id", TENANT],
            id="workloadidentity",
        ),
        pytest.param(KubeloginLogin("msi", tenant_id=TENANT), [*BASE, "msi", "--server-id", SERVER], id="msi-system"),
        pytest.param(
            KubeloginLogin("msi", tenant_id=TENANT, client_id=CLIENT),
            [*BASE, "msi", "--server-id", SERVER, "--client-id", CLIENT],
            id="msi-user-assigned",
        ),
        pytest.param(
            KubeloginLogin("spn", tenant_id=TENANT, client_id=CLIENT),
            [
                *BASE,
                "spn",
                "--server-id",
                SERVER,
                "--client-id",
                CLIENT,
                "--tenant-id",
                TENANT,
                "--environment",
                "AzurePublicCloud",
            ],
            id="spn",
        ),
    ],
)
def test_each_login_mode_gets_its_own_arguments(login: KubeloginLogin, expected: list[str]) -> None:
    args = _args(login)
    assert args == expected
    assert AKS_DEVICE_CODE_CLIENT_ID not in args
    assert "devicecode" not in args


def test_spn_without_a_client_id_is_refused() -> None:
    with pytest.raises(ValueError, match="client id"):
        _args(KubeloginLogin("spn", tenant_id=TENANT))


def test_a_kubeconfig_without_server_id_is_refused() -> None:
    with pytest.raises(ValueError, match="--server-id"):
        kubeconfig_with_login(_kubeconfig(["get-token", "--login", "devicecode"]), KubeloginLogin("azurecli"))


def test_the_provider_kubeconfig_uses_the_configured_login(prod: Evaluation) -> None:
    provider = prod.one("pulumi:providers:kubernetes")
    args = yaml.safe_load(provider.inputs["kubeconfig"])["users"][0]["user"]["exec"]["args"]
    assert args[:5] == ["get-token", "--login", "workloadidentity", "--server-id", SERVER]
    assert AKS_DEVICE_CODE_CLIENT_ID not in args
    assert args[args.index("--tenant-id") + 1] == TENANT
