"""What AKS really runs: no scraping of the hidden control plane, no PDB that blocks node upgrades."""

from __future__ import annotations

from typing import Any

from components.cluster.monitoring import AKS_HIDDEN_COMPONENTS, AKS_HIDDEN_RULE_GROUPS
from harness.mock_engine import Evaluation, RecordedResource
from harness.schema_validation import chart_defaults, helm_value_problems, release_problems
from layout import resource_types

RELEASE = resource_types.HELM_RELEASE


def _release(evaluation: Evaluation, name: str) -> RecordedResource:
    return evaluation.one(RELEASE, name)


def _values(evaluation: Evaluation, name: str) -> dict[str, Any]:
    return dict(_release(evaluation, name).inputs["values"])


def test_hidden_control_plane_is_neither_scraped_nor_alerted_on(stack: Evaluation) -> None:
    release = _release(stack, "monitoring-kube-prometheus-stack")
    values = dict(release.inputs["values"])
    defaults = chart_defaults("kube-prometheus-stack", "88.5.3")
    for component in AKS_HIDDEN_COMPONENTS:
        # The chart scrapes each by default; the platform turns every one off.
        assert defaults[component]["enabled"] is True, component
        assert values[component]["enabled"] is False, component
    for group in AKS_HIDDEN_RULE_GROUPS:
        assert defaults["defaultRules"]["rules"][group] is True, group
        assert values["defaultRules"]["rules"][group] is False, group
    # What AKS does expose stays on: the API server, kubelets, CoreDNS and their rules.
    for visible in ("kubeApiServer", "kubelet", "coreDns"):
        assert values.get(visible, {}).get("enabled", True) is True
    assert not set(values["defaultRules"]["rules"]) & {"kubelet", "kubeApiserverAvailability", "node"}
    # Every path set exists in the pinned chart's defaults.
    assert release_problems(release) == []


def test_a_misspelt_component_switch_is_caught_by_the_values_check() -> None:
    defaults = chart_defaults("kube-prometheus-stack", "88.5.3")
    problems = helm_value_problems(
        {"kubeSchedular": {"enabled": False}, "defaultRules": {"rules": {"kubeSchedulerAlerts": False}}}, defaults
    )
    assert problems == [
        "kubeSchedular: not a value of the chart",
        "defaultRules.rules.kubeSchedulerAlerts: not a value of the chart",
    ]


def test_istiod_has_a_disruption_budget_only_when_it_has_replicas_to_spare(stack: Evaluation) -> None:
    release = _release(stack, "istio-istiod")
    values = _values(stack, "istio-istiod")
    pdb = values["global"]["defaultPodDisruptionBudget"]["enabled"]
    # The chart's budget is `minAvailable: 1`: with a single replica no drain could evict it.
    assert pdb is (values["replicaCount"] >= 2 and values["autoscaleMin"] >= 2)
    assert release_problems(release) == []


def test_dev_istiod_is_single_and_drainable_prod_is_redundant_and_protected(dev: Evaluation, prod: Evaluation) -> None:
    dev_values, prod_values = _values(dev, "istio-istiod"), _values(prod, "istio-istiod")
    assert dev_values["replicaCount"] == 1
    assert dev_values["global"]["defaultPodDisruptionBudget"]["enabled"] is False
    assert prod_values["replicaCount"] == 2
    assert prod_values["global"]["defaultPodDisruptionBudget"]["enabled"] is True
    # The ingress gateway follows the same rule (its chart's budget is empty unless given).
    assert _values(dev, "istio-ingress-gateway")["podDisruptionBudget"] == {}
    assert _values(prod, "istio-ingress-gateway")["podDisruptionBudget"] == {"minAvailable": 1}


def test_istiod_turns_native_sidecars_on_explicitly_and_every_node_supports_them(stack: Evaluation) -> None:
    """Istio 1.30's default `auto` would follow the oldest kubelet; the platform says `true` itself."""
    release = _release(stack, "istio-istiod")
    env = _values(stack, "istio-istiod")["env"]
    assert env["ENABLE_NATIVE_SIDECARS"] == "true"
    # `env` is a value of the pinned istiod chart (its defaults have `env: {}`).
    assert release_problems(release) == []
    defaults = chart_defaults("istiod", "1.30.3")
    assert defaults["env"] == {}
    # Sidecar containers are on by default from Kubernetes 1.29: the cluster and every node pool run
    # a version that has them, so `true` never asks a kubelet for what it cannot do.
    cluster = stack.one("azure-native:containerservice:ManagedCluster")
    versions = (
        [cluster.inputs["kubernetesVersion"]]
        + [pool.inputs["orchestratorVersion"] for pool in stack.of_type("azure-native:containerservice:AgentPool")]
        + [pool["orchestratorVersion"] for pool in cluster.inputs.get("agentPoolProfiles", [])]
    )
    assert len(versions) >= 2
    for version in versions:
        major, minor, _ = (int(part) for part in version.split("."))
        assert (major, minor) >= (1, 29), version


def test_registry_token_is_asked_for_the_registry_audience_not_arm(stack: Evaluation) -> None:
    """An ARM-audience token is accepted by the ACR exchange only while `azureADAuthenticationAsArmPolicy` is on."""
    calls = [args for token, args in stack.invokes if token == "azure-native:authorization:getClientToken"]
    assert calls, "the program asks for the deployer's token to push its images"
    assert all(args.get("endpoint") == "https://containerregistry.azure.net" for args in calls), calls
