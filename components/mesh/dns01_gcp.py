"""cert-manager's DNS-01 identity on GKE: a Google service account holding `roles/dns.admin` on one Cloud DNS
managed zone (not the project), which cert-manager's Kubernetes ServiceAccount impersonates through Workload
Identity.

With `hostedZoneName` in the solver cert-manager never lists the project's zones (`dns.managedZones.list`, the
one permission its guide needs beyond the zone); it creates and reads changes and record sets of that zone only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.mesh.dns01 import NAMESPACE, SERVICE_ACCOUNT, Dns01Identity
from turnout.naming import child, fit

SERVICE_ACCOUNT_ID_MAX = 30
DNS_ROLE = "roles/dns.admin"
WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
GSA_ANNOTATION = "iam.gke.io/gcp-service-account"
WORKLOAD_POOL_SUFFIX = ".svc.id.goog"


def managed_zone(zone: str, cluster_project: str) -> tuple[str, str]:
    """(project, zone name) of `projects/P/managedZones/Z`, or of a bare zone name in the cluster's project."""
    if zone.startswith("projects/"):
        _, project, _, name = zone.split("/")
        return project, name
    return cluster_project, zone


def workload_identity_member(workload_pool: str) -> str:
    """The principal cert-manager's Kubernetes ServiceAccount is in the cluster's Workload Identity pool."""
    return f"serviceAccount:{workload_pool}[{NAMESPACE}/{SERVICE_ACCOUNT}]"


@dataclass(frozen=True, kw_only=True)
class CloudDnsDns01Args:
    cluster_name: str
    workload_pool: pulumi.Input[str]
    """`<project>.svc.id.goog`: the cluster's pool, whose project is also the zone's unless the zone names one."""
    zone: str
    """A managed zone name, or projects/PROJECT/managedZones/ZONE."""


class CloudDnsDns01(pulumi.ComponentResource):
    service_account: gcp.serviceaccount.Account
    identity: Dns01Identity

    def __init__(self, name: str, args: CloudDnsDns01Args, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:CloudDnsDns01", name, None, opts)
        # As the cluster's own provider: the project from `gcp:project`, nothing from ambient configuration.
        provider = gcp.Provider(
            child(name, "gcp"), project=pulumi.Config("gcp").get("project"), opts=pulumi.ResourceOptions(parent=self)
        )
        mine = pulumi.ResourceOptions(parent=self, provider=provider)
        pool = pulumi.Output.from_input(args.workload_pool)
        zone = pool.apply(lambda p: managed_zone(args.zone, p.removesuffix(WORKLOAD_POOL_SUFFIX)))
        self.service_account = gcp.serviceaccount.Account(
            child(name, "sa"),
            account_id=fit(child(args.cluster_name, "dns01"), SERVICE_ACCOUNT_ID_MAX),
            display_name=f"cert-manager DNS-01 of {args.cluster_name}",
            opts=mine,
        )
        member = pulumi.Output.concat("serviceAccount:", self.service_account.email)
        zone_grant = gcp.dns.DnsManagedZoneIamMember(
            child(name, "zone"),
            project=zone.apply(lambda z: z[0]),
            managed_zone=zone.apply(lambda z: z[1]),
            role=DNS_ROLE,
            member=member,
            opts=mine,
        )
        impersonation = gcp.serviceaccount.IAMMember(
            child(name, "workload-identity"),
            service_account_id=self.service_account.name,
            role=WORKLOAD_IDENTITY_USER,
            member=pool.apply(workload_identity_member),
            opts=mine,
        )
        self.identity = Dns01Identity(
            solver=zone.apply(lambda z: {"cloudDNS": {"project": z[0], "hostedZoneName": z[1]}}),
            service_account_annotations=self.service_account.email.apply(lambda email: {GSA_ANNOTATION: email}),
            ready=(zone_grant, impersonation),
            zone=f"Cloud DNS {args.zone}",
        )
        self.register_outputs({"service_account": self.service_account.email})
