"""Promote this region's member of an ElastiCache Global Datastore to primary: the custom-action Lambda that a
turnout ARC Region switch plan runs in the activating region (components/dr/arc.py deploys one per region).

What `turnout failover` does by hand, step 3: `FailoverGlobalReplicationGroup` to this region's member, then
`DescribeGlobalReplicationGroups` until that member is PRIMARY and the datastore available.

- Configuration: `GLOBAL_DATASTORE_ID` and `MEMBER_REPLICATION_GROUP_ID` (this region's replication group), set by
  the stack; `AWS_REGION`, set by Lambda.
- Idempotent: ARC runs the function again after its retry interval when a run has not succeeded. A member that is
  already primary is success without a call; a promotion already under way (the datastore not available) is waited
  for, never started twice.
- Errors surface: every failed call raises `PromotionError` naming the call and AWS's error code, and so does a
  promotion that is not done when the function is about to time out; the step fails with that message, and ARC
  retries it or pauses the execution for an operator.
- No forced detach: when the old primary's region cannot take part in a failover, AWS's way out is to disassociate
  this member (it stops replicating for good). That is an operator's decision, named in the error, not the
  function's.

Only boto3 (in the Lambda runtime) and the standard library: the file is the whole deployment package.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

POLL_SECONDS = 10.0
STOP_BEFORE_TIMEOUT_SECONDS = 15.0
"""Stop waiting this long before Lambda's own timeout, so the failure says where the promotion stood."""


class PromotionError(Exception):
    """The promotion failed or is not done yet: the message names the call, AWS's error and what to do."""


def handler(
    event: dict | None,
    context: Any,
    *,
    client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict:
    """Make this region's member the Global Datastore's primary; return what was done. `client`, `sleep` and `clock`
    are for tests (an elasticache client with botocore's Stubber, a fake clock)."""
    datastore = _setting("GLOBAL_DATASTORE_ID")
    member = _setting("MEMBER_REPLICATION_GROUP_ID")
    region = _setting("AWS_REGION")
    elasticache = client or boto3.client("elasticache", region_name=region)
    began = clock()
    deadline = began + context.get_remaining_time_in_millis() / 1000 - STOP_BEFORE_TIMEOUT_SECONDS
    execution = {key: (event or {}).get(key) for key in ("PlanArn", "ExecutionId", "StepName")}
    print(json.dumps({"promote": member, "region": region, "globalDatastore": datastore, **execution}))

    group = _describe(elasticache, datastore)
    _check_member(group, datastore, member, region)
    if _promoted(group, region):
        return _result("already-primary", datastore, member, region, clock() - began)
    if group.get("Status") == "available":
        call = (
            f"elasticache.failover_global_replication_group(GlobalReplicationGroupId={datastore!r}, "
            f"PrimaryRegion={region!r}, PrimaryReplicationGroupId={member!r})"
        )
        try:
            elasticache.failover_global_replication_group(
                GlobalReplicationGroupId=datastore, PrimaryRegion=region, PrimaryReplicationGroupId=member
            )
        except (BotoCoreError, ClientError) as err:
            raise PromotionError(
                f"{_error(err, call)}; if the current primary's region cannot take part, an operator can detach "
                f"this member (it stops replicating for good): aws elasticache disassociate-global-replication-group "
                f"--global-replication-group-id {datastore} --replication-group-id {member} "
                f"--replication-group-region {region} --region {region}"
            ) from None
        outcome = "promoted"
    else:  # a promotion (or another change) is under way: wait for it instead of starting one
        outcome = "waited"
    while True:
        group = _describe(elasticache, datastore)
        if _promoted(group, region):
            return _result(outcome, datastore, member, region, clock() - began)
        if clock() + POLL_SECONDS > deadline:
            raise PromotionError(
                f"{member} in {region} is not primary yet: {datastore} is {group.get('Status')}, members "
                f"{_members_line(group)}; the promotion may still finish (the next run waits for it)"
            )
        sleep(POLL_SECONDS)


def _setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise PromotionError(f"environment variable {name} is not set: the stack sets it on the function")
    return value


def _describe(elasticache: Any, datastore: str) -> dict:
    call = f"elasticache.describe_global_replication_groups(GlobalReplicationGroupId={datastore!r})"
    try:
        groups = elasticache.describe_global_replication_groups(
            GlobalReplicationGroupId=datastore, ShowMemberInfo=True
        )["GlobalReplicationGroups"]
    except (BotoCoreError, ClientError) as err:
        raise PromotionError(_error(err, call)) from None
    if not groups:
        raise PromotionError(f"{call}: no Global Datastore {datastore}")
    return groups[0]


def _members(group: dict) -> list[dict]:
    return [m for m in group.get("Members") or () if isinstance(m, dict)]


def _check_member(group: dict, datastore: str, member: str, region: str) -> None:
    ours = (m for m in _members(group) if m.get("ReplicationGroupRegion") == region)
    if not any(m.get("ReplicationGroupId") == member for m in ours):
        raise PromotionError(
            f"{datastore} has no member {member} in {region} (members: {_members_line(group)}): the function's "
            "MEMBER_REPLICATION_GROUP_ID does not match the stack's cache"
        )


def _promoted(group: dict, region: str) -> bool:
    """This region's member is PRIMARY (the API documents both cases) and the datastore available."""
    role = next((m.get("Role") for m in _members(group) if m.get("ReplicationGroupRegion") == region), None)
    return str(role).upper() == "PRIMARY" and group.get("Status") == "available"


def _members_line(group: dict) -> str:
    return ", ".join(
        f"{m.get('ReplicationGroupId')} ({m.get('ReplicationGroupRegion')}) {str(m.get('Role', '?')).lower()}"
        for m in _members(group)
    )


def _error(err: Exception, call: str) -> str:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"{call}: {error.get('Code', 'error')}: {error.get('Message', str(err))}"
    return f"{call}: {err}"


def _result(outcome: str, datastore: str, member: str, region: str, seconds: float) -> dict:
    result = {
        "outcome": outcome,
        "globalDatastore": datastore,
        "primary": member,
        "region": region,
        "seconds": round(seconds, 1),
    }
    print(json.dumps(result))
    return result
