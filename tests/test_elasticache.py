"""ElastiCache's provider rules, guarded offline (the mocks never run the provider's ConflictsWith or AWS's node
families), and a Global Datastore that stays the stack's after `turnout failover`: `cache.primaryRegion`, the
ignored ForceNew field, and final snapshots that never collide."""

from __future__ import annotations

import json

import pytest

from components.cache.elasticache import (
    SECONDARY_CONFLICTS,
    check_replication_group,
    global_datastore_capable,
    node_type_for,
)
from tests.conftest import write_stack
from tests.test_cache_clouds import GLOBAL_DATASTORE, REPLICATION_GROUP, cache_run, of_type
from turnout.cli import main
from turnout.errors import ConfigError, NotSupportedError
from turnout.offline.runtime import RecordingMonitor

PRIMARY = {
    "replication_group_id": "prod-cache-us-east-1",
    "engine": "valkey",
    "engine_version": "8.0",
    "node_type": "cache.r7g.large",
    "num_cache_clusters": 3,
    "automatic_failover_enabled": True,
    "multi_az_enabled": True,
    "at_rest_encryption_enabled": True,
    "kms_key_id": "arn:aws:kms:us-east-1:123456789012:key/k",
    "transit_encryption_enabled": True,
    "transit_encryption_mode": "required",
    "auth_token": "x" * 64,
}
SECONDARY = {
    "replication_group_id": "prod-cache-us-west-2",
    "global_replication_group_id": "abcde-prod-cache",
    "num_cache_clusters": 3,
    "automatic_failover_enabled": True,
    "multi_az_enabled": True,
    "kms_key_id": "arn:aws:kms:us-west-2:123456789012:key/k",
    "auth_token": "x" * 64,
}


# --- the rules, as plain functions ---


def test_valid_primary_and_secondary_pass():
    check_replication_group(PRIMARY, global_datastore=True)
    check_replication_group(SECONDARY, global_datastore=True)


@pytest.mark.parametrize("argument", SECONDARY_CONFLICTS)
def test_a_secondary_given_what_conflicts_with_global_replication_group_id_is_refused(argument):
    with pytest.raises(ConfigError) as caught:
        check_replication_group({**SECONDARY, argument: "x"}, global_datastore=True)
    assert caught.value.path == "turnout:cache"
    assert argument in caught.value.found and "ConflictsWith" in caught.value.allowed


@pytest.mark.parametrize(
    ("change", "found"),
    [
        ({"node_type": None}, "no node_type"),
        ({"transit_encryption_enabled": None}, "auth_token without transit encryption"),
        ({"at_rest_encryption_enabled": False}, "kms_key_id without encryption at rest"),
        ({"automatic_failover_enabled": False}, "Multi-AZ without automatic failover"),
        ({"num_cache_clusters": 1}, "automatic failover with one node"),
        ({"replication_group_id": "Prod--cache"}, "an id with"),
        ({"node_type": "cache.t4g.medium"}, "node type cache.t4g.medium under a Global Datastore"),
    ],
)
def test_a_primary_without_its_companions_is_refused(change, found):
    with pytest.raises(ConfigError) as caught:
        check_replication_group({**PRIMARY, **change}, global_datastore=True)
    assert found in caught.value.found


@pytest.mark.parametrize(
    ("node_type", "capable"),
    [
        ("cache.t4g.medium", False),
        ("cache.t3.large", False),
        ("cache.m7g.medium", False),
        ("cache.r4.large", False),
        ("cache.m5.large", True),
        ("cache.m6g.xlarge", True),
        ("cache.m7g.large", True),
        ("cache.r5.2xlarge", True),
        ("cache.r6g.large", True),
        ("cache.r6gd.xlarge", True),
        ("cache.r7g.large", True),
        ("cache.c7gn.large", True),
    ],
)
def test_global_datastore_node_families(node_type, capable):
    assert global_datastore_capable(node_type) is capable


def test_a_tier_too_small_for_a_global_datastore_gets_the_smallest_capable_node_only_with_one():
    assert node_type_for("dev", global_datastore=False) == "cache.t4g.medium"
    assert node_type_for("dev", global_datastore=True) == "cache.m7g.large"
    assert node_type_for("staging", global_datastore=True) == "cache.m7g.large"
    assert node_type_for("prod", global_datastore=True) == "cache.r7g.large"


# --- after a failover: primaryRegion, and the ForceNew field the stack never fights ---


