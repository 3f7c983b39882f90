"""Helm: no object is owned twice within a cluster.

Helm 3 (which `helm.v3.Release` runs, CRDs included) refuses to install an object that already exists
and that it does not own ("rendered manifests contain a resource that already exists"): a chart whose
templates repeat its `crds/`, two releases rendering the same object, or a release rendering an object
turnout also creates. The mocks never run Helm; the committed inventories (tests/charts, written by
`scripts/render-charts` from the charts with exactly the values the plans pass) say what each release
installs, and this test checks them against every cluster of every bundled stack."""

from __future__ import annotations

import collections
import json
import subprocess
import sys

import pytest

from tests.admission.corpus import corpus_plans
from tests.bundled_stacks import bundled_records
from tests.helm_inventory import CHARTS, RELEASE_TYPE, RENDER_COMMAND, REPO, ReleaseInputs, identity, load
from turnout.offline.manifests import cluster_of, is_kubernetes_object

EXAMPLES = CHARTS / "examples"
# Helm never installs test hooks; every other object a chart renders is created by the release.
TEST_HOOKS = ("test", "test-success", "test-failure")


def releases_by_cluster() -> dict[tuple[str, str], list[ReleaseInputs]]:
    """(stack, cluster) → the Helm releases installed there."""
    found = collections.defaultdict(list)
    for stack, records in bundled_records().items():
        by_urn = {r.urn: r for r in records}
        for record in records:
            if record.type == RELEASE_TYPE:
                found[(stack, cluster_of(record, by_urn))].append(ReleaseInputs.from_inputs(record.inputs))
    return dict(found)


def turnout_objects_by_cluster() -> dict[tuple[str, str], dict[tuple, str]]:
    """(stack, cluster) → identity → the URN of each object turnout itself creates (patches only co-own fields
    of objects created elsewhere, so they are not owners)."""
    found = collections.defaultdict(dict)
    for stack, records in bundled_records().items():
        by_urn = {r.urn: r for r in records}
        for record in records:
            if is_kubernetes_object(record) and not record.type.endswith("Patch"):
                metadata = record.inputs.get("metadata") or {}
                namespace = None if record.inputs["kind"] == "Namespace" else metadata.get("namespace")
                key = identity(record.inputs["apiVersion"], record.inputs["kind"], namespace, metadata.get("name", ""))
                found[(stack, cluster_of(record, by_urn))][key] = record.name
    return dict(found)


def inventory_objects(inventory: dict) -> list[tuple[tuple, str]]:
    """(identity, where in the chart) of every object a release installs, as its inventory lists them."""
    return [
        (identity(o["apiVersion"], o["kind"], o["namespace"], o["name"]), part)
        for part in ("crds", "templates")
        for o in inventory[part]
        if o.get("hook") not in TEST_HOOKS
    ]


def installed(release: ReleaseInputs) -> list[tuple[tuple, str]]:
    return inventory_objects(load(release.inventory))


def installed_twice(inventory: dict) -> list[str]:
    counts = collections.Counter(key for key, _ in inventory_objects(inventory))
    return sorted(describe(key) for key, count in counts.items() if count > 1)


def describe(key: tuple) -> str:
    group, kind, namespace, name = key
    return f"{kind}{'.' + group if group else ''} {namespace + '/' if namespace else ''}{name}"


@pytest.fixture(scope="module")
def clusters():
    return releases_by_cluster()


def test_every_planned_release_has_a_current_inventory(clusters):
    releases = {r.inventory: r for rs in clusters.values() for r in rs}
    assert releases, "the bundled stacks install Helm charts"
    missing = [r.describe() for path, r in sorted(releases.items()) if not path.exists()]
    assert not missing, (
        f"no inventory for {missing}: the chart, its version or the values turnout passes changed; run "
        f"`{RENDER_COMMAND}` and commit tests/charts/"
    )
    for path, release in releases.items():
        inventory = load(path)
        recorded = ReleaseInputs(
            inventory["chart"],
            inventory["version"],
            inventory["repository"],
            inventory["release"],
            inventory["namespace"],
            inventory["values"],
        )
        assert recorded == release and inventory["valuesHash"] == release.values_hash, (
            f"{path.name} was not rendered from what the plan passes; run `{RENDER_COMMAND} --force`"
        )


