"""Which MLflow role answers which request: one routing table, rendered for Istio and for nginx.

The cluster gets it as an Istio VirtualService on the platform gateway; the integration tests get
the same table as an nginx configuration in front of locally started servers, so the routing
that is tested is the routing that is deployed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from layout.mlflow_server import ARTIFACTS_ROLE_WITH_WORKSPACES, Role


@dataclass(frozen=True)
class Route:
    prefix: str
    role: Role


# Longest prefixes need no special order: none of them is a prefix of another.
ROUTES: Final[tuple[Route, ...]] = (
    Route("/api/2.0/mlflow/registered-models", "registry"),
    Route("/api/2.0/mlflow/model-versions", "registry"),
    Route("/ajax-api/2.0/mlflow/registered-models", "registry"),
    Route("/ajax-api/2.0/mlflow/model-versions", "registry"),
    Route("/api/2.0/mlflow-artifacts", "artifacts"),
    Route("/ajax-api/2.0/mlflow-artifacts", "artifacts"),
)
DEFAULT_ROLE: Final[Role] = "tracking"
"""Everything else, the UI included."""


def routes(workspaces: bool) -> tuple[Route, ...]:
    """The table of a platform with MLflow workspaces (teams) or without: with them, the artifacts
    proxy paths go to `ARTIFACTS_ROLE_WITH_WORKSPACES` (why: `layout.mlflow_server`), else `ROUTES`."""
    if not workspaces:
        return ROUTES
    return tuple(Route(r.prefix, ARTIFACTS_ROLE_WITH_WORKSPACES) if r.role == "artifacts" else r for r in ROUTES)


def role_for(path: str, routes: Sequence[Route] = ROUTES) -> Role:
    """The role a request path goes to (the semantics both renderings implement)."""
    for route in routes:
        if path == route.prefix or path.startswith(route.prefix.rstrip("/") + "/"):
            return route.role
    return DEFAULT_ROLE


def virtual_service_http(
    service_hosts: Mapping[str, str], port: int, routes: Sequence[Route] = ROUTES
) -> list[dict[str, Any]]:
    """`spec.http` of the VirtualService: one rule per route, then the default to tracking."""
    rules: list[dict[str, Any]] = []
    for route in routes:
        rules.append(
            {
                "name": f"{route.role}-{route.prefix.strip('/').replace('/', '-').replace('.', '-')}",
                "match": [{"uri": {"exact": route.prefix}}, {"uri": {"prefix": route.prefix.rstrip("/") + "/"}}],
                "route": [{"destination": {"host": service_hosts[route.role], "port": {"number": port}}}],
            }
        )
    rules.append(
        {
            "name": DEFAULT_ROLE,
            "route": [{"destination": {"host": service_hosts[DEFAULT_ROLE], "port": {"number": port}}}],
        }
    )
    return rules


def nginx_locations(upstreams: Mapping[str, str], routes: Sequence[Route] = ROUTES) -> str:
    """nginx `location` blocks for the table; `upstreams` maps a role to `host:port`."""
    proxy = (
        "proxy_set_header Host $http_host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; "
        'proxy_http_version 1.1; proxy_set_header Connection ""; proxy_request_buffering off; '
        "client_max_body_size 0; proxy_read_timeout 300s;"
    )
    blocks = []
    for route in routes:
        target = f"http://{upstreams[route.role]}"
        blocks.append(f"location = {route.prefix} {{ proxy_pass {target}; {proxy} }}")
        blocks.append(f"location ^~ {route.prefix.rstrip('/')}/ {{ proxy_pass {target}; {proxy} }}")
    blocks.append(f"location / {{ proxy_pass http://{upstreams[DEFAULT_ROLE]}; {proxy} }}")
    return "\n".join(blocks)
