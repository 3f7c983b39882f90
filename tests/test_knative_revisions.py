"""Knative revision names: Knative's webhook refuses a changed revision template under an unchanged name
(VerifyNameChange) and a name that does not start with its Configuration's name and a dash (validateRevisionName),
so turnout names each revision from a hash of its template and routes by Configuration, never by revision."""

from __future__ import annotations

import copy
import json
import re
import shutil

import pulumi
import pytest
import yaml

from components.cache import CacheConnection
from components.cache.access import cache_additions
from components.dr.standby import mark_standby
from components.endpoint.knative_revisions import (
    KnativeRevisions,
    KnativeRevisionsArgs,
    configuration_name,
    named_revision,
    revision_template,
)
from tests.conftest import REPO, load, write_stack
from turnout.cli import main
from turnout.naming import K8S_NAME_MAX, hashed_name
from turnout.offline.runtime import run_function
from turnout.traffic import traffic_plan

DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
CONFIGURATION = "kubernetes:serving.knative.dev/v1:Configuration"


def knative_stack(**changes) -> dict:
    """A Knative canary and a rolling endpoint on kind, with a cache; `changes` replace fields of version v2."""
    versions = {
        "v1": {"image": "ghcr.io/acme/scores:1.0.0", "env": {"MODEL_URI": "s3://models/1"}},
        "v2": {"image": "ghcr.io/acme/scores:2.0.0", "env": {"MODEL_URI": "s3://models/2"}},
    }
    versions["v2"].update(changes)
    return {
        "platform": {"cloud": "kind", "regions": ["lab"]},
        "cache": {"engine": "valkey"},
        "endpoints": {
            "scores": {
                "backend": "knative",
                "versions": versions,
                "strategy": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 20},
            },
            "ranker": {
                "backend": "knative",
                "versions": {"v1": {"image": "ghcr.io/acme/ranker:1.0.0"}},
                "strategy": {"type": "rolling", "version": "v1"},
            },
        },
    }


CHANGES = {
    "env": {"env": {"MODEL_URI": "s3://models/2b"}},
    "image": {"image": "ghcr.io/acme/scores:2.0.1"},
    "replicas": {"replicas": {"min": 2, "max": 5}},
    "resources": {"resources": {"cpu": "500m", "memory": "512Mi"}},
}
WARM_STANDBY = {
    "tier": "prod",
    "platform": {
        "cloud": "aws",
        "regions": ["us-east-1", "us-west-2"],
        "serving": {"gateway": {"exposure": "external", "domain": "models.example.com"}},
    },
    "dr": {"rpo": "1m", "rto": "5m"},
    "endpoints": {
        "kn": {
            "backend": "knative",
            "versions": {"v1": {"image": "ghcr.io/acme/kn:1.0.0"}, "v2": {"image": "ghcr.io/acme/kn:2.0.0"}},
            "strategy": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10},
        }
    },
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    """The same stack planned with each change to v2 (and without), and a warm standby: each plan's folder."""
    project = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "Pulumi.yaml", project)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("out")
    variants = {"baseline": knative_stack(), **{f"v2-{name}": knative_stack(**c) for name, c in CHANGES.items()}}
    for variant, config in variants.items():  # one stack name: what differs between plans is the change alone
        write_stack(project, "lab", config)
        assert main(["plan", "lab", "--project", str(project), "--out", str(out / variant)]) == 0
    write_stack(project, "warm", WARM_STANDBY)
    assert main(["plan", "warm", "--project", str(project), "--out", str(out)]) in (0, 1)
    return {**{variant: out / variant / "lab" for variant in variants}, "warm": out / "warm"}


def configurations(folder) -> dict[tuple[str, str], dict]:
    """(cluster, Configuration name) → the rendered Configuration."""
    found = {}
    for path in sorted(folder.glob("manifests/*/*-configuration-*.yaml")):
        document = yaml.safe_load(path.read_text())
        found[(path.parent.name, document["metadata"]["name"])] = document
    return found


