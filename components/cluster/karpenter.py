"""Karpenter on an EKS cluster: it launches the nodes pods are waiting for (GPU ones included, from zero) and
removes them when they are empty or underused, within each pool's `max`.

Everything AWS-side is what upstream's getting-started CloudFormation template for the pinned version creates
(`karpenter_cloudformation.yaml` beside this file, vendored unmodified; source in SOURCES.md), read from that
template rather than retyped: the node role and its managed policies, the controller's six managed policies,
the SQS interruption queue with its policy, and the EventBridge rules that feed it. Two differences, both
because turnout's clusters use EKS access entries and IRSA: the node role is admitted with an `EC2_LINUX`
access entry instead of an aws-auth mapping, and the controller's role is assumed through the cluster's OIDC
provider (IRSA) instead of Pod Identity.

Kubernetes-side: the `karpenter` chart (OCI, public.ecr.aws) in kube-system on the managed baseline nodes,
one `EC2NodeClass` (AL2023, the cluster's private subnets by their tags and its security group, IMDSv2 with one hop, an
encrypted gp3 root volume) and one `NodePool` per configured pool with the pool's instance type, labels and
taint, spot capacity where the tier allows it, and `limits.nodes` = the nodes the pool may have beyond its
managed baseline (`max - min`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from components.cluster.aws_lb_controller import irsa_trust_policy
from components.cluster.aws_limits import aws_name
from components.cluster.gpu import GPU_LABEL, GPU_TAINT_KEY
from turnout.config import NodePool
from turnout.naming import child

CHART = "oci://public.ecr.aws/karpenter/karpenter"
# Chart 1.14.1 installs controller 1.14.1 (Kubernetes 1.26-1.36); its CRDs are vendored in tests/crds and its
# CloudFormation template beside this file: bump all three together.
CHART_VERSION = "1.14.1"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
TEMPLATE_FILE = Path(__file__).with_name("karpenter_cloudformation.yaml")
NODE_CLASS = "turnout"
POOL_LABEL = "turnout.dev/pool"
PRIVATE_SUBNET_TAG = "kubernetes.io/role/internal-elb"
# Upstream's recommended controller resources (getting-started, step08).
CONTROLLER_RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
# The EKS-optimized AL2023 AMI; Karpenter picks its NVIDIA variant for GPU instance types. A new release of the
# AMI is drift: nodes are replaced within the NodePools' disruption budgets.
AMI_ALIAS = "al2023@latest"
ROOT_VOLUME = {"deviceName": "/dev/xvda", "ebs": {"volumeSize": "100Gi", "volumeType": "gp3", "encrypted": True}}
# Spot only where an interruption costs no more than a retry: never in prod.
CAPACITY_TYPES = {"prod": ("on-demand",)}
DEFAULT_CAPACITY_TYPES = ("spot", "on-demand")
CONSOLIDATE_AFTER = {"prod": "10m"}
DEFAULT_CONSOLIDATE_AFTER = "1m"
EXPIRE_AFTER = "720h"
DISRUPTION_BUDGET = "10%"
GPU_TAINT = {"key": GPU_TAINT_KEY, "value": "present", "effect": "NoSchedule"}
# The template's ManagedPolicies, in its order: the controller gets all six.
CONTROLLER_POLICIES = (
    "NodeLifecyclePolicy",
    "IAMIntegrationPolicy",
    "EKSIntegrationPolicy",
    "InterruptionPolicy",
    "ZonalShiftPolicy",
    "ResourceDiscoveryPolicy",
)
INTERRUPTION_RULES = (
    "ScheduledChangeRule",
    "SpotInterruptionRule",
    "RebalanceRule",
    "InstanceStateChangeRule",
    "CapacityReservationInterruptionRule",
)


# --- The vendored template ---


class _Tagged:
    """A CloudFormation intrinsic (`!Sub`, `!GetAtt`, `!Ref`) as the template writes it."""

    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value


class _TemplateLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when present: faster
    pass


for _tag in ("!Sub", "!GetAtt", "!Ref"):
    _TemplateLoader.add_constructor(_tag, lambda loader, node, tag=_tag: _Tagged(tag, loader.construct_scalar(node)))


@cache
def template() -> dict:
    """Upstream's CloudFormation template for CHART_VERSION."""
    return yaml.load(TEMPLATE_FILE.read_text(), Loader=_TemplateLoader)  # noqa: S506 (a SafeLoader subclass)


