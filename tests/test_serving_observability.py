"""Istio, Seldon Core and kube-prometheus-stack as the program declares them, per stack."""

from __future__ import annotations

import json

import pytest

from components.cluster.istio_mesh import AZURE_INTERNAL_LB_ANNOTATION
from components.cluster.monitoring import (
    GRAFANA_ADMIN_SECRET,
    GRAFANA_PASSWORD_KEY,
    GRAFANA_USER_KEY,
    ISTIO_MTLS_SCRAPE_CLASS,
)
from harness.mock_engine import Evaluation, RecordedResource
from harness.schema_validation import chart_defaults, helm_releases, schema_problems
from layout import cluster_layout, resource_types
from observability import alerts, dashboards
from settings import PlatformSettings
from tests.conftest import evaluate_with
from tests.services.stack import committed_settings

RELEASE = resource_types.HELM_RELEASE
EXPECTED_CHARTS = {
    "istio-base": ("base", "1.30.3", "https://istio-release.storage.googleapis.com/charts", "istio-system"),
    "istio-istiod": ("istiod", "1.30.3", "https://istio-release.storage.googleapis.com/charts", "istio-system"),
    "istio-ingress-gateway": (
        "gateway",
        "1.30.3",
        "https://istio-release.storage.googleapis.com/charts",
        "istio-system",
    ),
    "seldon-operator": (
        "seldon-core-operator",
        "1.17.1",
        "https://storage.googleapis.com/seldon-charts",
        "seldon-system",
    ),
    "monitoring-kube-prometheus-stack": (
        "kube-prometheus-stack",
        "88.5.3",
        "https://prometheus-community.github.io/helm-charts",
        "monitoring",
    ),
    "gateway-certificate-cert-manager": ("cert-manager", "v1.19.1", "https://charts.jetstack.io", "cert-manager"),
    # the operator of model delivery (both committed stacks run it); an OCI chart: no repository
    "automation-pulumi-operator": (
        "oci://ghcr.io/pulumi/helm-charts/pulumi-kubernetes-operator",
        "2.9.0",
        None,
        "mlops-system",
    ),
}


def _release(stack: Evaluation, name: str) -> RecordedResource:
    return stack.one(RELEASE, name)


def _custom(stack: Evaluation, kind: str, name: str) -> RecordedResource:
    return next(r for r in stack.resources if r.type.endswith(f":{kind}") and r.name == name)


def _depends_on(stack: Evaluation, resource: RecordedResource) -> set[str]:
    by_urn = stack.by_urn()
    return {by_urn[urn].name for urn in resource.dependencies if urn in by_urn}


def test_every_kubernetes_object_and_release_validates(stack: Evaluation) -> None:
    assert schema_problems(stack, "1.34.2") == []


def test_releases_are_pinned_with_repository_and_namespace(stack: Evaluation) -> None:
    releases = {r.name: r for r in helm_releases(stack)}
    assert set(releases) == set(EXPECTED_CHARTS)
    for name, (chart, version, repository, namespace) in EXPECTED_CHARTS.items():
        inputs = releases[name].inputs
        repo = (inputs.get("repositoryOpts") or {}).get("repo")
        assert (inputs["chart"], inputs["version"], repo, inputs["namespace"]) == (
            chart,
            version,
            repository,
            namespace,
        )
        assert inputs["atomic"] is True


def test_chart_versions_are_settings_with_the_pinned_defaults() -> None:
    fields = PlatformSettings.model_fields
    assert fields["istio_chart_version"].default == "1.30.3"
    assert fields["seldon_core_operator_chart_version"].default == "1.17.1"
    assert fields["kube_prometheus_stack_chart_version"].default == "88.5.3"


def test_in_cluster_objects_use_the_cluster_provider_and_go_with_the_cluster(stack: Evaluation) -> None:
    provider = stack.one("pulumi:providers:kubernetes")
    cluster = stack.one("azure-native:containerservice:ManagedCluster")
    in_cluster = [r for r in stack.resources if r.type.startswith("kubernetes:")]
    assert len(in_cluster) >= 19
    for resource in in_cluster:
        assert resource.provider.startswith(provider.urn + "::"), resource.name
        assert resource.deleted_with == cluster.urn, resource.name


