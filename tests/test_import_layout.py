"""Imports flow one way: entry points → layers → components → pure packages (an AST walk)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = ("layout", "rollout", "settings", "observability")
FORBIDDEN_IN_PURE = ("pulumi", "pulumi_kubernetes", "pulumi_azure_native", "pulumi_random", "components", "layers")


def _imports(path: Path) -> set[str]:
    """Top-level package of every import in the file (function-local imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_import_no_pulumi_and_nothing_above_them(package: str) -> None:
    modules = _modules(package)
    assert modules
    for module in modules:
        bad = _imports(module) & set(FORBIDDEN_IN_PURE)
        assert not bad, f"{module.relative_to(ROOT)} imports {sorted(bad)}"


def test_components_import_no_layer_or_entry_point() -> None:
    for module in _modules("components"):
        bad = _imports(module) & {"layers", "mlopsctl", "models"}
        assert not bad, f"{module.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_walk_sees_a_violation(tmp_path: Path) -> None:
    """The check can fail: a pure module importing a component is caught."""
    module = tmp_path / "bad.py"
    module.write_text("from components.serving.model_rollout import ModelRollout\nimport pulumi\n")
    assert _imports(module) & set(FORBIDDEN_IN_PURE) == {"components", "pulumi"}
