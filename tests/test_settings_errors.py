"""Bad configuration fails the program before a single resource is declared, naming the key."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from layout.images import PLATFORM_IMAGES
from settings import SettingsError, load_settings
from tests.conftest import assert_refused, evaluate_with

P = "mlops-platform:"


def _set(key: str, value: str) -> Callable[[dict[str, str]], None]:
    def change(config: dict[str, str]) -> None:
        config[P + key] = value

    return change


def _drop(key: str) -> Callable[[dict[str, str]], None]:
    def change(config: dict[str, str]) -> None:
        del config[P + key]

    return change


BAD_CONFIG = [
    pytest.param("dev", _set("locaton", "westeurope"), ["locaton"], "did you mean 'location'", id="typo-key"),
    pytest.param("dev", _drop("owner"), ["owner"], "required", id="missing-required"),
    pytest.param("dev", _set("postgresStorageGb", "lots"), ["postgresStorageGb"], "'lots'", id="wrong-type"),
    pytest.param(
        "dev", _set("postgresStorageGb", "100"), ["postgresStorageGb"], "128, 256", id="storage-size-not-offered"
    ),
    pytest.param(
        "prod",
        _set("postgresBackupRetentionDays", "40"),
        ["postgresBackupRetentionDays"],
        "less than or equal to 35",
        id="out-of-range",
    ),
    pytest.param("dev", _set("environment", "staging"), ["environment"], "'dev' or 'prod'", id="unknown-environment"),
    pytest.param(
        "dev",
        _set("postgresHighAvailability", "ZoneRedundant"),
        ["postgresHighAvailability"],
        "Burstable servers have no high availability",
        id="ha-on-burstable",
    ),
    pytest.param(
        "prod", _set("postgresSkuName", "Standard_B2ms"), ["postgresSkuName"], "Standard_D*", id="sku-outside-tier"
    ),
    pytest.param(
        "prod",
        _set("aksKubernetesVersion", "1.34"),
        ["aksKubernetesVersion"],
        "pinned to a patch release",
        id="unpinned-kubernetes",
    ),
    pytest.param(
        "prod",
        _set("postgresSubnet", "10.60.0.0/24"),
        ["postgresSubnet"],
        "inside vnetAddressSpace",
        id="subnet-outside-vnet",
    ),
    pytest.param(
        "prod",
        _set("privateEndpointsSubnet", "10.50.16.0/25"),
        ["privateEndpointsSubnet"],
        "disjoint from the other subnets",
        id="overlapping-subnets",
    ),
    pytest.param(
        "prod", _set("vnetAddressSpace", "10.50.0.1/16"), ["vnetAddressSpace"], "host bits", id="cidr-host-bits"
    ),
    pytest.param(
        "prod",
        _set("aksApiServerSubnet", "10.60.0.0/28"),
        ["aksApiServerSubnet"],
        "inside vnetAddressSpace 10.50.0.0/16",
        id="api-server-subnet-outside-vnet",
    ),
    pytest.param(
        "prod",
        _set("aksApiServerSubnet", "10.50.17.128/27"),
        ["aksApiServerSubnet"],
        "overlapping privateEndpointsSubnet 10.50.17.0/24",
        id="api-server-subnet-overlapping",
    ),
    pytest.param(
        "prod",
        _set("aksApiServerSubnet", "10.50.18.0/29"),
        ["aksApiServerSubnet"],
        "a /28 or larger range",
        id="api-server-subnet-too-small",
    ),
    pytest.param(
        "dev", _set("aksApiServerSubnet", "10.40.18.5/28"), ["aksApiServerSubnet"], "host bits", id="api-subnet-bits"
    ),
    pytest.param(
        "prod",
        _set("aksApiServerVnetIntegration", "yes please"),
        ["aksApiServerVnetIntegration"],
        "boolean",
        id="api-server-vnet-integration-not-a-boolean",
    ),
    pytest.param(
        "prod",
        _set("aksDnsServiceIp", "10.1.0.10"),
        ["aksDnsServiceIp"],
        "inside aksServiceCidr",
        id="dns-ip-outside-service-cidr",
    ),
    pytest.param(
        "prod", _set("aksPodCidr", "10.50.128.0/17"), ["aksPodCidr"], "outside the VNet", id="pod-cidr-in-vnet"
    ),
    pytest.param("prod", _set("aksWorkloadMinNodes", "20"), ["aksWorkloadMinNodes"], "at most 15", id="min-above-max"),
    pytest.param(
        "prod",
        _set("aksAdminGroupObjectIds", '["platform-admins"]'),
        ["aksAdminGroupObjectIds[0]"],
        "Entra ID group object ids",
        id="group-not-a-guid",
    ),
    pytest.param(
        "prod",
        _set("aksAdminGroupObjectIds", "platform-admins"),
        ["aksAdminGroupObjectIds"],
        "JSON",
        id="list-not-json",
    ),
    pytest.param(
        "prod",
        _set("containerRegistrySku", "Standard"),
        ["containerRegistrySku"],
        "'Premium'",
        id="registry-without-private-endpoints",
    ),
    pytest.param(
        "dev", _set("postgresAdminLogin", "admin"), ["postgresAdminLogin"], "not reserved", id="reserved-login"
    ),
    pytest.param("prod", _set("aksZones", '["1", "4"]'), ["aksZones[1]"], "'1', '2' or '3'", id="unknown-zone"),
    pytest.param("dev", _set("aksLocalAccounts", "sometimes"), ["aksLocalAccounts"], "boolean", id="not-a-boolean"),
    pytest.param(
        "prod",
        _set("mlflowTrackingMinReplicas", "12"),
        ["mlflowTrackingMinReplicas"],
        "at most 9",
        id="mlflow-min-above-max",
    ),
    pytest.param(
        "dev",
        _set("prebuiltImages", '{"mlflow": "mlopsdevacr.azurecr.io/mlops/mlflow-server@sha256:xyz"}'),
        ["prebuiltImages.mlflow"],
        "pinned by digest",
        id="bad-image-digest",
    ),
    pytest.param(
        "dev",
        lambda c: c.update({P + "containerRegistry": "false", P + "prebuiltImages": "{}"}),
        sorted(f"prebuiltImages.{image.name}" for image in PLATFORM_IMAGES),
        "while containerRegistry is false",
        id="no-registry-no-prebuilt-images",
    ),
    pytest.param(
        "dev",
        _set("prebuiltImages", '{"mlfow": "mlopsdevacr.azurecr.io/mlops/mlflow-server@sha256:' + "a" * 64 + '"}'),
        ["prebuiltImages.mlfow"],
        "does not build",
        id="prebuilt-image-unknown-name",
    ),
    pytest.param(
        "dev", _set("mlflowMemoryLimit", "2GB"), ["mlflowMemoryLimit"], "Kubernetes quantity", id="bad-quantity"
    ),
    pytest.param(
        "dev",
        _set("prebuiltImages", '{"mlflow": "mlopsdevacr.azurecr.io/mlops/mlflow-server:3.17.2-1"}'),
        ["prebuiltImages.mlflow"],
        "a tag alone is refused",
        id="prebuilt-image-by-tag",
    ),
    pytest.param(
        "dev",
        _set("prebuiltImages", '{"mlflow": "mlops/mlflow-server@sha256:' + "a" * 64 + '"}'),
        ["prebuiltImages.mlflow"],
        "<registry>/<repository>@sha256:<64 hex>",
        id="prebuilt-image-without-registry",
    ),
]


@pytest.mark.parametrize(("stack", "change", "keys", "explanation"), BAD_CONFIG)
def test_bad_config_fails_before_any_resource(
    stack: str, change: Callable[[dict[str, str]], None], keys: list[str], explanation: str
) -> None:
    assert_refused(evaluate_with(stack, change), keys, explanation)


def test_every_bad_key_is_named_in_one_message() -> None:
    def break_many(config: dict[str, str]) -> None:
        config[P + "environment"] = "qa"
        config[P + "locaton"] = "westeurope"
        config[P + "postgresHighAvailability"] = "ZoneRedundant"
        config[P + "aksSystemMinNodes"] = "5"
        del config[P + "costCenter"]

    evaluation = evaluate_with("dev", break_many)
    assert isinstance(evaluation.error, SettingsError)
    assert evaluation.resources == []
    assert evaluation.error.keys == sorted(
        ["aksSystemMinNodes", "costCenter", "environment", "locaton", "postgresHighAvailability"]
    )
    assert str(evaluation.error).startswith("invalid stack configuration (5 problems):")


def test_other_namespaces_are_left_to_their_providers() -> None:
    evaluation = evaluate_with("dev", lambda config: config.__setitem__("azure-native:location", "westeurope"))
    assert evaluation.error is None


MINIMAL = {
    "environment": "dev",
    "location": "westeurope",
    "owner": "team",
    "costCenter": "cc",
    "domain": "dev.mlops.example.com",
    "aksAdminGroupObjectIds": ["5f1c9a4e-2b7d-4c8e-9f3a-6d0e1b2c3a41"],
    "aksDeployerObjectIds": ["7c3e5a90-1d2b-4f6e-8a9c-0b1d2e3f4a5b"],
}


def test_engine_text_values_are_typed() -> None:
    settings = load_settings(
        {**MINIMAL, "aksSystemMinNodes": "1", "privateEndpoints": "false", "aksZones": '["1", "2"]'}
    )
    assert settings.aks_system_min_nodes == 1
    assert settings.private_endpoints is False
    assert settings.aks_zones == ["1", "2"]


def test_defaults_apply_and_zero_is_kept() -> None:
    settings = load_settings({**MINIMAL, "aksWorkloadMinNodes": 0})
    assert settings.aks_workload_min_nodes == 0  # not replaced by a default
    assert settings.aks_kubernetes_version == "1.34.2"
    assert settings.private_endpoints is True


def test_numbers_with_fractions_are_not_truncated() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({**MINIMAL, "postgresBackupRetentionDays": "7.5"})
    assert error.value.keys == ["postgresBackupRetentionDays"]


def test_the_api_server_subnet_is_only_placed_when_vnet_integration_is_on() -> None:
    """Off (dev), the subnet setting is not used, so a range outside the VNet is not an error."""
    evaluation = evaluate_with("dev", _set("aksApiServerSubnet", "10.99.0.0/28"))
    assert evaluation.error is None, evaluation.error
    subnets = {s.inputs["subnetName"] for s in evaluation.of_type("azure-native:network:Subnet")}
    assert "aks-api-server" not in subnets
    on = evaluate_with(
        "dev", lambda c: c.update({P + "aksApiServerVnetIntegration": "true", P + "aksApiServerSubnet": "10.99.0.0/28"})
    )
    assert isinstance(on.error, SettingsError) and on.error.keys == ["aksApiServerSubnet"]
