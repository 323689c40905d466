"""Pulumi.yaml, the documents and the program agree: keys, defaults, outputs; the documents' links resolve."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness import cli, config_reference
from harness.mock_engine import Evaluation
from settings import PlatformSettings, config_key

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / config_reference.REFERENCE_DOCUMENT).read_text()
OUTPUTS = (ROOT / "docs" / "outputs.md").read_text()
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250


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


def test_configuration_reference_is_current() -> None:
    assert config_reference.document_text(CONFIGURATION) == CONFIGURATION, (
        "run: python -m mlopsctl config-reference --write"
    )


def test_configuration_reference_refuses_a_document_without_markers() -> None:
    with pytest.raises(ValueError, match=re.escape("docs/configuration.md has no config-reference markers")):
        config_reference.document_text("# Configuration reference\n")


def _documented_outputs() -> dict[str, tuple[str, bool]]:
    section = OUTPUTS.split("\n## Outputs\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| (yes|no) \|", section, flags=re.M)
    return {name: (kind.strip(), secret == "yes") for name, kind, secret in rows}


def test_outputs_table_is_the_stack_outputs_contract(stack: Evaluation) -> None:
    documented = _documented_outputs()
    assert set(documented) == set(stack.outputs)
    for name, output in stack.outputs.items():
        assert documented[name][1] == output.secret, f"{name}: secret flag differs from docs/outputs.md"


def test_readme_gives_the_two_fresh_machine_commands_that_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("make test", "make preview STACK=dev"):
        assert f"\n{command}\n" in README, f"README does not give `{command}` on a line of its own"
    assert "\nmake test\n" in ci, ".ci/run must run the README's test command"


def test_readme_is_a_landing_page() -> None:
    lines = README.count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"
    for document in DOCUMENTS[1:]:
        assert f"](docs/{document.name})" in README, f"README does not link docs/{document.name}"


def _outside_code(text: str) -> Iterator[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield line


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_github_slug_follows_githubs_rules() -> None:
    assert github_slug("Where `up` runs: reaching prod's API server") == "where-up-runs-reaching-prods-api-server"
    assert github_slug("Model rollouts (`mlops-models:rollout`)") == "model-rollouts-mlops-modelsrollout"
    assert github_slug("Alerts → actions") == "alerts--actions"


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text, with GitHub's `-1`, `-2` suffixes for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for line in _outside_code(text):
        heading = re.match(r"#{1,6} (.+)", line)
        if not heading:
            continue
        slug = github_slug(heading.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(text: str) -> Iterator[str]:
    for line in _outside_code(text):
        prose = re.sub(r"`[^`]*`", "", line)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):
                yield target


def test_anchors_and_links_are_read_outside_code() -> None:
    text = "# Title\n```\n# not a heading [x](missing.md)\n```\n## Title\nsee [a](#title-1) and `[b](gone.md)`\n"
    assert anchors(text) == {"title", "title-1"}
    assert list(relative_links(text)) == ["#title-1"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target in relative_links(document.read_text()):
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        if not resolved.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            broken.append(f"{target}: no heading with anchor #{anchor} in {resolved.relative_to(ROOT)}")
    assert not broken, f"{document.relative_to(ROOT)}: " + "; ".join(broken)


_SKIPPED_DIRECTORIES = {".git", "node_modules", "__pycache__"}


def _repository_files() -> Iterator[Path]:
    for folder, directories, files in os.walk(ROOT):
        directories[:] = [
            name
            for name in directories
            if name not in _SKIPPED_DIRECTORIES and not name.startswith(".venv") and not name.endswith("_cache")
        ]
        for name in files:
            yield Path(folder) / name


def test_nothing_in_the_repository_refers_to_the_workplace_outside_it() -> None:
    # Built from parts, so that this file does not match itself.
    outside = ("..", "/shared")
    needles = ("".join(outside), "shared" + "/ARCHITECTURE")
    found = []
    for path in _repository_files():
        text = path.read_bytes().decode("utf-8", errors="ignore")
        found += [f"{path.relative_to(ROOT)}: {needle}" for needle in needles if needle in text]
    assert not found, "the repository must stand alone: " + ", ".join(found)
