"""The running stack's configuration, read once from the Pulumi runtime into typed settings."""

from __future__ import annotations

import pulumi

from layout.paths import MODELS_DIR
from settings.loader import load_settings
from settings.model import PlatformSettings
from settings.models import ModelsSettings, load_models_settings
from settings.problems import MODELS_PROJECT, Problem, SettingsError
from settings.stack_file import models_settings_from_stack_file, project_values


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


def managed_models(settings: PlatformSettings, stack: str) -> tuple[str, ...]:
    """The models the operator's workspace reads (`rollout.models` of `models/Pulumi.<stack>.yaml`), for
    the read-only registry user's grants; empty without the operator. Read before any resource is
    declared: a missing or bad models stack file raises SettingsError."""
    if not settings.pulumi_operator:
        return ()
    path = MODELS_DIR / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise SettingsError(
            [Problem("rollout", f"no models stack file models/{path.name}", "a models stack of the same name")]
        )
    return tuple(model.name for model in models_settings_from_stack_file(path).rollout.models)