@pytest.fixture
def registered(monkeypatch):
    """Each registration's ignoreChanges, by resource name (the offline records do not keep resource options)."""
    seen: dict[str, list[str]] = {}
    original = RecordingMonitor.RegisterResource

    def spy(self, request):
        seen[request.name] = list(request.ignoreChanges)
        return original(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", spy)
    return seen


def test_the_global_datastore_ignores_the_primary_failover_reports(registered):
    _, records = cache_run("aws", ("us-east-1", "us-west-2"), replicas=("us-west-2",))
    (datastore,) = of_type(records, GLOBAL_DATASTORE).values()
    assert registered[datastore.name] == ["primaryReplicationGroupId"], "a refresh after failover would replace it"
    groups = of_type(records, REPLICATION_GROUP)
    assert (
        datastore.inputs["primaryReplicationGroupId"]
        == groups["prod-cache-us-east-1-group"].inputs["replicationGroupId"]
    )


def test_primary_region_makes_the_stack_agree_with_a_promoted_secondary():
    run, records = cache_run("aws", ("us-east-1", "us-west-2"), replicas=("us-west-2",), primary_region="us-west-2")
    (datastore,) = of_type(records, GLOBAL_DATASTORE).values()
    assert datastore.inputs["primaryReplicationGroupId"] == "prod-cache-us-west-2", "what AWS reports after failover"
    groups = of_type(records, REPLICATION_GROUP)
    founder, promoted = groups["prod-cache-us-east-1-group"], groups["prod-cache-us-west-2-group"]
    # The groups keep the shape they were created with: changing it would replace them.
    assert "globalReplicationGroupId" not in founder.inputs and founder.inputs["engine"] == "redis"
    assert promoted.inputs["globalReplicationGroupId"] == datastore.raw_outputs["globalReplicationGroupId"]
    connections = run.stack_outputs["connections"]
    assert connections["us-west-2"]["role"] == "primary" and connections["us-east-1"]["role"] == "replica"
    replication = run.stack_outputs["replication"]
    assert replication["primaryRegion"] == "us-west-2"
    assert replication["regions"]["us-west-2"]["role"] == "primary"
    assert replication["regions"]["us-east-1"]["role"] == "replica"
    assert replication["crossRegion"]["replicas"] == ["us-east-1"]


def test_primary_region_must_hold_a_copy_and_is_aws_only():
    with pytest.raises(ConfigError) as caught:
        cache_run("aws", ("us-east-1", "us-west-2"), primary_region="us-west-2")
    assert caught.value.path == "turnout:cache.primaryRegion" and "us-east-1" in caught.value.allowed
    with pytest.raises(NotSupportedError) as caught:
        cache_run("gcp", ("us-central1",), primary_region="us-central1")
    assert caught.value.path == "turnout:cache.primaryRegion"


def test_final_snapshots_are_named_per_group_and_per_creation():
    _, records = cache_run("aws", ("us-east-1", "us-west-2"), replicas=("us-west-2",))
    names = {}
    for name, group in of_type(records, REPLICATION_GROUP).items():
        region = name.removeprefix("prod-cache-").removesuffix("-group")
        suffix = records[("random:index/randomId:RandomId", f"prod-cache-{region}-final-snapshot")]
        assert suffix.urn in group.dependencies, "a new suffix whenever the group is created anew"
        names[region] = group.inputs["finalSnapshotIdentifier"]
        assert names[region] == f"prod-cache-{region}-final-{suffix.raw_outputs['hex']}"
    assert len(set(names.values())) == 2


def test_primary_region_in_a_stack_file(project, tmp_path, capsys):
    config = {
        "tier": "prod",
        "platform": {"cloud": "aws", "regions": ["us-east-1", "us-west-2"], "apiAccess": "in-network"},
        "dr": {"rpo": "30s", "rto": "10m"},
        "cache": {"engine": "valkey", "primaryRegion": "us-west-2"},
        "endpoints": {"scores": {"versions": {"v1": {"image": "ghcr.io/acme/scores:1.0.0"}}}},
    }
    config["platform"]["serving"] = {"gateway": {"exposure": "external", "domain": "models.example.com"}}
    write_stack(project, "flipped", config)
    assert main(["plan", "flipped", "--project", str(project), "--out", str(tmp_path)]) == 0, capsys.readouterr().err
    inventory = json.loads((tmp_path / "flipped" / "inventory.json").read_text())
    (datastore,) = [r for r in inventory["resources"] if r["type"] == GLOBAL_DATASTORE]
    assert datastore["inputs"]["primaryReplicationGroupId"] == "flipped-cache-us-west-2"
    config["cache"]["primaryRegion"] = "eu-west-1"
    write_stack(project, "flipped", config)
    assert main(["plan", "flipped", "--project", str(project), "--out", str(tmp_path)]) == 2
    assert "turnout:cache.primaryRegion" in capsys.readouterr().err
