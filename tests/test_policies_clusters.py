"""Cluster rules of the policy pack on raw EKS, GKE and AKS resources: each passes, fails and reads a
missing property the way its docstring says, on every cloud it reads (tests/test_policies.py runs the cases,
offline and through the real analyzer)."""

from __future__ import annotations

import json

import pulumi_aws as aws
import pulumi_gcp as gcp
from pulumi_azure_native import containerservice, monitor

from tests.policy_cases import fails, missing, passes

ACCOUNT = "123456789012"
KMS_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
EKS = "prod-us-east-1"
GKE = "prod-europe-west4"
GKE_KEY = f"projects/acme/locations/europe-west4/keyRings/{GKE}/cryptoKeys/gke-secrets"
AKS = "prod-westeurope"
AKS_GROUP = f"{AKS}-rg"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
AKS_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{AKS_GROUP}/providers/Microsoft.ContainerService/managedClusters/"
    f"{AKS}"
)
VAULT = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{AKS_GROUP}/providers/Microsoft.KeyVault/vaults/{AKS}-kms"
VAULT_KEY = f"https://{AKS}-kms.vault.azure.net/keys/etcd/0123456789abcdef0123456789abcdef"
WORKSPACE = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{AKS_GROUP}/providers/Microsoft.OperationalInsights/workspaces/logs"
)
ALLOWLIST = ["203.0.113.0/24"]


def _merged(defaults: dict, overrides: dict) -> dict:
    """`defaults` with `overrides` applied; an override of None leaves the property out."""
    return {key: value for key, value in {**defaults, **overrides}.items() if value is not None}


# --- EKS ---------------------------------------------------------------------------------------------------------


def eks_cluster(name: str = EKS, **overrides) -> aws.eks.Cluster:
    """An EKS cluster as components/cluster/eks.py makes it: private API, KMS secrets, audit logs."""
    defaults = {
        "name": name,
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/{name}-cluster",
        "version": "1.34",
        "vpc_config": {"subnet_ids": ["subnet-0a"], "endpoint_private_access": True, "endpoint_public_access": False},
        "encryption_config": {"provider": {"key_arn": KMS_KEY}, "resources": ["secrets"]},
        "enabled_cluster_log_types": ["api", "audit", "authenticator"],
    }
    return aws.eks.Cluster(name, **_merged(defaults, overrides))


def public_eks(*cidrs: str) -> aws.eks.Cluster:
    vpc = {"subnet_ids": ["subnet-0a"], "endpoint_private_access": True, "endpoint_public_access": True}
    return eks_cluster(vpc_config={**vpc, **({"public_access_cidrs": list(cidrs)} if cidrs else {})})


def vpc_cni(cluster: aws.eks.Cluster, values: dict | None = None, name: str = "vpc-cni") -> aws.eks.Addon:
    values = {"enableNetworkPolicy": "true"} if values is None else values
    return aws.eks.Addon(
        f"{name}-{len(values)}", cluster_name=cluster.name, addon_name=name, configuration_values=json.dumps(values)
    )


def irsa(cluster: aws.eks.Cluster, url=None) -> aws.iam.OpenIdConnectProvider:
    issuer = cluster.identities.apply(lambda identities: identities[0].oidcs[0].issuer)
    return aws.iam.OpenIdConnectProvider("oidc", url=url or issuer, client_id_lists=["sts.amazonaws.com"])


def subnet(name: str, public: bool | None = False) -> aws.ec2.Subnet:
    extra = {} if public is None else {"map_public_ip_on_launch": public}
    return aws.ec2.Subnet(name, vpc_id="vpc-0a", cidr_block="10.0.0.0/19", **extra)


