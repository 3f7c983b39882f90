"""Reading the stack's DR record (the `turnout-dr` ConfigMap every cluster of a DR stack carries)."""

from __future__ import annotations

import json
from typing import Any

from ._kubernetes import get_path, kind_of

RECORD_NAMESPACE = "turnout-system"
RECORD_NAME = "turnout-dr"
RECORD_KEY = "dr.json"
STANDBY_LABEL = "turnout.dev/dr-standby"


def dr_records(resources) -> list[tuple[Any, dict | None]]:
    """(resource, the parsed dr.json or None when unreadable) for every DR record in the stack."""
    found = []
    for r in resources:
        if kind_of(r.resource_type) != "ConfigMap":
            continue
        if (get_path(r.props, "metadata", "namespace"), get_path(r.props, "metadata", "name")) != (
            RECORD_NAMESPACE,
            RECORD_NAME,
        ):
            continue
        try:
            document = json.loads(get_path(r.props, "data", RECORD_KEY))
        except (TypeError, ValueError):
            document = None
        found.append((r, document if isinstance(document, dict) else None))
    return found
