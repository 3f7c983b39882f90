"""`turnout plan` end to end: outputs, exit statuses, messages, several stacks, determinism."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO, write_stack
from turnout.cli import main

SIX_OUTPUTS = ("inventory.json", "manifests", "traffic.json", "dr.json", "policy.json", "summary.md")


def plan(capsys, *args: str) -> tuple[int, str]:
    status = main(["plan", *args])
    return status, capsys.readouterr().err


def test_local_plan_writes_all_six_outputs(tmp_path, capsys):
    status, err = plan(capsys, "local", "--project", str(REPO), "--out", str(tmp_path))
    assert status == 0, err
    folder = tmp_path / "local"
    assert sorted(p.name for p in folder.iterdir()) == sorted(SIX_OUTPUTS)

    inventory = json.loads((folder / "inventory.json").read_text())
    assert inventory["stack"] == "local"
    types = [r["type"] for r in inventory["resources"]]
    assert {"turnout:cluster:KindCluster", "pulumi:providers:kubernetes", "kubernetes:apps/v1:Deployment"} <= set(types)
    assert all(set(r) == {"urn", "type", "name", "parent", "inputs"} for r in inventory["resources"])
    by_name = {r["name"]: r for r in inventory["resources"]}
    assert by_name["local-echo-v2-deployment"]["parent"] == by_name["local-echo-v2"]["urn"]
    assert by_name["local-k8s"]["inputs"]["kubeconfig"] == "[secret]"
    assert inventory["outputs"]["kubeconfigs"] == {"local": "[secret]"}

    traffic = json.loads((folder / "traffic.json").read_text())
    assert traffic == {
        "endpoints": [
            {
                "name": "echo",
                "cluster": "local",
                "backend": "istio",
                "strategy": "shadow",
                "routes": [
                    {
                        "match": None,
                        "to": [{"version": "v1", "weight": 100}],
                        "mirror": [{"version": "v2", "percent": 50}],
                    }
                ],
            },
            {
                "name": "hello",
                "cluster": "local",
                "backend": "knative",
                "strategy": "canary",
                "routes": [  # each Route tag bypasses the split (Knative-Serving-Tag), then the split
                    {
                        "match": {"header": "knative-serving-tag", "value": "v1"},
                        "to": [{"version": "v1", "weight": 100}],
                        "mirror": [],
                    },
                    {
                        "match": {"header": "knative-serving-tag", "value": "v2"},
                        "to": [{"version": "v2", "weight": 100}],
                        "mirror": [],
                    },
                    {
                        "match": None,
                        "to": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}],
                        "mirror": [],
                    },
                ],
                "tagHosts": {"v1": "v1-hello.127.0.0.1.sslip.io", "v2": "v2-hello.127.0.0.1.sslip.io"},
            },
        ]
    }
    dr = json.loads((folder / "dr.json").read_text())
    assert dr["target"] is None and dr["tier"] == "none" and dr["meets"] is True and dr["regions"] == ["local"]
    contract = {"target", "tier", "regions", "estimatedRpoSeconds", "estimatedRtoSeconds", "meets", "reasons"}
    assert set(dr) == contract | {"settings"}  # plus what the tier creates
    assert json.loads((folder / "policy.json").read_text()) == {"violations": [], "waived": []}

    summary = (folder / "summary.md").read_text()
    for needle in ("```mermaid", "## Resources by type", "## Traffic", "## Disaster recovery", "## Policy"):
        assert needle in summary
    assert "[1/1] local: 64 resources, 35 Kubernetes objects" in err


def test_manifests_are_kubectl_ready_documents(tmp_path, capsys):
    status, _ = plan(capsys, "local", "--project", str(REPO), "--out", str(tmp_path))
    assert status == 0
    files = sorted((tmp_path / "local" / "manifests" / "local").glob("*.yaml"))
    kinds = [yaml.safe_load(f.read_text())["kind"] for f in files]
    # Numbered in apply order: namespaces first, custom resources (which need CRDs) last.
    assert kinds[:2] == ["Namespace"] * 2
    assert kinds.index("Deployment") > kinds.index("ServiceAccount")
    custom = {
        "AuthorizationPolicy",
        "Configuration",
        "DestinationRule",
        "Gateway",
        "PeerAuthentication",
        "Route",
        "VirtualService",
    }
    first_custom = min(kinds.index(k) for k in custom)
    assert set(kinds[first_custom:]) == custom
    assert kinds.count("ConfigMap") == 5, "Knative's config patches render as the ConfigMaps they patch"
    deployment = yaml.safe_load(next(f for f in files if "-deployment-" in f.name).read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == 8080 and isinstance(container["ports"][0]["containerPort"], int)
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}


def test_no_secret_value_reaches_disk(tmp_path, capsys):
    plan(capsys, "local", "--project", str(REPO), "--out", str(tmp_path))
    for path in (tmp_path / "local").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "certificate-authority-data" not in text and "client-key-data" not in text, path


def test_plans_are_deterministic(tmp_path, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    plan(capsys, "local", "--project", str(REPO), "--out", str(first))
    plan(capsys, "local", "--project", str(REPO), "--out", str(second))
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for relative in files:
        assert (first / relative).read_text() == (second / relative).read_text(), relative


def test_invalid_stack_file_exits_2_naming_the_key(project, tmp_path, capsys):
    config = yaml.safe_load((project / "environments" / "Pulumi.local.yaml").read_text())["config"]
    config["turnout:endpoints"]["echo"]["strategy"]["shadows"]["v2"] = 150
    (project / "environments" / "Pulumi.local.yaml").write_text(yaml.safe_dump({"config": config}))
    status, err = plan(capsys, "--project", str(project), "--out", str(tmp_path))
    assert status == 2
    assert "stack 'local'" in err
    assert "turnout:endpoints.echo.strategy.shadows.v2: found the number 150; allowed: an integer from 1 to 100" in err
    assert "Traceback" not in err


def test_yaml_syntax_error_exits_2_with_line(project, tmp_path, capsys):
    (project / "environments" / "Pulumi.local.yaml").write_text("config:\n  turnout:tier: [dev\n")
    status, err = plan(capsys, "--project", str(project), "--out", str(tmp_path))
    assert status == 2 and "Pulumi.local.yaml at line" in err and "Traceback" not in err


def test_unknown_stack_exits_2_listing_stacks(capsys):
    status, err = plan(capsys, "nosuchstack", "--project", str(REPO))
    assert status == 2
    assert "no stack 'nosuchstack'" in err
    stacks = (
        "dev-aws, e2e, e2e-judged, e2e-refused, local, prod-aws, prod-aws-blue, prod-aws-global, prod-aws-green, "
        "prod-azure, prod-gcp"
    )
    assert f"stacks: {stacks}" in err


def test_names_and_all_together_is_a_usage_error(capsys):
    status, err = plan(capsys, "local", "--all", "--project", str(REPO))
    assert status == 2 and "not both" in err


def test_unknown_option_is_status_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["plan", "--colour", "blue"])
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (
            lambda c: c["endpoints"]["echo"].update(
                versions={"v1": {"image": "a:1"}, "v2": {"image": "a:2"}},
                strategy={
                    "type": "canary",
                    "stable": "v1",
                    "canary": "v2",
                    "weight": 10,
                    "progressive": {},
                    "sticky": {"cookie": "model"},
                },
            ),
            "turnout:endpoints.echo.strategy.sticky",
        ),
    ],
)
def test_features_not_built_yet_exit_2_saying_so(project, tmp_path, capsys, change, key):
    config = {
        "platform": {"cloud": "kind", "regions": ["local"], "loadImages": ["a:1"]},
        "endpoints": {"echo": {"versions": {"v1": {"image": "a:1"}}}},
    }
    change(config)
    write_stack(project, "next", config)
    status, err = plan(capsys, "next", "--project", str(project), "--out", str(tmp_path))
    assert status == 2, err
    assert key in err and "not supported by this version of turnout yet" in err
    assert not (tmp_path / "next").exists(), "nothing is written for a stack that cannot be planned"


def test_a_cloud_without_its_component_exits_2_naming_the_clouds_that_exist(project, tmp_path, capsys, monkeypatch):
    from components.cluster import fleet

    monkeypatch.setitem(fleet.CLUSTER_COMPONENTS, "azure", ("components.cluster.not_written_yet", "AksCluster"))
    write_stack(
        project,
        "next",
        {
            "platform": {"cloud": "azure", "regions": ["westeurope"]},
            "endpoints": {"echo": {"versions": {"v1": {"image": "a:1"}}}},
        },
    )
    status, err = plan(capsys, "next", "--project", str(project), "--out", str(tmp_path))
    assert status == 2
    assert "turnout:platform.cloud: found 'azure'" in err and "not supported by this version of turnout yet" in err
    assert "kind" in err.split("allowed:")[1]


def test_several_stacks_in_one_run_are_planned_independently(project, tmp_path, capsys):
    write_stack(
        project,
        "second",
        {
            "tier": "prod",
            "platform": {"cloud": "kind", "regions": ["lab"]},
            "endpoints": {
                "alpha": {"versions": {"v3": {"image": "a:3"}}},
                "beta": {"versions": {"v1": {"image": "b:1"}}, "strategy": {"type": "recreate"}},
            },
        },
    )
    status, err = plan(capsys, "local", "second", "--project", str(project), "--out", str(tmp_path))
    assert status == 0, err
    assert "[1/2] planning local" in err and "[2/2] planning second" in err
    local = json.loads((tmp_path / "local" / "inventory.json").read_text())
    second = json.loads((tmp_path / "second" / "inventory.json").read_text())
    assert all("::turnout::" in r["urn"] and r["urn"].startswith("urn:pulumi:local::") for r in local["resources"])
    assert all(r["urn"].startswith("urn:pulumi:second::") for r in second["resources"])
    assert sorted(p.name for p in (tmp_path / "second" / "manifests").iterdir()) == ["second-lab"]
    second_types = [r["type"] for r in second["resources"]]
    assert second_types.count("kubernetes:apps/v1:Deployment") == 2
    assert second_types.count("kubernetes:policy/v1:PodDisruptionBudget") == 2  # prod: 2 replicas by default
    traffic = json.loads((tmp_path / "second" / "traffic.json").read_text())
    assert [(e["name"], e["strategy"]) for e in traffic["endpoints"]] == [("alpha", "rolling"), ("beta", "recreate")]


VIOLATING_PROGRAM = """
import pulumi
import pulumi_kubernetes as k8s

