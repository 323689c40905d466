"""Typed, validated stack settings: read once, before any resource is declared."""

from settings.loader import config_key, load_settings
from settings.model import PlatformSettings
from settings.problems import PROJECT, Problem, SettingsError

__all__ = ["PROJECT", "PlatformSettings", "Problem", "SettingsError", "config_key", "load_settings"]
