"""Stack files a new user writes by mistake, as text: each is refused with the file, the line and the
key (status 2), or planned exactly as written; never a traceback, never a silent change (issue 16)."""

from __future__ import annotations

import base64
import binascii
import json
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO, load
from turnout.cli import main
from turnout.config import RESERVED_ENDPOINT_NAMES, check_derived_names
from turnout.errors import ConfigError
from turnout.naming import child
from turnout.offline.runtime import DuplicateUrnError, run_function

KIND = "config:\n  turnout:platform: {cloud: kind, regions: [local]}\n"
ONE = "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:1'}}\n"
AWS_DR = (
    "config:\n  turnout:platform: {cloud: aws, regions: [us-east-1, us-west-2]}\n  turnout:dr: {rpo: 1h, rto: 1h}\n"
)


def plan_text(project, tmp_path, capsys, text: str | bytes, stack: str = "bad") -> tuple[int, str]:
    path = project / "environments" / f"Pulumi.{stack}.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    status = main(["plan", stack, "--project", str(project), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return status, err


# (id, stack file, fragments the status-2 message must hold)
REFUSED = [
    # 1. derived names that collide: both keys named
    (
        "endpoint-version-collision",
        KIND + "  turnout:endpoints:\n    fraud:\n      versions: {score-v1: {image: 'a:1'}}\n"
        "    fraud-score:\n      versions: {v1: {image: 'b:1'}}\n",
        ["turnout:endpoints.fraud-score.versions.v1", "turnout:endpoints.fraud.versions.score-v1", "'fraud-score-v1'"],
    ),
    (
        "knative-revision-collision",
        KIND + "  turnout:endpoints:\n    a:\n      backend: knative\n      versions: {x-knative-v2: {image: 'a:1'}}\n"
        "    a-knative-x:\n      backend: knative\n      versions: {v2: {image: 'b:1'}}\n",
        ["turnout:endpoints.a-knative-x.versions.v2", "turnout:endpoints.a.versions.x-knative-v2"],
    ),
    (
        "endpoint-named-like-the-dr-namespace",
        AWS_DR + "  turnout:endpoints:\n    turnout-system:\n      versions: {v1: {image: 'a:1'}}\n",
        ["turnout:endpoints.turnout-system", "system namespace"],
    ),
    (
        "endpoint-named-like-the-in-cluster-cache",
        KIND + "  turnout:cache: {engine: redis}\n  turnout:endpoints:\n    bad-cache:\n"
        "      versions: {v1: {image: 'a:1'}}\n",
        ["turnout:endpoints.bad-cache", "bad-cache"],
    ),
    (
        "version-named-like-the-flag-daemon",
        KIND + "  turnout:endpoints:\n    r:\n      versions: {flagd: {image: 'a:1'}, v1: {image: 'a:2'}}\n"
        "      strategy: {type: feature-flag, flag: f, variants: {a: flagd, b: v1}, defaultVariant: b}\n",
        ["turnout:endpoints.r.versions.flagd", "Deployment r/r-flagd"],
    ),
    # 2. duplicate keys at any level
    (
        "duplicate-version",
        KIND
        + "  turnout:endpoints:\n    m:\n      versions:\n        v1: {image: 'a:1'}\n        v1: {image: 'a:2'}\n",
        ["turnout:endpoints.m.versions.v1", "twice (lines 6 and 7 of Pulumi.bad.yaml)"],
    ),
    (
        "duplicate-variant",
        KIND + "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:1'}, v2: {image: 'a:2'}}\n"
        "      strategy:\n        type: ab-test\n        variants:\n"
        "          v1: 50\n          v2: 50\n          v1: 0\n",
        ["turnout:endpoints.m.strategy.variants.v1", "twice (lines 9 and 11"],
    ),
    (
        "duplicate-endpoints-block",
        KIND + ONE + "  turnout:endpoints:\n    n:\n      versions: {v1: {image: 'a:1'}}\n",
        ["turnout:endpoints: found the key 'turnout:endpoints' twice (lines 3 and 6"],
    ),
    # 3. namespaces that look like turnout's
    ("misspelt-namespace", AWS_DR.replace("turnout:dr", "turnot:dr") + ONE, ["turnot:dr", "turnout:dr", "line 3"]),
    (
        "capitalised-namespace",
        KIND + "  Turnout:cache: {engine: redis}\n" + ONE,
        ["Turnout:cache", "allowed: turnout:cache"],
    ),
    # 4. YAML 1.1 booleans and nulls as keys
    (
        "no-as-endpoint",
        KIND + "  turnout:endpoints:\n    no:\n      versions: {v1: {image: 'a:1'}}\n",
        ["turnout:endpoints.no", "the boolean false", '"no":'],
    ),
    (
        "null-as-endpoint",
        KIND + "  turnout:endpoints:\n    ~:\n      versions: {v1: {image: 'a:1'}}\n",
        ["turnout:endpoints.~", "null", '"~":'],
    ),
    (
        "on-as-version",
        KIND + "  turnout:endpoints:\n    m:\n      versions: {on: {image: 'a:1'}}\n",
        ["turnout:endpoints.m.versions.on", "the boolean true"],
    ),
    (
        "sexagesimal-key",
        KIND + "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:1', env: {1:30: x}}}\n",
        ["turnout:endpoints.m.versions.v1.env.1:30", "the number 90"],
    ),
    # 5. requests that can never be scheduled
    (
        "gpu-on-kind",
        KIND + "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:1', resources: {gpu: 1}}}\n",
        ["turnout:endpoints.m.versions.v1.resources.gpu", "cloud kind"],
    ),
    (
        "gpu-without-a-gpu-pool",
        "config:\n  turnout:platform: {cloud: aws, regions: [us-east-1]}\n"
        "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:1', resources: {gpu: 2}}}\n",
        ["turnout:endpoints.m.versions.v1.resources.gpu", "no node pool", "turnout:platform.nodePools", "gpu: 2"],
    ),
    (
        "istio-min-zero",
        KIND + "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:1', replicas: {min: 0}}}\n",
        ["turnout:endpoints.m.versions.v1.replicas.min", "no pods", "backend: knative"],
    ),
    (
        "knative-prod-min-zero",
        "config:\n  turnout:tier: prod\n  turnout:platform: {cloud: kind, regions: [local]}\n"
        "  turnout:endpoints:\n    m:\n      backend: knative\n"
        "      versions: {v1: {image: 'a:1', replicas: {min: 0, max: 3}}}\n",
        ["turnout:endpoints.m.versions.v1.replicas.min", "prod"],
    ),
    # 6. numbers that YAML or a float would change
    ("huge-rto", AWS_DR.replace("rto: 1h", "rto: 99999999999999999999999") + ONE, ["turnout:dr.rto", "3650d"]),
    (
        "octal-env",
        KIND + "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:1', env: {ZIP: 01234}}}\n",
        ["turnout:endpoints.m.versions.v1.env.ZIP", "668", '"01234"'],
    ),
    (
        "yes-env",
        KIND + "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:1', env: {DEBUG: yes}}}\n",
        ["turnout:endpoints.m.versions.v1.env.DEBUG", "the boolean true"],
    ),
    (
        "too-many-digits",
        KIND
        + "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:1', resources: {cpu: 1.23456789012345678}}}\n",
        ["turnout:endpoints.m.versions.v1.resources.cpu", "more digits"],
    ),
    # 9. what used to end in a traceback
    (
        "impossible-date",
        KIND + "  turnout:waivers:\n    - {policy: image-pinned, resource: x, reason: 'accepted by the team', "
        "expires: 2027-02-30}\n" + ONE,
        ["turnout:waivers[0].expires", "'2027-02-30'", "YYYY-MM-DD"],
    ),
    (
        "binary-tag",
        KIND + "  turnout:endpoints:\n    m:\n      versions: {v1: {image: !!binary aGVsbG8=}}\n",
        ["turnout:endpoints.m.versions.v1.image", "!!binary"],
    ),
    ("custom-tag", KIND + "  turnout:endpoints: !vault secret/x\n", ["turnout:endpoints", "!vault"]),
    ("deep-nesting", KIND + "  turnout:endpoints: " + "[" * 5000 + "]" * 5000 + "\n", ["64 levels"]),
    (
        "alias-bomb",
        KIND
        + "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:1'}}\n"
        + "  aws:tags:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"    {c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True)),
        ["more than 100000 values"],
    ),
    ("recursive-alias", KIND + ONE + "  aws:tags: &t [*t]\n", ["its own anchor"]),
    ("latin-1", (KIND + "  # caf\xe9\n" + ONE).encode("latin-1"), ["line 3", "0xe9", "save the file as UTF-8"]),
    ("utf-16", (KIND + ONE).encode("utf-16"), ["UTF-16", "save the file as UTF-8"]),
    ("random-bytes", bytes(range(256)) * 4, ["save the file as UTF-8"]),
    ("control-character", KIND + ONE + "  aws:note: 'a\x07b'\n", ["control character"]),
    # rough edges
    ("empty-file", "", ["an empty file", "turnout:platform and turnout:endpoints"]),
    ("comments-only", "# nothing yet\n", ["an empty file"]),
    ("conifg", "conifg:\n  turnout:platform: {cloud: kind, regions: [local]}\n", ["'conifg'", "`config:`"]),
    ("tab-indentation", "config:\n\tturnout:platform: {cloud: kind, regions: [local]}\n", ["line 2", "tab"]),
    (
        "domain-with-two-dots",
        "config:\n  turnout:platform:\n    {cloud: kind, regions: [local], serving: {gateway: {domain: 'a..b'}}}\n"
        + ONE,
        ["turnout:platform.serving.gateway.domain", "single dots"],
    ),
    (
        "secret-name-with-two-dots",
        "config:\n  turnout:platform: {cloud: kind, regions: [local], serving: {gateway: {certificate: 'tls..cert'}}}\n"
        + ONE,
        ["turnout:platform.serving.gateway.certificate", "single dots"],
    ),
]


