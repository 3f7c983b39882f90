"""A private, regional GKE Standard cluster in its own VPC: KMS-encrypted secrets, Workload Identity,
Dataplane V2, one autoscaled node pool per configured pool, and the APIs, firewall rule and access path it
needs to be usable by `pulumi up`:

- the Google APIs it calls, enabled first (components/cluster/gcp_apis.py);
- its VPC carved from the region's /16 (components/cluster/gcp_network.py);
- the Kubernetes API reached as `platform.apiAccess` says, with GKE's rules for it checked before the cluster
  is declared (components/cluster/gcp_access.py); `platform.admins` get roles/container.admin;
- a firewall rule from the control plane's range to the nodes on the webhook ports of istiod (15017) and
  Knative (8443): GKE's own rule admits only 443 and 10250 (Cloud Service Mesh, "Open ports on a private
  cluster");
- every name within GCP's limits (components/cluster/gcp_limits.py).
"""

from __future__ import annotations

import math

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.cluster import ApiAccessPath, ClusterArgs
from components.cluster.gcp_access import (
    ADMIN_ROLE,
    access_path,
    check_control_plane,
    control_plane_settings,
    gke_kubeconfig,
)
from components.cluster.gcp_apis import GKE_APIS, enable_apis
from components.cluster.gcp_kms import service_agent_key
from components.cluster.gcp_limits import GCP_NAMES, check_stack_name, gcp_name
from components.cluster.gcp_network import GkeNetworkLayout, check_node_capacity
from turnout.config import DEFAULT_MACHINE_TYPES, NodePool, key_path
from turnout.errors import ConfigError
from turnout.naming import child

__all__ = ["GkeCluster", "gke_kubeconfig"]

POOL_LABEL = "turnout.dev/pool"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}

PODS_RANGE_NAME = "pods"
SERVICES_RANGE_NAME = "services"
# What a node needs to ship logs and metrics and pull images; nothing more.
NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
)
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Webhooks the API server calls on Pod IPs, beyond the 443 and 10250 GKE's own firewall rule admits:
# istiod's injection and validation (its Service's targetPort) and Knative Serving's and net-istio's webhooks.
WEBHOOK_PORTS = {"15017": "istiod", "8443": "Knative"}
# GKE spreads a regional cluster's node pools over three of the region's zones unless told otherwise;
# `initial_node_count` counts per zone.
REGIONAL_ZONES = 3

# Accelerator per machine family; G2 machines come with NVIDIA L4s, their count fixed by the machine.
GPU_BY_FAMILY = {"g2": "nvidia-l4", "n1": "nvidia-tesla-t4"}
G2_MACHINE_BY_GPUS = {1: "g2-standard-8", 2: "g2-standard-24", 4: "g2-standard-48", 8: "g2-standard-96"}


def stack_of(args: ClusterArgs) -> str:
    """The stack name a cluster name (`<stack>-<region>`) begins with."""
    return args.cluster_name.removesuffix(f"-{args.region}")


def check_gke_args(args: ClusterArgs) -> GkeNetworkLayout:
    """Refuse what GKE would refuse half-way through `pulumi up` (a stack name no GCP name accepts, a node pool
    name over 40 characters, a GPU shape it lacks, more nodes than the pods range holds); return the network
    layout."""
    check_stack_name(stack_of(args))
    rule = GCP_NAMES["node_pool"]
    for index, pool in enumerate(args.node_pools):
        if not rule.accepts(pool.name):
            raise ConfigError(
                key_path(f"platform.nodePools[{index}].name"),
                repr(pool.name),
                f"on gcp, a {rule.what} of at most {rule.max_length} lowercase letters, digits and '-', starting "
                "with a letter",
            )
        if pool.gpu:
            gpu_shape(pool, index)
    layout = GkeNetworkLayout.of(args.network_cidr)
    check_node_capacity(layout, args.node_pools)
    return layout


def gpu_shape(pool: NodePool, index: int) -> tuple[str, str]:
    """The machine type and accelerator type of GPU pool `pool` (the `index`th configured pool)."""
    path = key_path(f"platform.nodePools[{index}]")
    if pool.machine_type in (None, DEFAULT_MACHINE_TYPES["gcp"]):
        machine_type = G2_MACHINE_BY_GPUS.get(pool.gpu)
        if machine_type is None:
            raise ConfigError(
                f"{path}.gpu",
                f"{pool.gpu} GPUs on the default G2 machines",
                "1, 2, 4 or 8 (NVIDIA L4s per G2 machine), or a machineType of family " + ", ".join(GPU_BY_FAMILY),
            )
        return machine_type, GPU_BY_FAMILY["g2"]
    family = pool.machine_type.split("-", 1)[0]
    if family not in GPU_BY_FAMILY:
        raise ConfigError(
            f"{path}.machineType",
            f"{pool.machine_type!r} with {pool.gpu} GPU(s)",
            "a GPU machine family: " + ", ".join(GPU_BY_FAMILY),
        )
    return pool.machine_type, GPU_BY_FAMILY[family]