def test_releases_depend_only_on_what_they_need(stack: Evaluation) -> None:
    # Every release also waits for the user node pool (its pods cannot run on the system pool).
    pool = {"aks-workload"}
    assert _depends_on(stack, _release(stack, "istio-base")) == {"istio-namespace"} | pool
    assert _depends_on(stack, _release(stack, "istio-istiod")) == {"istio-base"} | pool
    assert _depends_on(stack, _release(stack, "istio-ingress-gateway")) == {"istio-istiod"} | pool
    # Seldon needs Istio's CRDs (it creates VirtualServices), not the control plane or monitoring;
    # its values name the platform's model server and storage initializer, pushed before it.
    assert (
        _depends_on(stack, _release(stack, "seldon-operator"))
        == {
            "istio-base",
            "seldon-system-namespace",
            "images-model-server",
            "images-storage-initializer",
            "registry-registry",
        }
        | pool
    )
    # Prometheus needs injection for its mTLS certificates and the Grafana admin Secret; not Seldon.
    assert (
        _depends_on(stack, _release(stack, "monitoring-kube-prometheus-stack"))
        == {
            "istio-istiod",
            "monitoring-namespace",
            "monitoring-grafana-secret-sync",
        }
        | pool
    )
    for kind, name in (("PodMonitor", "monitoring-seldon-executors"), ("PrometheusRule", "monitoring-platform-rules")):
        assert _depends_on(stack, _custom(stack, kind, name)) == {"monitoring-kube-prometheus-stack"}


def test_children_are_parented_and_named_after_their_component(stack: Evaluation) -> None:
    for token, prefix in (
        ("mlops:serving:IstioMesh", "istio-"),
        ("mlops:serving:SeldonCore", "seldon-"),
        ("mlops:observability:Monitoring", "monitoring-"),
    ):
        component = stack.one(token)
        children = [r for r in stack.resources if r.parent == component.urn]
        assert len(children) >= 3
        assert all(child.name.startswith(prefix) for child in children), [c.name for c in children]


def test_gateway_is_internal_in_prod_and_public_in_dev(dev: Evaluation, prod: Evaluation) -> None:
    prod_service = _release(prod, "istio-ingress-gateway").inputs["values"]["service"]
    assert prod_service["annotations"] == {AZURE_INTERNAL_LB_ANNOTATION: "true"}
    assert _release(dev, "istio-ingress-gateway").inputs["values"]["service"]["annotations"] == {}
    assert prod.outputs["gatewayAddress"].value == "10.40.0.200"


def test_internal_load_balancer_is_a_setting() -> None:
    def public(config: dict[str, str]) -> None:
        config["mlops-platform:ingressInternalLoadBalancer"] = "false"

    evaluation = evaluate_with("prod", public)
    assert evaluation.error is None
    assert evaluation.one(RELEASE, "istio-ingress-gateway").inputs["values"]["service"]["annotations"] == {}


def test_platform_gateway_serves_the_domain_with_the_configured_certificate(stack: Evaluation) -> None:
    gateway = _custom(stack, "Gateway", "istio-platform-gateway").inputs
    domain = stack.outputs["grafanaUrl"].value.removeprefix("https://grafana.")
    assert gateway["metadata"] == {
        "name": cluster_layout.PLATFORM_GATEWAY_NAME,
        "namespace": cluster_layout.ISTIO_NAMESPACE,
    }
    https, http = gateway["spec"]["servers"]
    assert https["hosts"] == [domain, f"*.{domain}"] and https["tls"]["credentialName"] == "platform-gateway-tls"
    assert https["tls"]["mode"] == "SIMPLE" and http["tls"] == {"httpsRedirect": True}
    assert gateway["spec"]["selector"] == {"istio": "ingressgateway"}


def test_models_namespace_is_meshed_with_strict_mtls(stack: Evaluation) -> None:
    namespace = stack.one("kubernetes:core/v1:Namespace", "seldon-models-namespace").inputs["metadata"]
    assert namespace["name"] == "models" and namespace["labels"]["istio-injection"] == "enabled"
    peer = _custom(stack, "PeerAuthentication", "seldon-models-strict-mtls").inputs
    assert peer["metadata"]["namespace"] == "models" and peer["spec"] == {"mtls": {"mode": "STRICT"}}


