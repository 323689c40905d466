"""Pulumi.yaml, the README and the program agree: keys, defaults, outputs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from harness import cli, config_reference
from harness.mock_engine import Evaluation
from settings import PlatformSettings, config_key

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_pulumi_yaml_documents_every_settings_key() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "mlops-platform"
    assert project["runtime"]["name"] == "python" and project["runtime"]["options"]["virtualenv"]
    keys = {
        config_key(name)
        for name, field in PlatformSettings.model_fields.items()
        if not config_reference.is_structured(field.annotation)
    }
    assert set(project["config"]) == keys
    for key, entry in project["config"].items():
        assert entry["type"] in ("string", "integer", "boolean", "array") and entry["description"], key
    assert (ROOT / "Pulumi.yaml").read_text() == cli.pulumi_yaml_text(), (
        "run: python -m mlopsctl config-reference --write"
    )


def test_readme_configuration_reference_is_current() -> None:
    assert cli.readme_text(README) == README, "run: python -m mlopsctl config-reference --write"


def _documented_outputs() -> dict[str, tuple[str, bool]]:
    section = README.split("## Stack outputs", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| (yes|no) \|", section, flags=re.M)
    return {name: (kind.strip(), secret == "yes") for name, kind, secret in rows}


def test_readme_outputs_table_is_the_stack_outputs_contract(stack: Evaluation) -> None:
    documented = _documented_outputs()
    assert set(documented) == set(stack.outputs)
    for name, output in stack.outputs.items():
        assert documented[name][1] == output.secret, f"{name}: secret flag differs from the README"


def test_readme_gives_the_two_fresh_machine_commands_that_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("make test", "make preview STACK=dev"):
        assert f"\n{command}\n" in README, f"README does not give `{command}` on a line of its own"
    assert "\nmake test\n" in ci, ".ci/run must run the README's test command"
