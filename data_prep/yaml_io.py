"""YAML files mapped onto typed dataclasses, strictly.

A config file's sections mirror dataclasses (sdfkit's are in ``sdfkit/config.py``,
the sampling settings in ``data_prep/sampling.py``). Unknown keys and values
of the wrong type are rejected with the key's dotted name. YAML is read with
``yaml.safe_load`` (no object construction). Settings resolve as
CLI options > YAML > dataclass defaults.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, get_args, get_origin, get_type_hints

import yaml

from data_prep.errors import SdfkitError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise SdfkitError(f"config key '{key}' must be a section (mapping), got {type(value).__name__}")
        return from_dict(cast(type, tp), value, prefix=f"{key}.")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise SdfkitError(f"config key '{key}' must be one of {list(choices)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except SdfkitError as exc:
                errors.append(str(exc))
        raise SdfkitError(errors[0] if errors else f"config key '{key}' has an invalid value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise SdfkitError(f"config key '{key}' must be a list, got {value!r}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise SdfkitError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SdfkitError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SdfkitError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SdfkitError(f"config key '{key}' must be a string, got {value!r}")
        return value
    raise SdfkitError(f"config key '{key}' has an unsupported type {tp!r}")


def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys by name."""
    if not isinstance(data, dict):
        raise SdfkitError(f"config must be a mapping of keys to values, got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise SdfkitError(
            f"unknown config key '{prefix}{unknown[0]}' (known in this section: {', '.join(sorted(fields))})"
        )
    kwargs = {name: _coerce(value, hints[name], f"{prefix}{name}") for name, value in data.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> dict:
    """Plain-data dict of a config dataclass (for checkpoints, reports)."""
    return dataclasses.asdict(obj)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping safely; one-line errors for missing or malformed files."""
    path = Path(path)
    if not path.is_file():
        raise SdfkitError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = str(exc).strip().splitlines()[0]
        raise SdfkitError(f"cannot parse config {path}: {line}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SdfkitError(f"config {path} must be a mapping of keys to values")
    return data


def load_config(cls: type[T], path: str | Path) -> T:
    """Load ``path`` (YAML) onto dataclass ``cls``."""
    return from_dict(cls, load_yaml(path))


def override(obj: T, **changes: Any) -> T:
    """Copy of config ``obj`` with the non-``None`` ``changes`` applied (CLI > YAML)."""
    return dataclasses.replace(obj, **{k: v for k, v in changes.items() if v is not None})
