"""An AKS cluster in its own resource group and VNet: a private API by default, Entra ID sign-in with
Azure RBAC and no local accounts, workload identity, and one autoscaled user pool per node pool.

Choices the stack file does not expose:
- Identity: a user-assigned control-plane identity, granted Network Contributor on the node subnet
  before the cluster exists (a system-assigned one can only be granted after AKS has already needed it).
- Network: Azure CNI overlay with the Cilium dataplane and Cilium network policy; node IPs come from
  the node subnet, pod IPs from an overlay range that never touches the VNet.
- Private API: AKS's Private Link private cluster (no API server subnet); `api_access_cidrs` switches
  to a public endpoint restricted to exactly those CIDRs.
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
  which this private-link cluster does not use (converting is one-way and capacity-limited by region), and
  a vault firewall (selected networks, or public access disabled) is unsupported in `Public` mode as it
  blocks the KMS plugin. `Private` would also take "Key Vault Contributor" for the identity (AKS makes
  its own private endpoint) and a private endpoint for whoever creates the key; moving to it later means
  disabling KMS first (AKS cannot switch an enabled vault's mode).
- The Key Vault's name is global: a `pulumi destroy` keeps it soft-deleted (and, with purge protection,
  unpurgeable) for `KEY_VAULT_RETENTION_DAYS`, so the same stack cannot be recreated in the same
  subscription before then unless the vault is recovered first. The deployer creates the key through ARM
  (`Microsoft.KeyVault/vaults/keys/write`, in Contributor) and needs no role on the vault's data plane.
- With local accounts disabled, Azure RBAC is the only way in: whoever runs `pulumi up` needs
  "Azure Kubernetes Service RBAC Cluster Admin" (or narrower roles) on the cluster, e.g. granted once on
  the subscription. It is not granted here: a role assignment must name the principal's type (user or
  service principal), which the deployment cannot know.
- The kubeconfig is the Entra ID `clusterUser` one in exec format, as AKS returns it: kubelogin (on PATH)
  gets the token with the login mode AKS wrote (device code); a non-interactive deploy needs another mode
  (what `kubelogin convert-kubeconfig -l azurecli` writes).
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import (
    authorization,
    containerservice,
    keyvault,
    managedidentity,
    monitor,
    network,
    operationalinsights,
    resources,
)

from components.cluster import ClusterArgs
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
AGENT_POOL_NAME_MAX = 12  # Linux pools: lowercase letters and digits, starting with a letter

CPU_MACHINE_TYPE = DEFAULT_MACHINE_TYPES["azure"]
# What a GPU pool gets when its machine type is the CPU default: the smallest T4 size with enough GPUs.
GPU_MACHINE_TYPES = ((1, "Standard_NC4as_T4_v3"), (4, "Standard_NC64as_T4_v3"))

# AKS's own defaults, written out so the plan shows them: the VNet and the overlay ranges must not overlap.
VNET_CIDR = "10.224.0.0/12"
NODE_SUBNET_CIDR = "10.224.0.0/16"
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.0.0.0/16"
DNS_SERVICE_IP = "10.0.0.10"

# Built-in Azure role definitions (the same GUID in every subscription).
NETWORK_CONTRIBUTOR_ROLE = "4d97b98b-1d4f-4787-a291-c67834d212e7"
KEY_VAULT_CRYPTO_USER_ROLE = "12338af0-0e69-4776-bea7-57ae8d297424"

# The control plane's resource logs worth keeping (Azure Monitor's categories for managedClusters).
AUDIT_LOG_CATEGORIES = ("kube-audit-admin", "guard", "kube-apiserver", "kube-controller-manager")
AUDIT_LOG_RETENTION_DAYS = 90
DIAGNOSTIC_SETTING_NAME = "turnout-audit"

KEY_VAULT_NAME_MAX = 24  # 3-24 letters, digits and hyphens, starting with a letter; unique across Azure
KEY_VAULT_RETENTION_DAYS = 90  # how long a deleted vault (and key) stays recoverable: the longest allowed
KMS_KEY_NAME = "etcd-kms"
KMS_KEY_TYPE = "RSA-HSM"
KMS_KEY_SIZE = 3072
KMS_KEY_ROTATION = "P1Y"
KMS_KEY_OPERATIONS = ("encrypt", "decrypt")
KMS_NETWORK_ACCESS = "Public"


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
        azure_name = agent_pool_name(pool.name)
        taken = next((other for other, name in names.items() if name == azure_name), None)
        if taken is not None:
            raise ConfigError(
                key_path(f"platform.nodePools[{index}].name"),
                f'"{pool.name}", whose AKS pool name "{azure_name}" is also pool "{taken}"\'s',
                "pool names that stay distinct as AKS names (lowercase letters and digits, at most 12)",
            )
        names[pool.name] = azure_name
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


def api_server_access(api_access_cidrs: tuple[str, ...]) -> dict:
    """A Private Link private cluster, or a public endpoint open to exactly the allowlist."""
    if not api_access_cidrs:
        return {"enable_private_cluster": True, "enable_private_cluster_public_fqdn": False}
    return {"enable_private_cluster": False, "authorized_ip_ranges": list(api_access_cidrs)}


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
    return f"{stem[: KEY_VAULT_NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"


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
    """An Entra ID kubeconfig: its user runs `kubelogin get-token` (kubelogin must be on PATH)."""
    provider: k8s.Provider
    oidc_issuer: pulumi.Output[str]
    """Issuer URL of the cluster's service account tokens, for workload identity federation."""
    vnet_id: pulumi.Output[str]
    """The cluster's VNet, for private endpoints and DNS links of services beside it (caches)."""
    node_subnet_id: pulumi.Output[str]
    """The subnet the nodes (and so the pods' egress) live in."""
    resource_group_name: pulumi.Output[str]
    """The cluster's resource group, for the Azure identities of workloads inside it (cert-manager's)."""

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cluster:AksCluster", name, None, opts)
        self.name = args.cluster_name
        self.region = args.region
        pool_names = agent_pool_names(args.node_pools)
        sizes = [vm_size(pool, index) for index, pool in enumerate(args.node_pools)]
        mine = pulumi.ResourceOptions(parent=self)
        tags = {"managed-by": "pulumi", "turnout-cluster": args.cluster_name}
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))

        group = resources.ResourceGroup(
            child(name, "rg"),
            resource_group_name=child(args.cluster_name, "rg"),
            location=args.region,
            tags=tags,
            opts=mine,
        )
        vnet = network.VirtualNetwork(
            child(name, "vnet"),
            virtual_network_name=child(args.cluster_name, "vnet"),
            resource_group_name=group.name,
            location=args.region,
            address_space={"address_prefixes": [VNET_CIDR]},
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),  # subnets are their own resources
        )
        nodes_subnet = network.Subnet(
            child(name, "nodes"),
            subnet_name="nodes",
            resource_group_name=group.name,
            virtual_network_name=vnet.name,
            address_prefix=NODE_SUBNET_CIDR,
            opts=mine,
        )
        self.vnet_id, self.node_subnet_id = vnet.id, nodes_subnet.id
        self.resource_group_name = group.name
        identity = managedidentity.UserAssignedIdentity(
            child(name, "identity"),
            resource_name_=child(args.cluster_name, "identity"),
            resource_group_name=group.name,
            location=args.region,
            tags=tags,
            opts=mine,
        )
        # AKS joins nodes and internal load balancers to the subnet as this identity.
        subnet_access = authorization.RoleAssignment(
            child(name, "identity-network"),
            role_assignment_name=role_assignment_name(args.cluster_name, "identity-network"),
            scope=nodes_subnet.id,
            role_definition_id=role_definition(client.subscription_id, NETWORK_CONTRIBUTOR_ROLE),
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            opts=mine,
        )

        logs = operationalinsights.Workspace(
            child(name, "logs"),
            workspace_name=child(args.cluster_name, "logs"),
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
        key_access = authorization.RoleAssignment(
            child(name, "identity-kms"),
            role_assignment_name=role_assignment_name(args.cluster_name, "identity-kms"),
            scope=kms_key.id,
            role_definition_id=role_definition(client.subscription_id, KEY_VAULT_CRYPTO_USER_ROLE),
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            opts=mine,
        )

        cluster = containerservice.ManagedCluster(
            child(name, "aks"),
            resource_name_=args.cluster_name,
            resource_group_name=group.name,
            location=args.region,
            dns_prefix=args.cluster_name,
            # A minor version: AKS picks its latest GA patch.
            kubernetes_version=args.kubernetes_version,
            sku={"name": "Base", "tier": "Standard"},
            identity={"type": "UserAssigned", "user_assigned_identities": [identity.id]},
            enable_rbac=True,
            aad_profile={"managed": True, "enable_azure_rbac": True},
            disable_local_accounts=True,
            api_server_access_profile=api_server_access(args.api_access_cidrs),
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[subnet_access, key_access]),
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
                    opts=mine,
                )
            )

        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=group.name,
            resource_name=cluster.name,
            format="exec",
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[cluster, *pools]),
        )
        self.kubeconfig = pulumi.Output.secret(credentials.kubeconfigs[0].value.apply(decode_kubeconfig))
        self.oidc_issuer = cluster.oidc_issuer_profile.apply(lambda profile: profile.issuer_url)
        self.provider = k8s.Provider(
            child(name, "k8s"),
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster, *pools]),
        )
        if has_gpu_pools(args.node_pools):
            NvidiaDevicePlugin(child(name, "gpu"), pulumi.ResourceOptions(parent=self, provider=self.provider))
        self.register_outputs(
            {"name": self.name, "region": self.region, "kubeconfig": self.kubeconfig, "oidcIssuer": self.oidc_issuer}
        )
