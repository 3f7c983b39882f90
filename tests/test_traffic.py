"""Strategies → traffic plans: the exact routes of each strategy, and properties over all of them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import load, sample_config
from turnout.errors import ConfigError
from turnout.strategies import (
    AbTest,
    BlueGreen,
    Canary,
    DarkLaunch,
    FeatureFlag,
    Recreate,
    Rolling,
    Segment,
    Shadow,
    Sticky,
)
from turnout.traffic import traffic_plan


def routes(strategy):
    return traffic_plan(strategy).to_json()


def to(*pairs):
    return [{"version": v, "weight": w} for v, w in pairs]


def test_recreate_and_rolling_send_everything_to_one_version():
    for strategy in (Recreate(version="v2"), Rolling(version="v2")):
        assert routes(strategy) == [{"match": None, "to": to(("v2", 100)), "mirror": []}]
        assert traffic_plan(strategy).running_versions == ("v2",)


def test_blue_green_previews_by_header():
    plan = routes(BlueGreen(active="blue", preview="green", preview_header="x-turnout-preview"))
    assert plan == [
        {"match": {"header": "x-turnout-preview", "value": "true"}, "to": to(("green", 100)), "mirror": []},
        {"match": None, "to": to(("blue", 100)), "mirror": []},
    ]


def test_canary_splits_by_weight():
    assert routes(Canary(stable="v1", canary="v2", weight=10)) == [
        {"match": None, "to": to(("v1", 90), ("v2", 10)), "mirror": []}
    ]


def test_full_canary_leaves_no_zero_weight_destination():
    assert routes(Canary(stable="v1", canary="v2", weight=100)) == [
        {"match": None, "to": to(("v2", 100)), "mirror": []}
    ]


def test_sticky_canary_keeps_returning_users_on_their_version():
    plan = routes(Canary(stable="v1", canary="v2", weight=20, sticky=Sticky(cookie="model")))
    assert plan == [
        {"match": {"cookie": "model", "value": "v2"}, "to": to(("v2", 100)), "mirror": []},
        {"match": {"cookie": "model", "value": "v1"}, "to": to(("v1", 100)), "mirror": []},
        {"match": None, "to": to(("v1", 80), ("v2", 20)), "mirror": []},
    ]


def test_ab_test_without_segment_splits_everyone():
    assert routes(AbTest(variants={"a": 50, "b": 30, "c": 20})) == [
        {"match": None, "to": to(("a", 50), ("b", 30), ("c", 20)), "mirror": []}
    ]


def test_ab_test_segment_splits_only_the_segment():
    plan = routes(AbTest(variants={"a": 50, "b": 50}, segment=Segment(header="x-cohort", value="beta"), default="a"))
    assert plan == [
        {"match": {"header": "x-cohort", "value": "beta"}, "to": to(("a", 50), ("b", 50)), "mirror": []},
        {"match": None, "to": to(("a", 100)), "mirror": []},
    ]


def test_shadow_mirrors_without_serving():
    plan = traffic_plan(Shadow(primary="v1", shadows={"v2": 50, "v3": 10}))
    assert plan.to_json() == [
        {
            "match": None,
            "to": to(("v1", 100)),
            "mirror": [{"version": "v2", "percent": 50}, {"version": "v3", "percent": 10}],
        }
    ]
    assert plan.routed_versions == ("v1",)
    assert plan.running_versions == ("v1", "v2", "v3")


def test_dark_launch_reaches_dark_only_by_header():
    assert routes(DarkLaunch(live="v1", dark="v2", header="x-turnout-dark")) == [
        {"match": {"header": "x-turnout-dark", "value": "true"}, "to": to(("v2", 100)), "mirror": []},
        {"match": None, "to": to(("v1", 100)), "mirror": []},
    ]


def test_blue_green_and_dark_launch_default_to_turnouts_headers():
    assert routes(BlueGreen(active="v1", preview="v2"))[0]["match"] == {"header": "x-turnout-preview", "value": "true"}
    assert routes(DarkLaunch(live="v1", dark="v2"))[0]["match"] == {"header": "x-turnout-dark", "value": "true"}


# --- on Knative: the Route's percents, and a route per tag that changes where a request goes ---------------


def knative_routes(strategy):
    return traffic_plan(strategy, "knative").to_json()


def tag(version):
    return {"header": "knative-serving-tag", "value": version}


def test_knative_blue_green_reaches_the_preview_by_its_tag():
    plan = traffic_plan(BlueGreen(active="blue", preview="green"), "knative")
    assert plan.to_json() == [
        {"match": tag("green"), "to": to(("green", 100)), "mirror": []},
        {"match": None, "to": to(("blue", 100)), "mirror": []},
    ]
    assert plan.running_versions == ("green", "blue")
    # the switch: one word, as on Istio
    assert knative_routes(BlueGreen(active="green", preview="blue")) == [
        {"match": tag("blue"), "to": to(("blue", 100)), "mirror": []},
        {"match": None, "to": to(("green", 100)), "mirror": []},
    ]


def test_knative_dark_launch_reaches_dark_only_by_its_tag():
    assert knative_routes(DarkLaunch(live="v1", dark="v2")) == [
        {"match": tag("v2"), "to": to(("v2", 100)), "mirror": []},
        {"match": None, "to": to(("v1", 100)), "mirror": []},
    ]


def test_knative_split_strategies_show_each_tag_before_the_split():
    assert knative_routes(Canary(stable="v1", canary="v2", weight=10)) == [
        {"match": tag("v1"), "to": to(("v1", 100)), "mirror": []},
        {"match": tag("v2"), "to": to(("v2", 100)), "mirror": []},
        {"match": None, "to": to(("v1", 90), ("v2", 10)), "mirror": []},
    ]
    for strategy in (Rolling(version="v2"), Recreate(version="v2"), Canary(stable="v1", canary="v2", weight=100)):
        assert knative_routes(strategy) == [{"match": None, "to": to(("v2", 100)), "mirror": []}], strategy


def test_feature_flag_routes_each_variant_and_defaults():
    plan = routes(FeatureFlag(flag="new-ranker", variants={"on": "v2", "off": "v1"}, default_variant="off"))
    assert plan == [
        {"match": {"header": "x-turnout-variant", "value": "on"}, "to": to(("v2", 100)), "mirror": []},
        {"match": {"header": "x-turnout-variant", "value": "off"}, "to": to(("v1", 100)), "mirror": []},
        {"match": None, "to": to(("v1", 100)), "mirror": []},
    ]


# --- properties over every strategy a valid config can hold ------------------------------------------

VERSIONS = ["v1", "v2", "v3", "v4"]


@st.composite
def weights(draw, versions):
    """Integer weights over `versions` that sum to 100."""
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=len(versions) - 1, max_size=len(versions) - 1)))
    bounds = [0, *cuts, 100]
    return {v: bounds[i + 1] - bounds[i] for i, v in enumerate(versions)}


@st.composite
def strategy_configs(draw):
    pair = draw(st.permutations(VERSIONS))
    header = draw(st.sampled_from(["x-turnout-preview", "x-beta", "x-cohort"]))
    kind = draw(
        st.sampled_from(
            ["recreate", "rolling", "blue-green", "canary", "ab-test", "shadow", "dark-launch", "feature-flag"]
        )
    )
    if kind in ("recreate", "rolling"):
        return {"type": kind, "version": pair[0]}
    if kind == "blue-green":
        return {"type": kind, "active": pair[0], "preview": pair[1], "previewHeader": header}
    if kind == "canary":
        strategy = {"type": kind, "stable": pair[0], "canary": pair[1], "weight": draw(st.integers(1, 100))}
        if draw(st.booleans()):
            strategy["sticky"] = {"cookie": "turnout-version"}
        return strategy
    if kind == "ab-test":
        variants = draw(weights(pair[: draw(st.integers(2, 4))]))
        strategy = {"type": kind, "variants": variants}
        if draw(st.booleans()):
            strategy.update(segment={"header": header, "value": "yes"}, default=draw(st.sampled_from(VERSIONS)))
        return strategy
    if kind == "shadow":
        shadows = {v: draw(st.integers(1, 100)) for v in pair[1 : draw(st.integers(2, 4))]}
        return {"type": kind, "primary": pair[0], "shadows": shadows}
    if kind == "dark-launch":
        return {"type": kind, "live": pair[0], "dark": pair[1], "header": header}
    variants = {f"variant-{i}": draw(st.sampled_from(VERSIONS)) for i in range(draw(st.integers(1, 3)))}
    return {
        "type": kind,
        "flag": "model-flag",
        "variants": variants,
        "defaultVariant": draw(st.sampled_from(sorted(variants))),
    }


def _plan_for(strategy_config):
    config = sample_config()
    endpoint = config["endpoints"]["fraud-score"]
    endpoint["versions"] = {v: {"image": f"ghcr.io/acme/m:{i}"} for i, v in enumerate(VERSIONS)}
    endpoint["strategy"] = strategy_config
    return traffic_plan(load(config).endpoints["fraud-score"].strategy)


@settings(max_examples=500, deadline=None)
@given(strategy_configs())
def test_every_plan_is_well_formed(strategy_config):
    plan = _plan_for(strategy_config)
    assert plan.routes, "a plan always has a route"
    assert plan.routes[-1].match is None, "the last route matches every request"
    assert all(route.match is not None for route in plan.routes[:-1]), "only the last route matches everything"
    for route in plan.routes:
        assert sum(d.weight for d in route.to) == 100
        assert all(d.weight > 0 for d in route.to)
        assert all(0 < m.percent <= 100 for m in route.mirror)
    assert set(plan.running_versions) <= set(VERSIONS)
    assert not set(plan.mirrored_versions) & set(plan.routed_versions), "a shadow never serves users"


KNATIVE_REFUSES = ("sticky", "segment", "type")  # cookies, header segments, mirrors and feature flags: istio only


@settings(max_examples=300, deadline=None)
@given(strategy_configs())
def test_every_knative_plan_is_the_istio_default_route_and_its_tags(strategy_config):
    """Whatever Knative accepts, its plan serves untagged requests as the Istio plan's last route does, and lists a
    tag route for exactly the versions that route does not already send everything to."""
    strategy_config = {k: v for k, v in strategy_config.items() if k not in ("previewHeader", "header")}
    config = sample_config()
    endpoint = config["endpoints"]["fraud-score"]
    endpoint["versions"] = {v: {"image": f"ghcr.io/acme/m:{i}"} for i, v in enumerate(VERSIONS)}
    endpoint.update(backend="knative", strategy=strategy_config)
    try:
        strategy = load(config).endpoints["fraud-score"].strategy
    except ConfigError as refused:
        assert refused.path.rsplit(".", 1)[-1] in KNATIVE_REFUSES, str(refused)
        return
    istio, knative = traffic_plan(strategy), traffic_plan(strategy, "knative")
    *by_tag, served = knative.routes
    assert served == istio.routes[-1] and served.match is None and not served.mirror
    assert set(knative.running_versions) == set(istio.running_versions)
    for route in by_tag:
        assert route.match.to_json() == {"header": "knative-serving-tag", "value": route.match.value}
        assert [(d.version, d.weight) for d in route.to] == [(route.match.value, 100)]
    assert [r.match.value for r in by_tag] == [
        v for v in knative.running_versions if [(d.version, d.weight) for d in served.to] != [(v, 100)]
    ]
