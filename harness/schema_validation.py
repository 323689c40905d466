"""Validate what the program declares in Kubernetes against the real schemas.

- Core kinds: the upstream OpenAPI schemas shipped by `kubernetes-validate`, strict (an unknown
  field is an error, as `kubectl apply --validate=strict` would say), at the cluster's version.
- Custom kinds: the CRDs in `../shared/schemas` (SeldonDeployment, Istio, Prometheus operator,
  SecretProviderClass, Pulumi operator Stack), and the hand-written subsets in `schemas/`
  (cert-manager `Certificate`, `ClusterIssuer`; see schemas/README.md). The API server silently *prunes* unknown fields
  of structural schemas, which hides typos, so objects are checked as if every object schema
  without `x-kubernetes-preserve-unknown-fields` had `additionalProperties: false`.
- Helm values: every path the program sets must exist in the pinned chart's default values
  (below a default that is empty, a list or null, anything goes: those are free-form).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from harness.mock_engine import REPO_ROOT, Evaluation, RecordedResource

SCHEMAS_DIR = Path(os.environ.get("MLOPS_SCHEMAS_DIR", REPO_ROOT.parent / "shared" / "schemas"))
REPO_SCHEMAS_DIR = REPO_ROOT / "schemas"
"""Hand-written subsets for charts the shared set lacks (cert-manager; see schemas/README.md)."""

# Pulumi resource types that are not Kubernetes objects themselves.
_NOT_OBJECTS = ("pulumi:providers:kubernetes", "kubernetes:helm.sh/v3:Release", "kubernetes:yaml")

# The CRDs are megabytes of YAML: libyaml's safe loader parses them ten times faster.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# (chart, version) → default values file in SCHEMAS_DIR.
CHART_DEFAULTS: dict[tuple[str, str], str] = {
    ("base", "1.30.3"): "istio-base-1.30.3.values.yaml",
    ("istiod", "1.30.3"): "istio-istio-discovery-1.30.3.values.yaml",
    ("gateway", "1.30.3"): "istio-gateway-1.30.3.values.yaml",
    ("seldon-core-operator", "1.17.1"): "seldon-core-operator-1.17.1.values.yaml",
    ("kube-prometheus-stack", "88.5.3"): "kube-prometheus-stack-88.5.3.values.yaml",
    ("pulumi-kubernetes-operator", "2.9.0"): "pulumi-operator-2.9.0.values.yaml",
    ("cert-manager", "v1.19.1"): "cert-manager-v1.19.1.values-subset.yaml",
}


def _schema_files() -> list[Path]:
    """The shared schema set, then the repository's own subsets."""
    return [*sorted(SCHEMAS_DIR.glob("*.yaml")), *sorted(REPO_SCHEMAS_DIR.glob("*.yaml"))]


def _schema_file(filename: str) -> Path:
    shared = SCHEMAS_DIR / filename
    return shared if shared.exists() else REPO_SCHEMAS_DIR / filename


def _strict(schema: Any) -> Any:
    """Close every object schema that lists its properties and does not preserve unknown fields."""
    if isinstance(schema, dict):
        closed = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in closed
            and "additionalProperties" not in closed
            and not closed.get("x-kubernetes-preserve-unknown-fields")
        ):
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → strict openAPIV3Schema, from every CRD file in SCHEMAS_DIR."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in _schema_files():
        if "crd" not in path.name:
            continue  # chart default values, not CRDs
        for document in yaml.load_all(path.read_text(), Loader=_YamlLoader):
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            for version in spec["versions"]:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                # Istio's CRDs list only spec/status: every object has these three all the same.
                properties = schema.setdefault("properties", {})
                properties["metadata"] = {"type": "object"}
                properties.setdefault("apiVersion", {"type": "string"})
                properties.setdefault("kind", {"type": "string"})
                schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = _strict(schema)
    return schemas


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(root)"


def validate_object(obj: Mapping[str, Any], kubernetes_version: str) -> list[str]:
    """Problems of one Kubernetes object; empty when it is valid."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["apiVersion and kind are required"]
    crd = crd_schemas().get((api_version, kind))
    if crd is not None:
        validator = jsonschema.Draft7Validator(crd)
        return [f"{_path(e)}: {e.message}" for e in sorted(validator.iter_errors(dict(obj)), key=str)]
    try:
        kubernetes_validate.validate(dict(obj), kubernetes_version, strict=True)
    except kubernetes_validate.utils.ValidationError as error:
        return [f"{_path(error)}: {error.message}"]
    except kubernetes_validate.utils.SchemaNotFoundError:
        return [
            f"no schema for {api_version} {kind} (neither Kubernetes {kubernetes_version} nor a CRD in {SCHEMAS_DIR})"
        ]
    return []


def kubernetes_objects(evaluation: Evaluation) -> Iterator[tuple[RecordedResource, dict[str, Any]]]:
    """Every Kubernetes object the program declares, as the manifest the provider would apply."""
    for resource in evaluation.resources:
        if not resource.type.startswith("kubernetes:") or resource.type.startswith(_NOT_OBJECTS):
            continue
        yield resource, dict(resource.inputs)


def helm_releases(evaluation: Evaluation) -> list[RecordedResource]:
    return evaluation.of_type("kubernetes:helm.sh/v3:Release")


@cache
def chart_defaults(chart: str, version: str) -> dict[str, Any]:
    """The pinned chart's default values (Istio's `_internal_defaults_do_not_set` unwrapped)."""
    filename = CHART_DEFAULTS.get((chart, version))
    if filename is None:
        raise LookupError(
            f"no default values on file for chart {chart} {version}; pinned charts: {sorted(CHART_DEFAULTS)}"
        )
    defaults = yaml.load(_schema_file(filename).read_text(), Loader=_YamlLoader) or {}
    internal = defaults.pop("_internal_defaults_do_not_set", None)
    if isinstance(internal, dict):
        defaults = {**internal, **defaults}
    return defaults


def helm_value_problems(values: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Paths set in `values` that the chart does not have."""
    problems = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            problems.append(f"{path}: not a value of the chart")
            continue
        default = defaults[key]
        if isinstance(value, dict) and isinstance(default, dict) and default:
            problems.extend(helm_value_problems(value, default, path + "."))
    return problems


def release_problems(release: RecordedResource) -> list[str]:
    """A Helm release must name a pinned version and a repository, and set only real values."""
    inputs = release.inputs
    chart, version = inputs.get("chart", ""), inputs.get("version", "")
    repository = (inputs.get("repositoryOpts") or {}).get("repo", "")
    if chart.startswith("oci://"):  # an OCI reference names its registry itself
        repository, chart = chart, chart.rsplit("/", 1)[-1]
    if not version:
        return [f"{release.name}: chart {chart} has no pinned version"]
    if not repository:
        return [f"{release.name}: chart {chart} has no repository"]
    try:
        defaults = chart_defaults(chart, version)
    except LookupError as error:
        return [f"{release.name}: {error}"]
    return [f"{release.name}: {problem}" for problem in helm_value_problems(inputs.get("values") or {}, defaults)]


def schema_problems(evaluation: Evaluation, kubernetes_version: str) -> list[str]:
    """Every schema problem of the stack's Kubernetes objects and Helm releases, one line each."""
    problems = []
    for resource, obj in kubernetes_objects(evaluation):
        problems += [f"{resource.name} ({obj.get('kind')}): {p}" for p in validate_object(obj, kubernetes_version)]
    for release in helm_releases(evaluation):
        problems += release_problems(release)
    return problems
