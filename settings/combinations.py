"""Cross-key rules: values that are each valid but impossible together (or rejected by Azure).

Each check names the settings it reads; the loader runs it only when all of them passed their
own validation, so a problem is reported once, against the key a person has to change.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from layout.images import IMAGE_NAMES, PLATFORM_IMAGES
from settings.capacity import MlflowScale, connection_budget, user_connections
from settings.model import POSTGRES_STORAGE_SIZES_GB
from settings.problems import Problem
from settings.restore import BLOB_RESTORE_NAMES, blob_restore_problems
from settings.teams import TEAMS_KEY, jobs_namespace, validate_teams

Values = dict[str, Any]
KeyOf = Callable[[str], str]

# PostgreSQL Flexible Server refuses these administrator logins.
RESERVED_POSTGRES_LOGINS = frozenset(
    {"admin", "administrator", "azure_pg_admin", "azure_superuser", "guest", "postgres", "public", "root", "sa"}
)
SKU_PREFIX_BY_TIER = {"Burstable": "Standard_B", "GeneralPurpose": "Standard_D", "MemoryOptimized": "Standard_E"}


@dataclass(frozen=True)
class CombinationCheck:
    names: tuple[str, ...]
    run: Callable[[Values, KeyOf], list[Problem]]


def _network(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr, strict=True)


def _cidr_problems(values: Values, key: KeyOf) -> list[Problem]:
    """Every CIDR parses with its host bits clear; operator ranges are not private VNet ranges twice."""
    problems = []
    for name in (
        "vnet_address_space",
        "aks_nodes_subnet",
        "postgres_subnet",
        "private_endpoints_subnet",
        "aks_service_cidr",
        "aks_pod_cidr",
    ):
        try:
            _network(values[name])
        except ValueError as error:
            problems.append(
                Problem(key(name), repr(values[name]), f"a network address with its host bits clear ({error})")
            )
    for index, cidr in enumerate(values["allowed_ip_ranges"]):
        try:
            ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as error:
            problems.append(Problem(f"{key('allowed_ip_ranges')}[{index}]", repr(cidr), f"a valid CIDR ({error})"))
    return problems


def _layout_problems(values: Values, key: KeyOf) -> list[Problem]:
    """Subnets sit inside the VNet without overlapping; cluster ranges stay outside it."""
    try:
        vnet = _network(values["vnet_address_space"])
        subnets = {n: _network(values[n]) for n in ("aks_nodes_subnet", "postgres_subnet", "private_endpoints_subnet")}
        cluster = {n: _network(values[n]) for n in ("aks_service_cidr", "aks_pod_cidr")}
        dns_ip = ipaddress.IPv4Address(values["aks_dns_service_ip"])
    except ValueError:
        return []  # reported by _cidr_problems
    problems = []
    for name, subnet in subnets.items():
        if not subnet.subnet_of(vnet):
            problems.append(Problem(key(name), repr(str(subnet)), f"a range inside vnetAddressSpace {vnet}"))
    names = list(subnets)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if subnets[first].overlaps(subnets[second]):
                problems.append(
                    Problem(
                        key(second),
                        f"{subnets[second]} overlapping {key(first)} {subnets[first]}",
                        "a range disjoint from the other subnets",
                    )
                )
    for name, network in cluster.items():
        if network.overlaps(vnet):
            problems.append(Problem(key(name), f"{network} overlapping the VNet {vnet}", "a range outside the VNet"))
    if cluster["aks_service_cidr"].overlaps(cluster["aks_pod_cidr"]):
        problems.append(
            Problem(
                key("aks_pod_cidr"),
                f"{cluster['aks_pod_cidr']} overlapping the service CIDR",
                "a range disjoint from aksServiceCidr",
            )
        )
    service = cluster["aks_service_cidr"]
    if dns_ip not in service or dns_ip == service.network_address:
        problems.append(
            Problem(key("aks_dns_service_ip"), repr(str(dns_ip)), f"a host address inside aksServiceCidr {service}")
        )
    return problems


API_SERVER_SUBNET_MAX_PREFIX = 28
"""AKS refuses an API server subnet smaller than /28 (it reserves at least 9 addresses in it)."""


def _api_server_subnet_problems(values: Values, key: KeyOf) -> list[Problem]:
    """The delegated API server subnet: a network address always; with VNet integration on, also inside
    the VNet, disjoint from the other subnets and at least a /28."""
    try:
        subnet = _network(values["aks_api_server_subnet"])
    except ValueError as error:
        return [
            Problem(
                key("aks_api_server_subnet"),
                repr(values["aks_api_server_subnet"]),
                f"a network address with its host bits clear ({error})",
            )
        ]
    if not values["aks_api_server_vnet_integration"]:
        return []
    try:
        vnet = _network(values["vnet_address_space"])
        others = {n: _network(values[n]) for n in ("aks_nodes_subnet", "postgres_subnet", "private_endpoints_subnet")}
    except ValueError:
        return []  # reported by _cidr_problems
    problems = []
    if not subnet.subnet_of(vnet):
        problems.append(
            Problem(key("aks_api_server_subnet"), repr(str(subnet)), f"a range inside vnetAddressSpace {vnet}")
        )
    for name, other in others.items():
        if subnet.overlaps(other):
            problems.append(
                Problem(
                    key("aks_api_server_subnet"),
                    f"{subnet} overlapping {key(name)} {other}",
                    "a range disjoint from the other subnets (the delegated subnet holds the API server only)",
                )
            )
    if subnet.prefixlen > API_SERVER_SUBNET_MAX_PREFIX:
        problems.append(
            Problem(
                key("aks_api_server_subnet"),
                f"{subnet} with {key('aks_api_server_vnet_integration')} true",
                f"a /{API_SERVER_SUBNET_MAX_PREFIX} or larger range (AKS's minimum for the API server subnet)",
            )
        )
    return problems


def _postgres_sku_problems(values: Values, key: KeyOf) -> list[Problem]:
    tier, sku, ha = values["postgres_sku_tier"], values["postgres_sku_name"], values["postgres_high_availability"]
    problems = []
    prefix = SKU_PREFIX_BY_TIER[tier]
    if not sku.startswith(prefix):
        problems.append(Problem(key("postgres_sku_name"), f"{sku!r} with postgresSkuTier {tier!r}", f"a {prefix}* SKU"))
    if tier == "Burstable" and ha != "Disabled":
        problems.append(
            Problem(
                key("postgres_high_availability"),
                f"{ha!r} with postgresSkuTier 'Burstable'",
                "'Disabled' (Burstable servers have no high availability; use GeneralPurpose or MemoryOptimized)",
            )
        )
    return problems


def _postgres_storage_problems(values: Values, key: KeyOf) -> list[Problem]:
    size = values["postgres_storage_gb"]
    if size in POSTGRES_STORAGE_SIZES_GB:
        return []
    return [Problem(key("postgres_storage_gb"), repr(size), ", ".join(map(str, POSTGRES_STORAGE_SIZES_GB)))]


def _postgres_login_problems(values: Values, key: KeyOf) -> list[Problem]:
    login = values["postgres_admin_login"]
    if login in RESERVED_POSTGRES_LOGINS or login.startswith("pg_"):
        return [
            Problem(
                key("postgres_admin_login"),
                repr(login),
                "a login that is not reserved (" + ", ".join(sorted(RESERVED_POSTGRES_LOGINS)) + ", pg_*)",
            )
        ]
    return []


def _dns_zone_problems(values: Values, key: KeyOf) -> list[Problem]:
    zone, domain = values["dns_zone_name"], values["domain"]
    if not zone or domain == zone or domain.endswith("." + zone):
        return []
    return [
        Problem(
            key("dns_zone_name"),
            f"{zone!r} with domain {domain!r}",
            f"the zone {domain!r} lives in: {domain!r} itself or a parent such as {domain.split('.', 1)[-1]!r}",
        )
    ]


def _pgbouncer_problems(values: Values, key: KeyOf) -> list[Problem]:
    if values["postgres_pgbouncer"] and values["postgres_sku_tier"] == "Burstable":
        return [
            Problem(
                key("postgres_pgbouncer"),
                "true with postgresSkuTier 'Burstable'",
                "false (Azure offers the built-in PgBouncer on GeneralPurpose and MemoryOptimized only)",
            )
        ]
    return []


_MLFLOW_CLIENT_KEYS = (
    "mlflow_workers",
    "mlflow_db_pool_size",
    "mlflow_db_max_overflow",
    "mlflow_tracking_max_replicas",
    "mlflow_registry_max_replicas",
    "mlflow_artifacts_replicas",
)
"""What multiplies the database connections MLflow may open."""
_CAPACITY_KEYS = (
    "postgres_sku_tier",
    "postgres_sku_name",
    "postgres_pgbouncer",
    "postgres_pgbouncer_pool_size",
    "postgres_pgbouncer_max_client_connections",
    *_MLFLOW_CLIENT_KEYS,
)


def _connection_problems(values: Values, key: KeyOf) -> list[Problem]:
    """MLflow at maximum scale (HPA maxima plus a surge pod per role) fits the server and PgBouncer."""
    limit = user_connections(values["postgres_sku_name"])
    if limit is None:
        return []  # an unknown SKU: Azure's own validation answers
    pgbouncer = values["postgres_pgbouncer"] and values["postgres_sku_tier"] != "Burstable"
    scale = MlflowScale(
        workers=values["mlflow_workers"],
        pool_size=values["mlflow_db_pool_size"],
        max_overflow=values["mlflow_db_max_overflow"],
        max_replicas={
            "tracking": values["mlflow_tracking_max_replicas"],
            "registry": values["mlflow_registry_max_replicas"],
            "artifacts": values["mlflow_artifacts_replicas"],
        },
    )
    budget = connection_budget(
        scale,
        limit,
        values["postgres_pgbouncer_pool_size"] if pgbouncer else None,
        values["postgres_pgbouncer_max_client_connections"] if pgbouncer else None,
    )
    client_keys = ", ".join(key(name) for name in _MLFLOW_CLIENT_KEYS)
    problems = []
    if budget.pgbouncer_client_limit is not None and budget.clients > budget.pgbouncer_client_limit:
        problems.append(
            Problem(
                key("postgres_pgbouncer_max_client_connections"),
                f"{budget.pgbouncer_client_limit} while MLflow may open {budget.clients} connections at maximum "
                f"scale ({client_keys})",
                f"at least {budget.clients}, or fewer MLflow connections",
            )
        )
    if budget.server_demand > budget.server_limit:
        sku = values["postgres_sku_name"]
        if pgbouncer:
            found = (
                f"{values['postgres_pgbouncer_pool_size']} per database: {budget.server_demand} server connections "
                f"with the migration Job and headroom, over the {budget.server_limit} {sku} accepts"
            )
            problems.append(
                Problem(key("postgres_pgbouncer_pool_size"), found, "a smaller pool, or a larger postgresSkuName")
            )
        else:
            found = (
                f"{sku} (accepts {budget.server_limit} connections) with {budget.server_demand} needed at maximum "
                f"scale ({client_keys}, directly: {key('postgres_pgbouncer')} is off)"
            )
            problems.append(
                Problem(
                    key("postgres_sku_name"),
                    found,
                    "a larger SKU, PgBouncer (GeneralPurpose/MemoryOptimized), or fewer MLflow connections",
                )
            )
    return problems


def _minimum_not_above_maximum(low: str, high: str) -> CombinationCheck:
    """A `*_min_*` setting may not exceed its `*_max_*` twin (node pools, replica counts)."""

    def run(values: Values, key: KeyOf) -> list[Problem]:
        if values[low] <= values[high]:
            return []
        return [Problem(key(low), f"{values[low]} above {key(high)} {values[high]}", f"at most {values[high]}")]

    return CombinationCheck((low, high), run)


def _prebuilt_image_problems(values: Values, key: KeyOf) -> list[Problem]:
    """Prebuilt images name images the platform has; without a registry, every image is prebuilt."""
    prebuilt = values["prebuilt_images"]
    problems = [
        Problem(
            f"{key('prebuilt_images')}.{name}", "an image the platform does not build", f"one of {sorted(IMAGE_NAMES)}"
        )
        for name in prebuilt
        if name not in IMAGE_NAMES
    ]
    if not values["container_registry"]:
        problems += [
            Problem(
                f"{key('prebuilt_images')}.{image.name}",
                "nothing while containerRegistry is false (there is no registry to build into)",
                "a prebuilt image pinned by digest, `<registry>/<repository>@sha256:<64 hex>`",
            )
            for image in PLATFORM_IMAGES
            if image.name not in prebuilt
        ]
    return problems


def _registry_problems(values: Values, key: KeyOf) -> list[Problem]:
    if values["container_registry"] and values["private_endpoints"] and values["container_registry_sku"] != "Premium":
        return [
            Problem(
                key("container_registry_sku"),
                f"{values['container_registry_sku']!r} with privateEndpoints true",
                "'Premium' (the only registry SKU with private endpoints)",
            )
        ]
    return []


def _duplicate_problems(values: Values, key: KeyOf) -> list[Problem]:
    problems = []
    for name in ("aks_zones", "allowed_ip_ranges", "aks_admin_group_object_ids"):
        items = values[name]
        duplicates = sorted({item for item in items if items.count(item) > 1})
        if duplicates:
            problems.append(Problem(key(name), f"duplicates {duplicates}", "each entry once"))
    return problems


_STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def _operator_problems(values: Values, key: KeyOf) -> list[Problem]:
    """The Pulumi Kubernetes Operator needs to know what to deploy, from where, as whom."""
    if not values["pulumi_operator"]:
        return []
    problems = []
    required = {
        "pulumi_project_repo": "the Git URL of this repository",
        "pulumi_backend_url": "the stack's state backend URL",
        "pulumi_stack_name": "the fully qualified models stack name (org/mlops-models/stack)",
    }
    for name, meaning in required.items():
        if not values[name]:
            problems.append(Problem(key(name), "nothing with pulumiOperator true", meaning))
    stack = values["pulumi_stack_name"]
    if stack and not _STACK_NAME.match(stack):
        problems.append(Problem(key("pulumi_stack_name"), repr(stack), "`<organization>/<project>/<stack>`"))
    return problems


def _entra_admin_problems(values: Values, key: KeyOf) -> list[Problem]:
    """PostgreSQL's Entra admin group needs both its object id and its name (the role people sign in as)."""
    object_id, name = values["postgres_entra_admin_group_object_id"], values["postgres_entra_admin_group_name"]
    if object_id and not name.strip():
        return [Problem(key("postgres_entra_admin_group_name"), repr(name), "the display name of the group")]
    if name.strip() and not object_id:
        return [Problem(key("postgres_entra_admin_group_object_id"), repr(object_id), "the object id of the group")]
    return []


