"""The offline preview: evaluate a stack under the mock engine and print what it declares.

No credentials, no Pulumi CLI: the program runs for real with configuration from
`Pulumi.<stack>.yaml`, and the report shows the resource tree (type, name, parent) and the stack
outputs, secrets masked.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from mlopsctl.mock_engine import Evaluation, RecordedResource

SECRET_MASK = "[secret]"


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


def render_text(evaluation: Evaluation) -> str:
    lines = [f"stack {evaluation.stack}: {len(evaluation.resources)} resources", ""]
    lines += resource_tree_lines(evaluation)
    lines += ["", "outputs:"]
    for name, value in masked_outputs(evaluation).items():
        lines.append(f"  {name}: {json.dumps(value)}")
    return "\n".join(lines)


def render_json(evaluation: Evaluation) -> str:
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
    }
    return json.dumps(document, indent=2)
