"""What this version of turnout can build, checked before the program creates anything.

The contract's config accepts more than the components build so far; a stack that asks for a
feature not built yet fails here, naming the key, instead of half-way through `pulumi up`.
"""

from __future__ import annotations

from components.cache import DEFAULT_BACKUP_INTERVAL_SECONDS, check_cache_settings
from components.cluster.azure_registries import check_registries
from components.cluster.fleet import check_cloud
from components.cluster.kind import check_loaded_images
from components.dr.failover import check_failover
from components.endpoint.experiment_agent import check_experiment_agents
from components.endpoint.model_endpoint import check_renderable
from components.globaltraffic.colours import check_colour_routing
from turnout.config import StackConfig
from turnout.dr import Settings, assess, check_achievable


def cache_backup_interval(settings: Settings) -> int:
    """The backup interval the cache is built with: the tier's, else the cache's default (none is kept
    alongside Azure geo-replication, which the component handles)."""
    return settings.backup_interval or DEFAULT_BACKUP_INTERVAL_SECONDS


def check_buildable(config: StackConfig, stack: str) -> None:
    check_cloud(config.platform)
    check_loaded_images(config)
    check_registries(config.platform, config.endpoints)
    check_experiment_agents(config)
    check_colour_routing(config)
    has_cache = config.cache is not None
    if config.dr is not None:
        check_achievable(config.dr, config.platform, has_cache=has_cache)
    plan = assess(config.dr, config.platform, has_cache)
    check_failover(plan, config.platform, stack, config.endpoints)
    if config.cache is not None:
        check_cache_settings(
            cloud=config.platform.cloud,
            engine=config.cache.engine,
            backup_interval_seconds=cache_backup_interval(plan.settings),
            backup_retention_days=plan.settings.backup_retention_days,
            replica_regions=plan.settings.cache_replicas,
            primary_region=config.cache.primary_region,
            cache_regions=(plan.settings.primary_region, *plan.settings.cache_replicas),
        )
    for name, endpoint in config.endpoints.items():
        check_renderable(name, endpoint)
