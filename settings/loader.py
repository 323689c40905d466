"""Turn raw stack configuration into `PlatformSettings`, or one error naming every bad key.

Validation runs field by field (so one typo does not hide another) and then runs the cross-key
checks in `settings.combinations` on the keys that were themselves valid. Nothing here declares
a resource: the program calls `load_settings` before any component exists, so bad configuration
can never leave a half-declared stack.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from settings.combinations import COMBINATION_CHECKS, CombinationCheck
from settings.model import PlatformSettings
from settings.problems import PROJECT, Problem, SettingsError
from settings.restore import POSTGRES_RESTORE_NAMES, postgres_restore_problems, utc_now

Model = TypeVar("Model", bound=BaseModel)


def _wants_json(annotation: Any) -> bool:
    """Lists, dicts and nested models arrive from the Pulumi engine as JSON strings."""
    origin = get_origin(annotation)
    if origin in (list, dict, tuple):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_wants_json(a) for a in get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _location(key: str, loc: tuple[int | str, ...], raw: object) -> str:
    """`rollout.models[0] (fraud-detector).strategy`: list items that have a name are named."""
    path, node = key, raw
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                path += f" ({node['name']})"
        else:
            path += f".{part}"
            node = node.get(part) if isinstance(node, dict) else None
    return path


_REPHRASE = (
    ("Input should be ", ""),
    ("Value error, ", ""),
    ("String should have ", "a string with "),
    ("List should have ", "a list with "),
)


def _allowed(message: str) -> str:
    for prefix, replacement in _REPHRASE:
        if message.startswith(prefix):
            return replacement + message[len(prefix) :]
    return message


def _field_problems(key: str, description: str, error: ValidationError, raw: object) -> list[Problem]:
    """Pattern mismatches are explained by the field's description rather than by a regex."""
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        found = _show(item["input"]) if loc else _show(raw)
        if item["type"] == "missing":
            found = "nothing"
        elif item["type"] == "extra_forbidden":
            found = "an unknown key"
        top_level = all(isinstance(part, int) for part in loc)
        pattern = item["type"] == "string_pattern_mismatch"
        allowed = description if pattern and top_level else _allowed(item["msg"])
        problems.append(Problem(_location(key, loc, raw), found, allowed))
    return problems


_ADAPTERS: dict[tuple[type[BaseModel], str], TypeAdapter[Any]] = {}


def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    if (model, name) not in _ADAPTERS:
        field = model.model_fields[name]
        annotated: Any = typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        _ADAPTERS[(model, name)] = TypeAdapter(annotated)
    return _ADAPTERS[(model, name)]


def config_key(name: str, model: type[BaseModel] = PlatformSettings) -> str:
    """The stack-file key of a settings field (`postgres_sku_tier` → `postgresSkuTier`)."""
    alias = model.model_fields[name].alias
    return alias if alias is not None else name


def load_settings(raw: Mapping[str, object], now: datetime | None = None) -> PlatformSettings:
    """Validate `raw` (stack-file keys without the project namespace) into the platform's settings.

    Values may be typed (from YAML) or strings (as the Pulumi engine passes them: numbers,
    booleans and lists as text). Raises `SettingsError` naming every bad key. `now` is the instant
    a point-in-time restore is checked against (default: the clock).
    """
    instant = now or utc_now()
    restore = CombinationCheck(
        POSTGRES_RESTORE_NAMES, lambda values, key: postgres_restore_problems(values, key, instant)
    )
    return load_model(raw, PlatformSettings, (*COMBINATION_CHECKS, restore), PROJECT)


def load_model(
    raw: Mapping[str, object], model: type[Model], checks: Sequence[CombinationCheck], project: str
) -> Model:
    """Validate `raw` into `model` (the settings of one Pulumi project), or raise `SettingsError`."""

    def key_of(name: str) -> str:
        return config_key(name, model)

    names_by_key = {key_of(name): name for name in model.model_fields}
    problems: list[Problem] = []
    for key in raw:
        if key not in names_by_key:
            close = difflib.get_close_matches(key, names_by_key, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see the configuration reference in the README"
            problems.append(Problem(key, "an unknown key", f"one of the documented keys; {hint}"))

    valid: dict[str, Any] = {}
    for key, name in names_by_key.items():
        field = model.model_fields[name]
        if key not in raw:
            if field.is_required():
                problems.append(Problem(key, "nothing (the key is required)", field.description or "a value"))
            else:
                valid[name] = field.get_default(call_default_factory=True)
            continue
        value = raw[key]
        if isinstance(value, str) and _wants_json(field.annotation):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                problems.append(Problem(key, _show(value), "a list or object (JSON when set as a string)"))
                continue
        try:
            valid[name] = _adapter(model, name).validate_python(value)
        except ValidationError as error:
            problems.extend(_field_problems(key, field.description or "", error, value))

    for check in checks:
        if all(name in valid for name in check.names):
            problems.extend(check.run(valid, key_of))

    if problems:
        raise SettingsError([dataclasses.replace(problem, project=project) for problem in problems])
    return model.model_validate({key_of(name): value for name, value in valid.items()})