def _substitute(value: Any, values: dict[str, str]) -> Any:
    """The template's intrinsics resolved: `${Name}` in !Sub strings, !GetAtt X.Arn and !Ref by `values`."""
    if isinstance(value, _Tagged):
        if value.tag == "!Sub":
            text = value.value

            def replace(match: re.Match) -> str:
                if match.group(1) not in values:
                    raise KeyError(f"the Karpenter template uses ${{{match.group(1)}}}, which turnout does not set")
                return values[match.group(1)]

            return re.sub(r"\$\{([^}]+)\}", replace, text)
        if value.value not in values:
            raise KeyError(f"the Karpenter template uses {value.tag} {value.value}, which turnout does not set")
        return values[value.value]
    if isinstance(value, dict):
        return {k: _substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    return value


def template_values(
    *, cluster: str, partition: str, region: str, account: str, dns_suffix: str, node_role_arn: str, queue_arn: str
) -> dict[str, str]:
    """What the template's parameters, pseudo parameters and attributes stand for on this cluster."""
    return {
        "ClusterName": cluster,
        "AWS::Partition": partition,
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::URLSuffix": dns_suffix,
        "KarpenterNodeRole.Arn": node_role_arn,
        "KarpenterInterruptionQueue.Arn": queue_arn,
    }


def controller_policy(name: str, values: dict[str, str]) -> dict:
    """One of the controller's managed policies (CONTROLLER_POLICIES) exactly as the template writes it."""
    document = template()["Resources"][name]["Properties"]["PolicyDocument"]
    return json.loads(_substitute(document, values))


def node_role_policies() -> dict[str, _Tagged]:
    """The AWS-managed policies the template attaches to the node role, by name (their ARNs take the partition)."""
    arns = template()["Resources"]["KarpenterNodeRole"]["Properties"]["ManagedPolicyArns"]
    return {arn.value.rsplit("/", 1)[1]: arn for arn in arns}


def node_role_trust(values: dict[str, str]) -> dict:
    return _substitute(template()["Resources"]["KarpenterNodeRole"]["Properties"]["AssumeRolePolicyDocument"], values)


def queue_policy(values: dict[str, str]) -> dict:
    properties = template()["Resources"]["KarpenterInterruptionQueuePolicy"]["Properties"]
    return _substitute(properties["PolicyDocument"], values)


def queue_settings() -> dict:
    properties = template()["Resources"]["KarpenterInterruptionQueue"]["Properties"]
    return {
        "message_retention_seconds": properties["MessageRetentionPeriod"],
        "sqs_managed_sse_enabled": properties["SqsManagedSseEnabled"],
    }


def rule_pattern(rule: str) -> dict:
    return template()["Resources"][rule]["Properties"]["EventPattern"]


def rule_target_id(rule: str) -> str:
    (target,) = template()["Resources"][rule]["Properties"]["Targets"]
    return target["Id"]


# --- The Kubernetes objects ---


def capacity_types(tier: str) -> tuple[str, ...]:
    return CAPACITY_TYPES.get(tier, DEFAULT_CAPACITY_TYPES)


def node_class_spec(*, role: str, security_group_id: str, cluster: str) -> dict:
    """The EC2NodeClass every NodePool uses: the cluster's private subnets, found by the tags EksCluster gives
    them (and the load balancer controller reads)."""
    return {
        "role": role,
        "amiSelectorTerms": [{"alias": AMI_ALIAS}],
        "subnetSelectorTerms": [{"tags": {f"kubernetes.io/cluster/{cluster}": "owned", PRIVATE_SUBNET_TAG: "1"}}],
        "securityGroupSelectorTerms": [{"id": security_group_id}],
        # IMDSv2 only, one hop: pods cannot borrow the node's role (they have IRSA).
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [ROOT_VOLUME],
        "tags": {"turnout.dev/cluster": cluster},
    }


def node_pool_spec(pool: NodePool, machine_type: str, tier: str) -> dict:
    """A NodePool for `pool`: its instance type, labels and GPU taint (the ones the pool's managed nodes carry
    and endpoints select), spot where the tier allows, at most `max - min` Karpenter nodes beside the managed
    baseline of `min`."""
    labels = {POOL_LABEL: pool.name}
    if pool.gpu:
        labels[GPU_LABEL] = "true"
    limits: dict[str, str] = {"nodes": str(pool.max - pool.min)}
    if pool.gpu:
        limits["nvidia.com/gpu"] = str((pool.max - pool.min) * pool.gpu)
    spec: dict = {
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODE_CLASS},
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [machine_type]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(capacity_types(tier))},
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                ],
                "expireAfter": EXPIRE_AFTER,
            },
        },
        "limits": limits,
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": CONSOLIDATE_AFTER.get(tier, DEFAULT_CONSOLIDATE_AFTER),
            "budgets": [{"nodes": DISRUPTION_BUDGET}],
        },
    }
    if pool.gpu:
        spec["template"]["spec"]["taints"] = [dict(GPU_TAINT)]
    return spec


