"""Our schemas agree with the full upstream definitions, where those are at hand.

Set MLOPS_UPSTREAM_SCHEMAS to a directory fetched as schemas/README.md describes (`helm show crds`,
`helm show values` at the pinned versions). Then every committed stack, both projects, passes the
strict mode (ours and upstream), and each of our subsets accepts nothing upstream refuses for the
fields it lists: every property exists upstream with the same type, our enums, patterns, bounds and
required lists are at least as strict, and each listed chart key exists upstream with the same
default. Without the variable those tests are skipped: the repository carries no upstream file (the
walk itself is tested always).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.mock_engine import Evaluation
from harness.schema_validation import (
    CHART_KEYS,
    chart_defaults,
    crd_schemas,
    schema_problems,
    upstream_chart_defaults,
    upstream_crd_schemas,
    upstream_dir_from_env,
)

UPSTREAM = upstream_dir_from_env()
needs_upstream = pytest.mark.skipif(
    UPSTREAM is None,
    reason="MLOPS_UPSTREAM_SCHEMAS is unset: no full upstream CRDs and chart values here (schemas/README.md)",
)
VERSION = "1.34.2"
_BOUNDS = ("minimum", "minLength", "minItems")
_CEILINGS = ("maximum", "maxLength", "maxItems")


def _upstream() -> Path:
    assert UPSTREAM is not None
    return UPSTREAM


@needs_upstream
def test_committed_stacks_pass_ours_and_upstream(
    evaluations: dict[str, Evaluation], models_evaluations: dict[str, Evaluation]
) -> None:
    for project, results in (("platform", evaluations), ("models", models_evaluations)):
        for stack, evaluation in results.items():
            assert schema_problems(evaluation, VERSION, _upstream()) == [], f"{project} {stack}"


def subset_disagreements(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Where our schema node `ours` accepts something upstream's node `theirs` refuses."""
    if not isinstance(theirs, dict):
        return [f"{path}: not in the upstream schema"]
    if "$ref" in ours:  # a core definition (x-mlops-core-schema): upstream must have an object here
        return [] if theirs.get("type", "object") == "object" or "$ref" in theirs else [f"{path}: not an object"]
    if theirs.get("x-kubernetes-preserve-unknown-fields") and "properties" not in theirs:
        return []
    problems = []
    if theirs.get("x-kubernetes-int-or-string"):
        if ours.get("type") not in ("integer", "string"):
            problems.append(f"{path}: upstream is int-or-string, ours is {ours.get('type')}")
    elif "type" in theirs and ours.get("type") != theirs["type"]:
        problems.append(f"{path}: type {ours.get('type')}, upstream {theirs['type']}")
    if "enum" in theirs and not set(ours.get("enum", [None])) <= set(theirs["enum"]):
        problems.append(f"{path}: enum {ours.get('enum')} beyond upstream's {theirs['enum']}")
    for keyword in ("pattern", "oneOf", "anyOf"):
        if keyword in theirs and ours.get(keyword) != theirs[keyword] and "x-kubernetes-int-or-string" not in theirs:
            problems.append(f"{path}: upstream {keyword} not kept")
    for keyword in _BOUNDS:
        if keyword in theirs and ours.get(keyword, float("-inf")) < theirs[keyword]:
            problems.append(f"{path}: {keyword} below upstream's {theirs[keyword]}")
    for keyword in _CEILINGS:
        if keyword in theirs and ours.get(keyword, float("inf")) > theirs[keyword]:
            problems.append(f"{path}: {keyword} above upstream's {theirs[keyword]}")
    missing = set(theirs.get("required", [])) - set(ours.get("required", []))
    if missing:
        problems.append(f"{path}: upstream requires {sorted(missing)}")
    for name, node in ours.get("properties", {}).items():
        problems += subset_disagreements(node, theirs.get("properties", {}).get(name), f"{path}.{name}")
    if isinstance(ours.get("additionalProperties"), dict):
        problems += subset_disagreements(ours["additionalProperties"], theirs.get("additionalProperties"), f"{path}.*")
    if isinstance(ours.get("items"), dict):
        problems += subset_disagreements(ours["items"], theirs.get("items"), f"{path}[]")
    return problems


@needs_upstream
@pytest.mark.parametrize("kind", sorted(crd_schemas()), ids=lambda k: f"{k[0]}:{k[1]}")
def test_each_crd_subset_accepts_nothing_upstream_refuses(kind: tuple[str, str]) -> None:
    theirs = upstream_crd_schemas(_upstream()).get(kind)
    assert theirs is not None, f"no upstream CRD for {kind} in {UPSTREAM}"
    assert subset_disagreements(crd_schemas()[kind], theirs) == []


def chart_key_disagreements(ours: dict[str, Any], theirs: dict[str, Any], path: str = "") -> list[str]:
    """Our listed chart keys that upstream lacks, or whose default differs from upstream's."""
    problems = []
    for key, default in ours.items():
        where = f"{path}{key}"
        if key not in theirs:
            problems.append(f"{where}: not a value of the upstream chart")
        elif isinstance(default, dict) and default:
            if isinstance(theirs[key], dict):
                problems += chart_key_disagreements(default, theirs[key], where + ".")
            else:
                problems.append(f"{where}: a mapping here, not upstream")
        elif default != theirs[key]:
            problems.append(f"{where}: default {default!r}, upstream {theirs[key]!r}")
    return problems


@needs_upstream
@pytest.mark.parametrize(("chart", "version"), sorted(CHART_KEYS))
def test_each_chart_key_list_matches_the_upstream_chart(chart: str, version: str) -> None:
    theirs = upstream_chart_defaults(_upstream(), chart, version)
    assert chart_key_disagreements(chart_defaults(chart, version), theirs) == []


def test_the_agreement_check_finds_a_subset_looser_than_upstream() -> None:
    """The walk itself: a type, an enum and a field upstream does not have are each reported."""
    theirs = {"type": "object", "properties": {"mode": {"type": "string", "enum": ["A", "B"]}}}
    ours = {
        "type": "object",
        "properties": {"mode": {"type": "string", "enum": ["A", "C"]}, "extra": {"type": "integer"}},
    }
    assert subset_disagreements(ours, theirs) == [
        ".mode: enum ['A', 'C'] beyond upstream's ['A', 'B']",
        ".extra: not in the upstream schema",
    ]
    assert chart_key_disagreements({"a": {"b": 1}}, {"a": {"b": 2}}) == ["a.b: default 1, upstream 2"]
