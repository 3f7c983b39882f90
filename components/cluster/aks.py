"""An AKS cluster in its own resource group and VNet: a private API by default, Entra ID sign-in with
Azure RBAC and no local accounts, workload identity, and one autoscaled user pool per node pool.

Choices the stack file does not expose:
- Identity: a user-assigned control-plane identity, granted Network Contributor on the node subnet (and, for a
  private cluster, Private DNS Zone Contributor on its zone and VNet, as mspnp/aks-baseline does) before the
  cluster exists (a system-assigned one can only be granted after AKS has already needed it).
- Network: the region's /16 (`ClusterArgs.network_cidr`) is the VNet; the node subnet is its first /18 (the rest
  is left free for private endpoints and later subnets). Azure CNI overlay with the Cilium dataplane and Cilium
  network policy: node IPs come from the node subnet, pod IPs from `POD_CIDR` (RFC 6598 shared address space,
  which AKS supports for overlay pods and turnout never gives a region: its networks are RFC 1918), Service IPs
  from `SERVICE_CIDR`. Both are the same in every region (overlay pod and Service ranges are never routed
  outside the cluster) and `check_cluster_ranges` refuses a region network that overlaps them.
- API access (`ClusterArgs.api_access`, shown in the plan as `self.access`):
  - `allowlist`: a public endpoint restricted to exactly `api_access_cidrs` (AKS takes at most 200 ranges).
  - `in-network`: a Private Link private cluster (no public FQDN). Not API Server VNet Integration: that one
    needs a delegated subnet and has been refused with AKSCapacityHeavyUsage in some regions (Microsoft Q&A,
    2026), and converting a cluster to it is one-way; Private Link is available wherever AKS is. The private
    DNS zone is turnout's own (`privatelink.<region>.azmk8s.io` in the cluster's resource group) rather than
    AKS's system zone in the node resource group, so that it can be linked to every region's VNet
    (`join_regions`) and to the VNet `pulumi up` runs from (a self-hosted runner peered with it).
- Who may use the API: local accounts are off, so Azure RBAC is the only way in. The deployer (the identity
  running `pulumi up`, from azure-native's client config) gets "Azure Kubernetes Service RBAC Cluster Admin" on the
  cluster's resource group, and every `platform.admins` principal gets it on the cluster (two scopes, so a
  deployer who is also listed never collides with its own assignment). A role assignment names its principal's
  type (the SDK sends "User" when none is given, and Azure refuses a service principal named as a user): a
  deployer signed in through Microsoft's public clients (the Azure CLI, Azure PowerShell, Visual Studio) is a
  user, anyone else (a service principal, a managed identity, a federated CI identity) a service principal.
  Admins say their type (`user:`, `group:`, `servicePrincipal:`).
- Kubeconfig: the Entra ID `clusterUser` one in exec format, as AKS returns it (kubelogin with the interactive
  device code), converted in code to `kubelogin get-token --login azurecli`, what `kubelogin convert-kubeconfig
  -l azurecli` writes: the Kubernetes provider signs in as the identity `az login` (or GitHub's azure/login)
  gave the Azure CLI, the same one the azure-native provider uses by default. kubelogin reads AAD_LOGIN_METHOD
  before the kubeconfig's `--login`, so a runner picks another non-interactive mode there (workloadidentity
  for a federated identity on CI, msi on a VM, spn with AZURE_CLIENT_ID/AZURE_CLIENT_SECRET).
- Images: the kubelet identity gets AcrPull on every registry of `platform.registries` (components/cluster/
  azure_registries.py refuses an Azure registry image whose registry is not listed).
- Node counts: autoscaling moves each pool's `count`; `pulumi refresh` would read it back and the next `up`
  reset it, so `count` (and the system pool's `agentPoolProfiles[0].count`) is ignored after creation. Only the
  count: ignoring the whole `agentPoolProfiles` makes later cluster updates send the refreshed user pools back
  (pulumi-azure-native#2719: "A new agent pool was introduced").
- Add-ons: no Defender (a paid plan) and no Azure Policy add-on (turnout checks its policies at plan time
  with CrossGuard); both can be added to `addon_profiles` and `security_profile` later without replacing
  the cluster.
- Audit log: a diagnostic setting sends `kube-audit-admin` (every request except get and list: what
  changed, by whom; reads of Secrets are not in it, `kube-audit` has them at many times the volume),
  `guard` (Entra ID and Azure RBAC decisions), `kube-apiserver` and `kube-controller-manager` to the
  cluster's own Log Analytics workspace, kept `AUDIT_LOG_RETENTION_DAYS`, in AKS's resource-specific
  tables (AKSAuditAdmin, AKSControlPlane). AKS keeps no audit log without one.
- Secrets: KMS etcd encryption with a key in the cluster's own Key Vault (Azure RBAC, soft delete and
  purge protection: deleting the key or vault makes every Secret unrecoverable). The control-plane
  identity holds "Key Vault Crypto User" on that key alone, granted before the cluster (KMS does not work
  with a system-assigned identity for that reason). The key is an HSM-protected RSA key usable only to
  encrypt and decrypt (all the KMS plugin does), never expiring (an expired key stops the API server);
  Key Vault makes a new version every `KMS_KEY_ROTATION`; AKS encrypts with the exact version it was
  given, so a `pulumi refresh` reads the new one and the next `pulumi up` hands it to AKS; then rewrite
  the Secrets (`kubectl get secrets -A -o json | kubectl replace -f -`). Older versions stay enabled.
  The vault's own audit log (every use of the key) goes to the same workspace.
- Key Vault network access is `Public` (reachable over the internet, every call still needs an Entra ID
  token with a role on the key): AKS supports a `Private` vault only with API Server VNet Integration,
  which this private-link cluster does not use, and a vault firewall (selected networks, or public access
  disabled) is unsupported in `Public` mode as it blocks the KMS plugin. `Private` would also take "Key Vault
  Contributor" for the identity (AKS makes its own private endpoint) and a private endpoint for whoever creates
  the key; moving to it later means disabling KMS first (AKS cannot switch an enabled vault's mode).
- Names: every Azure name comes from components/cluster/azure_limits.py, within its service's length and
  characters; the Key Vault's is global, so it carries a hash of the subscription. A `pulumi destroy` keeps the
  vault soft-deleted (and, with purge protection, unpurgeable) for `KEY_VAULT_RETENTION_DAYS`, so the same stack
  cannot be recreated in the same subscription before then unless the vault is recovered first. The deployer
  creates the key through ARM (`Microsoft.KeyVault/vaults/keys/write`, in Contributor) and needs no role on the
  vault's data plane.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import uuid

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_azure_native import (
    authorization,
    containerservice,
    keyvault,
    managedidentity,
    monitor,
    network,
    operationalinsights,
    privatedns,
    resources,
)

from components.cluster import ApiAccessPath, ClusterArgs
from components.cluster.azure_limits import RULES, azure_name
from components.cluster.azure_registries import registry_subscription
from components.cluster.gpu import NvidiaDevicePlugin, has_gpu_pools
from turnout.config import DEFAULT_MACHINE_TYPES, NodePool, key_path
from turnout.errors import ConfigError
from turnout.naming import child

POOL_LABEL = "turnout.dev/pool"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_TAINT = "nvidia.com/gpu=present:NoSchedule"
# AKS's advice for a dedicated system pool: only critical add-ons schedule there.
CRITICAL_ADDONS_TAINT = "CriticalAddonsOnly=true:NoSchedule"

SYSTEM_POOL = "system"
SYSTEM_POOL_NODES = (2, 3)  # autoscaling bounds: system pods keep a node while another one is upgraded
AGENT_POOL_NAME_MAX = RULES["aks_agent_pool"].lengths[1]  # Linux pools: lowercase letters and digits, a letter first
# What autoscaling changes behind Pulumi's back: ignored after creation (property paths as the engine names them).
POOL_COUNT_DRIFT = ["count"]
SYSTEM_POOL_COUNT_DRIFT = ["agentPoolProfiles[0].count"]

CPU_MACHINE_TYPE = DEFAULT_MACHINE_TYPES["azure"]
# What a GPU pool gets when its machine type is the CPU default: the smallest T4 size with enough GPUs.
GPU_MACHINE_TYPES = ((1, "Standard_NC4as_T4_v3"), (4, "Standard_NC64as_T4_v3"))

# Address space. The node subnet is the first /18 of the region's /16. Pods and Services get ranges no region
# network can take: turnout's networks are RFC 1918 (turnout/network.py), the pod range is RFC 6598 shared space
# (supported for overlay pods, MicrosoftDocs/azure-aks-docs#322); the Service range is RFC 1918 outside the default
# address space 10.0.0.0/12, and `check_cluster_ranges` refuses a region network that overlaps either.
NODE_SUBNET_PREFIX = 18
POD_CIDR = "100.64.0.0/14"  # a /24 per node (overlay): room for 1024 nodes per cluster
SERVICE_CIDR = "10.255.0.0/16"  # smaller than /12, as AKS requires
DNS_SERVICE_IP = "10.255.0.10"  # inside the Service range, not its first address
MAX_NODES = ipaddress.ip_network(POD_CIDR).num_addresses // 256
AUTHORIZED_IP_RANGES_MAX = 200  # "You can specify up to 200 authorized IP ranges" (api-server-authorized-ip-ranges)

# Built-in Azure role definitions (the same GUID in every subscription; azure-docs built-in-roles).
NETWORK_CONTRIBUTOR_ROLE = "4d97b98b-1d4f-4787-a291-c67834d212e7"
KEY_VAULT_CRYPTO_USER_ROLE = "12338af0-0e69-4776-bea7-57ae8d297424"
PRIVATE_DNS_ZONE_CONTRIBUTOR_ROLE = "b12aa53e-6015-4669-85d0-8515ebb3ae7f"
# "Lets you manage all resources in the cluster": DataActions Microsoft.ContainerService/managedClusters/*, and
# listClusterUserCredential (the kubeconfig) among its Actions.
AKS_RBAC_CLUSTER_ADMIN_ROLE = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
ACR_PULL_ROLE = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
# Microsoft's public client applications: a token whose `appid` is one of these was issued to a signed-in user.
USER_CLIENT_APPS = {
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46": "Azure CLI",
    "1950a258-227b-4e31-a9cf-717495945fc2": "Azure PowerShell",
    "872cd9fa-d31f-45e0-9eab-6e460a02d1f1": "Visual Studio",
}
ADMIN_PRINCIPAL_TYPES = {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}
OBJECT_ID = r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}"

# kubelogin: the non-interactive login mode written into the kubeconfig (AAD_LOGIN_METHOD overrides it).
KUBELOGIN_LOGIN = "azurecli"
KUBELOGIN_INTERACTIVE = ("devicecode", "interactive")

# The control plane's resource logs worth keeping (Azure Monitor's categories for managedClusters).
AUDIT_LOG_CATEGORIES = ("kube-audit-admin", "guard", "kube-apiserver", "kube-controller-manager")
AUDIT_LOG_RETENTION_DAYS = 90
DIAGNOSTIC_SETTING_NAME = "turnout-audit"

KEY_VAULT_NAME_MAX = RULES["key_vault"].lengths[1]  # 3-24 letters, digits and hyphens; unique across Azure
KEY_VAULT_RETENTION_DAYS = 90  # how long a deleted vault (and key) stays recoverable: the longest allowed
KMS_KEY_NAME = "etcd-kms"
KMS_KEY_TYPE = "RSA-HSM"
KMS_KEY_SIZE = 3072
KMS_KEY_ROTATION = "P1Y"
KMS_KEY_OPERATIONS = ("encrypt", "decrypt")
KMS_NETWORK_ACCESS = "Public"


def private_dns_zone_name(region: str) -> str:
    """The zone a private cluster's API name lives in (AKS's format for a custom private DNS zone)."""
    return f"privatelink.{region}.azmk8s.io"


def agent_pool_name(pool_name: str) -> str:
    """The Azure agent pool name of a turnout pool.

    A pool name that already is a valid Linux agent pool name (lowercase letters and digits, starting
    with a letter, at most 12 characters, not `system`) is kept. Any other name loses what Azure does not
    allow, keeps at most 8 characters (`p` first if it would start with a digit) and gets 4 hex digits of
    the SHA-256 of the whole pool name: `gpu-a100` -> `gpua100587d`, deterministic and distinct from `gpua100`.
    """
    if re.fullmatch(rf"[a-z][a-z0-9]{{0,{AGENT_POOL_NAME_MAX - 1}}}", pool_name) and pool_name != SYSTEM_POOL:
        return pool_name
    stem = re.sub(r"[^a-z0-9]", "", pool_name.lower())
    if not stem[:1].isalpha():
        stem = "p" + stem
    return stem[:8] + hashlib.sha256(pool_name.encode()).hexdigest()[:4]


def agent_pool_names(pools: tuple[NodePool, ...]) -> dict[str, str]:
    """Each pool's Azure name, refusing two pools that would get the same one."""
    names: dict[str, str] = {}
    for index, pool in enumerate(pools):
        azure_name_ = agent_pool_name(pool.name)
        taken = next((other for other, name in names.items() if name == azure_name_), None)
        if taken is not None:
            raise ConfigError(
                key_path(f"platform.nodePools[{index}].name"),
                f'"{pool.name}", whose AKS pool name "{azure_name_}" is also pool "{taken}"\'s',
                "pool names that stay distinct as AKS names (lowercase letters and digits, at most 12)",
            )
        names[pool.name] = azure_name_
    return names


