"""The AWS Load Balancer Controller on an EKS cluster, so a Service of type LoadBalancer (the Istio gateway's)
gets the NLB its `service.beta.kubernetes.io/aws-load-balancer-*` annotations ask for.

An IAM role for its ServiceAccount (IRSA) with the controller's documented policy, vendored unchanged
beside this file (`aws_load_balancer_controller_iam_policy.json`, source in SOURCES.md), and the
`aws-load-balancer-controller` chart from the EKS charts repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster.aws_limits import aws_name
from turnout.naming import child

CHART = "aws-load-balancer-controller"
CHART_REPOSITORY = "https://aws.github.io/eks-charts"
# Chart 1.13.4 installs controller v2.13.4 (its appVersion); bump both, and the policy, together.
CHART_VERSION = "1.13.4"
CONTROLLER_VERSION = "v2.13.4"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
REPLICAS = 2
IAM_POLICY_FILE = Path(__file__).with_name("aws_load_balancer_controller_iam_policy.json")
STS_AUDIENCE = "sts.amazonaws.com"
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


def controller_iam_policy() -> dict:
    """The controller's IAM policy exactly as upstream documents it for CONTROLLER_VERSION."""
    return json.loads(IAM_POLICY_FILE.read_text())


def irsa_trust_policy(provider_arn: str, issuer: str, namespace: str, service_account: str) -> str:
    """A role only `namespace/service_account` of the cluster behind `issuer` may assume, with a token
    minted for STS (the `sub` and `aud` claims IRSA's webhook projects)."""
    host = issuer.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                            f"{host}:aud": STS_AUDIENCE,
                        }
                    },
                }
            ],
        }
    )


def controller_values(cluster_name: str, region: str, vpc_id: str, role_arn: str) -> dict:
    """The chart's values: the cluster, region and VPC given outright rather than read from instance
    metadata (which pods reach only with an IMDSv2 hop limit of 2), the IRSA role on its ServiceAccount."""
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "replicaCount": REPLICAS,
        "podDisruptionBudget": {"maxUnavailable": 1},
        "resources": RESOURCES,
        "serviceAccount": {
            "create": True,
            "name": SERVICE_ACCOUNT,
            "annotations": {ROLE_ARN_ANNOTATION: role_arn},
        },
        # Makes the controller the owner of every new LoadBalancer Service (spec.loadBalancerClass).
        "enableServiceMutatorWebhook": True,
        # No `alb` IngressClass: traffic enters through the Istio gateway, and an Ingress gets no ALB by default.
        "createIngressClassResource": False,
    }


@dataclass(frozen=True, kw_only=True)
class AwsLoadBalancerControllerArgs:
    cluster_name: str
    """The EKS cluster's name, which the controller tags its load balancers with."""
    region: str
    vpc_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider, which the role trusts."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL, whose host prefixes the trust policy's claims."""


class AwsLoadBalancerController(pulumi.ComponentResource):
    """Takes the AWS provider for its IAM resources and the cluster's Kubernetes provider for the chart
    from `opts.providers`."""

    role: aws.iam.Role
    release: k8s.helm.v3.Release
    ready: list[pulumi.Resource]
    """What must exist before a LoadBalancer Service is created: the release, which Helm reports only once
    the controller's pods (and so its Service webhook) are ready."""

    def __init__(
        self, name: str, args: AwsLoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("turnout:cluster:AwsLoadBalancerController", name, None, opts)
        mine = pulumi.ResourceOptions(parent=self)
        role_name = child(args.cluster_name, "lb-controller")
        self.role = aws.iam.Role(
            child(name, "role"),
            name=aws_name("iam-role", role_name, keep="-lb-controller"),
            description=f"AWS Load Balancer Controller of EKS cluster {args.cluster_name} (IRSA)",
            assume_role_policy=pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
                lambda values: irsa_trust_policy(values[0], values[1], NAMESPACE, SERVICE_ACCOUNT)
            ),
            opts=mine,
        )
        policy = aws.iam.Policy(
            child(name, "policy"),
            name=aws_name("iam-policy", role_name, keep="-lb-controller"),
            description=f"AWS Load Balancer Controller {CONTROLLER_VERSION}, as upstream documents it",
            policy=json.dumps(controller_iam_policy()),
            opts=mine,
        )
        grant = aws.iam.RolePolicyAttachment(
            child(name, "policy-attachment"), role=self.role.name, policy_arn=policy.arn, opts=mine
        )
        self.release = k8s.helm.v3.Release(
            child(name, "chart"),
            name=CHART,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts={"repo": CHART_REPOSITORY},
            namespace=NAMESPACE,
            values=pulumi.Output.all(args.vpc_id, self.role.arn).apply(
                lambda values: controller_values(args.cluster_name, args.region, values[0], values[1])
            ),
            # The pods assume the role as they start: its policy must be attached by then.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[grant]),
        )
        self.ready = [self.release]
        self.register_outputs({"version": CONTROLLER_VERSION, "role_arn": self.role.arn})
