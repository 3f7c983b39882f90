"""Strict validation of Kubernetes custom resources against their upstream CRD schemas.

A custom resource can be valid JSON Schema-wise and still not mean what it says: an API server silently prunes every
field its structural schema does not declare (a misspelled `wieght` just disappears) and drops nulls written to
non-nullable fields. `validate_custom_resource` reports those as problems alongside ordinary schema violations.

Not covered: CEL rules (`x-kubernetes-validations`), defaulting, `metadata` (ObjectMeta) and `status`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator, ValidationError

# The C loader parses the ~1 MB Istio bundle several times faster than the pure-Python one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Top-level fields that are not validated against the CRD's schema.
_NOT_VALIDATED = frozenset({"apiVersion", "kind", "metadata", "status"})

_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_SCHEMA_KEYS = ("items", "additionalProperties", "not")
_SCHEMA_LIST_KEYS = ("allOf", "anyOf", "oneOf")
_SIMPLE_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_MAX_MESSAGE = 300


def load_crds(folder: Path) -> dict[tuple[str, str], dict]:
    """Map (apiVersion "group/version", kind) to that version's openAPIV3Schema, for every served version of every
    CRD in the folder's *.yaml files. The result is cached and shared between callers: do not mutate it."""
    return _load_crds(str(Path(folder).resolve()))


@functools.cache  # lru_cache without a size limit
def _load_crds(folder: str) -> dict[tuple[str, str], dict]:
    schemas: dict[tuple[str, str], dict] = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        with path.open(encoding="utf-8") as stream:
            documents = list(yaml.load_all(stream, Loader=_YAML_LOADER))
        for doc in documents:
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                if key in schemas:
                    raise ValueError(f"{path}: {key[0]} {key[1]} is defined more than once in {folder}")
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate_custom_resource(obj: dict, crds: Mapping[tuple[str, str], dict]) -> list[str]:
    """Problems with a custom resource, as "<dotted.path>: <message>"; an empty list means valid.

    Reports an apiVersion/kind no CRD serves, every field an API server would prune, and every violation of the
    version's OpenAPI v3 schema (checked on the object as stored, that is after pruning)."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    schema = crds.get((api_version, kind))
    if schema is None:
        served = sorted(version for version, known_kind in crds if known_kind == kind)
        if served:
            return [f"apiVersion: {api_version!r} does not serve kind {kind!r} (served: {', '.join(served)})"]
        return [f"kind: no CRD defines kind {kind!r} (apiVersion {api_version!r})"]

    problems: list[str] = []
    body = {key: value for key, value in obj.items() if key not in _NOT_VALIDATED}
    stored = _prune(body, _root_schema(schema), (), problems)
    validator = _validator(schema)
    for error in sorted(validator.iter_errors(stored), key=lambda e: _format_path(e.absolute_path)):
        problems.append(f"{_format_path(error.absolute_path)}: {_message(error)}")
    return problems


def _message(error: ValidationError) -> str:
    message = error.message
    if isinstance(error.instance, dict | list):
        # The path already names the value; a repr of a whole object would drown the message.
        message = message.replace(repr(error.instance), "object" if isinstance(error.instance, dict) else "array", 1)
    if error.validator in _SCHEMA_LIST_KEYS and message.endswith("is not valid under any of the given schemas"):
        message += f": {error.validator_value!r}"
    return message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "..."


def _root_schema(schema: dict) -> dict:
    """The CRD's root schema without the fields that are not validated (some CRDs declare metadata, some do not)."""
    properties = {k: v for k, v in schema.get("properties", {}).items() if k not in _NOT_VALIDATED}
    return {**schema, "properties": properties}