def _cluster_access_problems(values: Values, key: KeyOf) -> list[Problem]:
    """Who deploys into an Entra-only cluster is configuration, and kubelogin must know as whom."""
    problems = []
    if not values["aks_local_accounts"] and not values["aks_deployer_object_ids"]:
        problems.append(
            Problem(
                key("aks_deployer_object_ids"),
                "nothing with aksLocalAccounts false",
                "the object ids of the principals that run `pulumi up` (CI, the operator)",
            )
        )
    duplicates = sorted(
        {i for i in values["aks_deployer_object_ids"] if values["aks_deployer_object_ids"].count(i) > 1}
    )
    if duplicates:
        problems.append(Problem(key("aks_deployer_object_ids"), f"duplicates {duplicates}", "each entry once"))
    if values["allowed_ip_ranges"] and not values["aks_deployer_ip_ranges"]:
        problems.append(
            Problem(
                key("aks_deployer_ip_ranges"),
                "nothing while allowedIpRanges restricts the API server",
                "the egress CIDRs of where `pulumi up` runs (a runner's static NAT address), or `pulumi up` "
                "cannot reach the cluster",
            )
        )
    if values["aks_kubelogin_mode"] == "spn" and not values["aks_kubelogin_client_id"]:
        problems.append(
            Problem(
                key("aks_kubelogin_client_id"),
                "nothing with aksKubeloginMode spn",
                "the service principal's client id (kubelogin never reuses the Azure CLI's)",
            )
        )
    return problems


