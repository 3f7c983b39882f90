"""cluster-network-policy: a cluster enforces Kubernetes NetworkPolicy objects (without an enforcing
dataplane they are accepted and silently ignored).

- EKS: the `vpc-cni` managed add-on (`aws:eks/addon:Addon` with `addonName: vpc-cni` and the cluster's
  `clusterName`) whose `configurationValues` JSON sets `enableNetworkPolicy` to "true". The VPC CNI that
  EKS installs on its own leaves network policy off. Another CNI (Calico, Cilium) installed some other
  way is not seen here: disable the rule for that stack in the policy config.
- GKE: Dataplane V2 (`datapathProvider: ADVANCED_DATAPATH`), or `networkPolicy.enabled` (Calico) with the
  `addonsConfig.networkPolicyConfig` add-on not disabled.
- AKS: `networkProfile.networkPolicy` is azure, calico or cilium.

A stack rule, because an EKS cluster's network policy lives on an add-on resource; an add-on whose cluster
or configuration is unknown during preview counts. Kind clusters and every other resource: not applicable.
"""

from __future__ import annotations

import json

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._cloud import (
    AKS_CLUSTER,
    EKS_ADDON,
    EKS_CLUSTER,
    GKE_CLUSTER,
    UNKNOWN,
    display_name,
    is_true,
    read,
    type_of,
)

MANDATORY_IN = ("prod",)  # advisory below prod

AKS_POLICY_ENGINES = frozenset({"azure", "calico", "cilium"})


def enables_network_policy(configuration) -> bool:
    """Whether a vpc-cni add-on's configurationValues (a JSON document) turns network policy on."""
    if configuration is UNKNOWN:
        return True
    try:
        values = json.loads(configuration) if isinstance(configuration, str) else None
    except ValueError:
        return False
    return isinstance(values, dict) and is_true(values.get("enableNetworkPolicy"))


def eks_cluster_name(cluster) -> str:
    name = read(cluster.props, "name")
    return name if isinstance(name, str) and name else cluster.name


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    cni_addons = [
        r for r in args.resources if r.resource_type == EKS_ADDON and read(r.props, "addonName") in ("vpc-cni", UNKNOWN)
    ]
    for resource in args.resources:
        kind = type_of(resource.resource_type)
        props = resource.props
        label = display_name(resource.resource_type, props, resource.name)
        if kind == EKS_CLUSTER:
            name = eks_cluster_name(resource)
            enforced = any(
                read(addon.props, "clusterName") in (name, UNKNOWN)
                and enables_network_policy(read(addon.props, "configurationValues"))
                for addon in cni_addons
            )
            if not enforced:
                report_violation(
                    f"{label}: NetworkPolicies are not enforced (no vpc-cni add-on with enableNetworkPolicy).",
                    resource.urn,
                )
        elif kind == GKE_CLUSTER:
            datapath = read(props, "datapathProvider")
            calico = read(props, "networkPolicy", "enabled")
            addon_disabled = read(props, "addonsConfig", "networkPolicyConfig", "disabled")
            if UNKNOWN in (datapath, calico) or datapath == "ADVANCED_DATAPATH":
                continue
            if not (is_true(calico) and not is_true(addon_disabled)):
                report_violation(
                    f"{label}: NetworkPolicies are not enforced (neither Dataplane V2 nor networkPolicy).",
                    resource.urn,
                )
        elif kind == AKS_CLUSTER:
            engine = read(props, "networkProfile", "networkPolicy")
            if engine is not UNKNOWN and str(engine).lower() not in AKS_POLICY_ENGINES:
                report_violation(
                    f"{label}: NetworkPolicies are not enforced (networkProfile.networkPolicy is {engine})."
                    if engine
                    else f"{label}: NetworkPolicies are not enforced (no networkProfile.networkPolicy).",
                    resource.urn,
                )


cluster_network_policy = StackValidationPolicy(
    name="cluster-network-policy",
    description="Every cluster enforces Kubernetes NetworkPolicies (EKS VPC CNI, GKE Dataplane V2 or Calico, "
    "AKS azure/calico/cilium).",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps='EKS: an aws.eks.Addon vpc-cni with configuration_values \'{"enableNetworkPolicy": "true"}\'. '
    "GKE: datapath_provider ADVANCED_DATAPATH. AKS: network_profile.network_policy cilium (or azure, calico).",
)
