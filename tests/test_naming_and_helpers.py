"""Pure helpers: names within Azure's rules, kubeconfig login mode, public exposure."""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from components.azure.aks import kubeconfig_with_login_mode
from components.azure.postgres import sqlalchemy_uri
from layout.firewall import public_exposure
from layout.naming import PlatformNames, global_name

prefixes = st.from_regex(r"[a-z][a-z0-9]{1,9}", fullmatch=True)
environments = st.sampled_from(["dev", "prod"])
regions = st.sampled_from(["westeurope", "northeurope", "eastus2", "swedencentral", "australiasoutheast"])


@given(prefixes, environments, regions, st.text(min_size=1, max_size=40))
def test_global_names_obey_azure_rules(prefix: str, environment: str, region: str, owner: str) -> None:
    names = PlatformNames(prefix, environment, region, owner)
    assert re.fullmatch(r"[a-z0-9]{3,24}", names.storage_account)
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,22}[a-z0-9]", names.key_vault) and "--" not in names.key_vault
    assert re.fullmatch(r"[a-z0-9]{5,50}", names.container_registry)
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", names.postgres_server)
    assert names.storage_account.endswith(names.suffix)


def test_names_are_stable_and_distinct_per_environment() -> None:
    dev = PlatformNames("mlops", "dev", "westeurope", "team")
    assert dev.storage_account == PlatformNames("mlops", "dev", "westeurope", "team").storage_account
    assert dev.storage_account != PlatformNames("mlops", "prod", "westeurope", "team").storage_account
    assert dev.resource_group == "rg-mlops-dev-platform"
    assert dev.regional("aks") == "mlops-dev-aks"


def test_truncation_keeps_the_suffix() -> None:
    name = global_name("verylongpre", "prod", "artifacts", "abc123", max_length=24, hyphens=False)
    assert len(name) == 24 and name.endswith("abc123")
    with pytest.raises(ValueError, match="no room"):
        global_name("p", "dev", "x", "abcdef", max_length=8, hyphens=True)


def test_entra_kubeconfig_gets_a_non_interactive_login() -> None:
    kubeconfig = yaml.safe_dump(
        {
            "users": [
                {
                    "name": "u",
                    "user": {
                        "exec": {
                            "command": "kubelogin",
                            "args": ["get-token", "--login", "devicecode", "--server-id", "x"],
                        }
                    },
                }
            ]
        }
    )
    args = yaml.safe_load(kubeconfig_with_login_mode(kubeconfig, "workloadidentity"))["users"][0]["user"]["exec"][
        "args"
    ]
    assert args == ["get-token", "--login", "workloadidentity", "--server-id", "x"]
    admin = yaml.safe_dump({"users": [{"name": "admin", "user": {"token": "t"}}]})
    assert yaml.safe_load(kubeconfig_with_login_mode(admin, "azurecli")) == yaml.safe_load(admin)


def test_public_exposure() -> None:
    assert public_exposure(False, []).default_action == "Allow"
    closed = public_exposure(True, [])
    assert (closed.public_network_access, closed.default_action) == ("Disabled", "Deny")
    operators = public_exposure(True, ["203.0.113.0/28"])
    assert (operators.public_network_access, operators.allowed_ip_ranges) == ("Enabled", ("203.0.113.0/28",))


def test_database_uri_quotes_credentials() -> None:
    uri = sqlalchemy_uri("mlflow admin", "p@ss/word", "db.example", "mlflow_registry")
    assert uri == "postgresql+psycopg2://mlflow%20admin:p%40ss%2Fword@db.example:5432/mlflow_registry?sslmode=require"
