"""Pure helpers: names within Azure's rules, kubeconfig login mode, public exposure."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.azure.postgres import sqlalchemy_uri
from harness.mock_engine import MOCK_SUBSCRIPTION_ID, Evaluation
from layout.firewall import public_exposure
from layout.naming import PlatformNames, global_name

prefixes = st.from_regex(r"[a-z][a-z0-9]{1,9}", fullmatch=True)
environments = st.sampled_from(["dev", "prod"])
regions = st.sampled_from(["westeurope", "northeurope", "eastus2", "swedencentral", "australiasoutheast"])


SUBSCRIPTION = "22222222-2222-4222-8222-222222222222"
OTHER_SUBSCRIPTION = "44444444-4444-4444-8444-444444444444"


@given(prefixes, environments, regions, st.text(min_size=1, max_size=40), st.uuids())
def test_global_names_obey_azure_rules(
    prefix: str, environment: str, region: str, owner: str, subscription: uuid.UUID
) -> None:
    names = PlatformNames(prefix, environment, region, owner, str(subscription))
    assert re.fullmatch(r"[a-z0-9]{3,24}", names.storage_account)
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,22}[a-z0-9]", names.key_vault) and "--" not in names.key_vault
    assert re.fullmatch(r"[a-z0-9]{5,50}", names.container_registry)
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", names.postgres_server)
    assert names.storage_account.endswith(names.suffix)


def test_property_tests_have_no_wall_clock_deadline() -> None:
    """conftest's profile: no deadline to flake under load, and no fewer examples for it."""
    current = settings()  # the loaded profile's values
    assert current.deadline is None
    assert current.max_examples >= 100


def test_names_are_stable_and_distinct_per_environment() -> None:
    dev = PlatformNames("mlops", "dev", "westeurope", "team", SUBSCRIPTION)
    assert dev.storage_account == PlatformNames("mlops", "dev", "westeurope", "team", SUBSCRIPTION).storage_account
    assert dev.storage_account != PlatformNames("mlops", "prod", "westeurope", "team", SUBSCRIPTION).storage_account
    assert dev.resource_group == "rg-mlops-dev-platform"
    assert dev.regional("aks") == "mlops-dev-aks"


def test_the_same_stack_in_two_subscriptions_never_shares_a_global_name() -> None:
    first = PlatformNames("mlops", "prod", "westeurope", "team", SUBSCRIPTION)
    second = PlatformNames("mlops", "prod", "westeurope", "team", OTHER_SUBSCRIPTION)
    for kind in ("storage_account", "key_vault", "container_registry", "postgres_server"):
        assert getattr(first, kind) != getattr(second, kind), kind
    # Regional names (unique per resource group) stay readable and identical.
    assert first.regional("aks") == second.regional("aks")
    # A GUID printed in upper case is the same subscription.
    assert PlatformNames("mlops", "prod", "westeurope", "team", SUBSCRIPTION.upper()).suffix == first.suffix


def test_declared_global_names_hash_the_deployers_subscription(prod: Evaluation) -> None:
    names = PlatformNames("mlops", "prod", "westeurope", "ml-platform-team", MOCK_SUBSCRIPTION_ID)
    assert prod.one("azure-native:storage:StorageAccount").inputs["accountName"] == names.storage_account
    assert prod.one("azure-native:keyvault:Vault").inputs["vaultName"] == names.key_vault
    assert prod.one("azure-native:containerregistry:Registry").inputs["registryName"] == names.container_registry
    assert prod.one("azure-native:dbforpostgresql:Server").inputs["serverName"] == names.postgres_server


def test_truncation_keeps_the_suffix() -> None:
    name = global_name("verylongpre", "prod", "artifacts", "abc123", max_length=24, hyphens=False)
    assert len(name) == 24 and name.endswith("abc123")
    with pytest.raises(ValueError, match="no room"):
        global_name("p", "dev", "x", "abcdef", max_length=8, hyphens=True)


def test_public_exposure() -> None:
    assert public_exposure(False, []).default_action == "Allow"
    closed = public_exposure(True, [])
    assert (closed.public_network_access, closed.default_action) == ("Disabled", "Deny")
    operators = public_exposure(True, ["203.0.113.0/28"])
    assert (operators.public_network_access, operators.allowed_ip_ranges) == ("Enabled", ("203.0.113.0/28",))


def test_database_uri_quotes_credentials() -> None:
    uri = sqlalchemy_uri("mlflow admin", "p@ss/word", "db.example", "mlflow_registry")
    assert uri == "postgresql+psycopg2://mlflow%20admin:p%40ss%2Fword@db.example:5432/mlflow_registry?sslmode=require"