provider = k8s.Provider("lab", kubeconfig="apiVersion: v1")
k8s.apiextensions.CustomResource(
    "scores",
    api_version="networking.istio.io/v1",
    kind="VirtualService",
    metadata={"name": "scores", "namespace": "models"},
    spec={"hosts": ["scores"], "http": [{"route": [
        {"destination": {"host": "scores", "subset": "v1"}, "weight": 90},
        {"destination": {"host": "scores", "subset": "v2"}, "weight": 20},
    ]}]},
    opts=pulumi.ResourceOptions(provider=provider),
)
"""


def test_mandatory_violation_exits_1_and_is_reported(project, tmp_path, capsys):
    (project / "stacks" / "__main__.py").write_text(VIOLATING_PROGRAM)
    status, err = plan(capsys, "--project", str(project), "--out", str(tmp_path))
    assert status == 1
    assert "MANDATORY traffic-weights-sum-to-100: models/scores: route http[0] weights sum to 110, not 100." in err
    violations = json.loads((tmp_path / "local" / "policy.json").read_text())["violations"]
    assert [(v["policy"], v["level"]) for v in violations] == [("traffic-weights-sum-to-100", "mandatory")]
    assert violations[0]["urn"].endswith("::scores")
    assert "traffic-weights-sum-to-100" in (tmp_path / "local" / "summary.md").read_text()
    assert (tmp_path / "local" / "manifests" / "lab").is_dir()


def test_a_crash_in_the_program_is_an_internal_error_with_its_traceback(project, tmp_path, capsys):
    (project / "stacks" / "__main__.py").write_text("raise RuntimeError('component bug')\n")
    status, err = plan(capsys, "--project", str(project), "--out", str(tmp_path))
    assert status == 3
    assert "internal error" in err and "component bug" in err


def test_secure_values_are_secrets_and_never_decrypted(project):
    from turnout.offline.stackfile import OFFLINE_SECRET, find_project, read_stack

    path = project / "environments" / "Pulumi.local.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["aws:accessKey"] = {"secure": "v1:abc:def"}
    document["config"]["aws:maxRetries"] = 3
    document["config"]["aws:skipMetadataApiCheck"] = True
    path.write_text(yaml.safe_dump(document))
    settings = read_stack(find_project(project), "local")
    assert settings.secret_keys == ["aws:accessKey"]
    assert settings.config["aws:accessKey"] == OFFLINE_SECRET
    assert settings.config["aws:maxRetries"] == "3" and settings.config["aws:skipMetadataApiCheck"] == "true"


def test_bare_keys_belong_to_the_project_namespace_and_unknown_ones_are_named(project, tmp_path, capsys):
    path = project / "environments" / "Pulumi.local.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["colour"] = "blue"
    path.write_text(yaml.safe_dump(document))
    status, err = plan(capsys, "--project", str(project), "--out", str(tmp_path))
    assert status == 2 and "turnout:colour: found an unknown key; allowed: one of turnout:tier" in err


def test_make_plan_output_folder_is_replaced_not_merged(project, tmp_path, capsys):
    assert plan(capsys, "--project", str(project), "--out", str(tmp_path))[0] == 0
    stale = tmp_path / "local" / "manifests" / "old-cluster"
    stale.mkdir(parents=True)
    assert plan(capsys, "--project", str(project), "--out", str(tmp_path))[0] == 0
    assert not stale.exists()


def test_copy_of_project_plans_like_the_repository(project, tmp_path, capsys):
    status, _ = plan(capsys, "--project", str(project), "--out", str(tmp_path / "copy"))
    plan(capsys, "--project", str(REPO), "--out", str(tmp_path / "repo"))
    assert status == 0
    assert (tmp_path / "copy" / "local" / "traffic.json").read_text() == (
        tmp_path / "repo" / "local" / "traffic.json"
    ).read_text()
    shutil.rmtree(tmp_path / "copy")


# --- fuzzing the command: no stack file may produce a traceback ----------------------------------

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 70000)
    | st.text(max_size=10)
    | st.sampled_from(["kind", "local", "v1", "rolling", "canary", "1.34", "a:1", "50%", "istio", "knative", "prod"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "cloud",
                    "regions",
                    "versions",
                    "v1",
                    "image",
                    "strategy",
                    "type",
                    "version",
                    "echo",
                    "weight",
                    "backend",
                    "replicas",
                    "min",
                    "max",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=14,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    config=st.dictionaries(st.sampled_from(["tier", "platform", "endpoints", "dr", "cache", "x"]), _values, max_size=5)
)
def test_random_stack_files_exit_0_1_or_2_without_traceback(project, tmp_path, capsys, config):
    write_stack(project, "fuzz", config)
    status = main(["plan", "fuzz", "--project", str(project), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status in (0, 1, 2), err
    assert "Traceback" not in err


def test_secret_manifests_keep_key_names_and_never_values(tmp_path, capsys):
    status, _ = plan(capsys, "local", "--project", str(REPO), "--out", str(tmp_path))
    assert status == 0
    (path,) = (tmp_path / "local" / "manifests" / "local").glob("*-secret-istio-system-turnout-gateway-tls.yaml")
    secret = yaml.safe_load(path.read_text())
    assert secret["type"] == "kubernetes.io/tls"
    # In `data`, where `[secret]` is not base64: an API server refuses the placeholder instead of storing it.
    assert secret["data"] == {"tls.crt": "[secret]", "tls.key": "[secret]"} and "stringData" not in secret
    assert "BEGIN" not in path.read_text()


def test_every_bundled_stack_plans_with_each_cloud_represented(tmp_path, capsys):
    status, err = plan(capsys, "--all", "--project", str(REPO), "--out", str(tmp_path))
    assert status == 0, err
    types = {
        stack.name: {r["type"] for r in json.loads((stack / "inventory.json").read_text())["resources"]}
        for stack in tmp_path.iterdir()
    }
    assert "aws:eks/cluster:Cluster" in types["prod-aws"] and "aws:eks/cluster:Cluster" in types["dev-aws"]
    assert "gcp:container/cluster:Cluster" in types["prod-gcp"]
    assert "azure-native:containerservice:ManagedCluster" in types["prod-azure"]
    assert "turnout:cluster:KindCluster" in types["local"]
    for stack in tmp_path.iterdir():
        strategies = {e["strategy"] for e in json.loads((stack / "traffic.json").read_text())["endpoints"]}
        kind = json.loads((stack / "inventory.json").read_text())["outputs"]["kind"]
        assert len(strategies) >= 2 or kind == "global", f"{stack.name} shows at least two strategies"
    assert "aws:route53/record:Record" in types["prod-aws-global"], "the global stack only routes"


def test_multi_region_stacks_get_one_cluster_per_region_with_deterministic_names(tmp_path, capsys):
    assert plan(capsys, "prod-aws", "prod-gcp", "prod-azure", "--project", str(REPO), "--out", str(tmp_path))[0] == 0
    expected = {
        "prod-aws": ["prod-aws-us-east-1", "prod-aws-us-west-2"],
        "prod-gcp": ["prod-gcp-europe-west4", "prod-gcp-europe-west1"],
        "prod-azure": ["prod-azure-westeurope", "prod-azure-northeurope"],
    }
    for stack, clusters in expected.items():
        outputs = json.loads((tmp_path / stack / "inventory.json").read_text())["outputs"]
        assert [c["name"] for c in outputs["clusters"]] == clusters
        assert sorted(p.name for p in (tmp_path / stack / "manifests").iterdir()) == sorted(clusters)


PROD_BASE = {
    "tier": "prod",
    "platform": {"cloud": "kind", "regions": ["lab"]},
    "endpoints": {
        "scores": {
            "versions": {"v1": {"image": "ghcr.io/acme/scores:1.0.0"}, "v2": {"image": "ghcr.io/acme/scores:2.0.0"}},
            "strategy": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10},
        }
    },
}


@pytest.mark.parametrize(
    ("change", "policy", "finding"),
    [
        (lambda e: e["strategy"].update(weight=60), "canary-weight-cap", "the canary reaches 60%"),
        # (min 0 is refused before planning: an Istio version with no pods cannot serve its traffic)
        (lambda e: e["versions"]["v1"].update(replicas={"min": 1, "max": 3}), "prod-min-replicas", "runs 1 replica"),
        (lambda e: e["versions"]["v2"].update(image="ghcr.io/acme/scores:latest"), "image-pinned", "tagged latest"),
    ],
)
def test_prod_safety_violations_exit_1_naming_the_policy(project, tmp_path, capsys, change, policy, finding):
    config = json.loads(json.dumps(PROD_BASE))
    change(config["endpoints"]["scores"])
    write_stack(project, "risky", config)
    status, err = plan(capsys, "risky", "--project", str(project), "--out", str(tmp_path))
    assert status == 1, err
    assert f"MANDATORY {policy}:" in err and finding in err
    violations = json.loads((tmp_path / "risky" / "policy.json").read_text())["violations"]
    assert [v["policy"] for v in violations if v["level"] == "mandatory"] == [policy]


def test_the_same_canary_in_dev_is_only_advised(project, tmp_path, capsys):
    config = json.loads(json.dumps(PROD_BASE))
    config["tier"] = "dev"
    config["endpoints"]["scores"]["strategy"]["weight"] = 60
    write_stack(project, "trial", config)
    status, _ = plan(capsys, "trial", "--project", str(project), "--out", str(tmp_path))
    assert status == 0
    violations = json.loads((tmp_path / "trial" / "policy.json").read_text())["violations"]
    assert [(v["policy"], v["level"]) for v in violations] == [("canary-weight-cap", "advisory")]


def test_planning_leaves_the_running_process_own_main_module_alone(capsys, tmp_path):
    """The program's folder is imported side by side; the process's `__main__` must survive it (a plan
    followed by anything that imports `__main__`, such as cProfile, would otherwise run the program again)."""
    import sys

    before = sys.modules["__main__"]
    assert plan(capsys, "local", "--project", str(REPO), "--out", str(tmp_path))[0] == 0
    assert sys.modules["__main__"] is before


_durations = st.one_of(st.integers(-5, 200000), st.sampled_from(["0s", "30s", "5m", "1h", "2d", "soon", ""]), st.none())
_dr_cache_global = st.fixed_dictionaries(
    {},
    optional={
        "dr": st.one_of(st.fixed_dictionaries({}, optional={"rpo": _durations, "rto": _durations}), _values),
        "cache": st.one_of(
            st.fixed_dictionaries({"engine": st.sampled_from(["redis", "valkey", "memcached", 3])}), _values
        ),
        "globalTraffic": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "cells": st.dictionaries(
                        st.sampled_from(["blue", "green", "Red"]), st.sampled_from(["local", "fuzz", "nope"])
                    ),
                    "live": st.sampled_from(["blue", "green", "red", 1]),
                    "weights": st.dictionaries(st.sampled_from(["blue", "green"]), st.integers(-10, 120)),
                },
            ),
            _values,
        ),
        "waivers": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "policy": st.sampled_from(["image-pinned", "no-such-rule", ""]),
                        "resource": st.sampled_from(["x", "", "fuzz-local-echo-v1-deployment"]),
                        "reason": st.sampled_from(["because", "accepted by the platform team until the fix"]),
                        "expires": st.sampled_from(["2099-01-01", "2020-02-30", "tomorrow", 20990101]),
                    },
                ),
                max_size=2,
            ),
            _values,
        ),
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=_dr_cache_global, cloud=st.sampled_from(["kind", "kind", "aws"]))
def test_random_dr_cache_global_and_waiver_settings_never_end_in_a_traceback(project, tmp_path, capsys, extra, cloud):
    config = {
        "tier": "prod",
        "platform": {"cloud": "kind", "regions": ["local"]}
        if cloud == "kind"
        else {
            "cloud": "aws",
            "regions": ["us-east-1", "us-west-2"],
            "serving": {"gateway": {"exposure": "external", "domain": "models.example.com"}},
        },
        "endpoints": {"echo": {"versions": {"v1": {"image": "ghcr.io/acme/echo:1.0.0"}}}},
        **extra,
    }
    write_stack(project, "fuzz", config)
    status = main(["plan", "fuzz", "--project", str(project), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status in (0, 1, 2), err
    assert "Traceback" not in err