def test_models_namespace_enforces_the_strictest_profile_its_meshed_pods_meet(stack: Evaluation) -> None:
    """Without the Istio CNI plugin, injection adds `istio-init` (root, NET_ADMIN, NET_RAW) to every
    predictor pod, which `baseline` rejects: the namespace enforces `privileged` and warns and audits
    at `baseline`. With the plugin (istiod `istio_cni.enabled`, a `cni` release) it enforces `baseline`."""
    labels = stack.one("kubernetes:core/v1:Namespace", "seldon-models-namespace").inputs["metadata"]["labels"]
    # A team's serving namespace is meshed like `models` (docs/teams.md): the same profile, plus its team labels.
    meshed = {"models"} | {team.namespace for team in committed_settings(stack.stack).teams}
    istiod = _release(stack, "istio-istiod").inputs["values"]
    releases = stack.of_type(RELEASE)
    cni = bool(istiod.get("istio_cni", {}).get("enabled")) or any(r.inputs.get("chart") == "cni" for r in releases)
    assert labels == {
        "istio-injection": "enabled",
        "pod-security.kubernetes.io/enforce": "baseline" if cni else "privileged",
        "pod-security.kubernetes.io/warn": "baseline",
        "pod-security.kubernetes.io/audit": "baseline",
    }
    # Every other namespace the platform labels enforces `restricted`: only serving namespaces are meshed.
    for namespace in stack.of_type("kubernetes:core/v1:Namespace"):
        metadata = namespace.inputs["metadata"]
        namespace_labels = metadata.get("labels", {})
        if metadata["name"] in meshed:
            assert {k: namespace_labels.get(k) for k in labels} == labels, metadata["name"]
        elif "pod-security.kubernetes.io/enforce" in namespace_labels:
            assert namespace_labels["pod-security.kubernetes.io/enforce"] == "restricted", metadata["name"]


def test_seldon_uses_istio_and_the_platform_gateway(stack: Evaluation) -> None:
    values = _release(stack, "seldon-operator").inputs["values"]
    assert values["istio"] == {"enabled": True, "gateway": "istio-system/platform-gateway", "tlsMode": "ISTIO_MUTUAL"}
    assert values["executor"] == {"metricsPortName": "metrics", "prometheus": {"path": "/prometheus"}}


def test_prometheus_retention_and_volumes_follow_settings(dev: Evaluation, prod: Evaluation) -> None:
    for evaluation, retention, size, replicas in ((dev, "7d", "20Gi", 1), (prod, "30d", "200Gi", 2)):
        spec = _release(evaluation, "monitoring-kube-prometheus-stack").inputs["values"]["prometheus"]["prometheusSpec"]
        claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
        assert (spec["retention"], claim["resources"]["requests"]["storage"], spec["replicas"]) == (
            retention,
            size,
            replicas,
        )
        assert spec["podMonitorSelectorNilUsesHelmValues"] is False
        assert spec["ruleSelectorNilUsesHelmValues"] is False
    assert claim["storageClassName"] == "managed-csi-premium"


def test_grafana_admin_comes_from_key_vault_never_from_values(stack: Evaluation) -> None:
    values = _release(stack, "monitoring-kube-prometheus-stack").inputs["values"]
    grafana = values["grafana"]
    assert grafana["admin"] == {
        "existingSecret": GRAFANA_ADMIN_SECRET,
        "userKey": GRAFANA_USER_KEY,
        "passwordKey": GRAFANA_PASSWORD_KEY,
    }
    assert "adminPassword" not in grafana
    password = next(
        s for s in stack.of_type("azure-native:keyvault:Secret") if s.inputs["secretName"] == "grafana-admin-password"
    ).inputs["properties"]["value"]
    in_cluster = json.dumps([r.inputs for r in stack.resources if r.type.startswith("kubernetes:")])
    assert password not in in_cluster

    client_id = stack.outputs["workloadIdentityClientIds"].value["grafana"]
    account = stack.one("kubernetes:core/v1:ServiceAccount", "monitoring-grafana-service-account").inputs
    assert account["metadata"]["name"] == "grafana" and account["metadata"]["namespace"] == "monitoring"
    assert account["metadata"]["annotations"] == {"azure.workload.identity/client-id": client_id}
    provider = _custom(stack, "SecretProviderClass", "monitoring-grafana-secret-provider").inputs["spec"]
    assert provider["parameters"]["clientID"] == client_id
    assert provider["parameters"]["keyvaultName"] == stack.outputs["keyVaultName"].value
    assert provider["parameters"]["tenantId"] == stack.outputs["tenantId"].value
    synced = provider["secretObjects"][0]
    assert synced["secretName"] == GRAFANA_ADMIN_SECRET
    assert {d["key"]: d["objectName"] for d in synced["data"]} == {
        GRAFANA_USER_KEY: cluster_layout.GRAFANA_ADMIN_USER,
        GRAFANA_PASSWORD_KEY: cluster_layout.GRAFANA_ADMIN_PASSWORD,
    }
    sync = stack.one("kubernetes:apps/v1:Deployment", "monitoring-grafana-secret-sync").inputs["spec"]["template"]
    assert sync["spec"]["serviceAccountName"] == "grafana"
    assert sync["spec"]["volumes"][0]["csi"]["volumeAttributes"] == {"secretProviderClass": GRAFANA_ADMIN_SECRET}


