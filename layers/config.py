"""The running stack's configuration, read once from the Pulumi runtime into typed settings."""

from __future__ import annotations

import pulumi

from settings.loader import load_settings
from settings.model import PlatformSettings
from settings.models import ModelsSettings, load_models_settings
from settings.problems import MODELS_PROJECT
from settings.stack_file import project_values


def _runtime_config() -> dict[str, object]:
    """Every key of the running stack at once.

    `pulumi.Config` only answers for keys one asks about; to reject unknown keys (typos) the
    loader needs the whole map, which the language host stores in the runtime config.
    """
    merged: dict[str, object] = dict(pulumi.runtime.config.get_config_env())
    merged.update(pulumi.runtime.config.CONFIG.get())
    return merged


def platform_settings() -> PlatformSettings:
    """Settings of the running platform stack (`mlops-platform:` keys); raises SettingsError."""
    return load_settings(project_values(_runtime_config()))


def models_settings() -> ModelsSettings:
    """Settings of the running models stack (`mlops-models:` keys); raises SettingsError."""
    return load_models_settings(project_values(_runtime_config(), MODELS_PROJECT))