def vm_size(pool: NodePool, index: int) -> str:
    """The pool's VM size: its machine type, or for a GPU pool left at the CPU default, a GPU size."""
    machine_type = pool.machine_type or CPU_MACHINE_TYPE
    if not pool.gpu or machine_type != CPU_MACHINE_TYPE:
        return machine_type
    for gpus, size in GPU_MACHINE_TYPES:
        if pool.gpu <= gpus:
            return size
    raise ConfigError(
        key_path(f"platform.nodePools[{index}].machineType"),
        f"no GPU machine type for {pool.gpu} GPUs",
        "an Azure GPU VM size with that many GPUs; the default covers 1 to 4 GPUs ("
        + ", ".join(size for _, size in GPU_MACHINE_TYPES)
        + ")",
    )


def node_subnet_cidr(network_cidr: str) -> str:
    """The node subnet: the first /18 of the region's network."""
    return str(next(ipaddress.ip_network(network_cidr).subnets(new_prefix=NODE_SUBNET_PREFIX)))


def check_cluster_ranges(args: ClusterArgs) -> None:
    """Refuse a region network that overlaps the clusters' pod or Service range, and more nodes than the pod
    range has room for (each node takes a /24 of it): AKS would accept the first and misroute, and stop adding
    nodes at the second."""
    region = ipaddress.ip_network(args.network_cidr)
    for what, cidr in (("pod", POD_CIDR), ("Service", SERVICE_CIDR)):
        if region.overlaps(ipaddress.ip_network(cidr)):
            raise ConfigError(
                key_path(f"platform.networks.{args.region}"),
                f"{args.network_cidr} for {args.region}, which overlaps the AKS {what} range {cidr}",
                f"a /16 outside {POD_CIDR} and {SERVICE_CIDR} (set platform.networks.{args.region}, or an "
                "addressSpace that does not reach them)",
            )
    nodes = SYSTEM_POOL_NODES[1] + sum(pool.max for pool in args.node_pools)
    if nodes > MAX_NODES:
        raise ConfigError(
            key_path("platform.nodePools"),
            f"up to {nodes} nodes per cluster (the pools' max plus {SYSTEM_POOL_NODES[1]} system nodes)",
            f"at most {MAX_NODES} on azure: each node takes a /24 of the overlay pod range {POD_CIDR}",
        )


