"""Azure Native's answers for offline plans: ARM ids, names and the outputs AKS computes, all derived
from the resource's inputs and name with `stable_hash`, never random.

Outputs use the provider's wire (camelCase) names, as `pulumi_azure_native` reads them back.
"""

from __future__ import annotations

import base64
import copy
import re

import yaml

from turnout.offline.mocks import OFFLINE_CA_PEM, stable_hash

PREFIX = "azure-native:"
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
TENANT_ID = "11111111-1111-1111-1111-111111111111"
# Who runs `pulumi up` offline: the object a role assignment to "the deployer" names.
DEPLOYER_OBJECT_ID = "22222222-2222-2222-2222-222222222222"
DEPLOYER_CLIENT_ID = "33333333-3333-3333-3333-333333333333"
# Microsoft's first-party applications an AKS Entra ID kubeconfig asks kubelogin for tokens with.
AKS_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
AZURE_CLI_CLIENT_APP_ID = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"

USER_CREDENTIALS = "azure-native:containerservice:listManagedClusterUserCredentials"
CLIENT_CONFIG = "azure-native:authorization:getClientConfig"

# ARM provider namespace and the input naming each resource, per module.
NAMESPACES = {
    "resources": "Microsoft.Resources",
    "network": "Microsoft.Network",
    "containerservice": "Microsoft.ContainerService",
    "managedidentity": "Microsoft.ManagedIdentity",
    "authorization": "Microsoft.Authorization",
    "keyvault": "Microsoft.KeyVault",
    "monitor": "Microsoft.Insights",
    "operationalinsights": "Microsoft.OperationalInsights",
    "privatedns": "Microsoft.Network",
}
NAME_INPUTS = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:network:VirtualNetwork": "virtualNetworkName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:containerservice:ManagedCluster": "resourceName",
    "azure-native:containerservice:AgentPool": "agentPoolName",
    "azure-native:managedidentity:UserAssignedIdentity": "resourceName",
    "azure-native:authorization:RoleAssignment": "roleAssignmentName",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:keyvault:Key": "keyName",
    "azure-native:operationalinsights:Workspace": "workspaceName",
    "azure-native:monitor:DiagnosticSetting": "name",
    "azure-native:privatedns:PrivateZone": "privateZoneName",
    "azure-native:privatedns:VirtualNetworkLink": "virtualNetworkLinkName",
}
KEY_VAULT_DNS_SUFFIX = "vault.azure.net"

# Clusters registered so far, by (resource group, name): the credentials invoke names only those two,
# and a kubeconfig's server is the cluster's private or public API name.
_clusters: dict[tuple[str, str], str] = {}
_servers: dict[tuple[str, str], str] = {}
# The ARM id each offline Pulumi id stands for: a diagnostic setting's state names its resource by ARM id.
_arm_ids: dict[str, str] = {}


def guid(*parts: str) -> str:
    digest = stable_hash(*parts, length=32)
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


def group_id(group: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}"


def api_server_host(group: str, cluster: str, region: str) -> str:
    """The private API server name AKS gives a cluster, `<cluster>-<hex>.privatelink.<region>.azmk8s.io`."""
    return f"{cluster}-{stable_hash('aks', group, cluster)}.privatelink.{region}.azmk8s.io"


def _generic_id(type_: str, name: str, inputs: dict) -> str:
    _, module, resource = type_.split(":", 2)
    namespace = NAMESPACES.get(module, f"Microsoft.{module.capitalize()}")
    singular = resource[:1].lower() + resource[1:]
    plural = singular[:-1] + "ies" if singular.endswith("y") else singular + "s"
    return f"{group_id(inputs.get('resourceGroupName', ''))}/providers/{namespace}/{plural}/{name}"


def offline_id(type_: str, name: str) -> str:
    """The Pulumi id OfflineMocks gives a resource (mocks.py): what `resource.id` resolves to offline."""
    return f"{name}-{stable_hash(type_, name)}"


