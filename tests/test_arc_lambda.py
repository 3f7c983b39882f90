"""The custom-action Lambda an ARC Region switch plan runs (components/dr/lambdas/promote_cache.py), against
botocore's Stubber: it promotes the right member, is idempotent across ARC's retries, and every failure surfaces
with the call and AWS's error."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

from components.dr.lambdas import promote_cache

DATASTORE = "ldgnf-prod-cache"
EAST, WEST = "prod-cache-us-east-1", "prod-cache-us-west-2"


class Context:
    def __init__(self, remaining_ms: int = 240_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Clock:
    """A clock that moves only when the function sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def group(primary: str, status: str = "available") -> dict:
    """DescribeGlobalReplicationGroups' answer with `primary`'s region primary (roles as the API writes them)."""
    members = [
        {"ReplicationGroupId": EAST, "ReplicationGroupRegion": "us-east-1", "Role": "PRIMARY"},
        {"ReplicationGroupId": WEST, "ReplicationGroupRegion": "us-west-2", "Role": "SECONDARY"},
    ]
    if primary == "us-west-2":
        members[0]["Role"], members[1]["Role"] = "secondary", "primary"  # the API documents lower case too
    return {"GlobalReplicationGroups": [{"GlobalReplicationGroupId": DATASTORE, "Status": status, "Members": members}]}


DESCRIBE = {"GlobalReplicationGroupId": DATASTORE, "ShowMemberInfo": True}


@pytest.fixture
def west(monkeypatch):
    """The function deployed in us-west-2, for its member."""
    monkeypatch.setenv("GLOBAL_DATASTORE_ID", DATASTORE)
    monkeypatch.setenv("MEMBER_REPLICATION_GROUP_ID", WEST)
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    client = boto3.client(
        "elasticache", region_name="us-west-2", aws_access_key_id="test", aws_secret_access_key="test"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def run(client, clock=None, remaining_ms=240_000):
    clock = clock or Clock()
    return promote_cache.handler(
        {"PlanArn": "arn:aws:arc-region-switch::123456789012:plan/p:abc123", "ExecutionId": "e-1"},
        Context(remaining_ms),
        client=client,
        sleep=clock.sleep,
        clock=clock,
    )


def test_it_fails_over_to_its_own_regions_member_and_waits_until_it_is_primary(west):
    client, stubber = west
    clock = Clock()
    stubber.add_response("describe_global_replication_groups", group("us-east-1"), DESCRIBE)
    stubber.add_response(
        "failover_global_replication_group",
        {},
        {"GlobalReplicationGroupId": DATASTORE, "PrimaryRegion": "us-west-2", "PrimaryReplicationGroupId": WEST},
    )
    stubber.add_response("describe_global_replication_groups", group("us-east-1", "modifying"), DESCRIBE)
    stubber.add_response("describe_global_replication_groups", group("us-west-2"), DESCRIBE)
    result = run(client, clock)
    assert result == {
        "outcome": "promoted",
        "globalDatastore": DATASTORE,
        "primary": WEST,
        "region": "us-west-2",
        "seconds": 10.0,
    }
    assert clock.sleeps == [promote_cache.POLL_SECONDS]


def test_a_member_already_primary_is_success_without_a_failover_call(west):
    client, stubber = west
    stubber.add_response("describe_global_replication_groups", group("us-west-2"), DESCRIBE)
    assert run(client)["outcome"] == "already-primary"  # the Stubber fails on any call it was not given


def test_a_retry_during_a_promotion_waits_for_it_instead_of_starting_another(west):
    client, stubber = west
    # ARC ran the function again after its retry interval: the first run's failover is still going on.
    stubber.add_response("describe_global_replication_groups", group("us-east-1", "modifying"), DESCRIBE)
    stubber.add_response("describe_global_replication_groups", group("us-east-1", "modifying"), DESCRIBE)
    stubber.add_response("describe_global_replication_groups", group("us-west-2"), DESCRIBE)
    assert run(client)["outcome"] == "waited"


def test_a_refused_failover_surfaces_with_awss_error_and_the_detach_command(west):
    client, stubber = west
    stubber.add_response("describe_global_replication_groups", group("us-east-1"), DESCRIBE)
    stubber.add_client_error(
        "failover_global_replication_group",
        service_error_code="InvalidGlobalReplicationGroupState",
        service_message="The Global datastore is not available or in primary-only state.",
        expected_params={"GlobalReplicationGroupId": DATASTORE, "PrimaryRegion": ANY, "PrimaryReplicationGroupId": ANY},
    )
    with pytest.raises(promote_cache.PromotionError) as caught:
        run(client)
    message = str(caught.value)
    assert "failover_global_replication_group" in message and "InvalidGlobalReplicationGroupState" in message
    assert f"disassociate-global-replication-group --global-replication-group-id {DATASTORE}" in message


def test_a_failed_describe_surfaces(west):
    client, stubber = west
    stubber.add_client_error(
        "describe_global_replication_groups", service_error_code="AccessDenied", service_message="not allowed"
    )
    with pytest.raises(promote_cache.PromotionError, match="describe_global_replication_groups.*AccessDenied"):
        run(client)


def test_a_promotion_not_done_before_the_timeout_fails_saying_where_it_stands(west):
    client, stubber = west
    stubber.add_response("describe_global_replication_groups", group("us-east-1"), DESCRIBE)
    stubber.add_response("failover_global_replication_group", {}, None)
    for _ in range(5):  # 60 s left less the 15 s margin: polls at 0, 10, 20, 30 and 40 s, then no time for another
        stubber.add_response("describe_global_replication_groups", group("us-east-1", "modifying"), DESCRIBE)
    with pytest.raises(promote_cache.PromotionError, match="not primary yet: .* is modifying.*next run waits"):
        run(client, remaining_ms=60_000)


def test_a_member_that_is_not_in_the_datastore_is_an_error_naming_the_setting(west, monkeypatch):
    client, stubber = west
    monkeypatch.setenv("MEMBER_REPLICATION_GROUP_ID", "someone-else")
    stubber.add_response("describe_global_replication_groups", group("us-east-1"), DESCRIBE)
    with pytest.raises(promote_cache.PromotionError, match="no member someone-else in us-west-2.*MEMBER_REPLICATION"):
        run(client)


def test_a_missing_setting_is_named(monkeypatch):
    monkeypatch.delenv("GLOBAL_DATASTORE_ID", raising=False)
    with pytest.raises(promote_cache.PromotionError, match="GLOBAL_DATASTORE_ID is not set"):
        promote_cache.handler({}, Context(), client=object())


def test_the_package_is_one_file_importing_only_boto3_and_the_standard_library():
    source = Path(promote_cache.__file__).read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "json", "os", "time", "collections", "typing", "boto3", "botocore"}
