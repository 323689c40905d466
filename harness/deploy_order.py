"""The order a real `pulumi up` creates things in, read from the graph the mock engine records.

The engine creates a resource only after everything it *waits for*: its `dependencies` (explicit
`depends_on` and the resources whose outputs feed its inputs), its provider (and, transitively,
what the provider waits for), and, for a dependency on a local component, that component's
custom children (the SDK's expansion: children of custom resources are not included). The
closure of that relation is what a resource can rely on existing when it is created.

Each rule below is written over resource *types and inputs*, not names, so a resource another
component adds later is covered without touching this module:

- `crd`: an object of a custom kind waits for what installs its CRD (table `CRD_SOURCES`; an
  unknown API group is itself a violation, so a new kind cannot slip through unchecked).
- `node-pool`: everything that makes pods (workloads, Helm releases, pod-making custom kinds)
  waits for every user node pool (the system pool is tainted `CriticalAddonsOnly`).
- `database`: a pod told the PostgreSQL server's host name waits for every database on that
  server (and so the server and its DNS link); on a server restored from backups (`createMode`
  PointInTimeRestore or GeoRestore), whose databases come with it and are not declared, it waits
  for the server itself.
- `workload-identity`: a pod using workload identity waits for its service account's federated
  credential and every role assignment of that identity.
- `image-pull`: a pod running an image from a registry the stack declares waits for a pull grant
  (AcrPull) on that registry (the nodes' kubelet identity).
- `image-build`: a pod running an image the stack builds (a docker-build `Image`, by the digest it
  pushes) waits for that build. The operator's Stack counts: its `workspaceTemplate.spec.image` is
  the workspace pod's image.
- `postgres-dns`: a VNet-integrated PostgreSQL server waits for its private DNS zone's VNet link.
- `subnet-access`: an AKS cluster waits for Network Contributor of its (user-assigned) control-plane
  identity on every subnet it joins: the node pools' subnets and, with API Server VNet Integration,
  the delegated API server subnet (AKS fails provisioning without the grant).
- `cluster-access`: a Kubernetes provider of an Entra-only cluster waits for the AKS RBAC role
  assignment of every configured deployer principal, and for a bounded `Sleep` that itself waits
  for them (role assignments take minutes to reach the API server).
- `vault-secret`: a pod that mounts a SecretProviderClass waits for every Key Vault secret the class
  names and the stack declares (the CSI driver fails the mount while one is missing): a team's
  ensure Job and models Stack wait for the team's secrets.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from harness.mock_engine import RecordedResource
from layout import resource_types
from layout.azure_roles import ACR_PULL, AKS_RBAC_CLUSTER_ADMIN, NETWORK_CONTRIBUTOR
from layout.cluster_layout import WORKLOAD_IDENTITY_USE

NODE_POOL = resource_types.AKS_AGENT_POOL
MANAGED_CLUSTER = resource_types.AKS_CLUSTER
ROLE_ASSIGNMENT = resource_types.ROLE_ASSIGNMENT
FEDERATED_CREDENTIAL = resource_types.FEDERATED_CREDENTIAL
USER_ASSIGNED_IDENTITY = resource_types.USER_ASSIGNED_IDENTITY
POSTGRES_SERVER = resource_types.POSTGRES_SERVER
POSTGRES_DATABASE = resource_types.POSTGRES_DATABASE
VNET_LINK = resource_types.PRIVATE_DNS_VNET_LINK
CONTAINER_REGISTRY = resource_types.CONTAINER_REGISTRY
KUBERNETES_PROVIDER = resource_types.KUBERNETES_PROVIDER
SLEEP = resource_types.SLEEP
IMAGE_BUILD = resource_types.IMAGE_BUILD
KEY_VAULT_SECRET = "azure-native:keyvault:Secret"
SECRET_PROVIDER_CLASS = "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass"

POD_MAKING_TYPES = frozenset(
    {
        "kubernetes:core/v1:Pod",
        resource_types.DEPLOYMENT,
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:apps/v1:ReplicaSet",
        resource_types.JOB,
        "kubernetes:batch/v1:CronJob",
        resource_types.HELM_RELEASE,
        resource_types.HELM_CHART,
    }
)
POD_MAKING_KINDS = frozenset({("machinelearning.seldon.io", "SeldonDeployment"), ("pulumi.com", "Stack")})
"""Custom kinds whose controller makes pods (predictors; the operator's workspace pod)."""

_NOT_CUSTOM_GROUPS = frozenset({"helm.sh", "yaml", "kustomize"})


@dataclass(frozen=True)
class HelmChart:
    """CRDs installed by a Helm release of this chart (name, or the last segment of an OCI URL)."""

    chart: str
    repository_contains: str = ""

    def installs(self, resource: RecordedResource) -> bool:
        if resource.type != "kubernetes:helm.sh/v3:Release":
            return False
        chart = str(resource.inputs.get("chart", ""))
        repository = str((resource.inputs.get("repositoryOpts") or {}).get("repo", ""))
        return (chart == self.chart or chart.endswith(f"/{self.chart}")) and (
            self.repository_contains in repository or self.repository_contains in chart
        )

    def __str__(self) -> str:
        return f"Helm release of chart {self.chart!r}"


@dataclass(frozen=True)
class AksAddon:
    """CRDs installed by an AKS add-on: the cluster with the add-on enabled."""

    addon: str

    def installs(self, resource: RecordedResource) -> bool:
        if resource.type != MANAGED_CLUSTER:
            return False
        profile = (resource.inputs.get("addonProfiles") or {}).get(self.addon) or {}
        return bool(profile.get("enabled"))

    def __str__(self) -> str:
        return f"AKS cluster with add-on {self.addon!r}"


CrdSource = HelmChart | AksAddon
_ISTIO_BASE = HelmChart("base", "istio")
CRD_SOURCES: Mapping[str, CrdSource] = {
    "networking.istio.io": _ISTIO_BASE,
    "security.istio.io": _ISTIO_BASE,
    "telemetry.istio.io": _ISTIO_BASE,
    "monitoring.coreos.com": HelmChart("kube-prometheus-stack"),
    "machinelearning.seldon.io": HelmChart("seldon-core-operator"),
    "pulumi.com": HelmChart("pulumi-kubernetes-operator"),
    "cert-manager.io": HelmChart("cert-manager"),
    "acme.cert-manager.io": HelmChart("cert-manager"),
    "secrets-store.csi.x-k8s.io": AksAddon("azureKeyvaultSecretsProvider"),
}
"""API group → what installs its CRDs. A kind from a group missing here is reported, not skipped."""


@dataclass(frozen=True)
class Requirement:
    """`dependent` must wait for one of `candidates` (empty: nothing declared can satisfy it)."""

    rule: str
    dependent: str
    candidates: frozenset[str]
    what: str

    def describe(self) -> str:
        return f"[{self.rule}] {_short(self.dependent)} must wait for {self.what}"


def _short(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def provider_urn(reference: str) -> str:
    """`<urn>::<id>` → `<urn>`."""
    return reference.rsplit("::", 1)[0] if reference else ""


def custom_kind(type_token: str) -> tuple[str, str] | None:
    """`kubernetes:networking.istio.io/v1:VirtualService` → (`networking.istio.io`, `VirtualService`)."""
    if not type_token.startswith("kubernetes:"):
        return None
    _, group_version, kind = type_token.split(":", 2)
    group = group_version.split("/", 1)[0]
    if "." not in group or group in _NOT_CUSTOM_GROUPS or group.endswith(".k8s.io"):
        return None
    return group, kind


class DeployGraph:
    """The recorded registrations as the engine's wait-for relation."""

    def __init__(self, resources: Sequence[RecordedResource]) -> None:
        self.resources = list(resources)
        self.by_urn = {r.urn: r for r in self.resources}
        self.children: dict[str, list[str]] = {}
        for resource in self.resources:
            self.children.setdefault(resource.parent, []).append(resource.urn)
        self._closures: dict[str, frozenset[str]] = {}

    def of_type(self, *types: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type in types]

    def _component_members(self, urn: str) -> Iterator[str]:
        """What a dependency on a local component stands for (the SDK's expansion)."""
        for child in self.children.get(urn, []):
            resource = self.by_urn[child]
            if resource.custom:
                yield child
            else:
                yield from self._component_members(child)

    def direct(self, urn: str) -> set[str]:
        """What `urn` waits for directly: dependencies (components expanded) and its provider."""
        resource = self.by_urn[urn]
        edges: set[str] = set()
        for dependency in resource.dependencies:
            target = self.by_urn.get(dependency)
            if target is not None and not target.custom:
                edges.update(self._component_members(dependency))
            edges.add(dependency)
        if resource.provider:
            edges.add(provider_urn(resource.provider))
        return edges

    def waits_for(self, urn: str) -> frozenset[str]:
        """The transitive closure of `direct` (iterative; the graph may be deep)."""
        cached = self._closures.get(urn)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = list(self.direct(urn))
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if current in self._closures:
                seen.update(self._closures[current])
                continue
            if current in self.by_urn:
                stack.extend(self.direct(current) - seen)
        result = frozenset(seen)
        self._closures[urn] = result
        return result

    def violations(self, requirements: Iterable[Requirement]) -> list[Requirement]:
        return [r for r in requirements if not (self.waits_for(r.dependent) & r.candidates)]


# --- pod templates -----------------------------------------------------------------------


@dataclass(frozen=True)
class PodTemplate:
    namespace: str
    labels: Mapping[str, str]
    spec: Mapping[str, Any]

    @property
    def service_account(self) -> str:
        return str(self.spec.get("serviceAccountName") or "default")


def pod_templates(resource: RecordedResource) -> list[PodTemplate]:
    """Every pod template in a resource's inputs: workloads, CronJobs, and custom kinds that
    embed pod specs (a SeldonDeployment's componentSpecs)."""
    namespace = str((resource.inputs.get("metadata") or {}).get("namespace") or "default")
    found: list[PodTemplate] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            spec = value.get("spec")
            if isinstance(spec, dict) and isinstance(spec.get("containers"), list):
                labels = (value.get("metadata") or {}).get("labels") or {}
                found.append(PodTemplate(namespace, labels, spec))
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(resource.inputs)
    return found


def pod_images(resource: RecordedResource) -> set[str]:
    """Every image a resource's pods run: its pod templates' containers and init containers, and
    the workspace image of the operator's Stack (PKO puts `workspaceTemplate.spec.image` on the
    workspace pod's `pulumi` container, which the Stack's pod template leaves without an image)."""
    images = {
        str(container["image"])
        for template in pod_templates(resource)
        for key in ("containers", "initContainers")
        for container in template.spec.get(key) or []
        if container.get("image")
    }
    if custom_kind(resource.type) == ("pulumi.com", "Stack"):
        workspace = ((resource.inputs.get("spec") or {}).get("workspaceTemplate") or {}).get("spec") or {}
        if workspace.get("image"):
            images.add(str(workspace["image"]))
    return images


def makes_pods(resource: RecordedResource) -> bool:
    return (
        resource.type in POD_MAKING_TYPES
        or custom_kind(resource.type) in POD_MAKING_KINDS
        or bool(pod_templates(resource))
    )


# --- the rules ----------------------------------------------------------------------------


def crd_requirements(graph: DeployGraph) -> list[Requirement]:
    requirements = []
    for resource in graph.resources:
        kind = custom_kind(resource.type)
        if kind is None:
            continue
        source = CRD_SOURCES.get(kind[0])
        if source is None:
            requirements.append(
                Requirement(
                    "crd", resource.urn, frozenset(), f"the installer of API group {kind[0]} (not in CRD_SOURCES)"
                )
            )
            continue
        installers = frozenset(r.urn for r in graph.resources if source.installs(r))
        requirements.append(Requirement("crd", resource.urn, installers, str(source)))
    return requirements


def node_pool_requirements(graph: DeployGraph) -> list[Requirement]:
    pools = [r for r in graph.of_type(NODE_POOL) if r.inputs.get("mode") == "User"]
    requirements = []
    for resource in graph.resources:
        if not makes_pods(resource):
            continue
        if not pools:
            requirements.append(Requirement("node-pool", resource.urn, frozenset(), "a user node pool (none declared)"))
        for pool in pools:
            requirements.append(
                Requirement("node-pool", resource.urn, frozenset({pool.urn}), f"user node pool {_short(pool.urn)}")
            )
    return requirements


RESTORE_CREATE_MODES = ("PointInTimeRestore", "GeoRestore")
"""A server created from backups: its databases come with it."""


def database_requirements(graph: DeployGraph) -> list[Requirement]:
    requirements = []
    for server in graph.of_type(POSTGRES_SERVER):
        host = str(server.outputs.get("fullyQualifiedDomainName") or "")
        name = str(server.inputs.get("serverName") or "")
        if not host:
            continue
        databases = [d for d in graph.of_type(POSTGRES_DATABASE) if d.inputs.get("serverName") == name]
        restored = server.inputs.get("createMode") in RESTORE_CREATE_MODES
        for resource in graph.resources:
            if not any(host in json.dumps(t.spec) for t in pod_templates(resource)):
                continue
            if restored and not databases:
                requirements.append(
                    Requirement("database", resource.urn, frozenset({server.urn}), f"restored server {name}")
                )
                continue
            if not databases:
                requirements.append(
                    Requirement("database", resource.urn, frozenset(), f"the databases of {name} (none declared)")
                )
            for database in databases:
                requirements.append(
                    Requirement(
                        "database",
                        resource.urn,
                        frozenset({database.urn}),
                        f"database {database.inputs['databaseName']}",
                    )
                )
    return requirements


def workload_identity_requirements(graph: DeployGraph) -> list[Requirement]:
    credentials = {str(c.inputs.get("subject")): c for c in graph.of_type(FEDERATED_CREDENTIAL)}
    identities = {str(i.inputs.get("resourceName")): i for i in graph.of_type(USER_ASSIGNED_IDENTITY)}
    requirements = []
    for resource in graph.resources:
        for template in pod_templates(resource):
            if str(template.labels.get(WORKLOAD_IDENTITY_USE, "")).lower() != "true":
                continue
            subject = f"system:serviceaccount:{template.namespace}:{template.service_account}"
            credential = credentials.get(subject)
            if credential is None:
                requirements.append(
                    Requirement("workload-identity", resource.urn, frozenset(), f"a federated credential for {subject}")
                )
                continue
            requirements.append(
                Requirement(
                    "workload-identity",
                    resource.urn,
                    frozenset({credential.urn}),
                    f"federated credential {_short(credential.urn)}",
                )
            )
            identity = identities.get(str(credential.inputs.get("resourceName")))
            principal = identity.outputs.get("principalId") if identity is not None else None
            for grant in graph.of_type(ROLE_ASSIGNMENT):
                if principal and grant.inputs.get("principalId") == principal:
                    requirements.append(
                        Requirement(
                            "workload-identity",
                            resource.urn,
                            frozenset({grant.urn}),
                            f"role assignment {_short(grant.urn)}",
                        )
                    )
    return requirements


def image_pull_requirements(graph: DeployGraph) -> list[Requirement]:
    registries = {
        str(r.outputs.get("loginServer")): r for r in graph.of_type(CONTAINER_REGISTRY) if r.outputs.get("loginServer")
    }
    requirements = []
    for resource in graph.resources:
        hosts = {image.split("/", 1)[0] for image in pod_images(resource)}
        for host in sorted(hosts & set(registries)):
            registry = registries[host]
            grants = frozenset(
                g.urn
                for g in graph.of_type(ROLE_ASSIGNMENT)
                if str(g.inputs.get("roleDefinitionId", "")).endswith(f"/{ACR_PULL}")
                and g.inputs.get("scope") == registry.id
            )
            requirements.append(Requirement("image-pull", resource.urn, grants, f"the AcrPull grant on {host}"))
    return requirements


def built_reference(build: RecordedResource) -> str | None:
    """`<registry>/<repository>@<digest>` a docker-build `Image` pushed (its first tag, its digest)."""
    tags = build.inputs.get("tags") or []
    digest = build.outputs.get("digest")
    if not tags or not digest:
        return None
    return f"{str(tags[0]).rpartition(':')[0]}@{digest}"


def image_build_requirements(graph: DeployGraph) -> list[Requirement]:
    builds = {ref: build for build in graph.of_type(IMAGE_BUILD) if (ref := built_reference(build))}
    requirements = []
    for resource in graph.resources:
        for image in sorted(pod_images(resource) & set(builds)):
            build = builds[image]
            requirements.append(
                Requirement("image-build", resource.urn, frozenset({build.urn}), f"the build {_short(build.urn)}")
            )
    return requirements


def postgres_dns_requirements(graph: DeployGraph) -> list[Requirement]:
    requirements = []
    for server in graph.of_type(POSTGRES_SERVER):
        network = server.inputs.get("network") or {}
        zone_id = str(network.get("privateDnsZoneArmResourceId") or "")
        if not zone_id:
            continue
        zone = zone_id.rstrip("/").rsplit("/", 1)[-1]
        vnet = str(network.get("delegatedSubnetResourceId") or "").lower().split("/subnets/", 1)[0]
        links = frozenset(
            link.urn
            for link in graph.of_type(VNET_LINK)
            if link.inputs.get("privateZoneName") == zone
            and str((link.inputs.get("virtualNetwork") or {}).get("id", "")).lower() == vnet
        )
        requirements.append(Requirement("postgres-dns", server.urn, links, f"the VNet link of private DNS zone {zone}"))
    return requirements


def cluster_subnets(cluster: RecordedResource) -> list[str]:
    """The subnets an AKS cluster joins: its inline pools' and, with API Server VNet Integration, the
    API server's (an integration without a subnet id yields "", which no grant can satisfy)."""
    subnets = [str(p.get("vnetSubnetID") or "") for p in cluster.inputs.get("agentPoolProfiles") or []]
    access = cluster.inputs.get("apiServerAccessProfile") or {}
    if access.get("enableVnetIntegration"):
        subnets.append(str(access.get("subnetId") or ""))
    return list(dict.fromkeys(s for s in subnets if s or access.get("enableVnetIntegration")))


def subnet_access_requirements(graph: DeployGraph) -> list[Requirement]:
    requirements = []
    for cluster in graph.of_type(MANAGED_CLUSTER):
        identity_ids = set((cluster.inputs.get("identity") or {}).get("userAssignedIdentities") or [])
        principals = {
            str(i.outputs.get("principalId"))
            for i in graph.of_type(USER_ASSIGNED_IDENTITY)
            if i.id in identity_ids and i.outputs.get("principalId")
        }
        for subnet in cluster_subnets(cluster):
            grants = frozenset(
                g.urn
                for g in graph.of_type(ROLE_ASSIGNMENT)
                if str(g.inputs.get("roleDefinitionId", "")).endswith(f"/{NETWORK_CONTRIBUTOR}")
                and subnet
                and g.inputs.get("scope") == subnet
                and g.inputs.get("principalId") in principals
            )
            label = subnet.rsplit("/", 1)[-1] or "(none)"
            what = f"Network Contributor of its control-plane identity on subnet {label}"
            requirements.append(Requirement("subnet-access", cluster.urn, grants, what))
    return requirements


def cluster_access_requirements(graph: DeployGraph, deployer_object_ids: Sequence[str] | None) -> list[Requirement]:
    """`deployer_object_ids` None: the principals the program grants (the offline preview, which
    checks the order; the tests also check the grants are exactly the configured ones)."""
    requirements = []
    for provider in graph.of_type(KUBERNETES_PROVIDER):
        clusters = [graph.by_urn[u] for u in graph.waits_for(provider.urn) if graph.by_urn.get(u, None) is not None]
        for cluster in (c for c in clusters if c.type == MANAGED_CLUSTER and c.inputs.get("disableLocalAccounts")):
            grants = [
                g
                for g in graph.of_type(ROLE_ASSIGNMENT)
                if str(g.inputs.get("roleDefinitionId", "")).endswith(f"/{AKS_RBAC_CLUSTER_ADMIN}")
                and g.inputs.get("scope") == cluster.id
            ]
            principals = (
                sorted({str(g.inputs.get("principalId")) for g in grants})
                if deployer_object_ids is None
                else list(deployer_object_ids)
            )
            if not principals:
                requirements.append(
                    Requirement("cluster-access", provider.urn, frozenset(), "a configured deployer principal")
                )
            for principal in principals:
                matching = frozenset(g.urn for g in grants if g.inputs.get("principalId") == principal)
                requirements.append(
                    Requirement(
                        "cluster-access", provider.urn, matching, f"the AKS RBAC Cluster Admin grant of {principal}"
                    )
                )
                # The bounded wait for propagation: a Sleep that itself waits for the grant.
                sleeps = frozenset(s.urn for s in graph.of_type(SLEEP) if graph.waits_for(s.urn) & matching)
                requirements.append(
                    Requirement(
                        "cluster-access",
                        provider.urn,
                        sleeps,
                        f"a bounded Sleep after the grant of {principal} (RBAC propagation)",
                    )
                )
    return requirements


def _class_secrets(provider_class: RecordedResource) -> list[str]:
    """The Key Vault secret names a SecretProviderClass mounts (`parameters.objects`, layout.key_vault_csi)."""
    objects = ((provider_class.inputs.get("spec") or {}).get("parameters") or {}).get("objects")
    if not isinstance(objects, str):
        return []
    documents = (yaml.safe_load(objects) or {}).get("array") or []
    return [str((yaml.safe_load(d) or {}).get("objectName")) for d in documents if isinstance(d, str)]


def vault_secret_requirements(graph: DeployGraph) -> list[Requirement]:
    """A pod that mounts a SecretProviderClass waits for every Key Vault secret the class names: the CSI
    driver fails the mount (and the pod) while one is missing. Secrets not declared here are left alone."""
    classes = {
        (str((c.inputs.get("metadata") or {}).get("namespace")), str((c.inputs.get("metadata") or {}).get("name"))): c
        for c in graph.of_type(SECRET_PROVIDER_CLASS)
    }
    secrets: dict[str, list[str]] = {}
    for secret in graph.of_type(KEY_VAULT_SECRET):
        secrets.setdefault(str(secret.inputs.get("secretName")), []).append(secret.urn)
    requirements = []
    for resource in graph.resources:
        for template in pod_templates(resource):
            for volume in template.spec.get("volumes") or []:
                attributes = ((volume or {}).get("csi") or {}).get("volumeAttributes") or {}
                provider_class = classes.get((template.namespace, str(attributes.get("secretProviderClass"))))
                if provider_class is None:
                    continue
                for name in _class_secrets(provider_class):
                    if name in secrets:
                        requirements.append(
                            Requirement(
                                "vault-secret", resource.urn, frozenset(secrets[name]), f"Key Vault secret {name}"
                            )
                        )
    return requirements


RuleFunction = Callable[[DeployGraph], list[Requirement]]


def rules(deployer_object_ids: Sequence[str] | None) -> dict[str, RuleFunction]:
    return {
        "crd": crd_requirements,
        "node-pool": node_pool_requirements,
        "database": database_requirements,
        "workload-identity": workload_identity_requirements,
        "image-pull": image_pull_requirements,
        "image-build": image_build_requirements,
        "postgres-dns": postgres_dns_requirements,
        "subnet-access": subnet_access_requirements,
        "cluster-access": lambda graph: cluster_access_requirements(graph, deployer_object_ids),
        "vault-secret": vault_secret_requirements,
    }


def requirements(graph: DeployGraph, deployer_object_ids: Sequence[str] | None = None) -> list[Requirement]:
    return [r for rule in rules(deployer_object_ids).values() for r in rule(graph)]


def order_problems(resources: Sequence[RecordedResource]) -> list[str]:
    """Every broken ordering rule of a recorded program, one line each (the offline preview).

    Only a program that declares the cluster is checked: the models stack (`models/`) takes the
    cluster, CRDs, node pools and identities from the platform stack it references, which exists
    before it (its order across stacks is the platform-first deployment, see the README).
    """
    graph = DeployGraph(resources)
    if not graph.of_type(MANAGED_CLUSTER):
        return []
    return [r.describe() for r in graph.violations(requirements(graph))]


def cut(resources: Sequence[RecordedResource], requirement: Requirement) -> list[RecordedResource]:
    """The graph with every edge removed through which `requirement.dependent` reaches one of its
    candidates (the last hop into each candidate): a mutation for proving a rule notices."""
    graph = DeployGraph(resources)
    reach = {requirement.dependent, *graph.waits_for(requirement.dependent)}
    changed: list[RecordedResource] = []
    for resource in resources:
        if resource.urn not in reach:
            changed.append(resource)
            continue
        graph_edges = graph.direct(resource.urn)
        dropped = graph_edges & requirement.candidates
        # A dependency on a component stands for its members: drop it if it brings a candidate.
        dropped_components = {
            d
            for d in resource.dependencies
            if d in graph.by_urn
            and not graph.by_urn[d].custom
            and set(graph._component_members(d)) & requirement.candidates
        }
        if not dropped and not dropped_components:
            changed.append(resource)
            continue
        changed.append(
            dataclasses.replace(
                resource,
                dependencies=tuple(d for d in resource.dependencies if d not in dropped | dropped_components),
                provider="" if provider_urn(resource.provider) in dropped else resource.provider,
            )
        )
    return changed
