"""Read configuration the way the Pulumi engine hands it to a program.

Used by the programs (`layers/config.py` hands them the engine's map) and by the offline preview
and tests, which have no engine and load `Pulumi.<stack>.yaml` themselves
(`engine_config_from_stack_file`). No Pulumi import here.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from settings.loader import load_settings
from settings.model import PlatformSettings
from settings.models import ModelsSettings, load_models_settings
from settings.problems import MODELS_PROJECT, PROJECT


def _engine_text(value: object) -> str:
    """The engine passes every config value as text: scalars as written, lists and maps as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def engine_config_from_stack_file(path: Path) -> tuple[dict[str, str], list[str]]:
    """`Pulumi.<stack>.yaml` → (namespaced config as the engine passes it, secret keys).

    Encrypted values (`secure: ...`) cannot be decrypted offline; they are passed through as a
    placeholder and listed as secret, so secret handling is exercised all the same.
    """
    document = yaml.safe_load(path.read_text()) or {}
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.append(key)
            config[key] = "offline-placeholder-secret"
        else:
            config[key] = _engine_text(value)
    return config, secret_keys


def project_values(config: dict[str, object], project: str = PROJECT) -> dict[str, object]:
    """The project's own keys, without the `project:` namespace."""
    prefix = project + ":"
    return {key[len(prefix) :]: value for key, value in config.items() if key.startswith(prefix)}


def settings_from_stack_file(path: Path) -> PlatformSettings:
    """The settings the program would read for `Pulumi.<stack>.yaml` (raises SettingsError)."""
    config, _ = engine_config_from_stack_file(path)
    return load_settings(project_values(dict(config)))


def models_settings_from_stack_file(path: Path) -> ModelsSettings:
    """The settings the models program would read for `models/Pulumi.<stack>.yaml` (raises SettingsError)."""
    config, _ = engine_config_from_stack_file(path)
    return load_models_settings(project_values(dict(config), MODELS_PROJECT))
