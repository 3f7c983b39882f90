"""The Google Cloud APIs a component calls, enabled by the component itself before anything else it creates.

A new project has only a few APIs on (Service Usage among them, which enabling the others needs); a
resource of a disabled API fails with 403 SERVICE_DISABLED half-way through `pulumi up`. Each
component enables what it uses with `disable_on_destroy: false`: an API stays on when a stack (or
one region of it) is destroyed, since other stacks and people may use it, and two components
enabling the same API never disable it under each other.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from turnout.naming import child

# What each component calls.
GKE_APIS = (
    "cloudresourcemanager.googleapis.com",  # the project's number and IAM policy
    "iam.googleapis.com",  # the nodes' service account
    "compute.googleapis.com",  # VPC, subnet, router, NAT, firewall
    "cloudkms.googleapis.com",  # the secrets key
    "container.googleapis.com",  # the cluster and its node pools
    "logging.googleapis.com",  # logging_config
    "monitoring.googleapis.com",  # monitoring_config and managed Prometheus
)
MEMORYSTORE_APIS = (
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",  # the private services access range
    "servicenetworking.googleapis.com",  # the peering to Google's services network
    "cloudkms.googleapis.com",  # the instance's key
    "redis.googleapis.com",  # the instance
)
CLOUD_DNS_APIS = (
    "compute.googleapis.com",  # the health check
    "dns.googleapis.com",  # the record set
)


def enable_apis(name: str, apis: tuple[str, ...], opts: pulumi.ResourceOptions) -> list[gcp.projects.Service]:
    """One `gcp.projects.Service` per API, named `<name>-api-<service>`; make everything else depend on them."""
    return [
        gcp.projects.Service(
            child(name, "api", api.split(".", 1)[0]),
            service=api,
            disable_on_destroy=False,
            disable_dependent_services=False,
            opts=opts,
        )
        for api in apis
    ]
