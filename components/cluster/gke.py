"""A private, regional GKE Standard cluster in its own VPC: KMS-encrypted secrets, Workload Identity,
Dataplane V2, and one autoscaled node pool per configured pool."""

from __future__ import annotations

import hashlib
import re

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import yaml

from components.cluster import ClusterArgs
from turnout.config import DEFAULT_MACHINE_TYPES, NodePool, key_path
from turnout.errors import ConfigError
from turnout.naming import child

POOL_LABEL = "turnout.dev/pool"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}

# One VPC per cluster, so every region can use the same ranges.
NODES_CIDR = "10.0.0.0/20"
PODS_RANGE = ("pods", "10.16.0.0/14")
SERVICES_RANGE = ("services", "10.20.0.0/20")

SECRETS_KEY_ROTATION = "7776000s"  # 90 days
KMS_ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
# What a node needs to ship logs and metrics and pull images; nothing more.
NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
)
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
AUTH_PLUGIN = "gke-gcloud-auth-plugin"

# Accelerator per machine family; G2 machines come with NVIDIA L4s, their count fixed by the machine.
GPU_BY_FAMILY = {"g2": "nvidia-l4", "n1": "nvidia-tesla-t4"}
G2_MACHINE_BY_GPUS = {1: "g2-standard-8", 2: "g2-standard-24", 4: "g2-standard-48", 8: "g2-standard-96"}

CLUSTER_NAME_MAX = 40
SERVICE_ACCOUNT_ID_MAX = 30


def check_gke_args(args: ClusterArgs) -> None:
    """Refuse what GKE would refuse half-way through `pulumi up`: an over-long cluster name, a GPU shape it lacks."""
    if not re.fullmatch(rf"[a-z](?:[-a-z0-9]{{0,{CLUSTER_NAME_MAX - 2}}}[a-z0-9])?", args.cluster_name):
        raise ConfigError(
            key_path("platform.regions"),
            f"cluster name {args.cluster_name!r} (stack and region)",
            f"a stack and region whose '<stack>-<region>' is a GKE cluster name: at most {CLUSTER_NAME_MAX} "
            "lowercase letters, digits and '-', starting with a letter",
        )
    for index, pool in enumerate(args.node_pools):
        if pool.gpu:
            gpu_shape(pool, index)


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
    account = f"{cluster}-nodes"
    if len(account) <= SERVICE_ACCOUNT_ID_MAX:
        return account
    digest = hashlib.sha256(account.encode()).hexdigest()[:6]
    return f"{account[: SERVICE_ACCOUNT_ID_MAX - 7].rstrip('-')}-{digest}"


