"""Typed stack configuration: parsing as the Pulumi CLI hands it over, defaults, and every check."""

from __future__ import annotations

import contextlib
import copy
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import as_cli, load, sample_config
from turnout.config import load_stack_config
from turnout.errors import ConfigError
from turnout.strategies import Canary, Rolling
from turnout.units import parse_duration, parse_quantity


def test_contract_example_parses_with_defaults(config):
    stack = load(config)
    assert stack.tier == "dev"
    assert stack.platform.kubernetes_version == "1.34"
    assert [p.name for p in stack.platform.node_pools] == ["general"]
    assert stack.platform.node_pools[0].machine_type == "kind-node"
    endpoint = stack.endpoints["fraud-score"]
    assert endpoint.backend == "istio"
    assert endpoint.health_path == "/"
    assert endpoint.strategy == Canary(stable="v1", canary="v2", weight=10)
    assert endpoint.versions["v1"].replicas.min == 2 and endpoint.versions["v1"].replicas.max == 10
    assert endpoint.versions["v2"].replicas.min == 1 and endpoint.versions["v2"].replicas.max == 3
    assert endpoint.versions["v2"].resources.cpu == "250m"


def test_five_line_stack_file_plans_with_documented_defaults():
    stack = load_stack_config(
        {
            "platform": '{"cloud": "kind", "regions": ["local"]}',
            "endpoints": '{"m": {"versions": {"v1": {"image": "m:1"}}}}',
        }
    )
    assert stack.endpoints["m"].strategy == Rolling(version="v1", max_surge="25%", max_unavailable=0)
    assert stack.dr is None and stack.cache is None


def test_prod_tier_defaults_to_two_replicas(config):
    config["tier"] = "prod"
    assert load(config).endpoints["fraud-score"].versions["v2"].replicas.min == 2


def test_plain_strings_arrive_unencoded_and_empty_means_absent(config):
    raw = as_cli(config)
    raw["tier"] = "prod"  # the CLI passes `turnout:tier: prod` as the bare string
    raw["dr"] = ""
    stack = load_stack_config(raw)
    assert stack.tier == "prod" and stack.dr is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90), ("90s", 90), ("5m", 300), ("1h", 3600), ("1d", 86400), ("45", 45), (" 2m ", 120)],
)
def test_durations(text, seconds):
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("text", ["5 minutes", "-1", -3, "1w", True, 1.5, None, "m"])
def test_bad_durations_name_the_allowed_forms(text):
    with pytest.raises(ConfigError, match='"90s", "5m", "1h", "1d"'):
        parse_duration(text, "turnout:dr.rto")


