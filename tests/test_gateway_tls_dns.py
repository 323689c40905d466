"""The gateway certificate is issued (cert-manager, ACME DNS-01 on Azure DNS, workload identity) and
the platform's host names resolve (public records, or a private zone for an internal load balancer)."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from components.azure import azure_roles
from components.azure.dns import relative_name
from components.cluster.gateway_certificate import CLUSTER_ISSUER, PUBLIC_RESOLVERS
from harness.mock_engine import MOCK_LOAD_BALANCER_IP, MOCK_SUBSCRIPTION_ID, Evaluation, RecordedResource
from harness.schema_validation import chart_defaults, helm_value_problems, release_problems, validate_object
from layout import cluster_layout, resource_types
from settings import SettingsError
from tests.conftest import evaluate_with
from tests.services.stack import committed_settings

RELEASE = resource_types.HELM_RELEASE
ISSUER = resource_types.CLUSTER_ISSUER
CERTIFICATE = resource_types.CERTIFICATE


def _closure(evaluation: Evaluation, resource: RecordedResource) -> set[str]:
    """Every resource `resource` waits for: dependencies, transitively, and children of components."""
    by_urn = evaluation.by_urn()
    children: dict[str, list[str]] = {}
    for r in evaluation.resources:
        children.setdefault(r.parent, []).append(r.urn)
    seen: set[str] = set()
    todo = list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        todo += list(by_urn[urn].dependencies) if urn in by_urn else []
        todo += children.get(urn, [])
    return {by_urn[u].name for u in seen if u in by_urn}


def test_cert_manager_is_pinned_with_crds_and_workload_identity(stack: Evaluation) -> None:
    release = stack.one(RELEASE, "gateway-certificate-cert-manager")
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"]) == ("cert-manager", "v1.19.1")
    assert inputs["repositoryOpts"]["repo"] == "https://charts.jetstack.io"
    assert inputs["namespace"] == cluster_layout.CERT_MANAGER_NAMESPACE
    values = inputs["values"]
    assert values["crds"] == {"enabled": True, "keep": True}
    assert values["podLabels"] == {cluster_layout.WORKLOAD_IDENTITY_USE: "true"}
    # The DNS-01 self-check asks public resolvers, never the VNet's split-horizon view.
    assert values["dns01RecursiveNameservers"] == PUBLIC_RESOLVERS
    assert values["dns01RecursiveNameserversOnly"] is True
    for part in (values, values["webhook"], values["cainjector"], values["startupapicheck"]):
        assert set(part["resources"]["limits"]) == {"cpu", "memory"}
    prod = committed_settings(stack.stack).is_prod
    assert values["replicaCount"] == (2 if prod else 1)
    assert values["podDisruptionBudget"]["enabled"] is prod
    assert release_problems(release) == []


def test_a_misspelt_cert_manager_value_is_refused() -> None:
    defaults = chart_defaults("cert-manager", "v1.19.1")
    assert helm_value_problems({"dns01RecursiveNameserver": "1.1.1.1:53"}, defaults) == [
        "dns01RecursiveNameserver: not a value of the chart"
    ]


def test_cert_managers_identity_may_write_the_public_zone_only(stack: Evaluation) -> None:
    settings = committed_settings(stack.stack)
    federation = stack.one(
        "azure-native:managedidentity:FederatedIdentityCredential", "identities-cert-manager-federation"
    )
    assert federation.inputs["subject"] == "system:serviceaccount:cert-manager:cert-manager"
    grants = [
        r
        for r in stack.of_type("azure-native:authorization:RoleAssignment")
        if r.name.startswith("identities-cert-manager-")
    ]
    assert len(grants) == 1
    grant = grants[0].inputs
    assert grant["roleDefinitionId"].endswith("/" + azure_roles.DNS_ZONE_CONTRIBUTOR)
    group = settings.dns_zone_resource_group or f"rg-{settings.name_prefix}-{settings.environment}-platform"
    assert grant["scope"] == (
        f"/subscriptions/{MOCK_SUBSCRIPTION_ID}/resourceGroups/{group}/providers/Microsoft.Network/dnszones/"
        f"{settings.public_dns_zone}"
    )


def test_the_cluster_issuer_answers_dns01_in_azure_dns_with_workload_identity(stack: Evaluation) -> None:
    settings = committed_settings(stack.stack)
    issuer = stack.one(ISSUER)
    assert issuer.inputs["metadata"]["name"] == CLUSTER_ISSUER
    acme = issuer.inputs["spec"]["acme"]
    assert acme["server"] == settings.acme_server
    (solver,) = acme["solvers"]
    azure_dns = solver["dns01"]["azureDNS"]
    assert azure_dns["subscriptionID"] == MOCK_SUBSCRIPTION_ID
    assert azure_dns["hostedZoneName"] == settings.public_dns_zone
    assert azure_dns["resourceGroupName"] == (
        settings.dns_zone_resource_group or f"rg-{settings.name_prefix}-{settings.environment}-platform"
    )
    assert azure_dns["managedIdentity"] == {
        "clientID": stack.outputs["workloadIdentityClientIds"].value["cert-manager"]
    }
    # Its CRD comes with the release; its first challenge needs the federated credential and the grant.
    waits_for = _closure(stack, issuer)
    assert {
        "gateway-certificate-cert-manager",
        "identities-cert-manager-federation",
        "identities-cert-manager-dns-zone",
    } <= waits_for


def test_the_certificate_is_the_secret_the_gateway_serves_for_every_host(stack: Evaluation) -> None:
    settings = committed_settings(stack.stack)
    certificate = stack.one(CERTIFICATE)
    assert certificate.inputs["metadata"]["namespace"] == cluster_layout.ISTIO_NAMESPACE
    spec = certificate.inputs["spec"]
    assert spec["issuerRef"] == {"name": CLUSTER_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"}
    gateway = next(
        r
        for r in stack.of_type("kubernetes:networking.istio.io/v1:Gateway")
        if r.inputs["metadata"]["name"] == cluster_layout.PLATFORM_GATEWAY_NAME
    )
    https = next(s for s in gateway.inputs["spec"]["servers"] if s["port"]["protocol"] == "HTTPS")
    assert spec["secretName"] == https["tls"]["credentialName"] == settings.gateway_tls_secret_name
    for host in [*stack.outputs["publicHosts"].value, *https["hosts"]]:
        assert any(fnmatch.fnmatch(host, name) and host.count(".") == name.count(".") for name in spec["dnsNames"])
    assert {"gateway-certificate-cluster-issuer", "gateway-certificate-cert-manager"} <= _closure(stack, certificate)


def _records(evaluation: Evaluation, type_token: str) -> dict[str, dict[str, Any]]:
    return {r.inputs["relativeRecordSetName"]: r.inputs for r in evaluation.of_type(type_token)}


def test_dev_publishes_public_records_in_a_zone_it_creates(dev: Evaluation) -> None:
    zone = dev.one("azure-native:dns:Zone")
    assert zone.inputs["zoneName"] == "dev.mlops.example.com"
    assert zone.inputs["zoneType"] == "Public"
    records = _records(dev, "azure-native:dns:RecordSet")
    assert set(records) == {"mlflow", "models", "grafana"}
    for record in records.values():
        assert record["recordType"] == "A"
        assert record["zoneName"] == "dev.mlops.example.com"
        assert record["aRecords"] == [{"ipv4Address": MOCK_LOAD_BALANCER_IP}]
    assert dev.of_type("azure-native:privatedns:PrivateRecordSet") == []
    assert len(dev.outputs["dnsNameServers"].value) == 4  # to delegate from mlops.example.com


def test_prod_resolves_its_internal_gateway_in_a_private_zone_only(prod: Evaluation) -> None:
    assert prod.of_type("azure-native:dns:Zone") == []  # the public zone exists already
    assert prod.of_type("azure-native:dns:RecordSet") == []  # nothing about internal addresses in public
    zone = prod.one("azure-native:privatedns:PrivateZone", "gateway-dns-private-zone")
    assert zone.inputs["privateZoneName"] == "mlops.example.com"
    link = prod.one("azure-native:privatedns:VirtualNetworkLink", "gateway-dns-private-zone-link")
    vnet = prod.one("azure-native:network:VirtualNetwork")
    assert link.inputs["virtualNetwork"]["id"] == vnet.inputs.get("id", link.inputs["virtualNetwork"]["id"])
    assert link.inputs["registrationEnabled"] is False
    records = _records(prod, "azure-native:privatedns:PrivateRecordSet")
    assert set(records) == {"mlflow", "models", "grafana"}
    assert all(r["aRecords"] == [{"ipv4Address": MOCK_LOAD_BALANCER_IP}] for r in records.values())
    assert prod.outputs["dnsNameServers"].value == []


def test_schema_rejects_a_field_cert_manager_does_not_have() -> None:
    certificate = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "x", "namespace": "istio-system"},
        "spec": {"secretName": "x", "dnsName": ["a.example.com"], "issuerRef": {"name": "i"}},
    }
    assert any("dnsName" in p for p in validate_object(certificate, "1.34.2"))
    issuer = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": "i"},
        "spec": {
            "acme": {
                "server": "https://x",
                "privateKeySecretRef": {"name": "k"},
                "solvers": [
                    {"dns01": {"azureDNS": {"subscriptionID": "s", "resourceGroupName": "g", "environment": "Azure"}}}
                ],
            }
        },
    }
    assert any("environment" in p for p in validate_object(issuer, "1.34.2"))


def test_relative_record_names() -> None:
    assert relative_name("mlflow.dev.mlops.example.com", "mlops.example.com") == "mlflow.dev"
    assert relative_name("mlflow.mlops.example.com", "mlops.example.com") == "mlflow"
    assert relative_name("mlops.example.com", "mlops.example.com") == "@"
    with pytest.raises(ValueError, match="not inside the zone"):
        relative_name("mlflow.example.org", "mlops.example.com")


def test_a_zone_that_does_not_hold_the_domain_is_refused() -> None:
    evaluation = evaluate_with("prod", lambda c: c.__setitem__("mlops-platform:dnsZoneName", "example.org"))
    assert isinstance(evaluation.error, SettingsError)
    assert evaluation.resources == []
    assert evaluation.error.keys == ["dnsZoneName"]
    assert "'mlops.example.com' itself or a parent" in str(evaluation.error)