PLATFORM_NAMESPACES = frozenset(
    {"mlops-system", "monitoring", "istio-system", "seldon-system", "cert-manager", "kube-system", "default"}
)
"""Namespaces the platform itself owns (besides the configurable ones): no team may take one."""


def _team_problems(values: Values, key: KeyOf) -> list[Problem]:
    """Teams share no name or namespace (`settings.teams.validate_teams`), and no team namespace, nor its
    MLflow Projects jobs namespace (`<namespace>-jobs`), is one of the platform's or another team's."""
    teams = values["teams"]
    _, problems = validate_teams([team.model_dump(by_alias=True) for team in teams])
    if problems:
        return [dataclasses.replace(p, key=p.key.replace(TEAMS_KEY, key("teams"), 1)) for p in problems]
    taken = {values[name]: key(name) for name in ("mlflow_namespace", "models_namespace", "ml_jobs_namespace")}
    taken.update({namespace: "the platform" for namespace in PLATFORM_NAMESPACES})
    owners: dict[str, str] = {}
    for team in teams:
        for namespace in (team.namespace, jobs_namespace(team)):
            owners.setdefault(namespace, team.name)
    for index, team in enumerate(teams):
        for namespace in (team.namespace, jobs_namespace(team)):
            owner = taken.get(namespace) or (owners[namespace] if owners[namespace] != team.name else None)
            if len(namespace) > 63:
                where = f"{key('teams')}[{index}] ({team.name})"
                problems.append(Problem(where, f"namespace {namespace!r}", "at most 63 characters"))
            elif owner is not None:
                problems.append(
                    Problem(
                        f"{key('teams')}[{index}] ({team.name})",
                        f"namespace {namespace!r}",
                        f"namespaces of its own (`{namespace}` is {owner}'s)",
                    )
                )
    return problems