def _prune(value: Any, schema: dict | None, path: tuple, problems: list[str], preserve: bool = False) -> Any:
    """Return `value` as an API server would store it, recording each field it drops in `problems`.

    Mirrors k8s.io/apiextensions-apiserver's structural pruning: an object keeps a field when the field is declared
    in `properties`, when the object is a map (`additionalProperties`), or when the object preserves unknown fields;
    anything else is dropped with everything beneath it. Logical junctors (allOf/anyOf/oneOf/not) play no part:
    structural schemas must declare every field they mention in `properties` too. `preserve` carries an array's
    x-kubernetes-preserve-unknown-fields to its items, as the API server does."""
    if isinstance(value, list):
        items = schema.get("items") if schema else None
        keep_unknown = bool(schema and schema.get(_PRESERVE))
        return [_prune(item, items, (*path, i), problems, keep_unknown) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value

    schema = schema or {}
    properties = schema.get("properties", {})
    additional = schema.get("additionalProperties")
    preserve = preserve or schema.get(_PRESERVE) is True
    kept = {}
    for key, child in value.items():
        child_path = (*path, key)
        if key in properties:
            child_schema = properties[key]
        elif isinstance(additional, dict):
            child_schema = additional
        elif preserve:
            kept[key] = child  # kept as is: nothing beneath an undeclared field is pruned
            continue
        else:
            problems.append(f"{_format_path(child_path)}: unknown field (would be pruned)")
            continue
        # The API server drops nulls in non-nullable fields before validating; a default would replace the null.
        if child is None and not child_schema.get("nullable"):
            if "default" not in child_schema:
                problems.append(f"{_format_path(child_path)}: null in a non-nullable field (would be pruned)")
            continue
        kept[key] = _prune(child, child_schema, child_path, problems)
    return kept


_validators: dict[int, tuple[dict, Draft7Validator]] = {}


def _validator(schema: dict) -> Draft7Validator:
    # Keyed by identity: the schemas come from the cached load_crds and converting the Istio ones takes a while.
    # The entry keeps the schema alive, so its id cannot be reused by another object.
    entry = _validators.get(id(schema))
    if entry is None or entry[0] is not schema:
        converted = _to_json_schema(_root_schema(schema))
        Draft7Validator.check_schema(converted)
        entry = _validators[id(schema)] = (schema, Draft7Validator(converted))
    return entry[1]


def _to_json_schema(node: Any) -> Any:
    """Convert an OpenAPI v3 (Kubernetes structural) schema node into Draft 7 JSON Schema."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "description"):
            continue
        if key == "properties":
            out[key] = {name: _to_json_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_KEYS:
            out[key] = _to_json_schema(value)
        elif key in _SCHEMA_LIST_KEYS:
            out[key] = [_to_json_schema(sub) for sub in value]
        else:
            # Literal keywords (type, enum, required, default, pattern, format...). No format checker is configured:
            # int32, int64 and double are annotations (Kubernetes ignores them too); date-time or byte go unchecked.
            out[key] = value

    # OpenAPI 3.0 writes exclusive bounds as booleans next to minimum/maximum (Draft 4 style).
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(out.get(exclusive), bool) and out.pop(exclusive) and bound in out:
            out[exclusive] = out.pop(bound)

    if node.get("x-kubernetes-int-or-string") is True:
        out["type"] = ["integer", "string"]
        if out.get("anyOf") == [{"type": "integer"}, {"type": "string"}]:
            del out["anyOf"]  # the usual spelling of the same rule; dropped to report one error, not two
    if node.get("nullable") is True:
        # Junctors such as `not: {anyOf: [{required: [...]}]}` would reject null: apply them to other values only.
        junctors = {key: out.pop(key) for key in (*_SCHEMA_LIST_KEYS, "not") if key in out}
        if junctors:
            out["if"], out["else"] = {"type": "null"}, junctors
        if "type" in out:
            out["type"] = [*_as_list(out["type"]), "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list) else [value]


def _format_path(path: Iterable[str | int]) -> str:
    """("spec", "http", 0, "route") -> "spec.http[0].route"; keys that are not identifiers are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _SIMPLE_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text or "<root>"
