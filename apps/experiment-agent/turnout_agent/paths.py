"""Paths into JSON documents, as the stack writes them (`items`, `data.results`, `hits[0].id`): the same grammar
turnout.strategies.parse_json_path accepts at plan time."""

from __future__ import annotations

import copy
from typing import Any

from turnout.experiments._paths import get as _get
from turnout.experiments._paths import steps

__all__ = ["MISSING", "get", "redacted", "render", "replaced", "steps"]

MISSING = object()
"""What `get` answers for a path the document does not have."""


def get(document: Any, path: tuple[str | int, ...]) -> Any:
    return _get(document, path, MISSING)


def replaced(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of `document` with `value` at `path` (which must exist); the rest shared, never modified."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    result = dict(document) if isinstance(document, dict) else list(document)
    result[head] = replaced(document[head], rest, value)
    return result


def redacted(document: Any, path: tuple[str | int, ...], mark: str) -> Any:
    """A deep copy of `document` with whatever is at `path` replaced by `mark` (unchanged when absent)."""
    if get(document, path) is MISSING:
        return document
    return replaced(copy.deepcopy(document), path, mark)


def render(path: tuple[str | int, ...]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text