def revision_names(folder) -> dict[tuple[str, str], str]:
    return {key: c["spec"]["template"]["metadata"]["name"] for key, c in configurations(folder).items()}


@pytest.mark.parametrize("change", CHANGES)
def test_a_changed_version_gets_a_new_revision_name_and_the_others_keep_theirs(plans, change):
    before = {name: revision for (_, name), revision in revision_names(plans["baseline"]).items()}
    after = {name: revision for (_, name), revision in revision_names(plans[f"v2-{change}"]).items()}
    assert before.keys() == after.keys() == {"scores-v1", "scores-v2", "ranker"}
    renamed = {name for name in before if after[name] != before[name]}
    assert renamed == {"scores-v2"}, f"changing v2's {change} renames v2's revision, and only it"


def test_revision_names_follow_the_configuration_as_knative_requires(plans):
    """Every planned revision: a DNS-1035 label of at most 63 characters, starting with `<Configuration>-`, and
    named from the template it is sent with (whoever changed the template after KnativeRevisions named it again)."""
    checked = 0
    for stack in ("baseline", *(f"v2-{c}" for c in CHANGES), "warm"):
        for (cluster, name), configuration in configurations(plans[stack]).items():
            template = configuration["spec"]["template"]
            revision = template["metadata"]["name"]
            assert len(revision) <= K8S_NAME_MAX and DNS_1035_LABEL.match(revision), (stack, revision)
            assert revision.startswith(f"{name}-"), (stack, cluster, name, revision)
            unnamed = {**template, "metadata": {k: v for k, v in template["metadata"].items() if k != "name"}}
            labels = template["metadata"]["labels"]
            expected = hashed_name(labels["turnout.dev/endpoint"], labels["turnout.dev/version"], content=unnamed)
            assert revision == expected, f"{stack} {cluster}: {name}'s revision is not named after its template"
            checked += 1
    assert checked == 3 * (1 + len(CHANGES)) + 4


def test_routes_follow_configurations_and_never_name_a_revision(plans):
    for path in plans["baseline"].glob("manifests/*/*-route-*.yaml"):
        route = yaml.safe_load(path.read_text())
        for target in route["spec"]["traffic"]:
            assert "revisionName" not in target and target["latestRevision"] is True
    traffic = json.loads((plans["baseline"] / "traffic.json").read_text())
    assert {e["name"] for e in traffic["endpoints"]} == {"scores", "ranker"}


def test_a_standby_region_names_its_revisions_after_its_own_templates(plans):
    """The DR standby label reaches the revision template after KnativeRevisions built it: the standby region's
    revisions differ from the primary's by that label, so by name."""
    names = revision_names(plans["warm"])
    primary = {name: revision for (cluster, name), revision in names.items() if cluster == "warm-us-east-1"}
    standby = {name: revision for (cluster, name), revision in names.items() if cluster == "warm-us-west-2"}
    assert primary.keys() == standby.keys() == {"kn-v1", "kn-v2"}
    for name in primary:
        assert primary[name] != standby[name]
        configuration = configurations(plans["warm"])[("warm-us-west-2", name)]
        assert configuration["spec"]["template"]["metadata"]["labels"]["turnout.dev/dr-standby"] == "reduced"


# --- the component under mocks: Outputs in the template, and the standby transformation -----------------------