@pytest.mark.parametrize(("text", "fragments"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_each_mistake_is_status_2_naming_the_file_and_the_key(project, tmp_path, capsys, text, fragments):
    status, err = plan_text(project, tmp_path, capsys, text)
    assert status == 2, err
    assert "stack 'bad' (environments/Pulumi.bad.yaml)" in err
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "out" / "bad").exists(), "nothing is written for a stack that cannot be planned"


def test_keys_in_other_namespaces_are_legitimate(project, tmp_path, capsys):
    text = KIND + "  aws:region: us-east-1\n  kubernetes:enableServerSideApply: true\n" + ONE
    status, err = plan_text(project, tmp_path, capsys, text)
    assert status == 0, err


def test_quoted_names_are_taken_as_written(project, tmp_path, capsys):
    text = KIND + '  turnout:endpoints:\n    "no":\n      versions: {"on": {image: "a:1", env: {ZIP: "01234"}}}\n'
    status, err = plan_text(project, tmp_path, capsys, text)
    assert status == 0, err
    traffic = json.loads((tmp_path / "out" / "bad" / "traffic.json").read_text())
    assert [(e["name"], e["routes"][0]["to"][0]["version"]) for e in traffic["endpoints"]] == [("no", "on")]
    (deployment,) = (tmp_path / "out" / "bad" / "manifests").rglob("*-deployment-*.yaml")
    env = yaml.safe_load(deployment.read_text())["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "ZIP", "value": "01234"} in env


def test_an_unquoted_date_is_a_name_as_written(project, tmp_path, capsys):
    text = KIND + "  turnout:endpoints:\n    m:\n      versions: {2024-06-01: {image: 'a:1'}}\n"
    status, err = plan_text(project, tmp_path, capsys, text)
    assert status == 0, err
    traffic = json.loads((tmp_path / "out" / "bad" / "traffic.json").read_text())
    assert traffic["endpoints"][0]["routes"][0]["to"][0]["version"] == "2024-06-01"


def test_a_utf8_byte_order_mark_is_fine_as_for_the_pulumi_cli(project, tmp_path, capsys):
    status, err = plan_text(project, tmp_path, capsys, (KIND + ONE).encode("utf-8-sig"))
    assert status == 0, err


def test_anchors_and_merge_keys_keep_yaml_semantics(project, tmp_path, capsys):
    text = (
        KIND + "  turnout:endpoints:\n    m:\n      versions:\n"
        "        v1: &base {image: 'a:1', resources: {cpu: 100m, memory: 64Mi}}\n"
        "        v2:\n          <<: *base\n          image: 'a:2'\n"
        "      strategy: {type: canary, stable: v1, canary: v2, weight: 10}\n"
    )
    status, err = plan_text(project, tmp_path, capsys, text)
    assert status == 0, err
    images = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for p in (tmp_path / "out" / "bad" / "manifests").rglob("*-deployment-*.yaml")
        for d in [yaml.safe_load(p.read_text())]
    }
    assert images == {"m-v1": "a:1", "m-v2": "a:2"}


def test_gpu_versions_plan_where_a_pool_has_the_gpus(project, tmp_path, capsys):
    text = (
        "config:\n  turnout:platform:\n    cloud: aws\n    regions: [us-east-1]\n    nodePools:\n"
        "      - {name: general, min: 2, max: 4}\n      - {name: gpu, machineType: g5.xlarge, min: 0, max: 2, gpu: 1}\n"
        "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:1', resources: {gpu: 1}}}\n"
    )
    status, err = plan_text(project, tmp_path, capsys, text)
    assert status in (0, 1), err


def test_knative_scales_to_zero_outside_prod(project, tmp_path, capsys):
    text = KIND + "  turnout:endpoints:\n    m:\n      backend: knative\n"
    text += "      versions: {v1: {image: 'a:1', replicas: {min: 0, max: 3}}}\n"
    status, err = plan_text(project, tmp_path, capsys, text)
    assert status == 0, err
    (configuration,) = (tmp_path / "out" / "bad" / "manifests").rglob("*-configuration-*.yaml")
    annotations = yaml.safe_load(configuration.read_text())["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "0", "what the stack file says, unchanged"


def test_quantities_keep_every_digit(project, tmp_path, capsys):
    text = KIND + "  turnout:endpoints:\n    m:\n"
    text += "      versions: {v1: {image: 'a:1', resources: {memory: 268435456, cpu: 1.23456789}}}\n"
    status, err = plan_text(project, tmp_path, capsys, text)
    assert status == 0, err
    (deployment,) = (tmp_path / "out" / "bad" / "manifests").rglob("*-deployment-*.yaml")
    resources = yaml.safe_load(deployment.read_text())["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"] == {"cpu": "1.23456789", "memory": "268435456"}


@pytest.mark.parametrize(
    ("go_json", "quantity"),
    [
        # How the Pulumi CLI hands numbers to `pulumi.Config` (Go's encoding/json: shortest round-trip
        # digits, exponent form from 1e21): the program must read the same quantity as the offline plan.
        ("268435456", "268435456"),
        ("1.23456789", "1.23456789"),
        ("0.5", "0.5"),
        ("2500000000", "2500000000"),
        ("1e+21", "1000000000000000000000"),
    ],
)
def test_quantities_from_the_pulumi_cli_json_are_exact(config, go_json, quantity):
    config["endpoints"]["fraud-score"]["versions"]["v1"]["resources"] = {"memory": 1}
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    raw["endpoints"] = raw["endpoints"].replace('"memory": 1', f'"memory": {go_json}')
    from turnout.config import load_stack_config

    assert load_stack_config(raw).endpoints["fraud-score"].versions["v1"].resources.memory == quantity


# --- duplicate URNs: the offline runtime refuses them, as the engine does ---------------------------


def test_the_offline_runtime_refuses_a_duplicate_urn():
    import pulumi_kubernetes as k8s

    def program():
        k8s.core.v1.Namespace("same", metadata={"name": "a"})
        k8s.core.v1.Namespace("same", metadata={"name": "b"})

    with pytest.raises(DuplicateUrnError, match="Duplicate resource URN .*::same'; try giving it a unique name"):
        run_function(program)


def test_a_duplicate_urn_from_a_component_is_an_internal_error_not_a_lost_resource(project, tmp_path, capsys):
    """Without the config check, colliding names reach the runtime: exit 3, never a plan missing a resource."""
    import turnout.config

    original = turnout.config.check_derived_names
    turnout.config.check_derived_names = lambda regions, endpoints: None
    try:
        path = project / "environments" / "Pulumi.bad.yaml"
        path.write_text(REFUSED[0][1])
        status = main(["plan", "bad", "--project", str(project), "--out", str(tmp_path)])
    finally:
        turnout.config.check_derived_names = original
    err = capsys.readouterr().err
    assert status == 3 and "Duplicate resource URN" in err and "fraud-score-v1" in err


# --- derived names: the config check agrees with what the components really create ------------------

MESH_ARGS = {
    "gateway": "istio-system/turnout-gateway",
    "gateway_principal": "cluster.local/ns/istio-system/sa/istio-ingressgateway",
    "domain": "models.internal",
    "knative_namespace": "knative-serving",
    "platform_namespaces": ("istio-system", "knative-serving"),
    "image_pull_policy": "Always",
}
# Tokens that the components themselves use in names, so that generated names can meet them.
TOKENS = ["a", "b", "v1", "knative", "svc", "ns", "routes", "sa", "config", "deployment", "shadow", "flagd"]
names = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=3).map("-".join)


@st.composite
def endpoint_sets(draw):
    endpoints = {}
    for name in draw(st.lists(names, min_size=2, max_size=3, unique=True)):
        versions = draw(st.lists(names, min_size=1, max_size=2, unique=True))
        endpoint = {
            "backend": draw(st.sampled_from(["istio", "knative"])),
            "versions": {v: {"image": "ghcr.io/acme/m:1.0.0"} for v in versions},
        }
        if len(versions) == 2:
            endpoint["strategy"] = {"type": "canary", "stable": versions[0], "canary": versions[1], "weight": 10}
        endpoints[name] = endpoint
    return endpoints


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(endpoints=endpoint_sets())
def test_config_accepts_exactly_the_names_the_components_can_create(endpoints):
    """Accepted ⇒ the components register no URN twice; refused ⇒ the two keys named derive one name."""
    from components.endpoint.model_endpoint import ModelEndpoint, ModelEndpointArgs
    from components.mesh.platform import MeshInfo
    from turnout.offline.manifests import manifests

    raw = {"platform": {"cloud": "kind", "regions": ["lab"]}, "endpoints": endpoints}
    try:
        stack = load(raw)
    except ConfigError as err:
        if "check_derived_names" not in repr(err.__traceback__.tb_frame) and "joined with '-'" not in err.found:
            return  # refused for another reason (a reserved or invalid name)
        keys = re.findall(r"turnout:endpoints\.([a-z0-9-]+)(?:\.versions\.([a-z0-9-]+))?", f"{err.path} {err.found}")
        assert len(keys) == 2, str(err)
        what = re.search(r"the (\w[\w ]*) resource name", err.found).group(1)
        parts = {"endpoint": lambda v: (), "workload": lambda v: (v,), "Knative revision": lambda v: ("knative", v)}
        derived = {child(e, *parts[what](v)) if v else child(e) for e, v in keys}
        assert len(derived) == 1, f"{err}: {derived}"
        return

    def program():
        for name, endpoint in stack.endpoints.items():
            args = ModelEndpointArgs(
                endpoint_name=name,
                endpoint=endpoint,
                tier="dev",
                cluster="lab",
                mesh=MeshInfo(**MESH_ARGS),
                after=(),
            )
            ModelEndpoint(child("lab", name), args)

    run = run_function(program)  # raises DuplicateUrnError on a collision the check missed
    manifests(run.records)  # raises on two resources declaring one Kubernetes object


def test_collisions_across_regions_are_refused():
    from turnout.config import Endpoint, ModelVersion

    endpoint = Endpoint(versions={"v1": ModelVersion(image="a:1")})
    with pytest.raises(ConfigError) as caught:
        check_derived_names(("eu-west-1", "eu-west-1-x"), {"x-m": endpoint, "m": endpoint})
    assert "turnout:endpoints" in caught.value.path and "in region" in caught.value.found


# --- platform namespaces: every namespace a plan creates that is not an endpoint's is reserved -------


@pytest.fixture(scope="module")
def platform_plans(tmp_path_factory):
    out = tmp_path_factory.mktemp("plans")
    assert main(["plan", "local", "prod-aws", "--project", str(REPO), "--out", str(out)]) == 0
    return out


def test_every_platform_namespace_is_a_reserved_endpoint_name(platform_plans):
    created = set()
    for stack in ("local", "prod-aws"):
        for path in (platform_plans / stack / "manifests").rglob("00-namespace-*.yaml"):
            namespace = yaml.safe_load(path.read_text())
            if "turnout.dev/endpoint" not in (namespace["metadata"].get("labels") or {}):
                created.add(namespace["metadata"]["name"])
        inventory = json.loads((platform_plans / stack / "inventory.json").read_text())
        created |= {
            r["inputs"]["namespace"]
            for r in inventory["resources"]
            if r["type"] == "kubernetes:helm.sh/v3:Release" and r["inputs"].get("namespace")
        }
    assert created >= {"istio-system", "turnout-system", "kube-system"}
    assert created <= RESERVED_ENDPOINT_NAMES


def test_no_placeholder_outside_a_redacted_secret(platform_plans):
    """`[secret]` may only appear where an API server refuses it (a Secret's base64 `data`)."""
    for stack in ("local", "prod-aws"):
        for path in (platform_plans / stack / "manifests").rglob("*.yaml"):
            text = path.read_text()
            document = yaml.safe_load(text)
            if document["kind"] == "Secret" and "data" in document:
                assert set(document["data"].values()) == {"[secret]"}
                assert "stringData" not in document and text.startswith("# REDACTED by turnout plan")
                assert document["metadata"]["annotations"]["turnout.dev/redacted"]
            else:
                assert "[secret]" not in text, path


def test_a_redacted_secret_is_refused_by_the_api_server_schema():
    """Secret.data is `format: byte` (base64) in the Kubernetes OpenAPI schema; `[secret]` does not decode."""
    from kubernetes_validate.utils import schema_contents

    schema = schema_contents("kubernetes-json-schema/v1.34.0-local-strict/secret-v1.json", "1.34.0")
    assert schema["properties"]["data"]["additionalProperties"]["format"] == "byte"
    assert "base64 encoded" in schema["properties"]["data"]["description"]
    with pytest.raises(binascii.Error):
        base64.b64decode("[secret]", validate=True)


# --- what the stack file writes reaches summary.md escaped --------------------------------------------


def _cells(row: str) -> list[str]:
    """A GFM table row's cells: split on pipes that are not escaped."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_user_strings_cannot_break_the_summary(project, tmp_path, capsys):
    text = (
        KIND + "  turnout:waivers:\n    - policy: image-pinned\n      resource: bad-local-m-v1-deployment\n"
        "      reason: 'accepted | by *ops* <team> until `v2` ships'\n      expires: '2999-01-01'\n"
        "  turnout:endpoints:\n    m:\n      versions: {v1: {image: 'a:latest'}, v2: {image: 'a:2'}}\n"
        "      strategy:\n        type: ab-test\n        variants: {v1: 50, v2: 50}\n"
        "        segment: {header: 'x-a|b`c', value: 'be\"ta|`x` #1;'}\n        default: v1\n"
    )
    status, err = plan_text(project, tmp_path, capsys, text)
    assert status == 0, err
    summary = (tmp_path / "out" / "bad" / "summary.md").read_text()
    mermaid = summary[summary.index("```mermaid") : summary.index("```", summary.index("```mermaid") + 3)]
    for line in mermaid.splitlines()[2:]:
        # every label is one quoted string holding no quote: entity codes (#34;) stand for them
        assert line.count('"') % 2 == 0, line
        assert all("`" not in label and "|" not in label for label in re.findall(r'"([^"]*)"', line)), line
    assert "be#34;ta#124;#96;x#96; #35;1#59;" in mermaid
    tables = {}
    header = None
    for row in summary.splitlines():
        if not row.startswith("|"):
            header = None
            continue
        if header is None:
            header = len(_cells(row))
            tables[row] = header
        assert len(_cells(row)) == header, row
    assert "| # | requests | served by | mirrored to |" in tables
    route = next(r for r in summary.splitlines() if r.startswith("| 1 |"))
    assert '``x-a\\|b`c: be"ta\\|`x` #1;``' in route  # a code span of two backticks, pipes escaped
    waiver = next(r for r in summary.splitlines() if "accepted" in r)
    assert "accepted \\| by \\*ops\\* \\<team\\> until \\`v2\\` ships" in waiver


def test_diagram_node_ids_stay_distinct_for_names_that_read_alike():
    from turnout.offline.report import _NodeIds

    node_id = _NodeIds()
    first, second = node_id("version", "lab", "a-b", "c"), node_id("version", "lab", "a", "b-c")
    assert first != second and node_id("version", "lab", "a-b", "c") == first
    assert node_id("cluster", "prod-us-east-1") == "cluster_prod_us_east_1"
