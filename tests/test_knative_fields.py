"""Every Knative revision template turnout renders passes Knative's field masks under the config-features
turnout ships to the same cluster (tests/knative_fields.py, transcribed from knative/serving).

The mocks accept any pod spec; Knative's webhook refuses, at `pulumi up`, a template using a field its
mask keeps only behind a flag that config-features leaves Disabled (GPU tolerations, node selectors)."""

from __future__ import annotations

import copy

import pytest

from components.mesh.knative import KNATIVE_NAMESPACE
from tests.bundled_stacks import bundled_records
from tests.conftest import REPO, as_cli, sample_config
from tests.knative_fields import UPSTREAM, refused
from turnout.offline.manifests import cluster_of
from turnout.offline.runtime import run_program

KNATIVE_TEMPLATES = ("kubernetes:serving.knative.dev/v1:Configuration", "kubernetes:serving.knative.dev/v1:Service")
FEATURES = "config-features"


def knative_config(cloud="kind", tier="dev", cache=None, gpu=False, strategy=None) -> dict:
    """fraud-score on Knative (a canary of v1 and v2 unless `strategy`), as users would write it."""
    config = copy.deepcopy(sample_config())
    config["tier"] = tier
    config["platform"] = {"cloud": cloud, "regions": ["us-east-1" if cloud == "aws" else "lab"]}
    endpoint = config["endpoints"]["fraud-score"]
    endpoint["backend"] = "knative"
    endpoint["versions"]["v2"]["env"] = {"MODEL_URI": "s3://models/fraud/1.5.0"}
    if gpu:
        config["platform"]["nodePools"] = [
            {"name": "general", "min": 1, "max": 3},
            {"name": "gpu", "min": 0, "max": 2, "gpu": 1},
        ]
        endpoint["versions"]["v2"]["resources"] = {"cpu": "2", "memory": "8Gi", "gpu": 1}
    if cache:
        config["cache"] = cache
    if strategy:
        endpoint["strategy"] = strategy
    return config


EXTRA_CONFIGS = {
    "gpu-canary-aws": knative_config("aws", gpu=True),
    "gpu-canary-aws-prod": knative_config("aws", tier="prod", gpu=True),
    "in-cluster-cache": knative_config(cache={"engine": "redis"}),
    "managed-cache-aws": knative_config("aws", cache={"engine": "valkey"}),
    "rolling-prod": knative_config(tier="prod", strategy={"type": "rolling", "version": "v2"}),
    "ab-test": knative_config(strategy={"type": "ab-test", "variants": {"v1": 50, "v2": 50}}),
}


def templates_with_features(records) -> list[tuple[str, dict, dict]]:
    """(name, revision template, config-features data on its cluster) for every Knative template."""
    by_urn = {r.urn: r for r in records}
    features = {
        cluster_of(r, by_urn): dict(r.inputs.get("data") or {})
        for r in records
        if r.type == "kubernetes:core/v1:ConfigMapPatch"
        and r.inputs["metadata"] == {**r.inputs["metadata"], "name": FEATURES, "namespace": KNATIVE_NAMESPACE}
    }
    found = []
    for r in records:
        if r.type in KNATIVE_TEMPLATES:
            cluster = cluster_of(r, by_urn)
            assert cluster in features, f"{r.name}: no {FEATURES} on cluster {cluster}"
            found.append((r.name, r.inputs["spec"]["template"], features[cluster]))
    return found


@pytest.fixture(scope="module")
def rendered() -> list[tuple[str, dict, dict]]:
    found = []
    for stack, records in bundled_records().items():
        found += [(f"{stack}/{name}", t, f) for name, t, f in templates_with_features(records)]
    for label, config in EXTRA_CONFIGS.items():
        raw = {f"turnout:{k}": v for k, v in as_cli(config).items()}
        run = run_program(REPO, "turnout", label, raw, [])
        found += [(f"{label}/{name}", t, f) for name, t, f in templates_with_features(run.records)]
    return found


def test_every_revision_template_passes_knatives_field_masks(rendered):
    problems = {name: refused(template, features) for name, template, features in rendered}
    assert {name: lines for name, lines in problems.items() if lines} == {}, (
        f"fields Knative's webhook ({UPSTREAM}) would refuse; enable their flag in "
        "components/mesh/knative.py serving_config or stop rendering them"
    )


def test_the_templates_cover_gpus_caches_and_the_bundled_stacks(rendered):
    """The guard sees what matters: GPU scheduling, the cache's Secret volume and env, bundled stacks."""
    names = {name.split("/")[0] for name, _, _ in rendered}
    assert {"local", "dev-aws"} <= names and set(EXTRA_CONFIGS) <= names
    specs = [template["spec"] for _, template, _ in rendered]
    assert any("tolerations" in spec for spec in specs)
    assert any("volumes" in spec and "volumeMounts" in spec["containers"][0] for spec in specs)


def test_a_gpu_revision_is_refused_without_the_podspec_flags(rendered):
    """What Knative 1.23 does with turnout's GPU revisions when config-features enables only tag routing."""
    name, template, features = next(r for r in rendered if "tolerations" in r[1]["spec"])
    shipped_before = {"tag-header-based-routing": "Enabled"}
    assert refused(template, features) == []
    problems = refused(template, shipped_before)
    assert problems and all(line.startswith(("spec.tolerations:", "spec.nodeSelector:")) for line in problems), problems
    assert (
        "spec.tolerations: needs config-features kubernetes.podspec-tolerations: Enabled or Allowed or Allowrootbounded"
        in problems
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s.update(hostNetwork=True),
            "spec.hostNetwork: needs config-features kubernetes.podspec-hostnetwork",
        ),
        (
            lambda s: s.update(automountServiceAccountToken=True),
            "spec.automountServiceAccountToken: Knative keeps it only as False",
        ),
        (
            lambda s: s["containers"][0].update(lifecycle={}),
            "spec.containers[0].lifecycle: Knative's Container mask drops it",
        ),
        (
            lambda s: s["containers"][0]["securityContext"].update(privileged=True),
            "spec.containers[0].securityContext.privileged: Knative keeps it only as False",
        ),
        (
            lambda s: s.update(volumes=[{"name": "data", "hostPath": {"path": "/data"}}]),
            "spec.volumes[0].hostPath: needs config-features kubernetes.podspec-volumes-hostpath: Enabled",
        ),
        (
            lambda s: s["containers"][0]["env"].append({"name": "K_SERVICE", "value": "x"}),
            "is reserved by Knative",
        ),
        (
            lambda s: s.update(securityContext={"runAsNonRoot": True}),
            "spec.securityContext: needs config-features kubernetes.podspec-securitycontext",
        ),
        (
            lambda s: s["containers"][0]["env"].append({"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}),
            "valueFrom.fieldRef: needs config-features kubernetes.podspec-fieldref",
        ),
    ],
)
def test_the_table_refuses_what_knative_refuses(rendered, change, expected):
    _, template, features = rendered[0]
    template = copy.deepcopy(template)
    change(template["spec"])
    assert any(expected in line for line in refused(template, features)), refused(template, features)
