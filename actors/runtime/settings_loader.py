"""Typed loading of nested settings from plain mappings (parsed YAML).

Settings are frozen dataclasses; `load_settings` walks a mapping against a dataclass's type
hints and builds it, refusing unknown keys and wrong types with an error that names the full
dotted key (`supervisor.max_restarts: expected an integer, got 'five'`). A section's own
range checks live on its dataclass (`__post_init__`, raising a `ServiceFieldError` that names
the setting); the loader only prefixes the section's dotted key. Money-like values
are `Decimal`: a YAML float is taken through its shortest text form, never as binary float.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from messages.errors import ConfigError, ServiceFieldError

__all__ = ["ConfigError", "load_settings"]

T = TypeVar("T")


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(value: object, hint: Any, key: str) -> Any:
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise ConfigError(key, "must not be empty")
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key)
            except ConfigError as exc:
                errors.append(exc.problem)
        raise ConfigError(key, " or ".join(errors))
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(key, f"expected one of {choices}, got {_describe(value)}")
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"expected a section (mapping), got {_describe(value)}")
        return load_settings(hint, value, prefix=key)
    if origin in (list, tuple) or hint in (list, tuple):
        args = get_args(hint)
        item_hint = args[0] if args else Any
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"expected a list, got {_describe(value)}")
        items = [_convert(v, item_hint, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items)
    if origin in (dict, Mapping) or hint in (dict, Mapping) or origin is typing.Mapping:
        args = get_args(hint)
        key_hint, value_hint = args if args else (str, Any)
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"expected a mapping, got {_describe(value)}")
        out = {}
        for k, v in value.items():
            out[_convert(k, key_hint, key)] = _convert(v, value_hint, f"{key}.{k}")
        return types.MappingProxyType(out)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"expected a number, got {_describe(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {_describe(value)}")
        return value
    if hint is Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(key, f"expected a decimal number, got {_describe(value)}")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(key, f"expected a decimal number, got {_describe(value)}") from None
        if not number.is_finite():
            raise ConfigError(key, f"expected a finite decimal number, got {_describe(value)}")
        return number
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(key, f"expected a path, got {_describe(value)}")
        return Path(value)
    raise ConfigError(key, f"unsupported setting type {hint!r}")


def load_settings(cls: type[T], data: Mapping[str, Any] | None, *, prefix: str = "") -> T:
    """Build the settings dataclass `cls` from `data`, validating every key.

    Keys absent from `data` take the dataclass default; a key without a default is required.
    """
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(prefix, f"expected a section (mapping), got {_describe(data)}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name in data:
        if name not in fields:
            where = f"{prefix}.{name}" if prefix else str(name)
            known = ", ".join(sorted(fields))
            raise ConfigError(where, f"unknown setting (known here: {known})")
    kwargs = {}
    for name, field in fields.items():
        where = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], where)
        elif (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING  # type: ignore[misc]
        ):
            raise ConfigError(where, "required setting is missing")
    try:
        return cls(**kwargs)
    except ServiceFieldError as exc:  # a section's own check (__post_init__) names the setting
        raise ConfigError(f"{prefix}.{exc.field}" if prefix else exc.field, exc.problem) from None
    except (ValueError, TypeError) as exc:  # a check that names no setting: the section's key
        raise ConfigError(prefix, str(exc)) from None
