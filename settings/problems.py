"""The error the program raises on bad stack configuration, before any resource is declared."""

from __future__ import annotations

from dataclasses import dataclass

PROJECT = "mlops-platform"
MODELS_PROJECT = "mlops-models"


@dataclass(frozen=True)
class Problem:
    """One bad key: what was found there and what would have been accepted."""

    key: str
    found: str
    allowed: str
    project: str = PROJECT
    """The Pulumi project whose config namespace the key belongs to (`mlops-platform`, `mlops-models`)."""

    def render(self) -> str:
        return f"{self.project}:{self.key}: found {self.found}; allowed: {self.allowed}"


class SettingsError(ValueError):
    """The stack configuration is invalid; `problems` lists every bad key."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.key)
        lines = [p.render() for p in self.problems]
        super().__init__(
            f"invalid stack configuration ({len(lines)} problem{'s' if len(lines) != 1 else ''}):\n  - "
            + "\n  - ".join(lines)
        )

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.problems]
