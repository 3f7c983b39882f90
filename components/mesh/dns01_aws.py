"""cert-manager's DNS-01 identity on EKS: an IAM role for its ServiceAccount (IRSA) allowed to write
`_acme-challenge` TXT records in one Route 53 hosted zone.

The permissions are cert-manager's documented Route 53 policy narrowed as its guide suggests: the hosted zone is
named (`hostedZoneID` in the solver), so `route53:ListHostedZonesByName`, which only finds a zone by name, is
left out; changes are limited to TXT records under `_acme-challenge.`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cluster.aws_lb_controller import ROLE_ARN_ANNOTATION, irsa_trust_policy
from components.mesh.dns01 import NAMESPACE, SERVICE_ACCOUNT, Dns01Identity
from turnout.naming import child, fit

IAM_ROLE_NAME_MAX = 64
CHANGES = "arn:aws:route53:::change/*"
CHALLENGES = "_acme-challenge.*"  # the record names DNS-01 writes, lowercased and without the final dot


def route53_policy(hosted_zone_id: str) -> dict:
    """Poll changes, and change only `_acme-challenge` TXT records of the one zone (list them to clean up)."""
    zone = f"arn:aws:route53:::hostedzone/{hosted_zone_id}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PollChanges", "Effect": "Allow", "Action": "route53:GetChange", "Resource": CHANGES},
            {
                "Sid": "ChallengeRecords",
                "Effect": "Allow",
                "Action": "route53:ChangeResourceRecordSets",
                "Resource": zone,
                "Condition": {
                    "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]},
                    "ForAllValues:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": [CHALLENGES]},
                },
            },
            {"Sid": "ReadRecords", "Effect": "Allow", "Action": "route53:ListResourceRecordSets", "Resource": zone},
        ],
    }


@dataclass(frozen=True, kw_only=True)
class Route53Dns01Args:
    cluster_name: str
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    hosted_zone_id: str


class Route53Dns01(pulumi.ComponentResource):
    role: aws.iam.Role
    identity: Dns01Identity

    def __init__(self, name: str, args: Route53Dns01Args, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:Route53Dns01", name, None, opts)
        # An explicit provider, as every AWS resource of the stack has: never ambient AWS config.
        provider = aws.Provider(child(name, "aws"), region=args.region, opts=pulumi.ResourceOptions(parent=self))
        mine = pulumi.ResourceOptions(parent=self, provider=provider)
        role_name = fit(child(args.cluster_name, "cert-manager"), IAM_ROLE_NAME_MAX)
        self.role = aws.iam.Role(
            child(name, "role"),
            name=role_name,
            description=f"cert-manager of EKS cluster {args.cluster_name}: DNS-01 in {args.hosted_zone_id} (IRSA)",
            assume_role_policy=pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
                lambda values: irsa_trust_policy(values[0], values[1], NAMESPACE, SERVICE_ACCOUNT)
            ),
            opts=mine,
        )
        grant = aws.iam.RolePolicy(
            child(name, "route53"),
            role=self.role.name,
            policy=json.dumps(route53_policy(args.hosted_zone_id)),
            opts=mine,
        )
        self.identity = Dns01Identity(
            solver={"route53": {"region": args.region, "hostedZoneID": args.hosted_zone_id}},
            service_account_annotations=self.role.arn.apply(lambda arn: {ROLE_ARN_ANNOTATION: arn}),
            ready=(grant,),
            zone=f"Route 53 {args.hosted_zone_id}",
        )
        self.register_outputs({"role_arn": self.role.arn})