def _set(path: str, value):
    """A mutation that sets a dotted path (list indexes as ints) in a decoded config."""

    def mutate(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


_DELETE = object()
EP = "endpoints.fraud-score"
STRATEGY = f"{EP}.strategy"


def _strategy(value):
    return _set(STRATEGY, value)


INVALID = [
    # (mutation, key path named in the error, fragment of what is allowed)
    (_set("tier", "qa"), "turnout:tier", "one of dev, staging, prod"),
    (_set("colour", "blue"), "turnout:colour", "one of turnout:tier"),
    (_set("platform", _DELETE), "turnout:platform", "required"),
    (_set("platform.cloud", "openstack"), "turnout:platform.cloud", "one of kind, aws, gcp, azure"),
    (_set("platform.regions", []), "turnout:platform.regions", "at least 1"),
    (_set("platform.regions", ["a", "b"]), "turnout:platform.regions", "exactly one region"),
    (_set("platform.regions", ["us-east-1", "us-east-1"]), "turnout:platform.regions", "distinct"),
    (_set("platform.regions", ["US East"]), "turnout:platform.regions[0]", "region name"),
    (_set("platform.kubernetesVersion", 1.3), "turnout:platform.kubernetesVersion", "quoted"),
    (_set("platform.kubernetesVersion", "latest"), "turnout:platform.kubernetesVersion", '"1.34"'),
    (_set("platform.nodePools", [{"name": "a"}, {"name": "a"}]), "turnout:platform.nodePools[1].name", "not used"),
    (
        _set("platform.nodePools", [{"name": "a", "min": 5, "max": 2}]),
        "turnout:platform.nodePools[0].min",
        "min <= max",
    ),
    (_set("platform.nodePools", [{"name": "gpu", "gpu": 1}]), "turnout:platform.nodePools[0].gpu", "gpu: 0 on kind"),
    (_set("platform.nodePools", [{"name": "a", "size": 3}]), "turnout:platform.nodePools[0].size", "one of [name"),
    (_set("platform.loadImages", [""]), "turnout:platform.loadImages[0]", "image reference"),
    (_set("dr", {"rpo": "30s"}), "turnout:dr.rto", "required"),
    (_set("dr", {"rpo": "5 minutes", "rto": "1h"}), "turnout:dr.rpo", '"5m"'),
    (_set("cache", {"engine": "memcached"}), "turnout:cache.engine", "one of redis, valkey"),
    (_set("endpoints", _DELETE), "turnout:endpoints", "required"),
    (_set("endpoints", {}), "turnout:endpoints", "at least 1"),
    (_set("endpoints", "fraud"), "turnout:endpoints", "a mapping of name"),
    (
        _set("endpoints.Fraud_Score", {"versions": {"v1": {"image": "a:1"}}}),
        "turnout:endpoints.Fraud_Score",
        "lowercase",
    ),
    (_set("endpoints.kube-system", {"versions": {"v1": {"image": "a:1"}}}), "turnout:endpoints.kube-system", "system"),
    (_set(f"{EP}.backend", "seldon"), f"turnout:{EP}.backend", "one of istio, knative"),
    (_set(f"{EP}.port", 0), f"turnout:{EP}.port", "from 1 to 65535"),
    (_set(f"{EP}.port", "8080"), f"turnout:{EP}.port", "from 1 to 65535"),
    (_set(f"{EP}.healthPath", "healthz"), f"turnout:{EP}.healthPath", "starting with '/'"),
    (_set(f"{EP}.versions", {}), f"turnout:{EP}.versions", "at least 1"),
    (_set(f"{EP}.versions.V3", {"image": "a:1"}), f"turnout:{EP}.versions.V3", "version name"),
    (_set(f"{EP}.versions.v1.image", _DELETE), f"turnout:{EP}.versions.v1.image", "required"),
    (_set(f"{EP}.versions.v1.imag", "x:1"), f"turnout:{EP}.versions.v1.imag", "one of [image"),
    (_set(f"{EP}.versions.v1.replicas", {"min": 5, "max": 2}), f"turnout:{EP}.versions.v1.replicas.min", "min <= max"),
    (_set(f"{EP}.versions.v1.replicas", {"min": -1}), f"turnout:{EP}.versions.v1.replicas.min", "from 0 to 1000"),
    (_set(f"{EP}.versions.v1.resources", {"cpu": "lots"}), f"turnout:{EP}.versions.v1.resources.cpu", "quantity"),
    (_set(f"{EP}.versions.v1.resources", {"gpu": 99}), f"turnout:{EP}.versions.v1.resources.gpu", "from 0 to 16"),
    (_set(f"{EP}.versions.v1.env", {"1X": "a"}), f"turnout:{EP}.versions.v1.env.1X", "environment variable"),
    (_set(f"{EP}.versions.v1.env", {"A": ["x"]}), f"turnout:{EP}.versions.v1.env.A", "a string"),
    (_set(STRATEGY, _DELETE), f"turnout:{STRATEGY}", "required when the endpoint has more than one version"),
    (_strategy({"type": "champion"}), f"turnout:{STRATEGY}.type", "one of recreate, rolling, blue-green, canary"),
    (_strategy("canary"), f"turnout:{STRATEGY}", "a mapping with `type`"),
    (_strategy({"type": "recreate"}), f"turnout:{STRATEGY}.version", "more than one version"),
    (_strategy({"type": "rolling", "version": "v9"}), f"turnout:{STRATEGY}.version", "v1, v2"),
    (_strategy({"type": "rolling", "version": "v1", "maxSurge": 0}), f"turnout:{STRATEGY}.maxSurge", "non-zero"),
    (_strategy({"type": "rolling", "version": "v1", "maxSurge": "150%"}), f"turnout:{STRATEGY}.maxSurge", '"25%"'),
    (
        _strategy({"type": "canary", "stable": "v1", "canary": "v2", "weight": 0}),
        f"turnout:{STRATEGY}.weight",
        "1 to 100",
    ),
    (
        _strategy({"type": "canary", "stable": "v1", "canary": "v2", "weight": 150}),
        f"turnout:{STRATEGY}.weight",
        "1 to 100",
    ),
    (
        _strategy({"type": "canary", "stable": "v1", "canary": "v1", "weight": 5}),
        f"turnout:{STRATEGY}.canary",
        "other than",
    ),
    (
        _strategy({"type": "canary", "stable": "v1", "canary": "v3", "weight": 5}),
        f"turnout:{STRATEGY}.canary",
        "versions: v1, v2",
    ),
    (_strategy({"type": "canary", "stable": "v1", "weight": 5}), f"turnout:{STRATEGY}.canary", "required"),
    (
        _strategy({"type": "canary", "stable": "v1", "canary": "v2", "weight": 5, "sticky": {}}),
        f"turnout:{STRATEGY}.sticky.cookie",
        "required",
    ),
    (
        _strategy({"type": "canary", "stable": "v1", "canary": "v2", "weight": 5, "progressive": {"stepWeight": 60}}),
        f"turnout:{STRATEGY}.progressive.stepWeight",
        "1 to 50",
    ),
    (
        _strategy({"type": "ab-test", "variants": {"v1": 50, "v2": 40}}),
        f"turnout:{STRATEGY}.variants",
        "summing to 100",
    ),
    (_strategy({"type": "ab-test", "variants": {"v1": 100}}), f"turnout:{STRATEGY}.variants", "at least 2"),
    (
        _strategy({"type": "ab-test", "variants": {"v1": 50, "v2": 50}, "segment": {"header": "x-beta", "value": "1"}}),
        f"turnout:{STRATEGY}.default",
        "required when `segment`",
    ),
    (
        _strategy({"type": "ab-test", "variants": {"v1": 50, "v2": 50}, "default": "v1"}),
        f"turnout:{STRATEGY}.default",
        "no default without a `segment`",
    ),
    (
        _strategy(
            {
                "type": "ab-test",
                "variants": {"v1": 50, "v2": 50},
                "segment": {"header": "x beta", "value": "1"},
                "default": "v1",
            }
        ),
        f"turnout:{STRATEGY}.segment.header",
        "HTTP header",
    ),
    (
        _strategy({"type": "shadow", "primary": "v1", "shadows": {"v1": 10}}),
        f"turnout:{STRATEGY}.shadows.v1",
        "other than",
    ),
    (
        _strategy({"type": "shadow", "primary": "v1", "shadows": {"v2": 0}}),
        f"turnout:{STRATEGY}.shadows.v2",
        "1 to 100",
    ),
    (_strategy({"type": "shadow", "primary": "v1", "shadows": {}}), f"turnout:{STRATEGY}.shadows", "at least 1"),
    (_strategy({"type": "blue-green", "active": "v1", "preview": "v4"}), f"turnout:{STRATEGY}.preview", "v1, v2"),
    (_strategy({"type": "dark-launch", "live": "v2", "dark": "v2"}), f"turnout:{STRATEGY}.dark", "other than `live`"),
    (
        _strategy({"type": "blue-green", "active": "v1", "preview": "v1"}),
        f"turnout:{STRATEGY}.preview",
        "other than `active` (v1)",
    ),
    (
        _strategy(
            {
                "type": "feature-flag",
                "flag": "new-model",
                "variants": {"on": "v2", "off": "v1"},
                "defaultVariant": "maybe",
            }
        ),
        f"turnout:{STRATEGY}.defaultVariant",
        "one of the variants: on, off",
    ),
    (
        _strategy({"type": "feature-flag", "flag": "new-model", "variants": {"on": "v9"}, "defaultVariant": "on"}),
        f"turnout:{STRATEGY}.variants.on",
        "v1, v2",
    ),
    (
        _strategy({"type": "canary", "stable": "v1", "canary": "v2", "weight": 60, "progressive": {"maxWeight": 50}}),
        f"turnout:{STRATEGY}.weight",
        "first step: at most maxWeight",
    ),
    (
        _strategy({"type": "shadow", "primary": "v1", "shadows": {"v2": 10, "v1": 5}, "progressive": {}}),
        f"turnout:{STRATEGY}.shadows",
        "exactly one shadow",
    ),
    (
        _strategy({"type": "blue-green", "active": "v1", "preview": "v2", "progressive": {"iterations": 0}}),
        f"turnout:{STRATEGY}.progressive.iterations",
        "1 to 100",
    ),
    # issue 16: what can never run, names that collide, numbers a float would change
    (_set(f"{EP}.versions.v1.resources", {"gpu": 1}), f"turnout:{EP}.versions.v1.resources.gpu", "0 on kind"),
    (_set(f"{EP}.versions.v1.replicas", {"min": 0}), f"turnout:{EP}.versions.v1.replicas.min", "at least 1"),
    (
        _set("endpoints.turnout-system", {"versions": {"v1": {"image": "a:1"}}}),
        "turnout:endpoints.turnout-system",
        "system",
    ),
    (_set("endpoints.kube-lab", {"versions": {"v1": {"image": "a:1"}}}), "turnout:endpoints.kube-lab", "kube-*"),
    (
        _set("endpoints.fraud", {"versions": {"score-v1": {"image": "a:1"}}}),
        "turnout:endpoints.fraud.versions.score-v1",  # the later key; the message names the earlier one too
        "distinct when joined with '-'",
    ),
    (_set("dr", {"rpo": "30s", "rto": "3651d"}), "turnout:dr.rto", "at most 3650d"),
    (_set("dr", {"rpo": 10**22, "rto": "1h"}), "turnout:dr.rpo", "at most 3650d"),
    (_strategy({"type": "rolling", "version": "v1", "maxSurge": 2**31}), f"turnout:{STRATEGY}.maxSurge", "2147483647"),
    (_set(f"{EP}.versions.v1.resources", {"cpu": float("inf")}), f"turnout:{EP}.versions.v1.resources.cpu", "quantity"),
    (
        _set("platform.serving", {"gateway": {"domain": "models..example.com"}}),
        "turnout:platform.serving.gateway.domain",
        "single dots",
    ),
    (
        _set("platform.serving", {"gateway": {"domain": ".example.com"}}),
        "turnout:platform.serving.gateway.domain",
        "single dots",
    ),
    (
        _set("platform.serving", {"gateway": {"certificate": "tls..cert"}}),
        "turnout:platform.serving.gateway.certificate",
        "single dots",
    ),
]

KNATIVE_FORBIDDEN = [
    ({"type": "canary", "stable": "v1", "canary": "v2", "weight": 5, "progressive": {}}, "progressive", "istio only"),
    ({"type": "shadow", "primary": "v1", "shadows": {"v2": 10}}, "type", "use backend istio for shadow"),
    ({"type": "blue-green", "active": "v1", "preview": "v2"}, "type", "use backend istio"),
    ({"type": "dark-launch", "live": "v1", "dark": "v2"}, "type", "use backend istio"),
    (
        {"type": "feature-flag", "flag": "f", "variants": {"a": "v1"}, "defaultVariant": "a"},
        "type",
        "use backend istio",
    ),
    (
        {"type": "canary", "stable": "v1", "canary": "v2", "weight": 5, "sticky": {"cookie": "c"}},
        "sticky",
        "istio only",
    ),
    (
        {
            "type": "ab-test",
            "variants": {"v1": 50, "v2": 50},
            "segment": {"header": "h", "value": "v"},
            "default": "v1",
        },
        "segment",
        "istio only",
    ),
]


@pytest.mark.parametrize(("mutate", "path", "allowed"), INVALID)
def test_each_invalid_value_names_its_key_and_what_is_allowed(config, mutate, path, allowed):
    mutate(config)
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert caught.value.path == path, str(caught.value)
    assert allowed in caught.value.allowed, str(caught.value)
    assert str(caught.value).startswith(f"{path}: found ")


@pytest.mark.parametrize(("strategy", "field", "allowed"), KNATIVE_FORBIDDEN)
def test_knative_refuses_what_it_cannot_route(config, strategy, field, allowed):
    config["endpoints"]["fraud-score"]["backend"] = "knative"
    config["endpoints"]["fraud-score"]["strategy"] = strategy
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert caught.value.path == f"turnout:{STRATEGY}.{field}"
    assert allowed in caught.value.allowed


def test_knative_accepts_weighted_strategies(config):
    config["endpoints"]["fraud-score"]["backend"] = "knative"
    assert load(config).endpoints["fraud-score"].strategy.weight == 10
    config["endpoints"]["fraud-score"]["strategy"] = {"type": "ab-test", "variants": {"v1": 70, "v2": 30}}
    assert load(config).endpoints["fraud-score"].strategy.variants == {"v1": 70, "v2": 30}


def test_malformed_json_is_reported_on_its_key():
    with pytest.raises(ConfigError) as caught:
        load_stack_config({"platform": '{"cloud": "kind",', "endpoints": "{}"})
    assert caught.value.path == "turnout:platform" and "not valid JSON" in caught.value.found


# --- fuzzing: no input may produce anything but a StackConfig or a ConfigError --------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 200) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
KEYS = ["tier", "platform", "dr", "cache", "endpoints"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5))
def test_random_configs_never_raise_anything_but_config_error(raw):
    with contextlib.suppress(ConfigError):
        load_stack_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()})


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*prefix, key))