def service_account_id(cluster: str) -> str:
    """`<cluster>-nodes`, kept within the 30 characters of an account id by a stable hash suffix."""
    return gcp_name("service_account", f"{cluster}-nodes")


def initial_nodes_per_zone(pool: NodePool) -> int:
    """Nodes per zone at creation, so that the pool starts with at least its minimum across the zones."""
    return math.ceil(pool.min / REGIONAL_ZONES)


def node_config(pool: NodePool, index: int, service_account: pulumi.Input[str], node_tag: str) -> dict:
    config: dict = {
        "machine_type": pool.machine_type or DEFAULT_MACHINE_TYPES["gcp"],
        "service_account": service_account,
        "oauth_scopes": [CLOUD_PLATFORM_SCOPE],
        "tags": [node_tag],
        "labels": {POOL_LABEL: pool.name},
        "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
        "workload_metadata_config": {"mode": "GKE_METADATA"},
    }
    if pool.gpu:
        machine_type, accelerator = gpu_shape(pool, index)
        config["machine_type"] = machine_type
        config["guest_accelerators"] = [
            {
                "type": accelerator,
                "count": pool.gpu,
                "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"},
            }
        ]
        config["labels"] = {**config["labels"], GPU_LABEL: "true"}
        config["taints"] = [GPU_TAINT]
    return config


