"""Remote write to Amazon Managed Service for Prometheus with the Prometheus server's IRSA role.

Prometheus signs remote writes itself (`sigv4` in `remote_write`, AWS's documented setup for a self-managed
Prometheus); the credentials come from the pod's web identity token, which EKS's pod identity webhook projects
for a ServiceAccount annotated with a role ARN. The role is trusted by exactly the Prometheus server's
ServiceAccount of this cluster and may only `aps:RemoteWrite` to the one workspace.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cluster.aws_lb_controller import ROLE_ARN_ANNOTATION, irsa_trust_policy
from components.observability.prometheus import NAMESPACE, SERVER
from turnout.naming import child, fit

IAM_ROLE_NAME_MAX = 64
WORKSPACE_ARN = re.compile(r"arn:aws[a-z-]*:aps:(?P<region>[a-z0-9-]+):\d{12}:workspace/(?P<id>ws-[A-Za-z0-9-]+)")


def remote_write_policy(workspace_arn: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "RemoteWrite", "Effect": "Allow", "Action": "aps:RemoteWrite", "Resource": workspace_arn}
        ],
    }


def remote_write_config(url: str, region: str) -> list[dict]:
    """The server's `remote_write`: SigV4 in the workspace's region, AWS's recommended queue settings."""
    return [
        {
            "url": url,
            "sigv4": {"region": region},
            "queue_config": {"max_samples_per_send": 1000, "max_shards": 200, "capacity": 2500},
        }
    ]


def workspace_url(workspace_arn: str) -> tuple[str, str]:
    """(remote write URL, region) of a workspace ARN."""
    found = WORKSPACE_ARN.fullmatch(workspace_arn)
    if found is None:
        raise ValueError(f"not an AMP workspace ARN: {workspace_arn}")  # the config parser checked it
    region = found["region"]
    return f"https://aps-workspaces.{region}.amazonaws.com/workspaces/{found['id']}/api/v1/remote_write", region


@dataclass(frozen=True, kw_only=True)
class AmpRemoteWriteArgs:
    cluster_name: str
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    workspace: str
    """`create`, or an existing workspace's ARN."""


class AmpRemoteWrite(pulumi.ComponentResource):
    remote_write: pulumi.Output[list]
    service_account_annotations: pulumi.Output[dict]
    workspace_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AmpRemoteWriteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:observability:AmpRemoteWrite", name, None, opts)
        provider = aws.Provider(child(name, "aws"), region=args.region, opts=pulumi.ResourceOptions(parent=self))
        mine = pulumi.ResourceOptions(parent=self, provider=provider)
        if args.workspace == "create":
            workspace = aws.amp.Workspace(
                child(name, "workspace"), alias=args.cluster_name, region=args.region, opts=mine
            )
            self.workspace_arn = workspace.arn
        else:
            self.workspace_arn = pulumi.Output.from_input(args.workspace)
        role = aws.iam.Role(
            child(name, "role"),
            name=fit(child(args.cluster_name, "prometheus"), IAM_ROLE_NAME_MAX),
            description=f"Prometheus of EKS cluster {args.cluster_name}: remote write to AMP (IRSA)",
            assume_role_policy=pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
                lambda values: irsa_trust_policy(values[0], values[1], NAMESPACE, SERVER)
            ),
            opts=mine,
        )
        grant = aws.iam.RolePolicy(
            child(name, "remote-write"),
            role=role.name,
            policy=self.workspace_arn.apply(lambda arn: json.dumps(remote_write_policy(arn))),
            opts=mine,
        )
        self.remote_write = self.workspace_arn.apply(lambda arn: remote_write_config(*workspace_url(arn)))
        # The annotation waits for the grant: the server starts writing as soon as it has the role.
        self.service_account_annotations = pulumi.Output.all(role.arn, grant.id).apply(
            lambda values: {ROLE_ARN_ANNOTATION: values[0]}
        )
        self.register_outputs({"workspace": self.workspace_arn})
