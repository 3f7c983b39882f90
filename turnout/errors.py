"""The one error type that configuration problems raise."""

from __future__ import annotations


class ConfigError(Exception):
    """A stack configuration value is invalid.

    `path` is the full key path (`turnout:endpoints.fraud-score.strategy.weight`), `found` what the
    stack file holds there and `allowed` what would be accepted, so that a user can fix the file
    from the message alone.
    """

    def __init__(self, path: str, found: str, allowed: str) -> None:
        self.path = path
        self.found = found
        self.allowed = allowed
        super().__init__(f"{path}: found {found}; allowed: {allowed}")


class NotSupportedError(ConfigError):
    """The value is valid for the contract, but this version of turnout cannot build it yet."""

    def __init__(self, path: str, found: str, supported: str) -> None:
        super().__init__(path, found, f"{supported} (not supported by this version of turnout yet)")


def describe(value: object) -> str:
    """How a found value is shown in an error message: short, typed and unambiguous."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        # The usual cause: YAML 1.1 reads unquoted on/off/yes/no/true/false as booleans.
        hint = "write it in quotes if you meant a string: YAML reads on/off/yes/no as booleans"
        return f"the boolean {str(value).lower()} ({hint})"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"the string {shown!r}"
    if isinstance(value, dict):
        keys = ", ".join(sorted(str(k) for k in value)[:6])
        return f"a mapping with keys [{keys}]" if value else "an empty mapping"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)" if value else "an empty list"
    return f"a {type(value).__name__}"