COMBINATION_CHECKS: tuple[CombinationCheck, ...] = (
    CombinationCheck(("teams", "mlflow_namespace", "models_namespace", "ml_jobs_namespace"), _team_problems),
    *(
        _minimum_not_above_maximum(f"mlflow_{role}_min_replicas", f"mlflow_{role}_max_replicas")
        for role in ("tracking", "registry")
    ),
    CombinationCheck(("prebuilt_images", "container_registry"), _prebuilt_image_problems),
    CombinationCheck(
        (
            "vnet_address_space",
            "aks_nodes_subnet",
            "postgres_subnet",
            "private_endpoints_subnet",
            "aks_service_cidr",
            "aks_pod_cidr",
            "allowed_ip_ranges",
        ),
        _cidr_problems,
    ),
    CombinationCheck(
        (
            "vnet_address_space",
            "aks_nodes_subnet",
            "postgres_subnet",
            "private_endpoints_subnet",
            "aks_service_cidr",
            "aks_pod_cidr",
            "aks_dns_service_ip",
        ),
        _layout_problems,
    ),
    CombinationCheck(
        (
            "aks_api_server_subnet",
            "aks_api_server_vnet_integration",
            "vnet_address_space",
            "aks_nodes_subnet",
            "postgres_subnet",
            "private_endpoints_subnet",
        ),
        _api_server_subnet_problems,
    ),
    CombinationCheck(("postgres_sku_tier", "postgres_sku_name", "postgres_high_availability"), _postgres_sku_problems),
    CombinationCheck(("postgres_storage_gb",), _postgres_storage_problems),
    CombinationCheck(BLOB_RESTORE_NAMES, blob_restore_problems),
    CombinationCheck(("postgres_admin_login",), _postgres_login_problems),
    CombinationCheck(
        ("postgres_entra_admin_group_object_id", "postgres_entra_admin_group_name"), _entra_admin_problems
    ),
    CombinationCheck(("postgres_pgbouncer", "postgres_sku_tier"), _pgbouncer_problems),
    CombinationCheck(("dns_zone_name", "domain"), _dns_zone_problems),
    CombinationCheck(_CAPACITY_KEYS, _connection_problems),
    *(_minimum_not_above_maximum(f"aks_{pool}_min_nodes", f"aks_{pool}_max_nodes") for pool in ("system", "workload")),
    CombinationCheck(("container_registry", "private_endpoints", "container_registry_sku"), _registry_problems),
    CombinationCheck(("aks_zones", "allowed_ip_ranges", "aks_admin_group_object_ids"), _duplicate_problems),
    CombinationCheck(
        (
            "pulumi_operator",
            "pulumi_project_repo",
            "pulumi_backend_url",
            "pulumi_stack_name",
        ),
        _operator_problems,
    ),
    CombinationCheck(
        (
            "aks_local_accounts",
            "aks_deployer_object_ids",
            "aks_kubelogin_mode",
            "aks_kubelogin_client_id",
            "allowed_ip_ranges",
            "aks_deployer_ip_ranges",
        ),
        _cluster_access_problems,
    ),
)
