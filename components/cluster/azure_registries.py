"""The Azure Container Registries a stack's images come from, and where each one lives.

An image reference names a registry only by its login server (`acmemodels.azurecr.io`); granting the
cluster's kubelet identity `AcrPull` needs the registry's resource id, which may be in another resource
group or subscription. turnout does not guess it: `turnout:platform.registries` maps each login server to
its resource id, and a stack whose images come from an Azure registry it does not list is refused before
anything is created (`check_registries`). Pure functions: no Pulumi, no network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from turnout.config import Endpoint, Platform, key_path
from turnout.errors import ConfigError, describe

REGISTRIES_KEY = "platform.registries"
# A login server: the registry's name (5-50 letters and digits), optionally a domain-name-label hash after a
# hyphen, in the public, China or US Government cloud.
LOGIN_SERVER = re.compile(r"(?P<name>[a-z0-9]{5,50})(-[a-z0-9]+)?\.azurecr\.(io|cn|us)")
REGISTRY_ID = re.compile(
    r"/subscriptions/(?P<subscription>[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.ContainerRegistry/registries/(?P<name>[A-Za-z0-9]{5,50})",
    re.IGNORECASE,
)
REGISTRY_ID_EXAMPLE = (
    "/subscriptions/SUBSCRIPTION-ID/resourceGroups/GROUP/providers/Microsoft.ContainerRegistry/registries/NAME"
)


def image_host(image: str) -> str | None:
    """The registry host of an image reference, or None for Docker Hub's short names (`nginx:1.27`)."""
    first, _, rest = image.partition("/")
    return first.lower() if rest and ("." in first or ":" in first or first == "localhost") else None


def is_azure_registry(host: str | None) -> bool:
    return host is not None and LOGIN_SERVER.fullmatch(host) is not None


def registry_subscription(registry_id: str) -> str:
    match = REGISTRY_ID.fullmatch(registry_id)
    if match is None:
        raise ValueError(f"not a container registry resource id: {registry_id!r}")
    return match.group("subscription")


def check_registries(platform: Platform, endpoints: Mapping[str, Endpoint]) -> tuple[str, ...]:
    """The resource ids of the registries the clusters pull from (each gets AcrPull for the kubelet identity), or
    one ConfigError naming the key: an Azure registry an image comes from but the stack file does not locate, a
    login server or resource id that is not one, or registries on another cloud."""
    registries = platform.registries
    if registries and platform.cloud != "azure":
        raise ConfigError(
            key_path(REGISTRIES_KEY),
            f"{len(registries)} registr{'y' if len(registries) == 1 else 'ies'} with cloud {platform.cloud}",
            "no registries outside azure: they locate Azure Container Registries for AcrPull",
        )
    for host, registry_id in registries.items():
        path = key_path(f"{REGISTRIES_KEY}.{host}")
        server = LOGIN_SERVER.fullmatch(host.lower())
        if server is None:
            raise ConfigError(path, describe(host), "a registry's login server such as acmemodels.azurecr.io")
        match = REGISTRY_ID.fullmatch(registry_id)
        if match is None:
            raise ConfigError(path, describe(registry_id), f"the registry's resource id, {REGISTRY_ID_EXAMPLE}")
        if match.group("name").lower() != server.group("name"):
            raise ConfigError(
                path,
                f"{registry_id!r}, registry {match.group('name')!r} for login server {host!r}",
                f"the resource id of registry {server.group('name')!r}",
            )
    if platform.cloud != "azure":
        return ()
    listed = {host.lower() for host in registries}
    for name, endpoint in endpoints.items():
        for version, model in endpoint.versions.items():
            host = image_host(model.image)
            if is_azure_registry(host) and host not in listed:
                raise ConfigError(
                    key_path(f"endpoints.{name}.versions.{version}.image"),
                    f"{model.image!r}, from Azure Container Registry {host} that {key_path(REGISTRIES_KEY)} does "
                    "not list",
                    f"its registry under {key_path(REGISTRIES_KEY)} as `{host}: {REGISTRY_ID_EXAMPLE}`, so the "
                    "nodes' kubelet identity gets AcrPull on it",
                )
    return tuple(registries[host] for host in sorted(registries))
