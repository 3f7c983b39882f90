"""The DR record on every cluster: the stack's target, tier and estimate as a ConfigMap.

Operators and runbooks read it from the cluster they are on; the policy rule
`dr-target-achievable` reads it under `pulumi preview`, where stack outputs are not visible.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from turnout.dr import DrPlan
from turnout.naming import PROJECT, child

NAMESPACE = "turnout-system"
CONFIG_MAP = "turnout-dr"
RECORD_KEY = "dr.json"


@dataclass(frozen=True, kw_only=True)
class DrRecordArgs:
    document: dict[str, Any]
    """The stack's `dr.json` document."""
    role: str
    """This cluster's part: primary, or the capacity its standby keeps (zero, reduced, standby)."""
    cluster: str = ""
    """The cluster's name."""


def dr_records(plan: DrPlan, clusters: list) -> list[DrRecord]:
    """A record on every cluster of a stack with a DR target; none without one."""
    settings = plan.settings
    return [
        DrRecord(
            child(cluster.name, "dr"),
            DrRecordArgs(
                document=plan.to_json(),
                cluster=cluster.name,
                role=settings.scaled_down(cluster.region)
                or ("primary" if cluster.region == settings.primary_region else "standby"),
            ),
            pulumi.ResourceOptions(provider=cluster.provider),
        )
        for cluster in (clusters if plan.target is not None else [])
    ]


class DrRecord(pulumi.ComponentResource):
    cluster: str
    namespace: k8s.core.v1.Namespace
    """turnout-system, which the record (and the health route, components/dr/health.py) live in."""

    def __init__(self, name: str, args: DrRecordArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:dr:DrRecord", name, None, opts)
        self.cluster = args.cluster
        self.namespace = self._record(name, args.document, args.role)
        self.register_outputs({})

    def _record(self, name: str, document: dict, role: str) -> k8s.core.v1.Namespace:
        mine = pulumi.ResourceOptions(parent=self)
        meta_labels = {"app.kubernetes.io/part-of": PROJECT, "app.kubernetes.io/managed-by": "pulumi"}
        namespace = k8s.core.v1.Namespace(
            child(name, "ns"),
            metadata={
                "name": NAMESPACE,
                "labels": {**meta_labels, "pod-security.kubernetes.io/enforce": "restricted"},
            },
            opts=mine,
        )
        k8s.core.v1.ConfigMap(
            child(name, "record"),
            metadata={
                "name": CONFIG_MAP,
                "namespace": NAMESPACE,
                "labels": {**meta_labels, "turnout.dev/dr-role": role},
            },
            data={RECORD_KEY: json.dumps(document, sort_keys=True)},
            opts=pulumi.ResourceOptions.merge(mine, pulumi.ResourceOptions(depends_on=[namespace])),
        )
        return namespace