def chart_values(*, cluster: str, queue: str, role_arn: str, replicas: int) -> dict:
    """The chart's values: the cluster and queue, the IRSA role, upstream's recommended resources; two replicas
    (spread over nodes and zones by the chart's defaults) where the baseline has two nodes."""
    return {
        "settings": {"clusterName": cluster, "interruptionQueue": queue},
        "serviceAccount": {
            "create": True,
            "name": SERVICE_ACCOUNT,
            "annotations": {"eks.amazonaws.com/role-arn": role_arn},
        },
        "replicas": replicas,
        "controller": {"resources": CONTROLLER_RESOURCES},
    }


@dataclass(frozen=True, kw_only=True)
class KarpenterArgs:
    cluster_name: str
    """The EKS cluster's name (AWS's, as `EksCluster.name`): what names and policies derive from."""
    eks_cluster: pulumi.Input[str]
    """The same name as the cluster resource's output, so what needs the cluster waits for it."""
    region: str
    tier: str
    """dev, staging or prod: prod gets on-demand capacity only."""
    node_pools: tuple[tuple[NodePool, str], ...]
    """Each configured pool with its resolved machine type."""
    baseline_nodes: int
    """Nodes of the managed node groups Karpenter's controller runs on (it never runs on its own nodes)."""
    security_group_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]