def gke_kubeconfig(context: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig like `gcloud container clusters get-credentials` writes: no credentials, the auth plugin."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": context,
                    "cluster": {"server": f"https://{endpoint}", "certificate-authority-data": ca_certificate},
                }
            ],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "users": [
                {
                    "name": context,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": AUTH_PLUGIN,
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


def node_config(pool: NodePool, index: int, service_account: pulumi.Input[str]) -> dict:
    config: dict = {
        "machine_type": pool.machine_type or DEFAULT_MACHINE_TYPES["gcp"],
        "service_account": service_account,
        "oauth_scopes": [CLOUD_PLATFORM_SCOPE],
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


def service_agent_key(
    name: str,
    *,
    key_ring_name: str,
    key_name: str,
    resources: tuple[str, str],
    region: str,
    project_number: pulumi.Input[str],
    agent: str,
    opts: pulumi.ResourceOptions,
) -> tuple[gcp.kms.CryptoKey, gcp.kms.CryptoKeyIAMMember]:
    """A customer-managed key (rotated every 90 days) in a key ring of its own, and the grant that lets a Google
    service agent (`service-<number>@<agent>.iam.gserviceaccount.com`) encrypt with it. Whatever the agent
    encrypts must wait for the grant. `resources` names the key and the grant under `name`."""
    key_ring = gcp.kms.KeyRing(child(name, "keyring"), name=key_ring_name, location=region, opts=opts)
    key = gcp.kms.CryptoKey(
        child(name, resources[0]),
        name=key_name,
        key_ring=key_ring.id,
        purpose="ENCRYPT_DECRYPT",
        rotation_period=SECRETS_KEY_ROTATION,
        opts=opts,
    )
    grant = gcp.kms.CryptoKeyIAMMember(
        child(name, resources[1]),
        crypto_key_id=key.id,
        role=KMS_ENCRYPTER_DECRYPTER,
        member=pulumi.Output.from_input(project_number).apply(
            lambda number: f"serviceAccount:service-{number}@{agent}.iam.gserviceaccount.com"
        ),
        opts=opts,
    )
    return key, grant


class GkeCluster(pulumi.ComponentResource):
    name: str
    region: str
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    workload_pool: pulumi.Output[str]
    """The Workload Identity pool (`<project>.svc.id.goog`) Kubernetes service accounts map into."""
    network_id: pulumi.Output[str]
    """The cluster's VPC (`projects/<project>/global/networks/<name>`), for private services beside it (caches)."""
    network_self_link: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cluster:GkeCluster", name, None, opts)
        check_gke_args(args)
        self.name = args.cluster_name
        self.region = args.region
        cluster_name = args.cluster_name

        # An explicit provider reads no stack config: hand it `gcp:project` (unset, it falls back to GOOGLE_PROJECT).
        gcp_provider = gcp.Provider(
            child(name, "gcp"),
            project=pulumi.Config("gcp").get("project"),
            region=args.region,
            opts=pulumi.ResourceOptions(parent=self),
        )

        def on_gcp(*depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=gcp_provider, depends_on=list(depends_on))

        project = gcp.organizations.get_project_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=gcp_provider)
        )
        self.workload_pool = project.project_id.apply(lambda project_id: f"{project_id}.svc.id.goog")

        network = gcp.compute.Network(
            child(name, "network"),
            name=cluster_name,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=on_gcp(),
        )
        self.network_id, self.network_self_link = network.id, network.self_link
        subnet = gcp.compute.Subnetwork(
            child(name, "subnet"),
            name=child(cluster_name, "nodes"),
            network=network.id,
            region=args.region,
            ip_cidr_range=NODES_CIDR,
            private_ip_google_access=True,
            secondary_ip_ranges=[
                {"range_name": range_name, "ip_cidr_range": cidr} for range_name, cidr in (PODS_RANGE, SERVICES_RANGE)
            ],
            opts=on_gcp(),
        )
        router = gcp.compute.Router(
            child(name, "router"),
            name=child(cluster_name, "router"),
            network=network.id,
            region=args.region,
            opts=on_gcp(),
        )
        # Private nodes have no external IPs: NAT is how they reach registries outside Google.
        nat = gcp.compute.RouterNat(
            child(name, "nat"),
            name=child(cluster_name, "nat"),
            router=router.name,
            region=args.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config={"enable": True, "filter": "ERRORS_ONLY"},
            opts=on_gcp(),
        )

        # GKE encrypts secrets as its service agent, which must hold the key before the cluster is created.
        secrets_key, gke_agent_on_key = service_agent_key(
            name,
            key_ring_name=cluster_name,
            key_name="gke-secrets",
            resources=("secrets-key", "secrets-key-gke-agent"),
            region=args.region,
            project_number=project.number,
            agent="container-engine-robot",
            opts=on_gcp(),
        )

        node_account = gcp.serviceaccount.Account(
            child(name, "nodes-sa"),
            account_id=service_account_id(cluster_name),
            display_name=f"GKE nodes of {cluster_name}",
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

        private_endpoint = not args.api_access_cidrs
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
                "cluster_secondary_range_name": PODS_RANGE[0],
                "services_secondary_range_name": SERVICES_RANGE[0],
            },
            private_cluster_config={"enable_private_nodes": True, "enable_private_endpoint": private_endpoint},
            master_authorized_networks_config=None
            if private_endpoint
            else {
                "cidr_blocks": [{"cidr_block": cidr, "display_name": cidr} for cidr in args.api_access_cidrs],
                "gcp_public_cidrs_access_enabled": False,
            },
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
                # Totals across the region's zones, not per zone.
                autoscaling={
                    "total_min_node_count": pool.min,
                    "total_max_node_count": pool.max,
                    "location_policy": "BALANCED",
                },
                management={"auto_repair": True, "auto_upgrade": True},
                node_config=node_config(pool, index, node_account.email),
                opts=on_gcp(*node_roles),
            )
            for index, pool in enumerate(args.node_pools)
        ]

        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(project.project_id, cluster.endpoint, cluster.master_auth.cluster_ca_certificate).apply(
                lambda values: gke_kubeconfig(f"gke_{values[0]}_{args.region}_{cluster_name}", values[1], values[2])
            )
        )
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