def check_api_access(args: ClusterArgs) -> None:
    """What AKS accepts for API access, checked before anything is created."""
    if args.api_access not in ("allowlist", "in-network"):
        raise ConfigError(
            key_path("platform.apiAccess"),
            f"{args.api_access!r} with cloud azure",
            "allowlist (a public endpoint open only to apiAccessCidrs) or in-network (a private cluster)",
        )
    if args.api_access == "allowlist" and len(args.api_access_cidrs) > AUTHORIZED_IP_RANGES_MAX:
        raise ConfigError(
            key_path("platform.apiAccessCidrs"),
            f"{len(args.api_access_cidrs)} CIDRs",
            f"at most {AUTHORIZED_IP_RANGES_MAX} on azure (AKS's limit for authorized IP ranges)",
        )
    for index, principal in enumerate(args.admins):
        kind, _, object_id = principal.partition(":")
        if kind not in ADMIN_PRINCIPAL_TYPES or not re.fullmatch(OBJECT_ID, object_id):
            raise ConfigError(
                key_path(f"platform.admins[{index}]"),
                repr(principal),
                "user:, group: or servicePrincipal: and an Entra object id on azure",
            )


def api_server_access(args: ClusterArgs, private_dns_zone_id: pulumi.Input[str] | None = None) -> dict:
    """A public endpoint open to exactly the allowlist, or a Private Link private cluster in turnout's own
    private DNS zone, without a public FQDN."""
    if args.api_access == "allowlist":
        return {"enable_private_cluster": False, "authorized_ip_ranges": list(args.api_access_cidrs)}
    return {
        "enable_private_cluster": True,
        "enable_private_cluster_public_fqdn": False,
        "private_dns_zone": private_dns_zone_id,
    }


