"""Waivers: one policy accepted on one resource, with a reason, until an expiry date.

Declared in the stack file (`turnout:waivers`). `turnout plan` shows waived findings in
summary.md and does not count them; under `pulumi preview`, `python policies/tier_config.py TIER
STACK_FILE` passes them as each policy's `waivers` setting and the pack drops the findings they cover.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

STACK = "stack"
"""The `resource` of a waiver for a stack rule's finding that names no resource."""

WAIVERS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "resource": {"type": "string"},
            "reason": {"type": "string"},
            "expires": {"type": "string"},
        },
        "required": ["resource", "reason", "expires"],
    },
}


def resource_name(urn: str) -> str:
    """The name a reader sees: the URN's last part (`STACK` for a finding with no resource)."""
    return urn.rsplit("::", 1)[-1] if urn else STACK


def covers(waiver: Mapping[str, Any], urn: str) -> bool:
    return waiver.get("resource") in (urn or STACK, resource_name(urn))


def in_force(waiver: Mapping[str, Any], today: datetime.date) -> bool:
    try:
        return datetime.date.fromisoformat(str(waiver.get("expires"))) >= today
    except ValueError:
        return False  # an unreadable date waives nothing


def find(
    waivers: Iterable[Mapping[str, Any]], urn: str, today: datetime.date
) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """(the waiver in force for `urn`, else None; an expired one that covered it, else None)."""
    expired = None
    for waiver in waivers:
        if covers(waiver, urn):
            if in_force(waiver, today):
                return waiver, None
            expired = waiver
    return None, expired