def vault_uri(vault: str) -> str:
    return f"https://{vault}.{KEY_VAULT_DNS_SUFFIX}/"


def key_version(group: str, vault: str, key: str) -> str:
    """A key version's identifier: 32 hex digits, as Key Vault makes them."""
    return stable_hash("key-version", group, vault, key, length=32)


def _key_outputs(state: dict, name: str, inputs: dict) -> dict:
    group, vault = inputs.get("resourceGroupName", ""), inputs["vaultName"]
    vault_id = _generic_id("azure-native:keyvault:Vault", vault, inputs)
    state["id"] = f"{vault_id}/keys/{name}"
    # Azure answers the key's properties flattened, with its URI with and without the current version.
    state.update(state.pop("properties", None) or {})
    state["keyUri"] = f"{vault_uri(vault)}keys/{name}"
    state["keyUriWithVersion"] = f"{state['keyUri']}/{key_version(group, vault, name)}"
    return state


def _cluster_outputs(state: dict, name: str, inputs: dict) -> dict:
    group, region = inputs["resourceGroupName"], inputs.get("location", "")
    _clusters[(group, name)] = region
    access = inputs.get("apiServerAccessProfile") or {}
    prefix = inputs.get("dnsPrefix", name)
    digest = stable_hash("aks", group, name)
    if access.get("enablePrivateCluster"):
        state["privateFQDN"] = api_server_host(group, name, region)
        _servers[(group, name)] = state["privateFQDN"]
    else:
        state["fqdn"] = f"{prefix}-{digest}.hcp.{region}.azmk8s.io"
        state["azurePortalFQDN"] = f"{prefix}-{digest}.portal.hcp.{region}.azmk8s.io"
        _servers[(group, name)] = state["fqdn"]
    oidc = dict(inputs.get("oidcIssuerProfile") or {})
    if oidc.get("enabled"):
        oidc["issuerURL"] = f"https://{region}.oic.prod-aks.azure.com/{TENANT_ID}/{guid('oidc', group, name)}/"
    state["oidcIssuerProfile"] = oidc
    identity = dict(inputs.get("identity") or {})
    # The input lists user-assigned identity ids; Azure answers a map of id to the identity's ids.
    identity["userAssignedIdentities"] = {
        resource_id: {"principalId": guid("principal", resource_id), "clientId": guid("client", resource_id)}
        for resource_id in identity.get("userAssignedIdentities") or []
    }
    state["identity"] = identity
    node_group = state.setdefault("nodeResourceGroup", f"MC_{group}_{name}_{region}")
    kubelet_id = f"{group_id(node_group)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool"
    state["identityProfile"] = {
        "kubeletidentity": {
            "resourceId": kubelet_id,
            "clientId": guid("client", kubelet_id),
            "objectId": guid("principal", kubelet_id),
        }
    }
    state["maxAgentPools"] = 100
    state["powerState"] = {"code": "Running"}
    state["resourceUID"] = stable_hash("uid", group, name, length=24)
    return state


