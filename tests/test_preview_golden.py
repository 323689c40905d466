"""dev and prod (platform and models projects) declare what the committed golden file says: the same
engine URNs, inputs, options and outputs. A restructuring must leave this test green; a deliberate
change to what is deployed regenerates the file and shows in review as its diff:

    .venv/bin/python -m tests.test_preview_golden

Kept small: per resource a short hash of each top-level input and one of its options (dependencies
as engine URNs, provider, deleted_with, protect, ignore_changes, secret inputs and outputs), so a
failure names the URN and the input keys that differ. Nothing is excluded: the digests of the images
the platform builds are written once, under `images` (URN → digest), and stand as `<digest of URN>`
wherever an input or output carries them, so a Dockerfile change reads as one line per image rather
than one per pod that runs it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness.mock_engine import MODELS_DIR, Evaluation, evaluate

GOLDEN = Path(__file__).parent / "golden" / "preview.json"
REGENERATE = "a deliberate change regenerates it: .venv/bin/python -m tests.test_preview_golden"
BUILT_IMAGE = "docker-build:index:Image"


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _substitute(value: Any, digests: dict[str, str]) -> Any:
    if isinstance(value, str):
        for digest, name in digests.items():
            value = value.replace(digest, f"<digest of {name}>")
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, digests) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, digests) for v in value]
    return value


def summary(evaluation: Evaluation) -> dict[str, Any]:
    """Engine URN → input hashes and option hash; built images' digests; output hashes."""
    engine = {r.urn: r.engine_urn for r in evaluation.resources}
    digests = {
        str(r.outputs["digest"]): r.engine_urn
        for r in evaluation.resources
        if r.type == BUILT_IMAGE and r.outputs.get("digest")
    }
    resources = {}
    for r in evaluation.resources:
        options = {
            "dependencies": sorted(engine.get(d, d) for d in r.dependencies),
            "provider": engine.get(r.provider.rsplit("::", 1)[0], r.provider) if r.provider else "",
            "deleted_with": engine.get(r.deleted_with, r.deleted_with),
            "protect": r.protect,
            "ignore_changes": sorted(r.ignore_changes),
            "secret_inputs": sorted(r.secret_inputs),
            "additional_secret_outputs": sorted(r.additional_secret_outputs),
        }
        inputs = _substitute(r.inputs, digests)
        resources[r.engine_urn] = {
            "inputs": {k: _hash(v) for k, v in sorted(inputs.items())},
            "options": _hash(options),
        }
    outputs = {
        k: _hash(_substitute(v.value, digests)) + (" secret" if v.secret else "") for k, v in evaluation.outputs.items()
    }
    return {
        "resources": dict(sorted(resources.items())),
        "images": {u: d for d, u in sorted(digests.items())},
        "outputs": outputs,
    }


def current() -> dict[str, Any]:
    result = {}
    for project, project_dir in (("platform", None), ("models", MODELS_DIR)):
        for stack in ("dev", "prod"):
            evaluation = evaluate(stack) if project_dir is None else evaluate(stack, project_dir=project_dir)
            if evaluation.error is not None:
                raise AssertionError(f"{project} {stack} failed to evaluate: {evaluation.error!r}")
            result[f"{project}/{stack}"] = summary(evaluation)
    return result


def differences(golden: dict[str, Any], now: dict[str, Any]) -> list[str]:
    lines = []
    for name in sorted(set(golden) | set(now)):
        old, new = golden.get(name, {}), now.get(name, {})
        old_resources, new_resources = old.get("resources", {}), new.get("resources", {})
        for urn in sorted(set(old_resources) - set(new_resources)):
            lines.append(f"{name}: gone (a new URN without an alias replaces it): {urn}")
        for urn in sorted(set(new_resources) - set(old_resources)):
            lines.append(f"{name}: new: {urn}")
        for urn in sorted(set(old_resources) & set(new_resources)):
            a, b = old_resources[urn]["inputs"], new_resources[urn]["inputs"]
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            if keys:
                lines.append(f"{name}: inputs {keys} differ: {urn}")
            if old_resources[urn]["options"] != new_resources[urn]["options"]:
                lines.append(f"{name}: options (dependencies, provider, deleted_with, ...) differ: {urn}")
        for urn in sorted(set(old.get("images", {})) | set(new.get("images", {}))):
            if old.get("images", {}).get(urn) != new.get("images", {}).get(urn):
                lines.append(f"{name}: image digest (Dockerfile or build context) differs: {urn}")
        for key in sorted(set(old.get("outputs", {})) | set(new.get("outputs", {}))):
            if old.get("outputs", {}).get(key) != new.get("outputs", {}).get(key):
                lines.append(f"{name}: stack output {key} differs")
    return lines


def test_committed_stacks_preview_as_the_golden_file_says() -> None:
    golden = json.loads(GOLDEN.read_text())
    lines = differences(golden, current())
    assert not lines, f"{len(lines)} differences from {GOLDEN.name}; {REGENERATE}\n" + "\n".join(lines[:60])


def test_differences_name_the_urn_and_the_input_keys() -> None:
    old = {
        "platform/dev": {
            "resources": {"u1": {"inputs": {"a": "1", "b": "2"}, "options": "x"}, "u2": {"inputs": {}, "options": "y"}}
        }
    }
    new = {
        "platform/dev": {
            "resources": {"u1": {"inputs": {"a": "1", "b": "3"}, "options": "z"}, "u3": {"inputs": {}, "options": "y"}}
        }
    }
    assert differences(old, new) == [
        "platform/dev: gone (a new URN without an alias replaces it): u2",
        "platform/dev: new: u3",
        "platform/dev: inputs ['b'] differ: u1",
        "platform/dev: options (dependencies, provider, deleted_with, ...) differ: u1",
    ]
    assert differences(old, old) == []


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
