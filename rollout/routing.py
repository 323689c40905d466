"""The Istio VirtualService of a model: header/cookie A/B, sticky canary and mirroring.

Seldon Core 1.17's own VirtualService is bound to the platform gateway with host `*` and carries
only weights (operator/controllers/seldondeployment_controller.go, `createIstioResources`). The
platform declares, per model, a VirtualService for the exact public host (`models.<domain>`) on
the same gateway. Envoy picks the virtual host of an exact domain before `*`, and Istio merges the
gateway VirtualServices of one host (every managed model declares its own, each with its own
`/seldon/<namespace>/<deployment>/` prefix), so requests to the public host follow these routes;
Seldon's stays the fallback for other hosts. Destinations are the per-predictor Services Seldon
creates, `<deployment>-<predictor>` (executor HTTP port 8000, gRPC 5001, `GetPredictorKey`);
Seldon's DestinationRules for those hosts still apply (mutual TLS).

Routes, first match wins:
1. `match` (A/B): a request with a matching header or cookie → candidate;
2. sticky: a request carrying the sticky cookie of *this* candidate version → candidate;
3. everything else → the weights of the plan; with `sticky`, the candidate's responses set the
   cookie (`Max-Age`), so a client that landed there stays; with a mirror, a share of the
   requests is copied to the candidate and its responses dropped.
"""

from __future__ import annotations

import re
from typing import Any

from rollout.planner import DeploymentPlan
from settings.rollout import RouteMatch

HTTP_PORT = 8000
GRPC_PORT = 5001
GRPC_URI_REGEX = ".*tensorflow.*|.*seldon.protos.*|.*inference.*"
"""Seldon's `GRPCRegExMatchIstio` (operator/constants/constants.go, v1.17.1)."""
API_VERSION = "networking.istio.io/v1"


def predictor_host(deployment: str, predictor: str, namespace: str) -> str:
    """The Service Seldon creates for a predictor, fully qualified."""
    return f"{deployment}-{predictor}.{namespace}.svc.cluster.local"


def virtual_service_name(deployment: str) -> str:
    return f"{deployment}-routing"


def sticky_value(plan: DeploymentPlan) -> str:
    """The sticky cookie's value: names the deployment and candidate version, so a new candidate
    never inherits the clients of an earlier one."""
    return f"{plan.deployment}-v{plan.route.candidate_version}"


def cookie_regex(name: str, value: str) -> str:
    """A `Cookie` header regex matching the cookie `name=value` among others (RE2, full match)."""
    return f"^(.*?;\\s*)?{re.escape(name)}={re.escape(value)}(;.*)?$"


def _header_match(match: RouteMatch) -> dict[str, dict[str, str]]:
    if match.header is not None:
        kind = {"exact": match.exact} if match.exact is not None else {"regex": match.regex}
        return {match.header: {k: v for k, v in kind.items() if v is not None}}
    assert match.cookie is not None and match.value is not None
    return {"cookie": {"regex": cookie_regex(match.cookie, match.value)}}


def _destination(plan: DeploymentPlan, predictor: str, namespace: str, port: int) -> dict[str, Any]:
    return {"host": predictor_host(plan.deployment, predictor, namespace), "port": {"number": port}}


def _routes(plan: DeploymentPlan, namespace: str, port: int, to: str | None = None) -> list[dict[str, Any]]:
    """The weighted destinations (or all to `to`); the candidate's responses set the sticky cookie."""
    routes = []
    for predictor in plan.predictors:
        weight = predictor.traffic if to is None else (100 if predictor.name == to else 0)
        if predictor.shadow or weight == 0:
            continue
        route: dict[str, Any] = {"destination": _destination(plan, predictor.name, namespace, port), "weight": weight}
        sticky = plan.route.sticky
        if sticky is not None and predictor.name == plan.route.candidate:
            cookie = (
                f"{sticky.cookie}={sticky_value(plan)}; Max-Age={sticky.max_age_seconds}; "
                f"Path=/seldon/{namespace}/{plan.deployment}/; HttpOnly"
            )
            route["headers"] = {"response": {"add": {"Set-Cookie": cookie}}}
        routes.append(route)
    return routes


def _candidate_matches(plan: DeploymentPlan, uri: dict[str, Any], extra: dict[str, Any]) -> list[dict[str, Any]]:
    """Match blocks (OR) that send a request to the candidate: A/B conditions, then the sticky cookie."""
    blocks = [{**uri, "headers": {**extra, **_header_match(m)}} for m in plan.route.match]
    if plan.route.sticky is not None:
        regex = cookie_regex(plan.route.sticky.cookie, sticky_value(plan))
        blocks.append({**uri, "headers": {**extra, "cookie": {"regex": regex}}})
    return blocks


def virtual_service(plan: DeploymentPlan, *, namespace: str, host: str, gateway: str) -> dict[str, Any]:
    """The VirtualService manifest routing the public host's `/seldon/<namespace>/<deployment>/`."""
    prefix = f"/seldon/{namespace}/{plan.deployment}/"
    http_uri = {"uri": {"prefix": prefix}}
    grpc_uri = {"uri": {"regex": GRPC_URI_REGEX}}
    grpc_headers = {"seldon": {"exact": plan.deployment}, "namespace": {"exact": namespace}}
    candidate = plan.route.candidate
    serving_candidate = any(p.name == candidate and not p.shadow for p in plan.predictors)
    http: list[dict[str, Any]] = []
    for protocol, uri, extra, port in (
        ("http", http_uri, {}, HTTP_PORT),
        ("grpc", grpc_uri, grpc_headers, GRPC_PORT),
    ):
        rewrite = {"rewrite": {"uri": "/"}} if protocol == "http" else {}
        if serving_candidate:
            blocks = _candidate_matches(plan, uri, extra)
            if blocks:
                http.append(
                    {
                        "name": f"{protocol}-candidate",
                        "match": blocks,
                        **rewrite,
                        "route": _routes(plan, namespace, port, to=candidate),
                    }
                )
        default: dict[str, Any] = {
            "name": f"{protocol}-default",
            "match": [{**uri, "headers": extra}] if extra else [uri],
            **rewrite,
            "route": _routes(plan, namespace, port),
        }
        if plan.route.mirror_percent is not None and candidate is not None:
            default["mirror"] = _destination(plan, candidate, namespace, port)
            default["mirrorPercentage"] = {"value": float(plan.route.mirror_percent)}
        http.append(default)
    return {
        "apiVersion": API_VERSION,
        "kind": "VirtualService",
        "metadata": {
            "name": virtual_service_name(plan.deployment),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "pulumi", "mlops.io/strategy": plan.strategy},
        },
        "spec": {"hosts": [host], "gateways": [gateway], "http": http},
    }
