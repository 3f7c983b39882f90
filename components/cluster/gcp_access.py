"""How `pulumi up` (and `platform.admins`) reach a GKE cluster's Kubernetes API, per `platform.apiAccess`, and
the GKE API's rules for the settings that decide it, checked before the cluster is declared.

- dns: the DNS-based endpoint (`*.gke.goog`) with external traffic allowed, and no IP endpoint at all:
  reachable from anywhere, with Google credentials IAM lets through (`container.clusters.connect`).
- allowlist: the public IP endpoint with master authorized networks = `apiAccessCidrs`; the DNS endpoint
  closed to users: reachable from those CIDRs.
- in-network: the private IP endpoint with master authorized networks = the region's /16; the DNS endpoint
  closed to users: reachable from inside the cluster's VPC.

The kubeconfig's credential is `gke-gcloud-auth-plugin --use_application_default_credentials`: the plugin
would otherwise ask the gcloud CLI for its logged-in account, while the gcp provider signs in with
Application Default Credentials; with the flag both use the same identity.

The rules (`control_plane_rule_errors`), each learnt from the provider or the API, none visible to the
offline mocks:
- With the IP endpoint on, a private endpoint needs master authorized networks enabled (the API answers
  400 "Master authorized networks must be enabled if private endpoint is enabled"); pulumi-gcp sends
  `enabled: false` whenever the `master_authorized_networks_config` block is absent
  (expandMasterAuthorizedNetworksConfig).
- A private endpoint admits only internal networks in its allowlist (400 "network ... is not a reserved
  network, which is required for private endpoints").
- With the IP endpoint off (`ip_endpoints_config.enabled: false`) the provider sends only the DNS and
  IP-endpoint settings (expandControlPlaneEndpointsConfig returns early): an allowlist there would be
  silently dropped, and `enable_private_endpoint` must read true, as the API reports it (fabric's
  gke-cluster-standard does the same to avoid a permanent diff).
- With no IP endpoint, the DNS endpoint must allow external traffic, or nothing outside Google reaches the
  API.
- `master_ipv4_cidr_block` is a /28 clear of the subnet's ranges, and excludes `private_endpoint_subnetwork`
  (400 "When masterIpv4Cidr is set, privateEndpointSubnetwork must be unset").
- The DNS endpoint is served by Google's front end with a publicly trusted certificate: a kubeconfig that
  pins the cluster CA for it fails TLS verification, so its kubeconfig carries no CA.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import yaml

from components.cluster import ApiAccessPath
from components.cluster.gcp_network import GkeNetworkLayout

AUTH_PLUGIN = "gke-gcloud-auth-plugin"
AUTH_PLUGIN_ARGS = ["--use_application_default_credentials"]
ADMIN_ROLE = "roles/container.admin"
"""What `platform.admins` get, on the project: full control of its clusters and their Kubernetes API objects,
`container.clusters.connect` (the DNS endpoint) included, for users, groups and service accounts alike."""
IDENTITY = (
    f"the deployer's Google Application Default Credentials ({AUTH_PLUGIN} "
    f"{' '.join(AUTH_PLUGIN_ARGS)}), as the gcp provider uses"
)
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


class GkeRuleError(RuntimeError):
    """Settings turnout was about to give GKE that its API or provider would refuse or silently drop: a bug in
    turnout, found at plan time instead of half-way through `pulumi up`."""


def control_plane_settings(mode: str, layout: GkeNetworkLayout, allowlist: tuple[str, ...]) -> dict:
    """The cluster arguments that decide who reaches the API: `private_cluster_config`,
    `master_authorized_networks_config` (absent for dns) and `control_plane_endpoints_config`."""
    private = {"enable_private_nodes": True, "master_ipv4_cidr_block": layout.control_plane}
    if mode == "dns":
        return {
            "private_cluster_config": {**private, "enable_private_endpoint": True},
            "control_plane_endpoints_config": {
                "dns_endpoint_config": {"allow_external_traffic": True},
                "ip_endpoints_config": {"enabled": False},
            },
        }
    cidrs = allowlist if mode == "allowlist" else (layout.region_cidr,)
    return {
        "private_cluster_config": {**private, "enable_private_endpoint": mode == "in-network"},
        "master_authorized_networks_config": {
            "cidr_blocks": [{"cidr_block": cidr, "display_name": cidr} for cidr in cidrs],
            "gcp_public_cidrs_access_enabled": False,
        },
        "control_plane_endpoints_config": {
            "dns_endpoint_config": {"allow_external_traffic": False},
            "ip_endpoints_config": {"enabled": True},
        },
    }


def control_plane_rule_errors(settings: Mapping, layout: GkeNetworkLayout) -> list[str]:
    """What GKE would refuse, or pulumi-gcp silently drop, in these cluster arguments (see the module docstring)."""
    errors = []
    private = settings.get("private_cluster_config") or {}
    networks = settings.get("master_authorized_networks_config")
    endpoints = settings.get("control_plane_endpoints_config") or {}
    ip_enabled = (endpoints.get("ip_endpoints_config") or {}).get("enabled", True)
    dns_external = (endpoints.get("dns_endpoint_config") or {}).get("allow_external_traffic", False)
    if ip_enabled:
        if private.get("enable_private_endpoint") and networks is None:
            errors.append(
                "a private endpoint without master_authorized_networks_config: GKE answers 400 'Master authorized "
                "networks must be enabled if private endpoint is enabled'"
            )
        if private.get("enable_private_endpoint") and networks is not None:
            public = [
                block["cidr_block"]
                for block in networks.get("cidr_blocks") or []
                if not any(ipaddress.ip_network(block["cidr_block"]).subnet_of(r) for r in PRIVATE_RANGES)
            ]
            if public:
                errors.append(f"a private endpoint's authorized networks must be internal, not {', '.join(public)}")
    else:
        if networks is not None:
            errors.append("master_authorized_networks_config with the IP endpoint disabled: pulumi-gcp drops it unsent")
        if not private.get("enable_private_endpoint"):
            errors.append("enable_private_endpoint must be true with the IP endpoint disabled (GKE reports it so)")
        if not dns_external:
            errors.append("neither an IP endpoint nor a DNS endpoint open to external traffic: no one reaches the API")
    control_plane = private.get("master_ipv4_cidr_block")
    if control_plane is not None:
        block = ipaddress.ip_network(control_plane)
        if block.prefixlen != 28:
            errors.append(f"master_ipv4_cidr_block {control_plane} is not a /28")
        taken = (layout.nodes, layout.pods, layout.services, layout.private_services)
        if any(block.overlaps(ipaddress.ip_network(cidr)) for cidr in taken):
            errors.append(f"master_ipv4_cidr_block {control_plane} overlaps the VPC's ranges {', '.join(taken)}")
        if private.get("private_endpoint_subnetwork"):
            errors.append(
                "master_ipv4_cidr_block with private_endpoint_subnetwork: GKE answers 400 'When masterIpv4Cidr is "
                "set, privateEndpointSubnetwork must be unset'"
            )
    return errors


def check_control_plane(settings: Mapping, layout: GkeNetworkLayout, cluster: str) -> None:
    errors = control_plane_rule_errors(settings, layout)
    if errors:
        raise GkeRuleError(f"GKE cluster {cluster}: " + "; ".join(errors))


def access_path(mode: str, layout: GkeNetworkLayout, allowlist: tuple[str, ...], admins: tuple[str, ...]):
    reachable_from = {
        "dns": "anywhere, through the DNS endpoint, with Google credentials that IAM allows "
        "(container.clusters.connect, in roles/container.admin)",
        "allowlist": ", ".join(allowlist),
        "in-network": f"inside {layout.region_cidr} (the cluster's VPC)",
    }[mode]
    return ApiAccessPath(mode=mode, reachable_from=reachable_from, identity=IDENTITY, admins=admins)


def gke_kubeconfig(context: str, server: str, ca_certificate: str | None) -> str:
    """A kubeconfig like `gcloud container clusters get-credentials` writes (with `--dns-endpoint` when
    `ca_certificate` is None): no credentials, the auth plugin on Application Default Credentials."""
    cluster: dict = {"server": f"https://{server}"}
    if ca_certificate is not None:
        cluster["certificate-authority-data"] = ca_certificate
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": cluster}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "users": [
                {
                    "name": context,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": AUTH_PLUGIN,
                            "args": list(AUTH_PLUGIN_ARGS),
                            "installHint": f"Install {AUTH_PLUGIN} for use with kubectl: "
                            "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl",
                            "provideClusterInfo": True,
                        }
                    },
                }
            ],
        },
        sort_keys=False,
    )