def node_group(cluster: aws.eks.Cluster, subnets, name: str = "general", **overrides) -> aws.eks.NodeGroup:
    defaults = {
        "cluster_name": cluster.name,
        "node_group_name": name,
        "node_role_arn": f"arn:aws:iam::{ACCOUNT}:role/{EKS}-node",
        "subnet_ids": [s.id for s in subnets],
        "scaling_config": {"min_size": 2, "max_size": 6, "desired_size": 2},
    }
    return aws.eks.NodeGroup(f"{EKS}-{name}", **_merged(defaults, overrides))


def eks_with(*parts):
    """A program: an EKS cluster and, for each of `parts`, what it adds to the cluster."""

    def program():
        cluster = eks_cluster()
        for part in parts:
            part(cluster)

    return program


def eks_nodes(public: bool | None):
    def program():
        cluster = eks_cluster()
        node_group(cluster, [subnet("private-0"), subnet("nodes-1", public=public)])

    return program


# --- GKE ---------------------------------------------------------------------------------------------------------


def gke_cluster(**overrides) -> gcp.container.Cluster:
    """A GKE cluster as components/cluster/gke.py makes it."""
    defaults = {
        "name": GKE,
        "location": "europe-west4",
        "min_master_version": "1.34",
        "release_channel": {"channel": "REGULAR"},
        "remove_default_node_pool": True,
        "initial_node_count": 1,
        "private_cluster_config": {"enable_private_nodes": True, "enable_private_endpoint": True},
        "workload_identity_config": {"workload_pool": "acme.svc.id.goog"},
        "database_encryption": {"state": "ENCRYPTED", "key_name": GKE_KEY},
        "datapath_provider": "ADVANCED_DATAPATH",
    }
    return gcp.container.Cluster(GKE, **_merged(defaults, overrides))


def gke_pool(name: str = "general", **overrides) -> gcp.container.NodePool:
    defaults = {
        "name": name,
        "cluster": GKE,
        "location": "europe-west4",
        "management": {"auto_repair": True, "auto_upgrade": True},
        "node_config": {"machine_type": "n2-standard-4", "workload_metadata_config": {"mode": "GKE_METADATA"}},
    }
    return gcp.container.NodePool(f"{GKE}-{name}", **_merged(defaults, overrides))


def public_gke(**networks) -> gcp.container.Cluster:
    return gke_cluster(
        private_cluster_config={"enable_private_nodes": True, "enable_private_endpoint": False},
        master_authorized_networks_config=networks or None,
    )


# --- AKS ---------------------------------------------------------------------------------------------------------

AKS_SECURITY = {
    "workload_identity": {"enabled": True},
    "azure_key_vault_kms": {
        "enabled": True,
        "key_id": VAULT_KEY,
        "key_vault_network_access": "Private",
        "key_vault_resource_id": VAULT,
    },
}
SYSTEM_POOL = {"name": "system", "mode": "System", "vm_size": "Standard_D4s_v5", "count": 2}


def aks_cluster(name: str = AKS, **overrides) -> containerservice.ManagedCluster:
    """An AKS cluster as components/cluster/aks.py makes it, plus KMS etcd encryption."""
    defaults = {
        "resource_name_": name,
        "resource_group_name": AKS_GROUP,
        "location": "westeurope",
        "dns_prefix": name,
        "kubernetes_version": "1.34",
        "api_server_access_profile": {"enable_private_cluster": True},
        "oidc_issuer_profile": {"enabled": True},
        "security_profile": AKS_SECURITY,
        "auto_upgrade_profile": {"upgrade_channel": "patch", "node_os_upgrade_channel": "NodeImage"},
        "network_profile": {"network_plugin": "azure", "network_plugin_mode": "overlay", "network_policy": "cilium"},
        "agent_pool_profiles": [{**SYSTEM_POOL, "enable_node_public_ip": False}],
    }
    return containerservice.ManagedCluster(name, **_merged(defaults, overrides))