def resource_outputs(type_: str, name: str, inputs: dict) -> dict | None:
    """What Azure Native returns for an `azure-native:` resource; None for any other type."""
    if not type_.startswith(PREFIX):
        return None
    state = copy.deepcopy(inputs)
    azure_name = inputs.get(NAME_INPUTS.get(type_, ""), name)
    state["name"] = azure_name
    state["provisioningState"] = "Succeeded"
    if type_ == "azure-native:resources:ResourceGroup":
        state["id"] = group_id(azure_name)
        state["properties"] = {"provisioningState": "Succeeded"}
        del state["provisioningState"]
    elif type_ == "azure-native:network:Subnet":
        vnet_id = _generic_id("azure-native:network:VirtualNetwork", inputs["virtualNetworkName"], inputs)
        state["id"] = f"{vnet_id}/subnets/{azure_name}"
    elif type_ == "azure-native:containerservice:AgentPool":
        cluster_id = _generic_id("azure-native:containerservice:ManagedCluster", inputs["resourceName"], inputs)
        state["id"] = f"{cluster_id}/agentPools/{azure_name}"
    elif type_ == "azure-native:privatedns:VirtualNetworkLink":
        zone = inputs.get("privateZoneName", "")
        zone_id = f"{group_id(inputs.get('resourceGroupName', ''))}/providers/Microsoft.Network/privateDnsZones/{zone}"
        state["id"] = f"{zone_id}/virtualNetworkLinks/{azure_name}"
    elif type_ == "azure-native:authorization:RoleAssignment":
        state["id"] = f"{inputs['scope']}/providers/Microsoft.Authorization/roleAssignments/{azure_name}"
    elif type_ == "azure-native:keyvault:Key":
        _key_outputs(state, azure_name, inputs)
    elif type_ == "azure-native:monitor:DiagnosticSetting":
        # Azure reports the resource and workspace by ARM id: the ids the program passed, once real.
        for field in ("resourceUri", "workspaceId"):
            if field in inputs:
                state[field] = _arm_ids.get(inputs[field], inputs[field])
        state["id"] = f"{state.get('resourceUri', '')}/providers/Microsoft.Insights/diagnosticSettings/{azure_name}"
    else:
        state["id"] = _generic_id(type_, azure_name, inputs)
    _arm_ids[offline_id(type_, name)] = state["id"]
    if type_ == "azure-native:keyvault:Vault":
        state["properties"] = {**(state.get("properties") or {}), "vaultUri": vault_uri(azure_name)}
    if type_ == "azure-native:operationalinsights:Workspace":
        state["customerId"] = guid("workspace", state["id"])
        state.setdefault("retentionInDays", 30)
    if type_ == "azure-native:managedidentity:UserAssignedIdentity":
        state["principalId"] = guid("principal", state["id"])
        state["clientId"] = guid("client", state["id"])
        state["tenantId"] = TENANT_ID
    if type_ == "azure-native:containerservice:ManagedCluster":
        _cluster_outputs(state, azure_name, inputs)
    return state


def user_kubeconfig(group: str, cluster: str, region: str) -> str:
    """The `clusterUser` kubeconfig of an Entra ID cluster in exec format: kubelogin fetches the token."""
    user = f"clusterUser_{group}_{cluster}"
    server = _servers.get((group, cluster)) or api_server_host(group, cluster, region)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "certificate-authority-data": base64.b64encode(OFFLINE_CA_PEM.encode()).decode(),
                    "server": f"https://{server}:443",
                },
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
        "users": [
            {
                "name": user,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "kubelogin",
                        "args": [
                            "get-token",
                            "--environment",
                            "AzurePublicCloud",
                            "--server-id",
                            AKS_SERVER_APP_ID,
                            "--client-id",
                            AZURE_CLI_CLIENT_APP_ID,
                            "--tenant-id",
                            TENANT_ID,
                            "--login",
                            "devicecode",
                        ],
                        "env": None,
                        "provideClusterInfo": False,
                    }
                },
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def invoke(token: str, args: dict) -> dict | None:
    """Answers for the Azure Native functions turnout calls; None for any other token."""
    if token == USER_CREDENTIALS:
        group, cluster = args["resourceGroupName"], args["resourceName"]
        region = _clusters.get((group, cluster))
        if region is None or not re.fullmatch(r"[a-z0-9]+", region):
            raise ValueError(f"offline: no managed cluster {group}/{cluster} registered before its credentials")
        value = base64.b64encode(user_kubeconfig(group, cluster, region).encode()).decode()
        return {"kubeconfigs": [{"name": "clusterUser", "value": value}]}
    if token == CLIENT_CONFIG:
        return {
            "clientId": DEPLOYER_CLIENT_ID,
            "objectId": DEPLOYER_OBJECT_ID,
            "subscriptionId": SUBSCRIPTION_ID,
            "tenantId": TENANT_ID,
        }
    return None