def test_dashboards_are_discovered_by_the_grafana_sidecar(stack: Evaluation) -> None:
    sidecar = _release(stack, "monitoring-kube-prometheus-stack").inputs["values"]["grafana"]["sidecar"]["dashboards"]
    maps = [r for r in stack.of_type("kubernetes:core/v1:ConfigMap") if r.name.startswith("monitoring-dashboard-")]
    titles = set()
    for config_map in maps:
        assert config_map.inputs["metadata"]["labels"] == {sidecar["label"]: sidecar["labelValue"]}
        assert config_map.inputs["metadata"]["namespace"] == "monitoring"
        (content,) = config_map.inputs["data"].values()
        titles.add(json.loads(content)["title"])
    assert titles == {"Model rollouts", "MLflow"}


def test_seldon_executors_are_scraped_over_istio_mtls(stack: Evaluation) -> None:
    monitor = _custom(stack, "PodMonitor", "monitoring-seldon-executors").inputs["spec"]
    assert monitor["namespaceSelector"] == {"matchNames": ["models"]}
    assert monitor["podMetricsEndpoints"][0] | {"interval": None} == {
        "port": "metrics",
        "path": "/prometheus",
        "scheme": "https",
        "interval": None,
    }
    assert monitor["scrapeClass"] == ISTIO_MTLS_SCRAPE_CLASS
    spec = _release(stack, "monitoring-kube-prometheus-stack").inputs["values"]["prometheus"]["prometheusSpec"]
    assert [c["name"] for c in spec["scrapeClasses"]] == [ISTIO_MTLS_SCRAPE_CLASS]
    assert spec["podMetadata"]["labels"] == {"sidecar.istio.io/inject": "true"}


def test_rules_carry_the_thresholds_from_settings() -> None:
    def stricter(config: dict[str, str]) -> None:
        config["mlops-platform:alertModelErrorPercent"] = "2"
        config["mlops-platform:alertModelP95LatencyMs"] = "250"

    evaluation = evaluate_with("dev", stricter)
    rules = {
        r["alert"]: r["expr"]
        for g in evaluation.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule").inputs["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert set(rules) == set(alerts.ALERT_NAMES)
    assert "> 0.02)" in rules["ModelHighErrorRate"]
    assert rules["ModelHighLatencyP95"].endswith("> 0.25")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("grafanaUrl", "https://grafana.{domain}"),
        ("prometheusUrl", "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"),
    ],
)
def test_urls_are_outputs(dev: Evaluation, output: str, expected: str) -> None:
    assert dev.outputs[output].value == expected.format(domain="dev.mlops.example.com")
    assert not dev.outputs[output].secret


def test_dashboards_query_the_datasource_the_chart_provisions() -> None:
    defaults = chart_defaults("kube-prometheus-stack", "88.5.3")["grafana"]["sidecar"]["datasources"]
    assert defaults["uid"] == dashboards.DATASOURCE_UID and defaults["defaultDatasourceEnabled"] is True


def test_bad_serving_settings_fail_before_any_resource_naming_each_key() -> None:
    def broken(config: dict[str, str]) -> None:
        config["mlops-platform:prometheusRetentionDays"] = "0"
        config["mlops-platform:seldonCoreOperatorChartVersion"] = "latest"
        config["mlops-platform:gatewayTlsSecretName"] = "Not_A_Name"

    evaluation = evaluate_with("dev", broken)
    assert evaluation.error is not None
    message = str(evaluation.error)
    for key in ("prometheusRetentionDays", "seldonCoreOperatorChartVersion", "gatewayTlsSecretName"):
        assert f"mlops-platform:{key}" in message, message
    assert not [r for r in evaluation.resources if r.custom]