def aks_pool(name: str = "general", **overrides) -> containerservice.AgentPool:
    defaults = {
        "agent_pool_name": name,
        "resource_group_name": AKS_GROUP,
        "resource_name_": AKS,
        "mode": "User",
        "vm_size": "Standard_D4s_v5",
        "count": 2,
        "orchestrator_version": "1.34",
        "enable_node_public_ip": False,
    }
    return containerservice.AgentPool(f"{AKS}-{name}", **_merged(defaults, overrides))


def aks_audit(uri: str = AKS_ID, **log) -> monitor.DiagnosticSetting:
    entry = {"category": "kube-audit-admin", "enabled": True, **log}
    return monitor.DiagnosticSetting(
        "audit", resource_uri=uri, workspace_id=WORKSPACE, logs=[{k: v for k, v in entry.items() if v is not None}]
    )


def public_aks(*cidrs: str) -> containerservice.ManagedCluster:
    access = {"enable_private_cluster": False, **({"authorized_ip_ranges": list(cidrs)} if cidrs else {})}
    return aks_cluster(api_server_access_profile=access)


EKS_NAME = f"EKS cluster {EKS}"
GKE_NAME = f"GKE cluster {GKE}"
AKS_NAME = f"AKS cluster {AKS}"
WHOLE_INTERNET = "the API endpoint's allowlist includes 0.0.0.0/0, the whole internet."
NO_ALLOWLIST = "the API endpoint is public to the whole internet (no CIDR allowlist)."