ALL_PATHS = [p for p in _paths(sample_config()) if p]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ALL_PATHS), json_values)
def test_corrupting_any_key_of_a_valid_config_gives_config_error_or_config(path, value):
    config = copy.deepcopy(sample_config())
    node = config
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    try:
        load(config)
    except ConfigError as err:
        assert err.path.startswith("turnout:")


@pytest.mark.parametrize(("cloud", "region"), [("aws", "us-east-1"), ("gcp", "europe-west4"), ("azure", "westeurope")])
def test_each_cloud_accepts_its_regions(config, cloud, region):
    config["platform"] = {"cloud": cloud, "regions": [region]}
    assert load(config).platform.regions == (region,)


@pytest.mark.parametrize(("cloud", "region"), [("aws", "us-east-7"), ("gcp", "us-east-1"), ("azure", "west-europe")])
def test_a_region_the_cloud_does_not_have_is_named(config, cloud, region):
    first = {"aws": "us-east-1", "gcp": "europe-west4", "azure": "westeurope"}[cloud]
    config["platform"] = {"cloud": cloud, "regions": [first, region]}
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert caught.value.path == "turnout:platform.regions[1]"
    assert "extraRegions" in caught.value.allowed


def test_extra_regions_admit_a_region_newer_than_the_list(config):
    config["platform"] = {"cloud": "aws", "regions": ["eu-west-9"], "extraRegions": ["eu-west-9"]}
    assert load(config).platform.regions == ("eu-west-9",)


