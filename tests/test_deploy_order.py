"""A first `pulumi up` on an empty subscription creates things in an order that works.

The rules (harness/deploy_order.py) walk the dependency graph the mock engine records: every
registration's `dependencies`, its provider and what the provider waits for, components expanded
to their custom children, transitively. They are written over types, so what another component
declares later is checked too. Each rule is shown to hold on dev and prod, to be non-vacuous
(it has something to check), and to report any of its requirements once the edges carrying it
are removed from the recorded graph, or once a component's `Args` field is emptied for real.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from components.cluster.istio_mesh import IstioMesh
from components.cluster.mlflow import MlflowStack
from harness.deploy_order import (
    CRD_SOURCES,
    DeployGraph,
    Requirement,
    crd_requirements,
    cut,
    order_problems,
    requirements,
)
from harness.mock_engine import MOCK_DEPLOYER_OBJECT_ID, Evaluation, RecordedResource, evaluate, stack_config
from harness.preview import check, render_text
from layout.azure_roles import AKS_RBAC_CLUSTER_ADMIN
from layout.firewall import api_server_ranges
from settings import SettingsError
from tests.conftest import evaluate_with

P = "mlops-platform:"


def deployers(stack: str) -> list[str]:
    config, _ = stack_config(stack)
    return list(yaml.safe_load(config.get(P + "aksDeployerObjectIds", "[]")))


def _requirements(evaluation: Evaluation) -> tuple[DeployGraph, list[Requirement]]:
    graph = DeployGraph(evaluation.resources)
    return graph, requirements(graph, deployers(evaluation.stack))


def _named(graph: DeployGraph, requirement: Requirement) -> str:
    return graph.by_urn[requirement.dependent].name


def test_every_ordering_rule_holds(stack: Evaluation) -> None:
    graph, found = _requirements(stack)
    broken = graph.violations(found)
    assert not broken, "\n".join(r.describe() for r in broken)
    rules = Counter(r.rule for r in found)
    expected = {"crd", "node-pool", "database", "workload-identity", "image-pull", "postgres-dns", "subnet-access"}
    expected.add("image-build")
    if stack.stack == "prod":
        expected.add("cluster-access")
    assert expected <= set(rules), f"a rule found nothing to check: {rules}"


def test_the_rules_see_what_the_issue_names(stack: Evaluation) -> None:
    """Non-vacuity, by name: the objects the issue calls out are among the checked ones."""
    graph, found = _requirements(stack)
    checked: dict[str, set[str]] = {}
    for requirement in found:
        checked.setdefault(requirement.rule, set()).add(_named(graph, requirement))
    assert {"mlflow-routes", "mlflow-tracking-pod-monitor", "monitoring-seldon-executors"} <= checked["crd"]
    assert {"mlflow-secret-provider-mlflow-server", "istio-platform-gateway"} <= checked["crd"]
    assert {"mlflow-migrate", "istio-istiod", "monitoring-kube-prometheus-stack", "automation-analysis"} <= checked[
        "node-pool"
    ]
    assert "mlflow-migrate" in checked["database"]
    # A team's ensure Job and models Stack mount the team's Key Vault secrets (the committed stacks declare teams).
    assert {"teams-ensure", "team-fraud-stack", "automation-stack", "mlflow-tracking"} <= checked["vault-secret"]
    assert {"mlflow-migrate", "mlflow-artifacts", "monitoring-grafana-secret-sync", "automation-analysis"} <= checked[
        "workload-identity"
    ]
    assert checked["postgres-dns"] == {"postgres-server"}
    assert {"mlflow-migrate", "mlflow-tracking", "automation-analysis"} <= checked["image-pull"]
    # The operator's workspace pod runs the built workspace image (the Stack's workspaceTemplate).
    assert {"mlflow-migrate", "mlflow-tracking", "automation-analysis", "automation-stack"} <= checked["image-build"]
    assert "automation-stack" in checked["image-pull"]
    if stack.stack == "prod":
        assert checked["cluster-access"] == {"aks-kubernetes"}
    assert checked["subnet-access"] == {"aks-cluster"}
    subnets = {r.what.rsplit(" ", 1)[-1] for r in found if r.rule == "subnet-access"}
    # Prod's API server is VNet-integrated: its delegated subnet is joined too.
    assert subnets == ({"aks-nodes", "aks-api-server"} if stack.stack == "prod" else {"aks-nodes"})
    migrate = next(r for r in found if r.rule == "database" and _named(graph, r) == "mlflow-migrate")
    assert migrate.candidates, "the migration Job's databases are declared"
    databases = {r.what for r in found if r.rule == "database" and _named(graph, r) == "mlflow-migrate"}
    assert databases == {"database mlflow", "database mlflow_registry", "database mlflow_auth"}


def _cut_cases(evaluation: Evaluation) -> Iterator[tuple[Requirement, list[RecordedResource]]]:
    _, found = _requirements(evaluation)
    for requirement in found:
        yield requirement, cut(evaluation.resources, requirement)


@pytest.mark.parametrize(
    "rule",
    [
        "crd",
        "node-pool",
        "database",
        "workload-identity",
        "image-pull",
        "image-build",
        "postgres-dns",
        "subnet-access",
        "cluster-access",
        "vault-secret",
    ],
)
def test_removing_the_edges_of_any_requirement_is_reported(stack: Evaluation, rule: str) -> None:
    """For every requirement of the rule: drop the edges through which it holds (the last hop into
    its prerequisite, wherever the dependent reaches it from); the rule must then report that
    requirement as broken."""
    tried = 0
    silent = []
    for requirement, mutated in _cut_cases(stack):
        if requirement.rule != rule:
            continue
        tried += 1
        graph = DeployGraph(mutated)
        broken = graph.violations(requirements(graph, deployers(stack.stack)))
        if requirement not in broken:
            silent.append(requirement.describe())
    if rule == "cluster-access" and stack.stack == "dev":
        assert tried == 0  # dev keeps local accounts: the admin kubeconfig needs no grant
        return
    assert tried > 0
    assert not silent, "removing these edges went unnoticed:\n" + "\n".join(silent)


def test_a_cut_changes_only_the_requirement_it_targets(prod: Evaluation) -> None:
    """The mutation is surgical: the MLflow VirtualService losing the Istio base breaks the `crd`
    rule for it and nothing unrelated (e.g. the PodMonitors' own CRD requirement still holds)."""
    graph, found = _requirements(prod)
    target = next(r for r in found if r.rule == "crd" and _named(graph, r) == "mlflow-routes")
    mutated = DeployGraph(cut(prod.resources, target))
    broken = mutated.violations(requirements(mutated, deployers("prod")))
    assert target in broken
    assert all(_named(mutated, r) != "mlflow-tracking-pod-monitor" for r in broken)


def test_a_custom_kind_nobody_installs_is_reported(dev: Evaluation) -> None:
    stray = RecordedResource(
        urn="urn:pulumi:dev::mlops-platform::kubernetes:example.com/v1:Widget::stray",
        type="kubernetes:example.com/v1:Widget",
        name="stray",
        parent="",
        custom=True,
        inputs={},
        secret_inputs=frozenset(),
        protect=False,
        provider="",
        deleted_with="",
        dependencies=(),
        additional_secret_outputs=(),
        ignore_changes=(),
    )
    graph = DeployGraph([*dev.resources, stray])
    broken = graph.violations(crd_requirements(graph))
    assert [r.what for r in broken] == ["the installer of API group example.com (not in CRD_SOURCES)"]
    assert "secrets-store.csi.x-k8s.io" in CRD_SOURCES  # the Key Vault CSI add-on = the cluster


def _without(component: type[Any], **emptied: Any) -> Any:
    """Patch `component.__init__` so its Args arrive with `emptied` fields (a wiring mistake)."""
    original = component.__init__

    def patched(self: Any, name: str, args: Any, opts: Any = None) -> None:
        original(self, name, dataclasses.replace(args, **emptied), opts)

    return patched


def test_an_args_dependency_removed_for_real_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The program itself, with MlflowStack given no databases and IstioMesh no node pools."""
    monkeypatch.setattr(MlflowStack, "__init__", _without(MlflowStack, databases=()))
    monkeypatch.setattr(IstioMesh, "__init__", _without(IstioMesh, node_pools=()))
    evaluation = evaluate("dev")
    assert evaluation.error is None, evaluation.error
    graph, found = _requirements(evaluation)
    broken = {(r.rule, _named(graph, r)) for r in graph.violations(found)}
    assert ("database", "mlflow-migrate") in broken
    assert {("node-pool", "istio-base"), ("node-pool", "istio-istiod"), ("node-pool", "istio-ingress-gateway")} <= (
        broken
    )
    # The workloads after the migration Job still wait for it; only the Job lost its databases.
    assert {rule for rule, _ in broken} == {"database", "node-pool"}


# --- deployer principals and where they run from are configuration --------------------------


def test_the_api_server_admits_where_up_runs(dev: Evaluation, prod: Evaluation) -> None:
    def ranges(evaluation: Evaluation) -> list[str] | None:
        cluster = evaluation.one("azure-native:containerservice:ManagedCluster").inputs
        found: list[str] | None = (cluster.get("apiServerAccessProfile") or {}).get("authorizedIPRanges")
        return found

    config, _ = stack_config("prod")
    runner = yaml.safe_load(config[P + "aksDeployerIpRanges"])
    operators = yaml.safe_load(config[P + "allowedIpRanges"])
    assert runner and set(runner) <= set(ranges(prod) or [])
    assert ranges(prod) == [*operators, *runner]
    assert ranges(dev) is None  # dev's API server is not IP-restricted (Entra and local accounts still apply)
    assert api_server_ranges([], ["198.51.100.16/29"]) == []  # never narrows an open API server
    assert api_server_ranges(["10.0.0.0/8"], ["10.0.0.0/8", "1.2.3.4/32"]) == ["10.0.0.0/8", "1.2.3.4/32"]


def test_deployer_grants_are_the_configured_principals(stack: Evaluation) -> None:
    grants = [
        r
        for r in stack.of_type("azure-native:authorization:RoleAssignment")
        if r.inputs["roleDefinitionId"].endswith(f"/{AKS_RBAC_CLUSTER_ADMIN}")
    ]
    assert sorted(g.inputs["principalId"] for g in grants) == sorted(deployers(stack.stack))
    # Whoever runs `up` (the client config) is not granted anything by being the one running it.
    assert MOCK_DEPLOYER_OBJECT_ID not in {g.inputs["principalId"] for g in grants}
    if stack.stack == "prod":
        assert deployers("prod"), "prod is Entra-only: it names its deployers"
        sleep = stack.one("time:index/sleep:Sleep")
        assert sleep.inputs["createDuration"] == "300s"
        assert sleep.inputs["triggers"] == {"deployers": ",".join(sorted(deployers("prod")))}
        provider = stack.one("pulumi:providers:kubernetes")
        assert sleep.urn in provider.dependencies


@pytest.mark.parametrize(
    ("stack", "change", "key", "explanation"),
    [
        pytest.param(
            "prod",
            {"aksDeployerObjectIds": "[]"},
            "aksDeployerObjectIds",
            "principals that run `pulumi up`",
            id="entra-only-without-deployers",
        ),
        pytest.param(
            "prod",
            {"aksKubeloginMode": "spn", "aksKubeloginClientId": ""},
            "aksKubeloginClientId",
            "never reuses the Azure CLI's",
            id="spn-without-client-id",
        ),
        pytest.param(
            "prod",
            {"aksDeployerIpRanges": "[]"},
            "aksDeployerIpRanges",
            "cannot reach the cluster",
            id="restricted-api-server-without-runner-egress",
        ),
        pytest.param(
            "prod",
            {"aksRbacPropagationSeconds": "3600"},
            "aksRbacPropagationSeconds",
            "less than or equal to 1800",
            id="unbounded-wait",
        ),
    ],
)
def test_cluster_access_settings_are_validated(stack: str, change: dict[str, str], key: str, explanation: str) -> None:
    evaluation = evaluate_with(stack, lambda config: config.update({P + k: v for k, v in change.items()}))
    assert isinstance(evaluation.error, SettingsError), evaluation.error
    assert evaluation.resources == []
    assert key in evaluation.error.keys
    assert explanation in str(evaluation.error)


def test_the_offline_preview_fails_on_a_broken_order(dev: Evaluation) -> None:
    """`make preview` (CI on every pull request) runs the same rules: a lost edge fails it, by name."""
    assert check(dev).order_problems == []
    graph, found = _requirements(dev)
    target = next(r for r in found if r.rule == "crd" and _named(graph, r) == "mlflow-routes")
    broken = Evaluation(dev.stack, resources=cut(dev.resources, target), outputs=dev.outputs)
    report = check(broken)
    assert report.failed
    assert report.order_problems == [target.describe()]
    assert "mlflow-routes must wait for Helm release of chart 'base'" in render_text(report)


def test_the_models_stack_takes_its_prerequisites_from_the_platform(dev: Evaluation) -> None:
    """The models program declares no cluster: what its objects wait for lives in the platform
    stack it references (deployed first), so its preview is not failed for edges it cannot own."""
    with_cluster = list(dev.resources)
    without_cluster = [r for r in with_cluster if r.type != "azure-native:containerservice:ManagedCluster"]
    assert order_problems(with_cluster) == []
    graph = DeployGraph(without_cluster)
    assert graph.violations(requirements(graph))  # the rules themselves still see the gaps
    assert order_problems(without_cluster) == []
