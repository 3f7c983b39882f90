"""cert-manager's DNS-01 identity on AKS: a user-assigned managed identity with "DNS Zone Contributor" on one
Azure DNS zone, federated with cert-manager's Kubernetes ServiceAccount through the cluster's OIDC issuer
(Microsoft Entra Workload ID, enabled on every AKS cluster turnout makes).

The controller's pods carry `azure.workload.identity/use: "true"`, so the workload identity webhook projects the
token; the solver names the identity's client id, as cert-manager's AzureDNS guide does.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, managedidentity

from components.cluster.aks import role_assignment_name, role_definition
from components.mesh.dns01 import SUBJECT, Dns01Identity
from turnout.naming import child

DNS_ZONE_CONTRIBUTOR_ROLE = "befefa01-2a29-4197-83a8-272ff33ce314"  # built-in, the same GUID everywhere
TOKEN_AUDIENCE = "api://AzureADTokenExchange"
USE_LABEL = {"azure.workload.identity/use": "true"}
PUBLIC_CLOUD = "AzurePublicCloud"


def dns_zone(zone_id: str) -> dict[str, str]:
    """Subscription, resource group and zone name of an Azure DNS zone resource id."""
    parts = zone_id.strip("/").split("/")
    return {"subscriptionID": parts[1], "resourceGroupName": parts[3], "hostedZoneName": parts[7]}


@dataclass(frozen=True, kw_only=True)
class AzureDnsDns01Args:
    cluster_name: str
    region: str
    resource_group_name: pulumi.Input[str]
    """The cluster's resource group, where the identity lives (and goes with the cluster)."""
    oidc_issuer: pulumi.Input[str]
    zone_id: str
    """The Azure DNS zone's resource id."""


class AzureDnsDns01(pulumi.ComponentResource):
    managed_identity: managedidentity.UserAssignedIdentity
    identity: Dns01Identity

    def __init__(self, name: str, args: AzureDnsDns01Args, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:AzureDnsDns01", name, None, opts)
        mine = pulumi.ResourceOptions(parent=self)
        zone = dns_zone(args.zone_id)
        identity_name = child(args.cluster_name, "cert-manager")
        self.managed_identity = managedidentity.UserAssignedIdentity(
            child(name, "identity"),
            resource_name_=identity_name,
            resource_group_name=args.resource_group_name,
            location=args.region,
            tags={"managed-by": "pulumi", "turnout-cluster": args.cluster_name},
            opts=mine,
        )
        federation = managedidentity.FederatedIdentityCredential(
            child(name, "federation"),
            federated_identity_credential_resource_name="cert-manager",
            resource_name_=self.managed_identity.name,
            resource_group_name=args.resource_group_name,
            issuer=args.oidc_issuer,
            subject=SUBJECT,
            audiences=[TOKEN_AUDIENCE],
            opts=mine,
        )
        grant = authorization.RoleAssignment(
            child(name, "zone"),
            role_assignment_name=role_assignment_name(args.cluster_name, "cert-manager", args.zone_id),
            scope=args.zone_id,
            role_definition_id=role_definition(zone["subscriptionID"], DNS_ZONE_CONTRIBUTOR_ROLE),
            principal_id=self.managed_identity.principal_id,
            principal_type="ServicePrincipal",
            opts=mine,
        )
        self.identity = Dns01Identity(
            solver=self.managed_identity.client_id.apply(
                lambda client_id: {
                    "azureDNS": {**zone, "environment": PUBLIC_CLOUD, "managedIdentity": {"clientID": client_id}}
                }
            ),
            pod_labels=dict(USE_LABEL),
            ready=(federation, grant),
            zone=f"Azure DNS {zone['hostedZoneName']}",
        )
        self.register_outputs({"client_id": self.managed_identity.client_id})