class GkeCluster(pulumi.ComponentResource):
    name: str
    region: str
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    access: ApiAccessPath
    """Who reaches the Kubernetes API, from where, as whom (`platform.apiAccess`)."""
    workload_pool: pulumi.Output[str]
    """The Workload Identity pool (`<project>.svc.id.goog`) Kubernetes service accounts map into."""
    network_id: pulumi.Output[str]
    """The cluster's VPC (`projects/<project>/global/networks/<name>`), for private services beside it (caches)."""
    network_self_link: pulumi.Output[str]
    network_layout: GkeNetworkLayout
    """How the VPC carves the region's /16: private services access (caches) takes `private_services`."""
    apis: list[gcp.projects.Service]
    """The APIs the cluster enabled: a component beside it waits for them too."""

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cluster:GkeCluster", name, None, opts)
        layout = check_gke_args(args)
        self.name = args.cluster_name
        self.region = args.region
        self.network_layout = layout
        cluster_name = gcp_name("cluster", args.cluster_name)
        control_plane = control_plane_settings(args.api_access, layout, args.api_access_cidrs)
        check_control_plane(control_plane, layout, cluster_name)
        self.access = access_path(args.api_access, layout, args.api_access_cidrs, args.admins)

        # An explicit provider reads no stack config: hand it `gcp:project` (unset, it falls back to GOOGLE_PROJECT).
        gcp_provider = gcp.Provider(
            child(name, "gcp"),
            project=pulumi.Config("gcp").get("project"),
            region=args.region,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.apis = enable_apis(name, GKE_APIS, pulumi.ResourceOptions(parent=self, provider=gcp_provider))

        def on_gcp(*depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=gcp_provider, depends_on=[*self.apis, *depends_on])

        project = gcp.organizations.get_project_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=gcp_provider, depends_on=self.apis)
        )
        self.workload_pool = project.project_id.apply(lambda project_id: f"{project_id}.svc.id.goog")

        network = gcp.compute.Network(
            child(name, "network"),
            name=gcp_name("network", args.cluster_name),
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=on_gcp(),
        )
        self.network_id, self.network_self_link = network.id, network.self_link
        subnet = gcp.compute.Subnetwork(
            child(name, "subnet"),
            name=gcp_name("subnetwork", child(args.cluster_name, "nodes")),
            network=network.id,
            region=args.region,
            ip_cidr_range=layout.nodes,
            private_ip_google_access=True,
            secondary_ip_ranges=[
                {"range_name": PODS_RANGE_NAME, "ip_cidr_range": layout.pods},
                {"range_name": SERVICES_RANGE_NAME, "ip_cidr_range": layout.services},
            ],
            opts=on_gcp(),
        )
        router = gcp.compute.Router(
            child(name, "router"),
            name=gcp_name("router", child(args.cluster_name, "router")),
            network=network.id,
            region=args.region,
            opts=on_gcp(),
        )
        # Private nodes have no external IPs: NAT is how they reach registries outside Google.
        nat = gcp.compute.RouterNat(
            child(name, "nat"),
            name=gcp_name("router_nat", child(args.cluster_name, "nat")),
            router=router.name,
            region=args.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config={"enable": True, "filter": "ERRORS_ONLY"},
            opts=on_gcp(),
        )
        node_tag = gcp_name("network_tag", child(args.cluster_name, "node"))
        gcp.compute.Firewall(
            child(name, "webhooks"),
            name=gcp_name("firewall", child(args.cluster_name, "webhooks")),
            description="The GKE control plane calls the " + " and ".join(WEBHOOK_PORTS.values()) + " webhooks",
            network=network.id,
            direction="INGRESS",
            source_ranges=[layout.control_plane],
            target_tags=[node_tag],
            allows=[{"protocol": "tcp", "ports": list(WEBHOOK_PORTS)}],
            log_config={"metadata": "INCLUDE_ALL_METADATA"},
            opts=on_gcp(),
        )

        # GKE encrypts secrets as its service agent, which must hold the key before the cluster is created.
        secrets_key, gke_agent_on_key = service_agent_key(
            name,
            key_ring_name=args.cluster_name,
            key_name="gke-secrets",
            resources=("secrets-key", "secrets-key-gke-agent"),
            region=args.region,
            project_number=project.number,
            agent="container-engine-robot",
            opts=on_gcp(),
        )

        node_account = gcp.serviceaccount.Account(
            child(name, "nodes-sa"),
            account_id=service_account_id(args.cluster_name),
            display_name=f"GKE nodes of {args.cluster_name}",
            opts=on_gcp(),
        )
        node_roles = [
            gcp.projects.IAMMember(
                child(name, "nodes-sa", role.rsplit("/", 1)[1]),
                project=project.project_id,
                role=role,
                member=pulumi.Output.concat("serviceAccount:", node_account.email),
                opts=on_gcp(),
            )
            for role in NODE_ROLES
        ]
        # GKE has no per-cluster IAM: the grant is on the project (see README, Before a real pulumi up).
        for admin in args.admins:
            gcp.projects.IAMMember(
                child(name, "admin", admin.replace(":", "-")),
                project=project.project_id,
                role=ADMIN_ROLE,
                member=admin,
                opts=on_gcp(),
            )

        cluster = gcp.container.Cluster(
            child(name, "cluster"),
            name=cluster_name,
            location=args.region,
            min_master_version=args.kubernetes_version,
            release_channel={"channel": "REGULAR"},
            remove_default_node_pool=True,
            initial_node_count=1,
            network=network.id,
            subnetwork=subnet.id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy={
                "cluster_secondary_range_name": PODS_RANGE_NAME,
                "services_secondary_range_name": SERVICES_RANGE_NAME,
            },
            **control_plane,
            workload_identity_config={"workload_pool": self.workload_pool},
            database_encryption={"state": "ENCRYPTED", "key_name": secrets_key.id},
            enable_shielded_nodes=True,
            # Dataplane V2 enforces NetworkPolicy itself; the Calico `network_policy` addon must stay off.
            datapath_provider="ADVANCED_DATAPATH",
            logging_config={"enable_components": ["SYSTEM_COMPONENTS", "WORKLOADS"]},
            monitoring_config={"enable_components": ["SYSTEM_COMPONENTS"], "managed_prometheus": {"enabled": True}},
            deletion_protection=True,
            opts=on_gcp(gke_agent_on_key, nat),
        )

        pools = [
            gcp.container.NodePool(
                child(name, "pool", pool.name),
                name=pool.name,
                cluster=cluster.name,
                location=args.region,
                # Per zone, so the pool starts with its minimum; the autoscaler's bounds are totals over the zones.
                initial_node_count=initial_nodes_per_zone(pool),
                autoscaling={
                    "total_min_node_count": pool.min,
                    "total_max_node_count": pool.max,
                    "location_policy": "BALANCED",
                },
                management={"auto_repair": True, "auto_upgrade": True},
                node_config=node_config(pool, index, node_account.email, node_tag),
                # ForceNew, and GKE reports the current size here once the autoscaler has moved it: a refresh
                # would otherwise plan to replace the pool.
                opts=pulumi.ResourceOptions.merge(
                    on_gcp(*node_roles), pulumi.ResourceOptions(ignore_changes=["initialNodeCount"])
                ),
            )
            for index, pool in enumerate(args.node_pools)
        ]

        context = pulumi.Output.concat("gke_", project.project_id, f"_{args.region}_{cluster_name}")
        if args.api_access == "dns":
            # Google's front end serves the DNS endpoint with a publicly trusted certificate: no CA to pin.
            endpoint = cluster.control_plane_endpoints_config.apply(
                lambda config: config.dns_endpoint_config.endpoint if config and config.dns_endpoint_config else ""
            )
            kubeconfig = pulumi.Output.all(context, endpoint).apply(lambda v: gke_kubeconfig(v[0], v[1], None))
        else:
            kubeconfig = pulumi.Output.all(context, cluster.endpoint, cluster.master_auth.cluster_ca_certificate).apply(
                lambda v: gke_kubeconfig(v[0], v[1], v[2])
            )
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        # Usable only once nodes exist to run what is deployed through it.
        self.provider = k8s.Provider(
            child(name, "k8s"),
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=pools),
        )
        self.register_outputs(
            {
                "name": self.name,
                "region": self.region,
                "kubeconfig": self.kubeconfig,
                "workloadPool": self.workload_pool,
            }
        )
