"""supported-kubernetes-version: clusters and their node pools run a Kubernetes minor version inside
the window turnout's platform supports.

The window is 1.32–1.36: what Istio 1.30 (turnout's pinned mesh) supports, per Istio's "Supported
Releases" table (https://istio.io/latest/docs/releases/supported-releases/), and within the standard
support of EKS, GKE and AKS as their release calendars stand for Istio 1.30's life (1.32 and up).
Bump it with the Istio pin; a stack may narrow or widen it with policy config
`{"supported-kubernetes-version": {"minimum": "1.33", "maximum": "1.36"}}`.

Read: EKS `version` (cluster and node groups), GKE `minMasterVersion` and `nodeVersion` (cluster) and
`version` (node pools), AKS `kubernetesVersion` and `agentPoolProfiles[].orchestratorVersion` (cluster)
and `orchestratorVersion` (agent pools). No version (the cloud's current default) or one that is not
a version ("latest"): not judged. Kind clusters (node images pinned by turnout) and every other
resource: not applicable.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._cloud import (
    AKS_AGENT_POOL,
    AKS_CLUSTER,
    EKS_CLUSTER,
    EKS_NODE_GROUP,
    GKE_CLUSTER,
    GKE_NODE_POOL,
    display_name,
    items,
    minor_version,
    read,
    type_of,
)

MINIMUM = "1.32"
MAXIMUM = "1.36"
VERSION_PROPERTIES = {
    EKS_CLUSTER: ("version",),
    EKS_NODE_GROUP: ("version",),
    GKE_CLUSTER: ("minMasterVersion", "nodeVersion"),
    GKE_NODE_POOL: ("version",),
    AKS_CLUSTER: ("kubernetesVersion",),
    AKS_AGENT_POOL: ("orchestratorVersion",),
}


def _bound(config, key: str, default: str) -> tuple[int, int]:
    return minor_version(config.get(key)) or minor_version(default)


def versions(resource_type: str, props) -> list[tuple[str, str]]:
    """(where, version) for every version this resource sets."""
    kind = type_of(resource_type)
    found = [(key, read(props, key)) for key in VERSION_PROPERTIES.get(kind, ())]
    if kind == AKS_CLUSTER:
        found += [
            (f"agent pool {read(pool, 'name')}", read(pool, "orchestratorVersion"))
            for pool in items(props, "agentPoolProfiles")
        ]
    return [(where, version) for where, version in found if minor_version(version)]


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config()
    low, high = _bound(config, "minimum", MINIMUM), _bound(config, "maximum", MAXIMUM)
    window = f"{low[0]}.{low[1]}–{high[0]}.{high[1]}"
    for where, version in versions(args.resource_type, args.props):
        minor = minor_version(version)
        if not low <= minor <= high:
            side = "older than" if minor < low else "newer than"
            report_violation(
                f"{display_name(args.resource_type, args.props, args.name)}: {where} {version} is {side} the "
                f"supported window {window}."
            )


supported_kubernetes_version = ResourceValidationPolicy(
    name="supported-kubernetes-version",
    description="Clusters run a Kubernetes version inside the supported window (1.32–1.36 unless configured).",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=validate,
    config_schema=PolicyConfigSchema(
        properties={
            "minimum": {"type": "string", "pattern": r"^\d+\.\d+$", "default": MINIMUM},
            "maximum": {"type": "string", "pattern": r"^\d+\.\d+$", "default": MAXIMUM},
        }
    ),
    remediation_steps=f"Set turnout:platform.kubernetesVersion to a minor version from {MINIMUM} to {MAXIMUM}.",
)