CASES = {
    "cluster-private-endpoint": [
        passes(lambda: eks_cluster()),
        passes(lambda: public_eks(*ALLOWLIST)),
        passes(lambda: gke_cluster()),
        passes(lambda: public_gke(cidr_blocks=[{"cidr_block": ALLOWLIST[0]}])),
        # No IP endpoint at all: only the DNS endpoint, which IAM guards.
        passes(
            lambda: gke_cluster(
                private_cluster_config={"enable_private_nodes": True},
                control_plane_endpoints_config={"ip_endpoints_config": {"enabled": False}},
            )
        ),
        passes(lambda: aks_cluster()),
        passes(lambda: public_aks(*ALLOWLIST)),
        fails(lambda: public_eks("0.0.0.0/0"), f"{EKS_NAME}: {WHOLE_INTERNET}"),
        fails(lambda: public_eks(), f"{EKS_NAME}: {NO_ALLOWLIST}"),
        fails(lambda: public_gke(), f"{GKE_NAME}: {NO_ALLOWLIST}"),
        fails(
            lambda: public_gke(cidr_blocks=[{"cidr_block": "0.0.0.0/0"}], gcp_public_cidrs_access_enabled=True),
            f"{GKE_NAME}: the API endpoint admits every Google Cloud address (gcpPublicCidrsAccessEnabled).",
            f"{GKE_NAME}: {WHOLE_INTERNET}",
        ),
        fails(
            lambda: public_aks("10.0.0.0/8", "::/0"),
            f"{AKS_NAME}: the API endpoint's allowlist includes ::/0, the whole internet.",
        ),
        fails(lambda: public_aks(), f"{AKS_NAME}: {NO_ALLOWLIST}"),
        # AWS makes an endpoint public, to 0.0.0.0/0, unless told otherwise.
        missing(lambda: eks_cluster(vpc_config={"subnet_ids": ["subnet-0a"]}), f"{EKS_NAME}: {NO_ALLOWLIST}"),
        missing(lambda: gke_cluster(private_cluster_config=None), f"{GKE_NAME}: {NO_ALLOWLIST}"),
        missing(lambda: aks_cluster(api_server_access_profile=None), f"{AKS_NAME}: {NO_ALLOWLIST}"),
        missing(lambda: subnet("private-0")),
    ],
    "cluster-secrets-encryption": [
        passes(lambda: eks_cluster()),
        passes(lambda: gke_cluster()),
        passes(lambda: aks_cluster()),
        fails(
            lambda: gke_cluster(database_encryption={"state": "DECRYPTED"}),
            f"{GKE_NAME}: Secrets are not encrypted with a Cloud KMS key (databaseEncryption is not ENCRYPTED with a "
            "keyName).",
        ),
        fails(
            lambda: aks_cluster(
                security_profile={**AKS_SECURITY, "azure_key_vault_kms": {"enabled": False}},
            ),
            f"{AKS_NAME}: Secrets are not encrypted with a Key Vault key (securityProfile.azureKeyVaultKms is not "
            "enabled).",
        ),
        fails(
            lambda: eks_cluster(encryption_config={"provider": {"key_arn": KMS_KEY}, "resources": []}),
            f"{EKS_NAME}: Secrets are not envelope-encrypted with a KMS key (no encryptionConfig for secrets).",
        ),
        # No opt-in, no customer key: EKS's default envelope encryption uses a key that is AWS's, not yours.
        missing(
            lambda: eks_cluster(encryption_config=None),
            f"{EKS_NAME}: Secrets are not envelope-encrypted with a KMS key (no encryptionConfig for secrets).",
        ),
        missing(
            lambda: gke_cluster(database_encryption=None),
            f"{GKE_NAME}: Secrets are not encrypted with a Cloud KMS key (databaseEncryption is not ENCRYPTED with a "
            "keyName).",
        ),
        missing(
            lambda: aks_cluster(security_profile={"workload_identity": {"enabled": True}}),
            f"{AKS_NAME}: Secrets are not encrypted with a Key Vault key (securityProfile.azureKeyVaultKms is not "
            "enabled).",
        ),
    ],
    "cluster-audit-logs": [
        passes(lambda: eks_cluster()),
        passes(lambda: gke_cluster()),  # GKE's Admin Activity audit logs are always on
        passes(lambda: (aks_cluster(), aks_audit())),
        passes(lambda: (aks_cluster(), aks_audit(category=None, category_group="allLogs"))),
        fails(
            lambda: eks_cluster(enabled_cluster_log_types=["api", "authenticator"]),
            f"{EKS_NAME}: the audit log type is not enabled (enabledClusterLogTypes).",
        ),
        fails(
            lambda: (aks_cluster(), aks_audit(category="kube-apiserver")),
            f"{AKS_NAME}: no diagnostic setting collects its kube-audit logs.",
        ),
        fails(
            lambda: (aks_cluster(), aks_audit(enabled=False)),
            f"{AKS_NAME}: no diagnostic setting collects its kube-audit logs.",
        ),
        fails(
            lambda: (aks_cluster(), aks_audit(uri=AKS_ID.replace(AKS, "staging-westeurope"))),
            f"{AKS_NAME}: no diagnostic setting collects its kube-audit logs.",
        ),
        missing(
            lambda: eks_cluster(enabled_cluster_log_types=None),
            f"{EKS_NAME}: the audit log type is not enabled (enabledClusterLogTypes).",
        ),
        missing(lambda: aks_cluster(), f"{AKS_NAME}: no diagnostic setting collects its kube-audit logs."),
    ],
    "cluster-network-policy": [
        passes(eks_with(vpc_cni)),
        passes(lambda: gke_cluster()),
        passes(
            lambda: gke_cluster(
                datapath_provider=None,
                network_policy={"enabled": True, "provider": "CALICO"},
                addons_config={"network_policy_config": {"disabled": False}},
            )
        ),
        passes(lambda: aks_cluster()),
        fails(
            eks_with(lambda cluster: vpc_cni(cluster, {"enableNetworkPolicy": "false"})),
            f"{EKS_NAME}: NetworkPolicies are not enforced (no vpc-cni add-on with enableNetworkPolicy).",
        ),
        fails(
            eks_with(lambda cluster: vpc_cni(cluster, name="coredns")),
            f"{EKS_NAME}: NetworkPolicies are not enforced (no vpc-cni add-on with enableNetworkPolicy).",
        ),
        fails(
            lambda: gke_cluster(
                datapath_provider="LEGACY_DATAPATH",
                network_policy={"enabled": True, "provider": "CALICO"},
                addons_config={"network_policy_config": {"disabled": True}},
            ),
            f"{GKE_NAME}: NetworkPolicies are not enforced (neither Dataplane V2 nor networkPolicy).",
        ),
        fails(
            lambda: aks_cluster(network_profile={"network_plugin": "azure", "network_policy": "none"}),
            f"{AKS_NAME}: NetworkPolicies are not enforced (networkProfile.networkPolicy is none).",
        ),
        # The VPC CNI that EKS installs by itself leaves network policy off.
        missing(
            eks_with(),
            f"{EKS_NAME}: NetworkPolicies are not enforced (no vpc-cni add-on with enableNetworkPolicy).",
        ),
        missing(
            lambda: gke_cluster(datapath_provider=None),
            f"{GKE_NAME}: NetworkPolicies are not enforced (neither Dataplane V2 nor networkPolicy).",
        ),
        missing(
            lambda: aks_cluster(network_profile={"network_plugin": "kubenet"}),
            f"{AKS_NAME}: NetworkPolicies are not enforced (no networkProfile.networkPolicy).",
        ),
    ],
    "cluster-auto-upgrade": [
        passes(lambda: eks_cluster()),  # AWS patches EKS control planes itself
        passes(lambda: (gke_cluster(), gke_pool())),
        passes(lambda: aks_cluster()),
        fails(
            lambda: gke_cluster(release_channel={"channel": "UNSPECIFIED"}),
            f"{GKE_NAME}: it is opted out of release channels (releaseChannel UNSPECIFIED).",
        ),
        fails(
            lambda: gke_pool(management={"auto_repair": True, "auto_upgrade": False}),
            "GKE node pool general: management.autoUpgrade is off.",
        ),
        fails(
            lambda: aks_cluster(
                auto_upgrade_profile={"upgrade_channel": "node-image", "node_os_upgrade_channel": "None"}
            ),
            f"{AKS_NAME}: autoUpgradeProfile.nodeOSUpgradeChannel is None: node OS security patches never arrive.",
            f"{AKS_NAME}: autoUpgradeProfile.upgradeChannel is node-image, which applies no Kubernetes patches.",
        ),
        missing(lambda: (gke_cluster(release_channel=None), gke_pool(management=None))),  # GKE's defaults patch
        missing(
            lambda: aks_cluster(auto_upgrade_profile=None),
            f"{AKS_NAME}: no autoUpgradeProfile.upgradeChannel (AKS's default, none, applies no patches).",
        ),
    ],
    "cluster-workload-identity": [
        passes(eks_with(irsa)),
        passes(eks_with(lambda cluster: vpc_cni(cluster, {}, name="eks-pod-identity-agent"))),
        passes(lambda: (gke_cluster(), gke_pool())),
        passes(lambda: aks_cluster()),
        fails(
            eks_with(lambda cluster: irsa(cluster, url="https://oidc.eks.us-east-1.amazonaws.com/id/ANOTHER")),
            f"{EKS_NAME}: no IAM OIDC provider for its issuer (IRSA) and no EKS Pod Identity agent.",
        ),
        fails(
            lambda: gke_pool(
                node_config={"machine_type": "n2-standard-4", "workload_metadata_config": {"mode": "GCE_METADATA"}}
            ),
            "GKE node pool general: its pods get the node's service account (workloadMetadataConfig GCE_METADATA).",
        ),
        fails(
            lambda: aks_cluster(security_profile={**AKS_SECURITY, "workload_identity": {"enabled": False}}),
            f"{AKS_NAME}: workload identity is off (no securityProfile.workloadIdentity.enabled).",
        ),
        missing(eks_with(), f"{EKS_NAME}: no IAM OIDC provider for its issuer (IRSA) and no EKS Pod Identity agent."),
        missing(
            lambda: gke_cluster(workload_identity_config=None),
            f"{GKE_NAME}: Workload Identity is off (no workloadIdentityConfig.workloadPool).",
        ),
        missing(
            lambda: aks_cluster(oidc_issuer_profile=None, security_profile=None),
            f"{AKS_NAME}: workload identity is off (no oidcIssuerProfile.enabled and no "
            "securityProfile.workloadIdentity.enabled).",
        ),
    ],
    "no-public-node-ips": [
        passes(eks_nodes(public=False)),
        passes(lambda: (eks_cluster(), subnet("public-0", public=True))),  # no node group in the stack
        passes(lambda: (gke_cluster(), gke_pool())),
        passes(lambda: (aks_cluster(), aks_pool())),
        # Offline plans record neither dependencies nor subnet ids: a public subnet may be the node group's.
        fails(
            eks_nodes(public=True),
            "subnet nodes-1 maps public IPs on launch, and EKS node group general may run in it.",
        ),
        fails(
            lambda: gke_cluster(private_cluster_config={"enable_private_nodes": False}),
            f"{GKE_NAME}: nodes get public IPs (privateClusterConfig.enablePrivateNodes is off).",
        ),
        fails(
            lambda: gke_pool(network_config={"enable_private_nodes": False}),
            "GKE node pool general: its nodes get public IPs (networkConfig.enablePrivateNodes false).",
        ),
        fails(
            lambda: aks_cluster(agent_pool_profiles=[{**SYSTEM_POOL, "enable_node_public_ip": True}]),
            f"{AKS_NAME}: agent pool system gives its nodes public IPs (enableNodePublicIP).",
        ),
        fails(
            lambda: aks_pool(enable_node_public_ip=True),
            "AKS agent pool general: its nodes get public IPs (enableNodePublicIP).",
        ),
        missing(eks_nodes(public=None)),  # AWS's default for a subnet is no public IPs
        missing(
            lambda: gke_cluster(private_cluster_config=None),
            f"{GKE_NAME}: nodes get public IPs (privateClusterConfig.enablePrivateNodes is off).",
        ),
        missing(lambda: (aks_cluster(agent_pool_profiles=[SYSTEM_POOL]), aks_pool(enable_node_public_ip=None))),
    ],
    "supported-kubernetes-version": [
        passes(lambda: eks_cluster(version="1.32")),
        passes(lambda: (gke_cluster(min_master_version="1.36.2-gke.1100000"), gke_pool(version="1.36"))),
        passes(lambda: (aks_cluster(), aks_pool())),
        passes(lambda: eks_cluster(version="1.30"), config={"supported-kubernetes-version": {"minimum": "1.30"}}),
        fails(
            lambda: eks_cluster(version="1.31"),
            f"{EKS_NAME}: version 1.31 is older than the supported window 1.32–1.36.",
        ),
        fails(
            lambda: node_group(eks_cluster(), [], version="1.30"),
            "EKS node group general: version 1.30 is older than the supported window 1.32–1.36.",
        ),
        fails(
            lambda: gke_cluster(min_master_version="1.37.0-gke.100"),
            f"{GKE_NAME}: minMasterVersion 1.37.0-gke.100 is newer than the supported window 1.32–1.36.",
        ),
        fails(
            lambda: aks_cluster(agent_pool_profiles=[{**SYSTEM_POOL, "orchestrator_version": "1.29"}]),
            f"{AKS_NAME}: agent pool system 1.29 is older than the supported window 1.32–1.36.",
        ),
        fails(
            lambda: aks_pool(orchestrator_version="1.34"),
            "AKS agent pool general: orchestratorVersion 1.34 is older than the supported window 1.35–1.36.",
            config={"supported-kubernetes-version": {"minimum": "1.35"}},
        ),
        missing(lambda: eks_cluster(version=None)),  # the cloud's current default version
        missing(lambda: gke_cluster(min_master_version="latest")),
        missing(lambda: aks_cluster(kubernetes_version=None)),
    ],
}