def access_path(args: ClusterArgs) -> ApiAccessPath:
    """What the plan shows about reaching this cluster's API."""
    if args.api_access == "allowlist":
        reachable = "the public endpoint, only from " + ", ".join(args.api_access_cidrs)
    else:
        reachable = (
            f"inside {args.network_cidr} (the cluster's VNet) or a network peered with it and linked to the private "
            f"DNS zone {private_dns_zone_name(args.region)} (Private Link; no public endpoint)"
        )
    identity = (
        f"Entra ID through kubelogin --login {KUBELOGIN_LOGIN}: the Azure CLI's signed-in identity, which the "
        "azure-native provider also uses by default (AAD_LOGIN_METHOD picks another non-interactive mode, e.g. "
        "workloadidentity on CI); it holds Azure Kubernetes Service RBAC Cluster Admin on the cluster's resource group"
    )
    return ApiAccessPath(mode=args.api_access, reachable_from=reachable, identity=identity, admins=tuple(args.admins))


def deployer_principal_type(client_id: str) -> str:
    """The principal type of the identity running `pulumi up`, from the client it signed in with."""
    return "User" if client_id in USER_CLIENT_APPS else "ServicePrincipal"


def admin_principal(principal: str) -> tuple[str, str]:
    """(principal type, object id) of a `platform.admins` entry such as `group:<object id>`."""
    kind, _, object_id = principal.partition(":")
    return ADMIN_PRINCIPAL_TYPES[kind], object_id