class Karpenter(pulumi.ComponentResource):
    """Takes the AWS provider for its AWS resources and the cluster's Kubernetes provider for the chart and the
    custom resources from `opts.providers`."""

    ready: list[pulumi.Resource]
    """What workloads wait for: the NodePools (and so the chart and the EC2NodeClass)."""
    node_role: aws.iam.Role
    queue: aws.sqs.Queue

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cluster:Karpenter", name, None, opts)
        mine = pulumi.ResourceOptions(parent=self)
        cluster = args.cluster_name
        caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))

        def values(node_role_arn: str = "", queue_arn: str = "") -> pulumi.Output[dict[str, str]]:
            resolved = (partition.partition, caller.account_id, partition.dns_suffix, node_role_arn, queue_arn)
            return pulumi.Output.all(*resolved).apply(
                lambda v: template_values(
                    cluster=cluster,
                    partition=v[0],
                    region=args.region,
                    account=v[1],
                    dns_suffix=v[2],
                    node_role_arn=v[3],
                    queue_arn=v[4],
                )
            )

        # The nodes' role: the template's trust and managed policies, admitted to the cluster as EC2 nodes.
        self.node_role = aws.iam.Role(
            child(name, "node-role"),
            name=aws_name("iam-role", f"{cluster}-karpenter-node", keep="-karpenter-node"),
            description=f"Nodes Karpenter launches for EKS cluster {cluster}",
            assume_role_policy=values().apply(lambda v: json.dumps(node_role_trust(v))),
            opts=mine,
        )
        node_grants = [
            aws.iam.RolePolicyAttachment(
                child(name, "node-role", policy),
                role=self.node_role.name,
                policy_arn=values().apply(lambda v, arn=arn: _substitute(arn, v)),
                opts=mine,
            )
            for policy, arn in node_role_policies().items()
        ]
        node_access = aws.eks.AccessEntry(
            child(name, "node-access"),
            cluster_name=args.eks_cluster,
            principal_arn=self.node_role.arn,
            type="EC2_LINUX",
            opts=mine,
        )

        # The interruption queue and the rules that feed it (spot interruptions, rebalancing, health events).
        self.queue = aws.sqs.Queue(
            child(name, "queue"), name=aws_name("sqs-queue", cluster), **queue_settings(), opts=mine
        )
        queue_policy_resource = aws.sqs.QueuePolicy(
            child(name, "queue-policy"),
            queue_url=self.queue.url,
            policy=values(queue_arn=self.queue.arn).apply(lambda v: json.dumps(queue_policy(v))),
            opts=mine,
        )
        for rule in INTERRUPTION_RULES:
            short = re.sub(r"Rule$", "", rule)
            short = re.sub(r"(?<!^)(?=[A-Z])", "-", short).lower()
            event_rule = aws.cloudwatch.EventRule(
                child(name, short),
                name=aws_name("event-rule", f"{cluster}-karpenter-{short}", keep=f"-karpenter-{short}"),
                description=f"Karpenter interruption handling for {cluster}: {rule}",
                event_pattern=json.dumps(rule_pattern(rule)),
                opts=mine,
            )
            aws.cloudwatch.EventTarget(
                child(name, short, "target"),
                rule=event_rule.name,
                target_id=rule_target_id(rule),
                arn=self.queue.arn,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[queue_policy_resource]),
            )

        # The controller's role (IRSA) with the template's six policies.
        role = aws.iam.Role(
            child(name, "controller-role"),
            name=aws_name("iam-role", f"{cluster}-karpenter", keep="-karpenter"),
            description=f"Karpenter controller of EKS cluster {cluster} (IRSA)",
            assume_role_policy=pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
                lambda v: irsa_trust_policy(v[0], v[1], NAMESPACE, SERVICE_ACCOUNT)
            ),
            opts=mine,
        )
        controller_grants = []
        for policy_name in CONTROLLER_POLICIES:
            short = re.sub(r"Policy$", "", policy_name)
            policy = aws.iam.Policy(
                child(name, short),
                name=aws_name("iam-policy", f"{cluster}-karpenter-{short}", keep=f"-karpenter-{short}"),
                description=f"Karpenter {CHART_VERSION} {policy_name}, as upstream's CloudFormation template writes it",
                policy=values(self.node_role.arn, self.queue.arn).apply(
                    lambda v, policy_name=policy_name: json.dumps(controller_policy(policy_name, v))
                ),
                opts=mine,
            )
            controller_grants.append(
                aws.iam.RolePolicyAttachment(
                    child(name, short, "attachment"), role=role.name, policy_arn=policy.arn, opts=mine
                )
            )

        release = k8s.helm.v3.Release(
            child(name, "chart"),
            name="karpenter",
            chart=CHART,
            version=CHART_VERSION,
            namespace=NAMESPACE,
            values=pulumi.Output.all(role.arn, self.queue.name).apply(
                lambda v: chart_values(
                    cluster=cluster, queue=v[1], role_arn=v[0], replicas=min(2, max(args.baseline_nodes, 1))
                )
            ),
            # The pods assume the role as they start, and read the queue from then on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*controller_grants, queue_policy_resource]),
        )
        node_class = k8s.apiextensions.CustomResource(
            child(name, "node-class"),
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata={"name": NODE_CLASS},
            spec=pulumi.Output.all(self.node_role.name, args.security_group_id).apply(
                lambda v: node_class_spec(role=v[0], security_group_id=v[1], cluster=cluster)
            ),
            # Nodes join once their role may: its policies attached and its access entry in place.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[release, node_access, *node_grants]),
        )
        self.ready = [
            k8s.apiextensions.CustomResource(
                child(name, "pool", pool.name),
                api_version="karpenter.sh/v1",
                kind="NodePool",
                metadata={"name": pool.name},
                spec=node_pool_spec(pool, machine_type, args.tier),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[node_class]),
            )
            for pool, machine_type in args.node_pools
            if pool.max > pool.min
        ] or [node_class]
        self.register_outputs({"version": CHART_VERSION, "queue": self.queue.name, "role_arn": role.arn})
