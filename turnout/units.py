"""Durations, percentages and Kubernetes-style quantities as the stack file writes them."""

from __future__ import annotations

import math
import re
from decimal import Decimal

from turnout.errors import ConfigError, describe

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Ten years: any longer is no target at all, and every duration stays an exact integer wherever it
# travels (Pulumi's wire format carries numbers as doubles, exact only up to 2**53).
MAX_DURATION_S = 3650 * 86400
DURATION_ALLOWED = 'a whole number of seconds or a string with a unit: "90s", "5m", "1h", "1d" (at most 3650d)'
INT32_MAX = 2**31 - 1  # Kubernetes IntOrString fields are int32

_QUANTITY = re.compile(r"^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_HTTP_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_COOKIE_NAME = _HTTP_HEADER


def parse_duration(value: object, path: str) -> int:
    """Seconds from `90`, `"90s"`, `"5m"`, `"1h"` or `"1d"`."""
    if isinstance(value, bool):
        raise ConfigError(path, describe(value), DURATION_ALLOWED)
    seconds = None
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(path, describe(value), DURATION_ALLOWED + " (not negative)")
        seconds = value
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds is None or seconds > MAX_DURATION_S:
        raise ConfigError(path, describe(value), DURATION_ALLOWED)
    return seconds


def parse_percent(value: object, path: str, low: int = 0, high: int = 100) -> int:
    """An integer percentage within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(path, describe(value), f"an integer from {low} to {high}")
    return value


def parse_int_or_percent(value: object, path: str) -> int | str:
    """A Kubernetes IntOrString for rollouts: a non-negative integer or `"N%"` with N in 0–100."""
    allowed = f'a non-negative integer (at most {INT32_MAX}) or a percentage string such as "25%"'
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT32_MAX:
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,3}%", value) and int(value[:-1]) <= 100:
        return value
    raise ConfigError(path, describe(value), allowed)


def parse_quantity(value: object, path: str) -> str:
    """A Kubernetes resource quantity (`500m`, `1Gi`, `2`); numbers are taken as written, digit for digit."""
    allowed = 'a Kubernetes quantity such as "500m", "2", "1Gi" or "512Mi"'
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value > 0:
        # repr is the shortest text that reads back as this float: the digits the stack file holds
        # (and the JSON the Pulumi CLI hands over); fixed-point, because quantities have no `e+08`.
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, str) and _QUANTITY.match(value) and float(re.sub(r"[^\d.]", "", value) or 0) > 0:
        return value
    raise ConfigError(path, describe(value), allowed)


def check_dns_label(value: str, path: str, what: str) -> str:
    """Names that become Kubernetes object names must be DNS-1123 labels."""
    if not (isinstance(value, str) and len(value) <= 40 and _DNS_LABEL.match(value)):
        raise ConfigError(
            path,
            describe(value),
            f"a {what} of lowercase letters, digits and '-', starting and ending with a letter "
            "or digit, at most 40 characters",
        )
    return value


def check_header_name(value: str, path: str) -> str:
    if not (isinstance(value, str) and _HTTP_HEADER.match(value)):
        raise ConfigError(path, describe(value), "an HTTP header name such as x-turnout-preview")
    return value.lower()


def check_cookie_name(value: str, path: str) -> str:
    if not (isinstance(value, str) and _COOKIE_NAME.match(value)):
        raise ConfigError(path, describe(value), "a cookie name of letters, digits, '-' and '_'")
    return value


def format_duration(seconds: int) -> str:
    """The shortest exact unit form of a number of seconds (for summaries)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
