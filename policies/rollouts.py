"""Model rollouts: SeldonDeployments split traffic exactly and say what they serve and where from."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlparse

from pulumi_policy import ResourceValidationArgs, Severity

from layout import lineage, resource_types
from policies.framework import get, resource_policy

SELDON_DEPLOYMENT = resource_types.SELDON_DEPLOYMENT
SELDON_TYPES = (SELDON_DEPLOYMENT, resource_types.SELDON_DEPLOYMENT_V1ALPHA3)


def _predictors(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [p for p in get(props, "spec.predictors", []) if isinstance(p, Mapping)]


def _weights(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    """Non-shadow predictors carry integer weights 0-100 that add up to 100."""
    serving = [p for p in _predictors(props) if p.get("shadow") is not True]
    if not serving:
        yield "no serving (non-shadow) predictor"
        return
    total = 0
    for predictor in serving:
        traffic = predictor.get("traffic")
        # The engine passes every number as a float: 10 arrives as 10.0, 12.5 stays 12.5.
        if isinstance(traffic, bool) or not isinstance(traffic, (int, float)) or not float(traffic).is_integer():
            yield f"predictor {predictor.get('name')}: traffic {traffic!r} is not an integer"
            return
        weight = int(traffic)
        if not 0 <= weight <= 100:
            yield f"predictor {predictor.get('name')}: traffic {weight} is outside 0-100"
        total += weight
    if total != 100:
        shares = ", ".join(f"{p.get('name')}={int(p['traffic'])}" for p in serving)
        yield f"traffic weights add up to {total}, not 100 ({shares})"


def _lineage(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for predictor in _predictors(props):
        annotations = predictor.get("annotations") or {}
        missing = [key for key in lineage.REQUIRED_PREDICTOR_ANNOTATIONS if not str(annotations.get(key) or "")]
        if missing:
            yield f"predictor {predictor.get('name')}: annotations lack {', '.join(missing)}"


def uri_problem(uri: Any) -> str | None:
    """Why `uri` is not a physical storage location a storage initializer can download, or None."""
    if not isinstance(uri, str) or not uri:
        return "has no modelUri"
    scheme = urlparse(uri).scheme.lower()
    if scheme in lineage.RCLONE_REMOTE_SCHEMES:
        location = uri.split(":", 1)[1]
        return None if re.fullmatch(r"[a-z0-9][a-z0-9-]{1,62}/.+", location) else f"modelUri {uri!r} names no container"
    if scheme in lineage.LOGICAL_URI_SCHEMES:
        return f"modelUri {uri!r} is a registry or local reference ({scheme}:), not physical storage"
    if scheme not in lineage.PHYSICAL_URI_SCHEMES:
        expected = ", ".join(lineage.PHYSICAL_URI_SCHEMES)
        return f"modelUri {uri!r} has scheme {scheme or 'none'!r}; expected one of {expected}"
    if not urlparse(uri).netloc:
        return f"modelUri {uri!r} names no account or bucket"
    return None


def _graph_nodes(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield node
    for child in node.get("children") or []:
        if isinstance(child, Mapping):
            yield from _graph_nodes(child)


def _model_uri(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for predictor in _predictors(props):
        for node in _graph_nodes(predictor.get("graph") or {}):
            if node.get("implementation") in (None, "UNKNOWN_IMPLEMENTATION") and "modelUri" not in node:
                continue  # a custom container, which brings its own model
            problem = uri_problem(node.get("modelUri"))
            if problem:
                yield f"predictor {predictor.get('name')} node {node.get('name')}: {problem}"


POLICIES = [
    resource_policy(
        "seldon-traffic-weights",
        "SeldonDeployment predictors (shadows aside) have integer traffic weights that add up to 100.",
        severity=Severity.HIGH,
        remediation="Let the rollout plan compute weights (stable 100-w, canary w) with w an integer in 0-100; "
        "check the model's canary steps.",
        types=SELDON_TYPES,
        check=_weights,
        tags=("rollout",),
    ),
    resource_policy(
        "seldon-lineage-annotations",
        "Every SeldonDeployment predictor carries its lineage annotations: "
        + ", ".join(lineage.REQUIRED_PREDICTOR_ANNOTATIONS)
        + ".",
        severity=Severity.MEDIUM,
        remediation="Build predictor annotations from the registry snapshot with the keys in layout/lineage.py.",
        types=SELDON_TYPES,
        check=_lineage,
        tags=("rollout", "governance"),
    ),
    resource_policy(
        "seldon-physical-model-uri",
        "Every model node's modelUri is a physical storage URI (azureblob:<container>/<path> for the rclone "
        "storage initializer, wasbs://, https://<account>.blob..., s3://, gs://).",
        severity=Severity.HIGH,
        remediation="Resolve the registry's mlflow-artifacts:/ or models:/ URI to <artifactsDestination>/<path> "
        "before declaring the predictor.",
        types=SELDON_TYPES,
        check=_model_uri,
        tags=("rollout",),
    ),
]
