"""cluster-auto-upgrade: Kubernetes patch releases reach a cluster without anyone running an upgrade.

- GKE: the cluster is not opted out of release channels (`releaseChannel.channel: UNSPECIFIED`; absent,
  GKE enrolls a new cluster in REGULAR), and no node pool turns `management.autoUpgrade` off (node pools
  in `nodePool` resources and inline in the cluster's `nodePools`).
- AKS: `autoUpgradeProfile.upgradeChannel` is patch, stable or rapid (absent, AKS's default is none;
  node-image upgrades the node image only), and `autoUpgradeProfile.nodeOSUpgradeChannel` is not None.
- EKS: nothing to check, so EKS clusters pass. AWS applies control-plane patch releases itself with no
  setting to turn on or off; managed node groups move to a new AMI only when their `releaseVersion`
  changes, which no property of the cluster can promise.

Kind clusters (pinned node images, upgraded by recreating them) and every other resource: not applicable.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._cloud import AKS_CLUSTER, GKE_CLUSTER, GKE_NODE_POOL, UNKNOWN, display_name, is_false, items, read, type_of

AKS_PATCHING_CHANNELS = frozenset({"patch", "stable", "rapid"})


def problems(resource_type: str, props) -> list[str]:
    kind = type_of(resource_type)
    if kind == GKE_CLUSTER:
        found = []
        if read(props, "releaseChannel", "channel") == "UNSPECIFIED":
            found.append("it is opted out of release channels (releaseChannel UNSPECIFIED).")
        for pool in items(props, "nodePools"):
            if is_false(read(pool, "management", "autoUpgrade")):
                found.append(f"node pool {read(pool, 'name')} has management.autoUpgrade off.")
        return found
    if kind == GKE_NODE_POOL:
        return ["management.autoUpgrade is off."] if is_false(read(props, "management", "autoUpgrade")) else []
    if kind == AKS_CLUSTER:
        found = []
        channel = read(props, "autoUpgradeProfile", "upgradeChannel")
        if channel is not UNKNOWN and str(channel).lower() not in AKS_PATCHING_CHANNELS:
            found.append(
                f"autoUpgradeProfile.upgradeChannel is {channel}, which applies no Kubernetes patches."
                if channel
                else "no autoUpgradeProfile.upgradeChannel (AKS's default, none, applies no patches)."
            )
        node_os = read(props, "autoUpgradeProfile", "nodeOSUpgradeChannel")
        if isinstance(node_os, str) and node_os.lower() == "none":
            found.append("autoUpgradeProfile.nodeOSUpgradeChannel is None: node OS security patches never arrive.")
        return found
    return []


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for problem in problems(args.resource_type, args.props):
        report_violation(f"{display_name(args.resource_type, args.props, args.name)}: {problem}")


cluster_auto_upgrade = ResourceValidationPolicy(
    name="cluster-auto-upgrade",
    description="Clusters take Kubernetes patch releases automatically (GKE release channel and node "
    "auto-upgrade, AKS upgrade channel).",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=validate,
    remediation_steps="GKE: keep a release channel (REGULAR) and management.autoUpgrade on. AKS: "
    "auto_upgrade_profile.upgrade_channel patch (stays within the configured minor) and a node OS channel.",
)