def revisions_run(address: str, transformations=None) -> dict[str, str]:
    """KnativeRevisions for a canary whose revisions get a cache at `address`: Configuration name → revision name."""
    stack = load(knative_stack())
    endpoint = stack.endpoints["scores"]

    def program():
        connection = CacheConnection(
            address=pulumi.Output.from_input(address),
            port=6379,
            password=pulumi.Output.secret("p" * 16),
            tls=True,
            role="primary",
        )
        KnativeRevisions(
            "lab-scores-knative",
            KnativeRevisionsArgs(
                endpoint="scores",
                namespace="scores",
                tier="dev",
                versions=endpoint.versions,
                strategy=endpoint.strategy,
                plan=traffic_plan(endpoint.strategy),
                port=8080,
                health_path="/healthz",
                after=(),
                additions=cache_additions(connection),
            ),
            pulumi.ResourceOptions(transformations=transformations),
        )

    run = run_function(program)
    return {
        r.inputs["metadata"]["name"]: r.inputs["spec"]["template"]["metadata"]["name"]
        for r in run.records
        if r.type == CONFIGURATION
    }


def test_a_new_cache_address_renames_the_revisions_that_use_it():
    first, moved = revisions_run("a.cache.example"), revisions_run("b.cache.example")
    assert first.keys() == moved.keys() == {"scores-v1", "scores-v2"}
    assert all(first[name] != moved[name] for name in first), "the address is only known once the cache exists"
    assert revisions_run("a.cache.example") == first, "the same template keeps its name"


def test_the_standby_marking_renames_the_revisions_it_changes():
    primary, standby = revisions_run("a.cache.example"), revisions_run("a.cache.example", [mark_standby("reduced")])
    assert all(primary[name] != standby[name] for name in primary)
    assert all(standby[name].startswith(f"{name}-") for name in standby)


# --- names in the small -------------------------------------------------------------------------------------


def test_the_name_is_a_function_of_the_whole_template():
    version = load(knative_stack()).endpoints["scores"].versions["v2"]
    template = revision_template("scores", "v2", version, 8080, "/healthz", "dev")
    assert re.fullmatch(r"scores-v2-[0-9a-f]{8}", template["metadata"]["name"])
    relabelled = copy.deepcopy(template)
    relabelled["metadata"]["labels"]["team"] = "search"
    assert named_revision(relabelled)["metadata"]["name"] != template["metadata"]["name"]
    assert named_revision(copy.deepcopy(template)) == template, "naming again changes nothing"


def test_long_endpoint_and_version_names_still_fit_knative():
    endpoint, version = "e" * 40, "v" + "1" * 39  # the longest names turnout accepts
    model = load(knative_stack()).endpoints["scores"].versions["v1"]
    revision = revision_template(endpoint, version, model, 8080, "/healthz", "dev")["metadata"]["name"]
    own_configuration = configuration_name(endpoint, version, single=False)
    assert len(own_configuration) <= K8S_NAME_MAX - len("-12345678")
    # Valid under the version's own Configuration and under the endpoint's single one (recreate, rolling).
    assert revision.startswith(f"{own_configuration}-") and revision.startswith(f"{endpoint}-")
    assert len(revision) <= K8S_NAME_MAX and DNS_1035_LABEL.match(revision)


@pytest.mark.parametrize(
    ("endpoints", "path", "found"),
    [
        ({"9ball": "v1"}, "turnout:endpoints.9ball", "'9ball'"),
        ({"scores": "1-0"}, "turnout:endpoints.scores.versions.1-0", "'1-0'"),
    ],
)
def test_knative_names_must_start_with_a_letter(capsys, project, endpoints, path, found):
    ((endpoint, version),) = endpoints.items()
    config = knative_stack()
    config["endpoints"] = {
        endpoint: {
            "backend": "knative",
            "versions": {version: {"image": "ghcr.io/acme/scores:1.0.0"}},
            "strategy": {"type": "recreate", "version": version},
        }
    }
    write_stack(project, "digits", config)
    assert main(["plan", "digits", "--project", str(project), "--out", str(project / "out")]) == 2
    err = capsys.readouterr().err
    assert path in err and found in err and "starting with a letter" in err and "Traceback" not in err
    config["endpoints"][endpoint]["backend"] = "istio"
    write_stack(project, "digits", config)
    assert main(["plan", "digits", "--project", str(project), "--out", str(project / "out")]) in (0, 1)
