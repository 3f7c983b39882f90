"""Paths into JSON documents (`data.results`, `hits[0].id`), as turnout.strategies.parse_json_path accepts them."""

from __future__ import annotations

import re
from typing import Any

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)((?:\[[0-9]+\])*)")
_INDEX = re.compile(r"\[([0-9]+)\]")


def steps(path: str) -> tuple[str | int, ...]:
    """`data.results[0].id` -> ("data", "results", 0, "id")."""
    found: list[str | int] = []
    for part in path.split("."):
        match = _STEP.fullmatch(part)
        if match is None:
            raise ValueError(f"{path!r} is not a path")
        found.append(match[1])
        found.extend(int(i) for i in _INDEX.findall(match[2]))
    return tuple(found)


def get(document: Any, path: tuple[str | int, ...], missing: Any = None) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(document, list) or step >= len(document):
                return missing
        elif not isinstance(document, dict) or step not in document:
            return missing
        document = document[step]
    return document