def test_no_inventory_is_left_from_values_no_plan_uses(clusters):
    """Used: by a bundled stack, or by a stack of the admission test, which admits each release's pods."""
    used = {r.inventory for rs in clusters.values() for r in rs} | {
        ReleaseInputs.from_inputs(record.inputs).inventory
        for planned in corpus_plans().values()
        for record in planned.records
        if record.type == RELEASE_TYPE
    }
    stale = sorted(p.name for p in CHARTS.glob("*.json") if p not in used)
    assert not stale, f"stale inventories {stale}: run `{RENDER_COMMAND} --prune`"


def test_no_release_installs_an_object_twice(clusters):
    """Helm 3 installs crds/ first, then the templates: a template repeating a CRD aborts the release."""
    twice = {}
    for release in {r.inventory: r for rs in clusters.values() for r in rs}.values():
        repeated = installed_twice(load(release.inventory))
        if repeated:
            twice[release.describe()] = repeated
    assert not twice, f"charts that render an object twice (crds/ and templates, or two templates): {twice}"


def test_no_two_releases_on_a_cluster_install_the_same_object(clusters):
    clashes = []
    for (stack, cluster), releases in sorted(clusters.items()):
        owners = collections.defaultdict(set)
        for release in releases:
            for key, _ in installed(release):
                owners[key].add(f"{release.namespace}/{release.name}")
        clashes += [f"{stack}/{cluster}: {describe(k)} in {sorted(o)}" for k, o in owners.items() if len(o) > 1]
        names = collections.Counter((r.namespace, r.name) for r in releases)
        clashes += [f"{stack}/{cluster}: release {ns}/{name} twice" for (ns, name), n in names.items() if n > 1]
    assert not clashes, clashes


def test_no_release_installs_an_object_turnout_creates(clusters):
    objects = turnout_objects_by_cluster()
    clashes = []
    for (stack, cluster), releases in sorted(clusters.items()):
        mine = objects.get((stack, cluster), {})
        for release in releases:
            clashes += [
                f"{stack}/{cluster}: {describe(key)} from release {release.namespace}/{release.name} ({part}) "
                f"and turnout's {mine[key]}"
                for key, part in installed(release)
                if key in mine
            ]
    assert not clashes, clashes


def test_flagger_with_crd_create_is_caught():
    """The release turnout used to install: Flagger 1.44.0 with `crd.create: true` (dev-aws), rendered by
    scripts/render-charts before the fix and kept as an example. Helm 3 refused it on a real cluster."""
    inventory = load(EXAMPLES / "flagger-1.44.0-crd-create.json")
    assert inventory["values"]["crd"] == {"create": True}
    assert installed_twice(inventory) == [
        f"CustomResourceDefinition.apiextensions.k8s.io {name}.flagger.app"
        for name in ("alertproviders", "canaries", "metrictemplates")
    ]


def test_a_release_rendering_an_object_turnout_creates_is_caught(clusters):
    """Identities agree between inventories and turnout's records: a chart rendering the istio-system
    Namespace (which turnout creates, labelled) would clash with it."""
    (mine,) = [found for (stack, _), found in turnout_objects_by_cluster().items() if stack == "local"]
    chart = {
        "crds": [],
        "templates": [{"apiVersion": "v1", "kind": "Namespace", "namespace": None, "name": "istio-system"}],
    }
    assert [key for key, _ in inventory_objects(chart) if key in mine] == [("", "Namespace", "", "istio-system")]


def test_render_charts_check_names_what_to_render(tmp_path):
    """`scripts/render-charts --check` (no helm needed) reads a plan's Helm Release records and names each
    release without an inventory; exit 0 once every one has one."""
    inventory = load(sorted(CHARTS.glob("flagger-*.json"))[0])
    inputs = {
        "chart": inventory["chart"],
        "version": inventory["version"],
        "repositoryOpts": {"repo": inventory["repository"]},
        "name": inventory["release"],
        "namespace": inventory["namespace"],
        "values": inventory["values"],
    }
    changed = {**inputs, "values": {**inputs["values"], "crd": {"create": True}}}

    def check(*releases) -> subprocess.CompletedProcess:
        (tmp_path / "stack").mkdir(exist_ok=True)
        resources = [{"type": RELEASE_TYPE, "inputs": release} for release in releases]
        (tmp_path / "stack" / "inventory.json").write_text(json.dumps({"resources": resources}))
        command = [sys.executable, str(REPO / RENDER_COMMAND), "--plan", str(tmp_path), "--check"]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    assert check(inputs).returncode == 0
    result = check(inputs, changed)
    assert result.returncode == 1
    assert (
        f"missing: tests/charts/flagger-{inventory['version']}-{ReleaseInputs.from_inputs(changed).values_hash}.json"
        in result.stdout
    )
