"""What cert-manager needs from a cloud to solve ACME DNS-01 challenges with the cluster's workload identity:
the solver block of its ClusterIssuer, and the labels and annotations that give its pods the identity.

One component per cloud (`dns01_aws.py`, `dns01_gcp.py`, `dns01_azure.py`) creates the cloud identity, grants it
the zone and nothing else, and trusts exactly cert-manager's ServiceAccount with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

# cert-manager's own namespace and controller ServiceAccount (the chart's `serviceAccount.name`, set explicitly):
# the only Kubernetes identity each cloud's trust names.
NAMESPACE = "cert-manager"
SERVICE_ACCOUNT = "cert-manager"
SUBJECT = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"


@dataclass(frozen=True)
class Dns01Identity:
    solver: pulumi.Input[dict]
    """The `dns01` block of the ACME solver (route53, cloudDNS or azureDNS), with no credentials in it."""
    service_account_annotations: pulumi.Input[dict] = field(default_factory=dict)
    pod_labels: dict[str, str] = field(default_factory=dict)
    ready: tuple[pulumi.Resource, ...] = ()
    """Grants the controller should find in place when it starts."""
    zone: str = ""
    """How the plan names the zone (`Route 53 Z...`)."""
