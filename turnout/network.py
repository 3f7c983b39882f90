"""Address space: one private /16 per region, so that regions (and blue/green cells with their own
`addressSpace`) can be peered and failover never sends clients into an unreachable network.

Each cloud component carves its subnets from its region's /16 (see `components/cluster/*`); this
module only decides which /16 a region gets, and checks what the user wrote.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from turnout.errors import ConfigError, describe

REGION_PREFIX = 16
"""Every region's network is a /16: the cloud components' subnet layouts are written for that size."""
DEFAULT_ADDRESS_SPACE = "10.0.0.0/12"
"""Sixteen /16s (10.0.0.0 to 10.15.255.255): room for every region of a stack."""
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
ADDRESS_SPACE_ALLOWED = "a private IPv4 CIDR (inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16) of /16 or larger"


def parse_cidr(value: object, path: str, *, allowed: str = ADDRESS_SPACE_ALLOWED) -> ipaddress.IPv4Network:
    """A private IPv4 network written with its host bits clear (10.16.0.0/12, not 10.17.0.0/12)."""
    if not isinstance(value, str):
        raise ConfigError(path, describe(value), allowed)
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        found = describe(value) + (f" ({err})" if "host bits" in str(err) else "")
        raise ConfigError(path, found, allowed) from None
    if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
        raise ConfigError(path, f"{describe(value)}, not a private range", allowed)
    return network


def address_space(value: object, path: str) -> str:
    network = parse_cidr(value, path)
    if network.prefixlen > REGION_PREFIX:
        raise ConfigError(path, f"{describe(value)}, smaller than one region's /{REGION_PREFIX}", ADDRESS_SPACE_ALLOWED)
    return str(network)


def region_network(value: object, path: str) -> str:
    allowed = f"a private IPv4 /{REGION_PREFIX} such as 10.20.0.0/16"
    network = parse_cidr(value, path, allowed=allowed)
    if network.prefixlen != REGION_PREFIX:
        raise ConfigError(path, f"{describe(value)}, a /{network.prefixlen}", allowed)
    return str(network)


def region_cidrs(
    regions: tuple[str, ...], space: str, explicit: Mapping[str, str], *, space_path: str, networks_path: str
) -> dict[str, str]:
    """Each region's /16: the one written under `networks`, else the next free /16 of `space`, in
    region order. Raises ConfigError when they overlap or `space` runs out."""
    unknown = sorted(set(explicit) - set(regions))
    if unknown:
        raise ConfigError(
            f"{networks_path}.{unknown[0]}", "a region the stack does not list", "one of " + ", ".join(regions)
        )
    taken = {region: ipaddress.IPv4Network(cidr) for region, cidr in explicit.items()}
    for (first, a), (second, b) in _pairs(taken):
        if a.overlaps(b):
            raise ConfigError(f"{networks_path}.{second}", f"{b}, which overlaps {first}'s {a}", "distinct networks")
    free = (
        candidate
        for candidate in ipaddress.IPv4Network(space).subnets(new_prefix=REGION_PREFIX)
        if not any(candidate.overlaps(used) for used in taken.values())
    )
    result = {}
    for region in regions:
        if region in taken:
            result[region] = str(taken[region])
            continue
        network = next(free, None)
        if network is None:
            needed = sum(1 for r in regions if r not in taken)
            raise ConfigError(
                space_path,
                f"{space}, too small for {needed} region(s) beside the networks written under {networks_path}",
                f"an address space with a free /{REGION_PREFIX} per region",
            )
        result[region] = str(network)
    return result


def _pairs(items: Mapping[str, ipaddress.IPv4Network]):
    entries = list(items.items())
    for index, first in enumerate(entries):
        for second in entries[index + 1 :]:
            yield first, second


def overlapping(networks: Mapping[str, str]) -> list[tuple[str, str]]:
    """Pairs of names whose networks overlap (cells of a global stack, say)."""
    parsed = {name: ipaddress.IPv4Network(cidr) for name, cidr in networks.items()}
    return [(a_name, b_name) for (a_name, a), (b_name, b) in _pairs(parsed) if a.overlaps(b)]
