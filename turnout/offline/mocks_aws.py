"""AWS answers for offline plans: the computed outputs the AWS provider would return, derived from type and name.

Outputs use the provider's wire (camelCase) property names, as `pulumi_aws` reads them back.
"""

from __future__ import annotations

import base64

from turnout.offline.mocks import OFFLINE_CA_PEM, stable_hash

ACCOUNT_ID = "123456789012"  # the documentation account ID AWS uses in its examples
DEFAULT_REGION = "us-east-1"
AVAILABILITY_ZONES = "aws:index/getAvailabilityZones:getAvailabilityZones"
CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
PARTITION = "aws:index/getPartition:getPartition"
# The Local Zones this offline account has opted into: DescribeAvailabilityZones lists them with the region's
# Availability Zones (sorted by name, so first) unless filtered by opt-in-status.
OPTED_IN_LOCAL_ZONES = {"us-east-1": ("us-east-1-bos-1a",), "us-west-2": ("us-west-2-lax-1a",)}

# EC2 resources: the prefix of their id (vpc-0abc…) and their ARN's resource type, by Pulumi type.
_EC2_KINDS = {
    "aws:ec2/vpc:Vpc": ("vpc", "vpc"),
    "aws:ec2/subnet:Subnet": ("subnet", "subnet"),
    "aws:ec2/internetGateway:InternetGateway": ("igw", "internet-gateway"),
    "aws:ec2/natGateway:NatGateway": ("nat", "natgateway"),
    "aws:ec2/eip:Eip": ("eipalloc", "elastic-ip"),
    "aws:ec2/routeTable:RouteTable": ("rtb", "route-table"),
    "aws:ec2/securityGroup:SecurityGroup": ("sg", "security-group"),
}


def _hex(type_: str, name: str, length: int = 17) -> str:
    return stable_hash(type_, name, length=length)


