"""Typed configuration from annotated dataclasses: one declaration drives parsing and the docs.

A config class is a frozen, keyword-only dataclass whose fields are declared with `setting(...)`.
`parse_object` turns a decoded stack value into an instance, raising one `ConfigError` that names
the key path; `reference_rows` walks the same classes to generate the README's config reference.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from turnout.errors import ConfigError, describe

Parser = Callable[[Any, str], Any]


def setting(
    doc: str,
    default: Any = MISSING,
    *,
    key: str | None = None,
    parse: Parser | None = None,
    values: Parser | None = None,
    keys: Parser | None = None,
    allowed: str | None = None,
    default_doc: str | None = None,
    min_items: int = 0,
    bounds: tuple[int, int] | None = None,
) -> Any:
    """Declare a config field.

    doc: one sentence for the reference. key: the stack-file name (default: camelCase of the
    attribute). parse: a parser for the whole value; values/keys: parsers for a mapping's values
    and keys. allowed: how the accepted values are described. default_doc: how the default is
    described when it is derived rather than fixed. bounds: inclusive range for integers.
    """
    metadata = {
        "doc": doc,
        "key": key,
        "parse": parse,
        "values": values,
        "keys": keys,
        "allowed": allowed,
        "default_doc": default_doc,
        "min_items": min_items,
        "bounds": bounds,
    }
    if default is MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def yaml_key(field: dataclasses.Field) -> str:
    explicit = field.metadata.get("key")
    if explicit:
        return explicit
    head, *rest = field.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def config_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def is_required(field: dataclasses.Field) -> bool:
    return field.default is MISSING and field.default_factory is MISSING


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls, include_extras=False)


def parse_object(cls: type, value: Any, path: str, *, ignore: tuple[str, ...] = (), base: Any = None) -> Any:
    """Build `cls` from a decoded mapping; unknown keys and missing required keys are errors.

    With `base` (the field's default instance), keys the mapping leaves out keep the base's values,
    so `istio: {version: "1.29.0"}` overrides the version and keeps the default repository.
    """
    fields = {yaml_key(f): f for f in config_fields(cls)}
    if not isinstance(value, dict):
        raise ConfigError(path, describe(value), f"a mapping with keys {_key_list(fields)}")
    for key in value:
        if key not in fields and key not in ignore:
            raise ConfigError(f"{path}.{key}", "an unknown key", f"one of {_key_list(fields)}")
    hints = _hints(cls)
    kwargs = {}
    for key, field in fields.items():
        sub = f"{path}.{key}"
        nested_base = getattr(base, field.name) if base is not None else None
        if nested_base is None and dataclasses.is_dataclass(field.default):
            nested_base = field.default
        if value.get(key) is None:
            if base is not None:
                kwargs[field.name] = getattr(base, field.name)
                continue
            if is_required(field):
                raise ConfigError(
                    sub, "nothing", f"a required value: {describe_type(hints[field.name], field.metadata)}"
                )
            continue
        kwargs[field.name] = parse_value(hints[field.name], value[key], sub, field.metadata, nested_base)
    return cls(**kwargs)


def parse_value(tp: Any, value: Any, path: str, meta: typing.Mapping[str, Any], base: Any = None) -> Any:
    if meta.get("parse"):
        return meta["parse"](value, path)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        (inner,) = [arg for arg in get_args(tp) if arg is not type(None)]
        return parse_value(inner, value, path, meta, base)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(path, describe(value), describe_type(tp, meta))
        return value
    if tp is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(path, describe(value), meta.get("allowed") or "a non-empty string")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, describe(value), "true or false")
        return value
    if tp is int:
        low, high = meta.get("bounds") or (None, None)
        if isinstance(value, bool) or not isinstance(value, int) or (low is not None and not low <= value <= high):
            raise ConfigError(path, describe(value), describe_type(tp, meta))
        return value
    if origin is tuple:
        if not isinstance(value, list) or len(value) < meta.get("min_items", 0):
            raise ConfigError(path, describe(value), describe_type(tp, meta))
        item_type = get_args(tp)[0]
        item_meta = {"parse": meta.get("values")}
        return tuple(parse_value(item_type, item, f"{path}[{i}]", item_meta) for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or len(value) < meta.get("min_items", 0):
            raise ConfigError(path, describe(value), describe_type(tp, meta))
        value_type = get_args(tp)[1]
        check_key = meta.get("keys")
        parsed = {}
        for key, item in value.items():
            if check_key:
                check_key(key, f"{path}.{key}")
            parsed[key] = parse_value(value_type, item, f"{path}.{key}", {"parse": meta.get("values")})
        return parsed
    if dataclasses.is_dataclass(tp):
        return parse_object(tp, value, path, base=base)
    raise TypeError(f"no parser for {tp!r} at {path}")  # a schema bug, not bad input


def describe_type(tp: Any, meta: typing.Mapping[str, Any] | None = None) -> str:
    """The 'allowed' text for a field, also used as the reference's type column."""
    meta = meta or {}
    if meta.get("allowed"):
        return meta["allowed"]
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        (inner,) = [arg for arg in get_args(tp) if arg is not type(None)]
        return describe_type(inner, meta)
    if origin is Literal:
        return "one of " + ", ".join(str(arg) for arg in get_args(tp))
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if tp is int:
        bounds = meta.get("bounds")
        return f"an integer from {bounds[0]} to {bounds[1]}" if bounds else "an integer"
    if origin is tuple:
        least = meta.get("min_items", 0)
        return f"a list of {_plural(get_args(tp)[0])}" + (f" (at least {least})" if least else "")
    if origin is dict:
        least = meta.get("min_items", 0)
        return "a mapping of name to " + describe_type(get_args(tp)[1]) + (f" (at least {least})" if least else "")
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _plural(tp: Any) -> str:
    if tp is str:
        return "strings"
    if dataclasses.is_dataclass(tp):
        return "mappings"
    return describe_type(tp)


def _key_list(fields: typing.Mapping[str, Any]) -> str:
    return "[" + ", ".join(fields) + "]"


@dataclasses.dataclass(frozen=True)
class ReferenceRow:
    key: str
    allowed: str
    default: str
    doc: str


def reference_rows(cls: type, prefix: str, base: Any = None) -> list[ReferenceRow]:
    """Rows of the config reference for `cls` and its nested config classes, depth first.

    `base` is the default instance the fields inherit from (as `parse_object` merges them).
    """
    rows: list[ReferenceRow] = []
    hints = _hints(cls)
    for field in config_fields(cls):
        tp = hints[field.name]
        key = f"{prefix}.{yaml_key(field)}" if not prefix.endswith(":") else prefix + yaml_key(field)
        inherited = getattr(base, field.name) if base is not None else MISSING
        if field.metadata.get("default_doc") or inherited is MISSING or dataclasses.is_dataclass(inherited):
            default = _default_text(field)
        else:
            default = _value_text(inherited)
        rows.append(ReferenceRow(key, describe_type(tp, field.metadata), default, field.metadata["doc"]))
        nested_base = (
            inherited
            if dataclasses.is_dataclass(inherited)
            else (field.default if dataclasses.is_dataclass(field.default) else None)
        )
        nested = _nested_config_class(tp)
        if nested is not None:
            item = (
                ".NAME"
                if get_origin(_strip_optional(tp)) is dict
                else ("[]" if get_origin(_strip_optional(tp)) is tuple else "")
            )
            rows.extend(reference_rows(nested, key + item, nested_base if not item else None))
    return rows


def _strip_optional(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        non_none = [arg for arg in get_args(tp) if arg is not type(None)]
        if len(non_none) == 1:
            return non_none[0]
    return tp


def _nested_config_class(tp: Any) -> type | None:
    tp = _strip_optional(tp)
    origin = get_origin(tp)
    if origin is dict:
        tp = get_args(tp)[1]
    elif origin is tuple:
        tp = get_args(tp)[0]
    return tp if dataclasses.is_dataclass(tp) else None


def _default_text(field: dataclasses.Field) -> str:
    if field.metadata.get("default_doc"):
        return field.metadata["default_doc"]
    if is_required(field):
        return "required"
    return _value_text(field.default if field.default is not MISSING else field.default_factory())


def _value_text(default: Any) -> str:
    if default is None:
        return "absent"
    if isinstance(default, str):
        return f'"{default}"'
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, (dict, tuple, list)) and not default:
        return "empty"
    if dataclasses.is_dataclass(default):
        return "see its keys"
    return re.sub(r"\s+", " ", str(default))