def test_derived_name_collisions_name_both_keys(config):
    config["endpoints"]["fraud"] = {"versions": {"score-v2": {"image": "a:1"}}}
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert {caught.value.path, *re.findall(r"turnout:\S+", caught.value.found)} == {
        "turnout:endpoints.fraud.versions.score-v2",
        "turnout:endpoints.fraud-score.versions.v2",
    }


@pytest.mark.parametrize(
    ("value", "quantity"),
    [(268435456, "268435456"), (1.23456789, "1.23456789"), (0.5, "0.5"), (2.0, "2"), (1e21, "1000000000000000000000")],
)
def test_numeric_quantities_keep_their_digits(value, quantity):
    assert parse_quantity(value, "x") == quantity


def test_knative_keeps_scale_to_zero_outside_prod_and_refuses_it_in_prod(config):
    endpoint = config["endpoints"]["fraud-score"]
    endpoint["backend"] = "knative"
    endpoint["versions"]["v2"]["replicas"] = {"min": 0, "max": 3}
    assert load(config).endpoints["fraud-score"].versions["v2"].replicas.min == 0
    config["tier"] = "prod"
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert caught.value.path == "turnout:endpoints.fraud-score.versions.v2.replicas.min"


def test_an_istio_version_without_traffic_may_have_no_pods(config):
    endpoint = config["endpoints"]["fraud-score"]
    endpoint["versions"]["v3"] = {"image": "ghcr.io/acme/fraud-score:2.0.0", "replicas": {"min": 0, "max": 1}}
    assert load(config).endpoints["fraud-score"].versions["v3"].replicas.min == 0