def _eks_cluster(name: str, inputs: dict, region: str) -> dict:
    cluster = inputs.get("name") or name
    digest = _hex("aws:eks/cluster:Cluster", cluster, 32).upper()
    return {
        "arn": f"arn:aws:eks:{region}:{ACCOUNT_ID}:cluster/{cluster}",
        "endpoint": f"https://{digest}.gr7.{region}.eks.amazonaws.com",
        "certificateAuthority": {"data": base64.b64encode(OFFLINE_CA_PEM.encode()).decode()},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{digest}"}]}],
        "status": "ACTIVE",
        "platformVersion": "eks.1",
        "vpcConfig": {**(inputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{_hex('cluster-sg', cluster)}"},
    }


def _computed(type_: str, name: str, inputs: dict, region: str) -> dict:
    """The outputs AWS computes for the types turnout creates; other AWS types get an ARN only."""
    if type_ == "aws:eks/cluster:Cluster":
        return _eks_cluster(name, inputs, region)
    if type_ == "aws:eks/nodeGroup:NodeGroup":
        group = inputs.get("nodeGroupName") or name
        cluster = inputs.get("clusterName") or "cluster"
        return {
            "arn": f"arn:aws:eks:{region}:{ACCOUNT_ID}:nodegroup/{cluster}/{group}/{_hex(type_, name, 8)}",
            "status": "ACTIVE",
        }
    if type_ == "aws:kms/key:Key":
        key_id = "{}-{}-{}-{}-{}".format(*(_hex(type_, f"{name}/{i}", n) for i, n in enumerate((8, 4, 4, 4, 12))))
        return {"arn": f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{key_id}", "keyId": key_id}
    if type_ == "aws:iam/role:Role":
        role = inputs.get("name") or f"{name}-{_hex(type_, name, 7)}"
        return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", "name": role, "uniqueId": f"AROA{_hex(type_, name)}"}
    if type_ == "aws:iam/policy:Policy":
        policy = inputs.get("name") or f"{name}-{_hex(type_, name, 7)}"
        path = inputs.get("path") or "/"
        return {
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:policy{path}{policy}",
            "name": policy,
            "path": path,
            "policyId": f"ANPA{_hex(type_, name)}",
        }
    if type_ == "aws:iam/rolePolicy:RolePolicy":
        return {"id": f"{inputs.get('role')}:{inputs.get('name')}"}
    if type_ == "aws:sqs/queue:Queue":
        queue = inputs.get("name") or name
        return {
            "arn": f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{queue}",
            "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{queue}",
        }
    if type_ == "aws:cloudwatch/eventRule:EventRule":
        return {"arn": f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{inputs.get('name') or name}"}
    if type_ == "aws:eks/accessEntry:AccessEntry":
        cluster = inputs.get("clusterName") or "cluster"
        return {
            "accessEntryArn": f"arn:aws:eks:{region}:{ACCOUNT_ID}:access-entry/{cluster}/{_hex(type_, name, 12)}",
            "type": inputs.get("type") or "STANDARD",
        }
    if type_ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        url = str(inputs.get("url") or "").removeprefix("https://")
        return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{url}"}
    kind = _EC2_KINDS.get(type_)
    if kind is not None:
        prefix, arn_type = kind
        resource_id = f"{prefix}-{_hex(type_, name)}"
        outputs = {"arn": f"arn:aws:ec2:{region}:{ACCOUNT_ID}:{arn_type}/{resource_id}"}
        if type_ == "aws:ec2/eip:Eip":
            outputs |= {
                "allocationId": resource_id,
                "publicIp": f"198.51.100.{int(_hex(type_, name, 4), 16) % 254 + 1}",
            }
        return outputs
    return {}


def resource_outputs(type_: str, name: str, inputs: dict) -> dict | None:
    """Inputs plus the computed outputs of an AWS resource; None for resources of other providers."""
    if not type_.startswith("aws:"):
        return None
    region = inputs.get("region") or DEFAULT_REGION
    outputs = {**inputs, **_computed(type_, name, inputs, region)}
    if not type_.startswith("aws:iam/"):  # IAM is global; every other AWS resource reports its region
        outputs["region"] = region
    return outputs


def _region_code(region: str) -> str:
    """The short form zone IDs start with: us-east-1 -> use1."""
    parts = region.split("-")
    return parts[0] + "".join(part[0] for part in parts[1:-1]) + parts[-1]


def _availability_zones(args: dict) -> dict:
    """The region's three Availability Zones, and the Local Zones opted into, as DescribeAvailabilityZones lists
    them (by name); `filters` on opt-in-status keep only the matching ones."""
    region = args.get("region") or DEFAULT_REGION
    zones = [
        (f"{region}{letter}", f"{_region_code(region)}-az{index}", region, "opt-in-not-required")
        for index, letter in enumerate(("a", "b", "c"), start=1)
    ]
    zones += [
        (zone, f"{_region_code(region)}-{zone.split('-')[-2]}-az1", zone[:-1], "opted-in")
        for zone in OPTED_IN_LOCAL_ZONES.get(region, ())
    ]
    for wanted in args.get("filters") or ():
        if wanted.get("name") == "opt-in-status":
            zones = [zone for zone in zones if zone[3] in wanted.get("values", ())]
    zones.sort()
    return {
        "id": region,
        "region": region,
        "names": [zone[0] for zone in zones],
        "zoneIds": [zone[1] for zone in zones],
        "groupNames": [zone[2] for zone in zones],
    }


def invoke(token: str, args: dict) -> dict | None:
    """Data sources turnout reads; None for functions of other providers."""
    if token == AVAILABILITY_ZONES:
        return _availability_zones(args)
    if token == CALLER_IDENTITY:
        return {
            "id": ACCOUNT_ID,
            "accountId": ACCOUNT_ID,
            "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/deployer/offline",
            "userId": "AROAOFFLINE:offline",
        }
    if token == PARTITION:
        return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws"}
    return None