def non_interactive_kubeconfig(kubeconfig: str, login: str = KUBELOGIN_LOGIN) -> str:
    """The kubeconfig with every kubelogin user converted to `login`, as `kubelogin convert-kubeconfig -l <login>`
    does (kubelogin's converter keeps only `--server-id` for azurecli: the tenant and client come from the CLI).
    Refuses a kubeconfig that has no kubelogin user or no server id: that cluster would hang or fail later."""
    document = yaml.safe_load(kubeconfig) or {}
    converted = 0
    for user in document.get("users") or []:
        credential = (user.get("user") or {}).get("exec") or {}
        if "kubelogin" not in str(credential.get("command", "")).lower():
            continue
        args = [str(arg) for arg in credential.get("args") or []]
        if "--server-id" not in args or args.index("--server-id") + 1 >= len(args):
            raise ValueError(f"AKS returned a kubelogin user {user.get('name')!r} without --server-id")
        server_id = args[args.index("--server-id") + 1]
        credential["args"] = ["get-token", "--login", login, "--server-id", server_id]
        converted += 1
    if not converted:
        raise ValueError("AKS returned a kubeconfig without a kubelogin user (is Entra ID integration off?)")
    return yaml.safe_dump(document, sort_keys=False)


def role_assignment_name(*parts: str) -> str:
    """Azure wants a GUID; derive it from what the assignment is for, so plans stay identical."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "turnout/" + "/".join(parts)))


def role_definition(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "/subscriptions/", subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/", role
    )


def key_vault_name(cluster_name: str, subscription_id: str) -> str:
    """The cluster's Key Vault name: what Azure allows of the cluster name, cut to fit, and 6 hex digits of
    the SHA-256 of subscription and cluster, so the same stack in two subscriptions (or organisations) does
    not claim the same global name: `prod-azure-northeurope` -> `prod-azure-northe-<hex>`."""
    stem = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "", cluster_name.lower())).strip("-")
    if not stem[:1].isalpha():
        stem = "kv" + stem
    digest = hashlib.sha256(f"{subscription_id}/{cluster_name}".encode()).hexdigest()[:6]
    name = f"{stem[: KEY_VAULT_NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"
    problem = RULES["key_vault"].violation(name)
    if problem:  # the table and this function disagree: a turnout bug
        raise ValueError(problem)
    return name


def audit_logs(categories: tuple[str, ...] = AUDIT_LOG_CATEGORIES) -> list[dict]:
    return [{"category": category, "enabled": True} for category in categories]


def kms_profile(key_id: pulumi.Input[str]) -> dict:
    """KMS etcd encryption with `key_id`, the key's versioned identifier (AKS encrypts with that version)."""
    return {"enabled": True, "key_id": key_id, "key_vault_network_access": KMS_NETWORK_ACCESS}


def decode_kubeconfig(value: str) -> str:
    return base64.b64decode(value).decode()


