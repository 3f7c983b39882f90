"""The project and its stack files, read the way the Pulumi CLI reads them."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from turnout.config import NAMESPACE, TOP_LEVEL_KEYS, key_path
from turnout.errors import ConfigError

OFFLINE_SECRET = "offline-placeholder-secret"


class UsageError(Exception):
    """Bad command-line use: unknown stack, missing project, conflicting flags."""


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    stack_dir: Path
    main: str

    def stacks(self) -> list[str]:
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in self.stack_dir.glob("Pulumi.*.yaml"))

    def stack_file(self, stack: str) -> Path:
        return self.stack_dir / f"Pulumi.{stack}.yaml"


def find_project(start: Path) -> Project:
    """The nearest Pulumi.yaml at or above `start`."""
    for directory in (start, *start.parents):
        candidate = directory / "Pulumi.yaml"
        if candidate.is_file():
            data = yaml.safe_load(candidate.read_text()) or {}
            stack_dir = directory / str(data.get("stackConfigDir") or ".")
            main = str(data.get("main") or ".").strip("/") or "."
            return Project(directory, str(data.get("name", NAMESPACE)), stack_dir, main)
    raise UsageError(f"no Pulumi.yaml in {start} or any folder above it; run turnout inside the project")


@dataclass(frozen=True)
class StackSettings:
    """Config exactly as the Pulumi CLI hands it to a program: namespaced key → string."""

    config: dict[str, str]
    secret_keys: list[str]


def read_stack(project: Project, stack: str) -> StackSettings:
    path = project.stack_file(stack)
    if not path.is_file():
        available = ", ".join(project.stacks()) or "none"
        raise UsageError(f"no stack {stack!r}: {path.relative_to(project.root)} does not exist; stacks: {available}")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"{path.name}{where}", "text that is not valid YAML", "a YAML document with a `config:` mapping"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(path.name, "a document that is not a mapping", "a YAML mapping with a `config:` key")
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: config", "something that is not a mapping", "a mapping of namespaced keys")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        full_key = str(key) if ":" in str(key) else f"{project.name}:{key}"
        namespace, _, name = full_key.partition(":")
        if namespace == NAMESPACE and name not in TOP_LEVEL_KEYS:
            raise ConfigError(full_key, "an unknown key", "one of " + ", ".join(key_path(k) for k in TOP_LEVEL_KEYS))
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Encrypted with the stack's secrets provider, which an offline plan cannot reach.
            config[full_key] = OFFLINE_SECRET
            secret_keys.append(full_key)
            continue
        config[full_key] = _as_cli_string(value)
    return StackSettings(config, secret_keys)


def _as_cli_string(value: Any) -> str:
    """Scalars as the CLI prints them; objects and lists JSON-encoded (what `pulumi.Config` decodes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_yaml_scalar)
    if value is None:
        return ""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)


def _yaml_scalar(value: Any) -> Any:
    """YAML reads unquoted dates (2027-01-31) as dates; the config carries them as written."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a config value")
