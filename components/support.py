"""What this version of turnout can build, checked before the program creates anything.

The contract's config accepts more than the components build so far; a stack that asks for a
feature not built yet fails here, naming the key, instead of half-way through `pulumi up`.
"""

from __future__ import annotations

from components.cluster.fleet import check_cloud
from components.dr.failover import check_failover
from components.endpoint.model_endpoint import check_renderable
from turnout.config import StackConfig, key_path
from turnout.dr import assess, check_achievable
from turnout.errors import NotSupportedError


def check_buildable(config: StackConfig, stack: str) -> None:
    check_cloud(config.platform)
    if config.cache is not None:
        raise NotSupportedError(
            key_path("cache"),
            f"engine {config.cache.engine!r}",
            "no turnout:cache key: caches are not built by this version",
        )
    if config.dr is not None:
        check_achievable(config.dr, config.platform, has_cache=config.cache is not None)
        check_failover(assess(config.dr, config.platform, config.cache is not None), config.platform, stack)
    for name, endpoint in config.endpoints.items():
        check_renderable(name, endpoint)
