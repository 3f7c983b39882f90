"""The names AWS gives the resources turnout creates, and the limits AWS puts on them: one table, used by the
components to make every generated name fit (`aws_name`) and by the tests to check every name of a plan.

Names derive from the stack name (`<stack>-<region>`, `<stack>-cache`), which Pulumi lets be up to 100
characters of letters, digits, '-', '_' and '.'. A derived name that is too long, or holds a character the
service refuses, keeps its head with the offending characters replaced and ends in a stable 8-character hash
of the whole derived name (as `turnout.naming.fit` does), so that distinct stacks keep distinct names and the same
stack always gets the same ones. Nothing here ever changes a name the user wrote: pool names and regions are
checked where they are read (DNS labels), and fit every limit below.

Sources, per rule: the provider's schema docstrings (`pulumi_aws`, named beside each rule) and the AWS
references: IAM quotas (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html), EKS
CreateCluster/CreateNodegroup, ElastiCache CreateReplicationGroup (and the provider's
`validateReplicationGroupID`), SQS CreateQueue, EventBridge PutRule/PutTargets, CloudWatch PutMetricAlarm,
EC2 CreateSecurityGroup, Route 53 ChangeResourceRecordSets (SetIdentifier) and EC2/IAM tag limits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    """What AWS accepts for one kind of name."""

    limit: int
    """Most characters."""
    allowed: str
    """A regex character class (without brackets) of the characters allowed anywhere."""
    first: str
    """A regex character class of the characters allowed first."""
    lowercase: bool = False
    """The service stores the name lowercased (ElastiCache): turnout writes it lowercase, so state matches."""
    no_double_hyphen: bool = False
    """No '--' and no trailing '-' (ElastiCache identifiers)."""
    what: str = ""
    """How the rule reads in a message."""

    def problems(self, name: str) -> list[str]:
        """Why `name` would be refused; empty when AWS accepts it."""
        found = []
        if not 1 <= len(name) <= self.limit:
            found.append(f"{len(name)} characters (at most {self.limit})")
        if not re.fullmatch(f"[{self.first}][{self.allowed}]*", name):
            found.append(f"characters outside {self.what}")
        if self.lowercase and name != name.lower():
            found.append("upper-case letters (the service stores it lowercased)")
        if self.no_double_hyphen and ("--" in name or name.endswith("-")):
            found.append("'--' or a trailing '-'")
        return found


ALNUM_HYPHEN = NameRule(
    limit=40,
    allowed="a-z0-9-",
    first="a-z",
    lowercase=True,
    no_double_hyphen=True,
    what="lower-case letters, digits and '-', starting with a letter",
)

# Kinds of generated names. The ElastiCache identifier rule is the provider's validateReplicationGroupID.
RULES: dict[str, NameRule] = {
    # pulumi_aws eks/cluster.py: "1-100 characters ... ^[0-9A-Za-z][A-Za-z0-9\-_]*$"
    "eks-cluster": NameRule(100, "A-Za-z0-9_-", "A-Za-z0-9", what="letters, digits, '-' and '_'"),
    # pulumi_aws eks/node_group.py: "can't be longer than 63 characters ... letter or digit, hyphens, underscores"
    "eks-node-group": NameRule(63, "A-Za-z0-9_-", "A-Za-z0-9", what="letters, digits, '-' and '_'"),
    # IAM quotas: role names 64, customer managed and inline policy names 128; characters [\w+=,.@-]
    "iam-role": NameRule(64, r"\w+=,.@-", r"\w+=,.@-", what="letters, digits and +=,.@_-"),
    "iam-policy": NameRule(128, r"\w+=,.@-", r"\w+=,.@-", what="letters, digits and +=,.@_-"),
    # ElastiCache: replication group ids 1-40; the Global Datastore suffix and final snapshot names are held to
    # the same rule (AWS documents no other limit for them; the same alphabet keeps them valid wherever used).
    "elasticache-id": ALNUM_HYPHEN,
    # ElastiCache subnet group names: at most 255 alphanumerics or hyphens, stored lowercased.
    "elasticache-subnet-group": NameRule(
        255, "a-z0-9-", "a-z0-9", lowercase=True, what="lower-case letters, digits and '-'"
    ),
    # EC2 security group names: 255 characters; we write only letters, digits, '-', '_' and '.'.
    "security-group": NameRule(255, "A-Za-z0-9_.-", "A-Za-z0-9", what="letters, digits and ._-"),
    # pulumi_aws sqs/queue.py: "letters, numbers, underscores, and hyphens ... between 1 and 80 characters"
    "sqs-queue": NameRule(80, "A-Za-z0-9_-", "A-Za-z0-9_-", what="letters, digits, '-' and '_'"),
    # EventBridge PutRule Name and PutTargets Id: 1-64 of [.\-_A-Za-z0-9]
    "event-rule": NameRule(64, "A-Za-z0-9_.-", "A-Za-z0-9_.-", what="letters, digits and ._-"),
    "event-target": NameRule(64, "A-Za-z0-9_.-", "A-Za-z0-9_.-", what="letters, digits and ._-"),
    # CloudWatch PutMetricAlarm AlarmName: 1-255
    "cloudwatch-alarm": NameRule(255, "A-Za-z0-9_.-", "A-Za-z0-9", what="letters, digits and ._-"),
    # Route 53 SetIdentifier: 1-128
    "route53-set-identifier": NameRule(128, "A-Za-z0-9_.-", "A-Za-z0-9", what="letters, digits and ._-"),
    # Tag values (Name tags, the Route 53 health checks' names): 256 characters
    "tag-value": NameRule(256, r"\w.:/=+@ -", r"\w.:/=+@ -", what="letters, digits and .:/=+@_- and spaces"),
}

# Which input of which resource type holds a name of which kind: what the plan test checks on every resource.
NAMED_INPUTS: dict[str, dict[str, str]] = {
    "aws:eks/cluster:Cluster": {"name": "eks-cluster"},
    "aws:eks/nodeGroup:NodeGroup": {"nodeGroupName": "eks-node-group"},
    "aws:iam/role:Role": {"name": "iam-role"},
    "aws:iam/policy:Policy": {"name": "iam-policy"},
    "aws:iam/rolePolicy:RolePolicy": {"name": "iam-policy"},
    "aws:elasticache/replicationGroup:ReplicationGroup": {
        "replicationGroupId": "elasticache-id",
        "finalSnapshotIdentifier": "elasticache-id",
    },
    "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup": {
        "globalReplicationGroupIdSuffix": "elasticache-id",
    },
    "aws:elasticache/subnetGroup:SubnetGroup": {"name": "elasticache-subnet-group"},
    "aws:ec2/securityGroup:SecurityGroup": {"name": "security-group"},
    "aws:sqs/queue:Queue": {"name": "sqs-queue"},
    "aws:cloudwatch/eventRule:EventRule": {"name": "event-rule"},
    "aws:cloudwatch/eventTarget:EventTarget": {"targetId": "event-target"},
    "aws:cloudwatch/metricAlarm:MetricAlarm": {"name": "cloudwatch-alarm"},
    "aws:route53/record:Record": {"setIdentifier": "route53-set-identifier"},
}
"""Every AWS type turnout creates that takes a name: the name is always set (never left to the provider's
random autonaming, whose suffix would push a long derived name over its limit)."""


def aws_name(kind: str, name: str, *, keep: str = "") -> str:
    """`name` as AWS accepts it for `kind`: unchanged when it already does; otherwise lowercased where the service
    lowercases, refused characters turned into '-', cut to the limit with a stable 8-character hash of `name`
    (what `turnout.naming.fit` does for length alone), so distinct names stay distinct. `keep`: a suffix of
    `name` that stays whole at the end (`-lb-controller`), so a shortened name still says what it is."""
    rule = RULES[kind]
    if keep and not name.endswith(keep):
        raise ValueError(f"{name!r} does not end with {keep!r}")
    if not rule.problems(name):
        return name
    cleaned = re.sub(f"[^{rule.allowed}]", "-", name.lower() if rule.lowercase else name)
    if not re.fullmatch(f"[{rule.first}]", cleaned[:1]):
        cleaned = "x" + cleaned
    if rule.no_double_hyphen:
        cleaned = re.sub("-{2,}", "-", cleaned)
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    tail = cleaned[len(cleaned) - len(keep) :] if keep else ""
    head = cleaned[: len(cleaned) - len(tail)].rstrip("-.")
    fitted = f"{head[: rule.limit - len(digest) - len(tail) - 1].rstrip('-.')}-{digest}{tail}"
    problems = rule.problems(fitted)
    if problems:  # a rule this function cannot satisfy: a bug in the table, not the user's input
        raise ValueError(f"aws_name({kind!r}, {name!r}) gave {fitted!r}: {'; '.join(problems)}")
    return fitted


def name_problems(type_: str, inputs: dict) -> list[str]:
    """Every name input of a resource of `type_` that AWS would refuse, as "<input>: <why>"."""
    found = []
    for field, kind in NAMED_INPUTS.get(type_, {}).items():
        value = inputs.get(field)
        if not isinstance(value, str):
            found.append(f"{field}: not set (left to autonaming)")
            continue
        found.extend(f"{field} {value!r}: {problem}" for problem in RULES[kind].problems(value))
    return found
