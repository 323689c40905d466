"""The offline preview: evaluate a stack under the mock engine, check it, and print what it declares.

No credentials, no Pulumi CLI: the program runs for real with configuration from
`Pulumi.<stack>.yaml`; every policy of `policies/` runs against what it declared, every
Kubernetes object and Helm release is validated against its schema, and the report shows the
resource tree (type, name, parent), the stack outputs (secrets masked), the schema problems and
the policy violations with their enforcement level for the stack.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.deploy_order import order_problems
from harness.mock_engine import Evaluation, RecordedResource
from harness.policy_check import PackConfig, Violation, load_pack_config, mandatory, run_policies
from harness.schema_validation import schema_problems, upstream_dir_from_env
from layout import resource_types

SECRET_MASK = "[secret]"
AKS_CLUSTER = resource_types.AKS_CLUSTER
DEFAULT_KUBERNETES_VERSION = "1.34.2"


@dataclass(frozen=True)
class PreviewReport:
    """An evaluated stack with the outcome of every check."""

    evaluation: Evaluation
    pack_config: PackConfig
    violations: list[Violation]
    schema_problems: list[str]
    kubernetes_version: str
    order_problems: list[str] = field(default_factory=list)
    """Broken deploy-order rules (harness/deploy_order.py): a first `up` would not converge."""
    upstream_schemas: Path | None = None
    """Strict mode: the directory of full upstream definitions also validated against."""

    @property
    def failed(self) -> bool:
        """A mandatory policy violation, an invalid Kubernetes object or a broken deploy order fails."""
        return bool(mandatory(self.violations) or self.schema_problems or self.order_problems)


def kubernetes_version(evaluation: Evaluation) -> str:
    clusters = evaluation.of_type(AKS_CLUSTER)
    version = clusters[0].inputs.get("kubernetesVersion") if clusters else None
    return str(version) if version else DEFAULT_KUBERNETES_VERSION


def check(
    evaluation: Evaluation, pack_config: PackConfig | None = None, upstream_schemas: Path | None = None
) -> PreviewReport:
    """Run every policy and schema check on an evaluated program (schemas: ours, and with
    `upstream_schemas` or MLOPS_UPSTREAM_SCHEMAS also the full upstream definitions there)."""
    config = pack_config if pack_config is not None else load_pack_config(evaluation.stack)
    version = kubernetes_version(evaluation)
    upstream_schemas = upstream_schemas if upstream_schemas is not None else upstream_dir_from_env()
    return PreviewReport(
        evaluation,
        config,
        run_policies(evaluation, config),
        schema_problems(evaluation, version, upstream_schemas),
        version,
        order_problems(evaluation.resources),
        upstream_schemas,
    )


def resource_tree_lines(evaluation: Evaluation) -> list[str]:
    """`name (type)` lines, children indented under their parent component."""
    known = evaluation.by_urn()
    children: dict[str, list[RecordedResource]] = defaultdict(list)
    for resource in evaluation.resources:
        parent = resource.parent if resource.parent in known else ""
        children[parent].append(resource)

    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for resource in sorted(children.get(parent, []), key=lambda r: (r.name, r.type)):
            flags = " [protected]" if resource.protect else ""
            lines.append(f"{'  ' * depth}{resource.name} ({resource.type}){flags}")
            walk(resource.urn, depth + 1)

    walk("", 0)
    return lines


def masked_outputs(evaluation: Evaluation) -> dict[str, Any]:
    return {name: SECRET_MASK if out.secret else out.value for name, out in evaluation.outputs.items()}


def violation_table(violations: list[Violation]) -> list[str]:
    """Mandatory first; columns policy, resource, level, message; remediation under each row."""
    if not violations:
        return ["  none"]
    rows = sorted(violations, key=lambda v: (v.level != "mandatory", v.policy, v.resource))
    widths = [max(len(h), *(len(getattr(v, h)) for v in rows)) for h in ("policy", "resource", "level")]
    header = ("POLICY", "RESOURCE", "LEVEL")
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  MESSAGE"]
    indent = " " * (4 + sum(widths) + 2 * len(widths))
    for v in rows:
        cells = (v.policy, v.resource, v.level)
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  " + v.message)
        lines.append(f"{indent}remediation: {v.remediation}")
    return lines


def render_text(report: PreviewReport) -> str:
    evaluation = report.evaluation
    lines = [f"stack {evaluation.stack}: {len(evaluation.resources)} resources", ""]
    lines += resource_tree_lines(evaluation)
    lines += ["", "outputs:"]
    for name, value in masked_outputs(evaluation).items():
        lines.append(f"  {name}: {json.dumps(value)}")
    against = "our schemas" + (f" and upstream {report.upstream_schemas}" if report.upstream_schemas else "")
    lines += ["", f"schema problems (Kubernetes {report.kubernetes_version}; {against}):"]
    lines += [f"  {p}" for p in report.schema_problems] or ["  none"]
    lines += ["", "deploy order (what a first `up` must create first):"]
    lines += [f"  {p}" for p in report.order_problems] or ["  none"]
    strict = len(mandatory(report.violations))
    lines += [
        "",
        f"policy violations ({strict} mandatory, {len(report.violations) - strict} advisory; "
        f"levels from {report.pack_config.source}):",
    ]
    lines += violation_table(report.violations)
    lines += ["", f"result: {'FAILED' if report.failed else 'passed'}"]
    return "\n".join(lines)


def render_json(report: PreviewReport) -> str:
    evaluation = report.evaluation
    known = evaluation.by_urn()
    document = {
        "stack": evaluation.stack,
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "parent": known[r.parent].name if r.parent in known else None,
                "protect": r.protect,
            }
            for r in sorted(evaluation.resources, key=lambda r: r.urn)
        ],
        "outputs": masked_outputs(evaluation),
        "kubernetesVersion": report.kubernetes_version,
        "schemaProblems": report.schema_problems,
        "deployOrderProblems": report.order_problems,
        "policyConfig": report.pack_config.source,
        "violations": [v.as_json() for v in report.violations],
        "failed": report.failed,
    }
    return json.dumps(document, indent=2)