class AksCluster(pulumi.ComponentResource):
    name: str
    region: str
    kubeconfig: pulumi.Output[str]
    """An Entra ID kubeconfig: its user runs `kubelogin get-token --login azurecli` (kubelogin must be on PATH)."""
    provider: k8s.Provider
    access: ApiAccessPath
    """How the deployer reaches the API: mode, from where, as whom, and the admins."""
    oidc_issuer: pulumi.Output[str]
    """Issuer URL of the cluster's service account tokens, for workload identity federation."""
    vnet_id: pulumi.Output[str]
    """The cluster's VNet, for private endpoints and DNS links of services beside it (caches)."""
    node_subnet_id: pulumi.Output[str]
    """The subnet the nodes (and so the pods' egress) live in."""
    network_cidr: str
    private_dns_zone: privatedns.PrivateZone | None
    """A private cluster's API zone (None with allowlist access)."""
    resource_group_name: pulumi.Output[str]
    """The cluster's resource group, for the Azure identities of workloads inside it (cert-manager's)."""

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cluster:AksCluster", name, None, opts)
        check_api_access(args)
        check_cluster_ranges(args)
        self.name = args.cluster_name
        self.region = args.region
        self.network_cidr = args.network_cidr
        self._resource_name = name
        pool_names = agent_pool_names(args.node_pools)
        sizes = [vm_size(pool, index) for index, pool in enumerate(args.node_pools)]
        mine = pulumi.ResourceOptions(parent=self)
        tags = {"managed-by": "pulumi", "turnout-cluster": args.cluster_name}
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self._client = client

        group = resources.ResourceGroup(
            child(name, "rg"),
            resource_group_name=azure_name("resource_group", child(args.cluster_name, "rg")),
            location=args.region,
            tags=tags,
            opts=mine,
        )
        self._group = group
        vnet = network.VirtualNetwork(
            child(name, "vnet"),
            virtual_network_name=azure_name("virtual_network", child(args.cluster_name, "vnet")),
            resource_group_name=group.name,
            location=args.region,
            address_space={"address_prefixes": [args.network_cidr]},
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),  # subnets are their own resources
        )
        nodes_subnet = network.Subnet(
            child(name, "nodes"),
            subnet_name=azure_name("subnet", "nodes"),
            resource_group_name=group.name,
            virtual_network_name=vnet.name,
            address_prefix=node_subnet_cidr(args.network_cidr),
            opts=mine,
        )
        self.vnet_id, self.node_subnet_id = vnet.id, nodes_subnet.id
        self.resource_group_name = group.name
        identity = managedidentity.UserAssignedIdentity(
            child(name, "identity"),
            resource_name_=azure_name("managed_identity", child(args.cluster_name, "identity")),
            resource_group_name=group.name,
            location=args.region,
            tags=tags,
            opts=mine,
        )
        # AKS joins nodes and internal load balancers to the subnet as this identity.
        before_cluster = [
            self._grant(
                "identity-network", nodes_subnet.id, NETWORK_CONTRIBUTOR_ROLE, identity.principal_id, "ServicePrincipal"
            )
        ]
        self.private_dns_zone = None
        if args.api_access == "in-network":
            self.private_dns_zone = privatedns.PrivateZone(
                child(name, "api-dns"),
                private_zone_name=private_dns_zone_name(args.region),
                resource_group_name=group.name,
                location="global",
                tags=tags,
                opts=mine,
            )
            self.link_network(args.cluster_name, vnet.id, mine)
            # AKS writes the API's record into the zone and links it to the VNet as this identity.
            for scope_name, scope in (("api-dns", self.private_dns_zone.id), ("vnet-dns", vnet.id)):
                before_cluster.append(
                    self._grant(
                        f"identity-{scope_name}",
                        scope,
                        PRIVATE_DNS_ZONE_CONTRIBUTOR_ROLE,
                        identity.principal_id,
                        "ServicePrincipal",
                    )
                )

        logs = operationalinsights.Workspace(
            child(name, "logs"),
            workspace_name=azure_name("log_analytics_workspace", child(args.cluster_name, "logs")),
            resource_group_name=group.name,
            location=args.region,
            sku={"name": "PerGB2018"},
            retention_in_days=AUDIT_LOG_RETENTION_DAYS,
            # Diagnostic settings need no workspace key: none exists to leak.
            features={"disable_local_auth": True},
            tags=tags,
            opts=mine,
        )
        vault = keyvault.Vault(
            child(name, "kv"),
            vault_name=client.subscription_id.apply(
                lambda subscription: key_vault_name(args.cluster_name, subscription)
            ),
            resource_group_name=group.name,
            location=args.region,
            properties={
                "tenant_id": client.tenant_id,
                "sku": {"family": "A", "name": "premium"},  # premium: HSM-protected keys
                "enable_rbac_authorization": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": KEY_VAULT_RETENTION_DAYS,
                "enable_purge_protection": True,
                # KMS in Public mode: AKS does not support a vault firewall (see the module docstring).
                "public_network_access": "Enabled",
                "network_acls": {"default_action": "Allow", "bypass": "None"},
                "enabled_for_deployment": False,
                "enabled_for_disk_encryption": False,
                "enabled_for_template_deployment": False,
            },
            tags=tags,
            opts=mine,
        )
        kms_key = keyvault.Key(
            child(name, "kms-key"),
            key_name=KMS_KEY_NAME,
            vault_name=vault.name,
            resource_group_name=group.name,
            properties={
                "kty": KMS_KEY_TYPE,
                "key_size": KMS_KEY_SIZE,
                "key_ops": list(KMS_KEY_OPERATIONS),
                "attributes": {"enabled": True, "exportable": False},
                # A new version yearly, none expiring: AKS keeps using the version it was given until told.
                "rotation_policy": {
                    "lifetime_actions": [
                        {"action": {"type": "rotate"}, "trigger": {"time_after_create": KMS_KEY_ROTATION}}
                    ]
                },
            },
            tags=tags,
            opts=mine,
        )
        # The KMS plugin encrypts and decrypts as the control-plane identity, from the cluster's first boot.
        before_cluster.append(
            self._grant(
                "identity-kms", kms_key.id, KEY_VAULT_CRYPTO_USER_ROLE, identity.principal_id, "ServicePrincipal"
            )
        )

        cluster = containerservice.ManagedCluster(
            child(name, "aks"),
            resource_name_=azure_name("aks_cluster", args.cluster_name),
            resource_group_name=group.name,
            location=args.region,
            dns_prefix=azure_name("aks_dns_prefix", args.cluster_name),
            # A minor version: AKS picks its latest GA patch.
            kubernetes_version=args.kubernetes_version,
            sku={"name": "Base", "tier": "Standard"},
            identity={"type": "UserAssigned", "user_assigned_identities": [identity.id]},
            enable_rbac=True,
            aad_profile={"managed": True, "enable_azure_rbac": True},
            disable_local_accounts=True,
            api_server_access_profile=api_server_access(
                args, self.private_dns_zone.id if self.private_dns_zone is not None else None
            ),
            oidc_issuer_profile={"enabled": True},
            security_profile={
                "workload_identity": {"enabled": True},
                "azure_key_vault_kms": kms_profile(kms_key.key_uri_with_version),
            },
            # patch: automatic upgrades within the configured minor version, so AKS never moves the cluster
            # past turnout:platform.kubernetesVersion (a later `pulumi up` would then try to downgrade it).
            auto_upgrade_profile={"upgrade_channel": "patch", "node_os_upgrade_channel": "NodeImage"},
            network_profile={
                "network_plugin": "azure",
                "network_plugin_mode": "overlay",
                "network_dataplane": "cilium",
                "network_policy": "cilium",
                "pod_cidr": POD_CIDR,
                "service_cidr": SERVICE_CIDR,
                "dns_service_ip": DNS_SERVICE_IP,
                "load_balancer_sku": "standard",
                "outbound_type": "loadBalancer",
            },
            agent_pool_profiles=[
                {
                    "name": SYSTEM_POOL,
                    "mode": "System",
                    "type": "VirtualMachineScaleSets",
                    "os_type": "Linux",
                    "vm_size": CPU_MACHINE_TYPE,
                    "count": SYSTEM_POOL_NODES[0],
                    "enable_auto_scaling": True,
                    "min_count": SYSTEM_POOL_NODES[0],
                    "max_count": SYSTEM_POOL_NODES[1],
                    "vnet_subnet_id": nodes_subnet.id,
                    "enable_node_public_ip": False,
                    "node_taints": [CRITICAL_ADDONS_TAINT],
                    "node_labels": {POOL_LABEL: SYSTEM_POOL},
                }
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=before_cluster, ignore_changes=SYSTEM_POOL_COUNT_DRIFT),
        )
        # Resource-specific tables (AKSAuditAdmin, AKSControlPlane), which AKS's own queries read.
        monitor.DiagnosticSetting(
            child(name, "audit"),
            name=DIAGNOSTIC_SETTING_NAME,
            resource_uri=cluster.id,
            workspace_id=logs.id,
            log_analytics_destination_type="Dedicated",
            logs=audit_logs(),
            opts=mine,
        )
        monitor.DiagnosticSetting(
            child(name, "kv-audit"),
            name=DIAGNOSTIC_SETTING_NAME,
            resource_uri=vault.id,
            workspace_id=logs.id,
            logs=[{"category_group": "audit", "enabled": True}],
            opts=mine,
        )

        pools = []
        for pool, size in zip(args.node_pools, sizes, strict=True):
            labels = {POOL_LABEL: pool.name, **({GPU_LABEL: "true"} if pool.gpu else {})}
            pools.append(
                containerservice.AgentPool(
                    child(name, "pool", pool.name),
                    agent_pool_name=pool_names[pool.name],
                    resource_group_name=group.name,
                    resource_name_=cluster.name,
                    mode="User",
                    type="VirtualMachineScaleSets",
                    os_type="Linux",
                    orchestrator_version=args.kubernetes_version,
                    vm_size=size,
                    # The first size only: the autoscaler owns it afterwards (AKS wants it on create).
                    count=pool.min,
                    enable_auto_scaling=True,
                    min_count=pool.min,
                    max_count=pool.max,
                    vnet_subnet_id=nodes_subnet.id,
                    enable_node_public_ip=False,
                    node_labels=labels,
                    node_taints=[GPU_TAINT] if pool.gpu else None,
                    # AKS installs the NVIDIA driver on GPU sizes; said explicitly, as the default may change.
                    # The NVIDIA device plugin, which advertises nvidia.com/gpu, is not part of the pool.
                    gpu_profile={"driver": "Install"} if pool.gpu else None,
                    tags=tags,
                    opts=pulumi.ResourceOptions(parent=self, ignore_changes=POOL_COUNT_DRIFT),
                )
            )

        access = self._admins(args, group, cluster, client)
        self._image_pulls(args, cluster)

        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=group.name,
            resource_name=cluster.name,
            format="exec",
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[cluster, *pools]),
        )
        self.kubeconfig = pulumi.Output.secret(
            credentials.kubeconfigs[0].value.apply(lambda value: non_interactive_kubeconfig(decode_kubeconfig(value)))
        )
        self.oidc_issuer = cluster.oidc_issuer_profile.apply(lambda profile: profile.issuer_url)
        self.access = access_path(args)
        self.provider = k8s.Provider(
            child(name, "k8s"),
            kubeconfig=self.kubeconfig,
            # Usable once the nodes exist and the deployer may act in the cluster.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster, *pools, *access]),
        )
        if has_gpu_pools(args.node_pools):
            NvidiaDevicePlugin(child(name, "gpu"), pulumi.ResourceOptions(parent=self, provider=self.provider))
        self.register_outputs(
            {
                "name": self.name,
                "region": self.region,
                "kubeconfig": self.kubeconfig,
                "oidcIssuer": self.oidc_issuer,
                "apiAccess": self.access.to_json(),
            }
        )

    def _grant(
        self,
        purpose: str,
        scope: pulumi.Input[str],
        role: str,
        principal_id: pulumi.Input[str],
        principal_type: pulumi.Input[str],
        *,
        name: pulumi.Input[str] | None = None,
        role_subscription: pulumi.Input[str] | None = None,
    ) -> authorization.RoleAssignment:
        """A role assignment of this cluster's, named deterministically from what it is for."""
        return authorization.RoleAssignment(
            child(self._resource_name, purpose),
            role_assignment_name=name or role_assignment_name(self.name, purpose),
            scope=scope,
            role_definition_id=role_definition(role_subscription or self._client.subscription_id, role),
            principal_id=principal_id,
            principal_type=principal_type,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _admins(self, args: ClusterArgs, group, cluster, client) -> list[authorization.RoleAssignment]:
        """RBAC Cluster Admin for the deployer (on the resource group) and each admin (on the cluster)."""
        grants = [
            self._grant(
                "deployer-admin",
                group.id,
                AKS_RBAC_CLUSTER_ADMIN_ROLE,
                client.object_id,
                client.client_id.apply(deployer_principal_type),
                # A new deployer is a new assignment (the old one is removed after), never an in-place change.
                name=client.object_id.apply(lambda object_id: role_assignment_name(self.name, "deployer", object_id)),
            )
        ]
        for principal in args.admins:
            principal_type, object_id = admin_principal(principal)
            grants.append(
                self._grant(
                    f"admin-{object_id}",
                    cluster.id,
                    AKS_RBAC_CLUSTER_ADMIN_ROLE,
                    object_id,
                    principal_type,
                    name=role_assignment_name(self.name, "admin", object_id),
                )
            )
        return grants

    def _image_pulls(self, args: ClusterArgs, cluster) -> None:
        """AcrPull for the kubelet identity on every registry the stack pulls from."""
        kubelet = cluster.identity_profile.apply(lambda profile: profile["kubeletidentity"].object_id)
        for registry_id in args.registries:
            registry = registry_id.rsplit("/", 1)[-1].lower()
            self._grant(
                f"acr-pull-{registry}",
                registry_id,
                ACR_PULL_ROLE,
                kubelet,
                "ServicePrincipal",
                name=role_assignment_name(self.name, "acr-pull", registry_id.lower()),
                # The role definition as seen from the registry's own subscription.
                role_subscription=registry_subscription(registry_id),
            )

    def link_network(self, network_name: str, vnet_id: pulumi.Input[str], opts: pulumi.ResourceOptions) -> None:
        """Resolve this private cluster's API name from `vnet_id` (a region's VNet of the same stack)."""
        if self.private_dns_zone is None:
            return
        privatedns.VirtualNetworkLink(
            child(self._resource_name, "api-dns", network_name),
            virtual_network_link_name=azure_name("private_dns_zone_link", network_name),
            private_zone_name=self.private_dns_zone.name,
            resource_group_name=self._group.name,
            location="global",
            virtual_network={"id": vnet_id},
            registration_enabled=False,
            opts=opts,
        )

    @staticmethod
    def join_regions(clusters: list[AksCluster]) -> None:
        """Link every private cluster's API zone to every other region's VNet, so that one runner peered with the
        regions (or a cluster's workloads) resolves every region's API name."""
        for cluster in clusters:
            for other in clusters:
                if other is not cluster:
                    cluster.link_network(other.name, other.vnet_id, pulumi.ResourceOptions(parent=cluster))
