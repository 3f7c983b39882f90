"""Karpenter on EKS: upstream's IAM, queue and rules read from its vendored template; EC2NodeClass and NodePools that
validate against its vendored CRDs; and a node for every GPU endpoint, from zero."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from components.cluster import ClusterArgs
from components.cluster.eks import EksCluster, check_node_pools
from components.cluster.karpenter import (
    CHART_VERSION,
    CONTROLLER_POLICIES,
    INTERRUPTION_RULES,
    controller_policy,
    template,
    template_values,
)
from tests.conftest import CRDS, REPO
from tests.crd_schema import load_crds, validate_custom_resource
from turnout.config import NodePool
from turnout.errors import ConfigError
from turnout.offline.planner import plan_stack
from turnout.offline.report import write_plan
from turnout.offline.runtime import run_function
from turnout.offline.stackfile import find_project

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
RELEASE = "kubernetes:helm.sh/v3:Release"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
GENERAL = NodePool(name="general", machine_type="m6i.xlarge", min=2, max=6)
GPU = NodePool(name="gpu", machine_type=None, min=0, max=4, gpu=1)


def plan_cluster(tier: str, pools=(GENERAL, GPU)):
    args = ClusterArgs(
        cluster_name="prod-us-east-1",
        region="us-east-1",
        kubernetes_version="1.34",
        node_pools=pools,
        tier=tier,
        network_cidr="10.4.0.0/16",
    )
    run = run_function(lambda: EksCluster(args.cluster_name, args))
    return {(r.type, r.name): r for r in run.records}


@pytest.fixture(scope="module")
def prod():
    return plan_cluster("prod")


def of_type(records: dict, type_: str) -> dict:
    return {name: record for (kind, name), record in records.items() if kind == type_}


def as_object(record) -> dict:
    return copy.deepcopy(
        {
            "apiVersion": record.inputs["apiVersion"],
            "kind": record.inputs["kind"],
            "metadata": record.inputs["metadata"],
            "spec": record.inputs["spec"],
        }
    )


# --- Kubernetes objects: valid against upstream's CRDs, and what they mean ---


def test_node_class_and_pools_validate_against_the_vendored_crds_with_nothing_pruned(prod):
    crds = load_crds(CRDS)
    objects = [as_object(r) for r in [*of_type(prod, NODE_CLASS).values(), *of_type(prod, NODE_POOL).values()]]
    assert len(objects) == 3
    for obj in objects:
        assert validate_custom_resource(obj, crds) == [], obj["kind"]


def test_the_crd_check_catches_what_the_api_server_would_refuse_or_prune(prod):
    crds = load_crds(CRDS)
    (pool,) = [as_object(r) for r in of_type(prod, NODE_POOL).values() if r.inputs["metadata"]["name"] == "gpu"]
    pool["spec"]["disruption"]["consolidationPolicy"] = "Never"
    pool["spec"]["template"]["spec"]["taint"] = pool["spec"]["template"]["spec"].pop("taints")
    problems = validate_custom_resource(pool, crds)
    assert any("consolidationPolicy" in p for p in problems)
    assert any("taint" in p and "prune" in p for p in problems)


def test_cel_rules_the_objects_touch_hold(prod):
    """The CRDs' CEL rules are not evaluated offline: the ones turnout's objects reach, checked here."""
    for record in of_type(prod, NODE_POOL).values():
        spec = record.inputs["spec"]["template"]["spec"]
        for requirement in spec["requirements"]:
            assert requirement["operator"] != "In" or requirement["values"], "'In' must have a value"
        for label in record.inputs["spec"]["template"]["metadata"]["labels"]:
            domain = label.split("/")[0]
            assert not domain.endswith(("karpenter.sh", "karpenter.k8s.aws", "kubernetes.io", "k8s.io")), label
        ref = spec["nodeClassRef"]
        assert ref["group"] and ref["kind"] and ref["name"]


def test_every_gpu_endpoint_of_prod_aws_has_a_node_pool_that_takes_it(tmp_path):
    """The GPU pool has min 0: only a NodePool that tolerates-and-labels like the endpoint's pods ever gives them a
    node. Before Karpenter there was none, and GPU endpoints stayed Pending."""
    folder = write_plan(plan_stack(find_project(REPO), "prod-aws"), tmp_path)
    for cluster in ("prod-aws-us-east-1", "prod-aws-us-west-2"):
        documents = [
            doc
            for path in sorted((folder / "manifests" / cluster).glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text())
        ]
        pools = [doc for doc in documents if doc and doc["kind"] == "NodePool"]
        gpu_pods = [
            doc["spec"]["template"]["spec"]
            for doc in documents
            if doc
            and doc["kind"] == "Deployment"
            and any(
                "nvidia.com/gpu" in c["resources"].get("limits", {})
                for c in doc["spec"]["template"]["spec"]["containers"]
            )
        ]
        assert gpu_pods, "prod-aws serves a GPU endpoint (ranker)"
        for pod in gpu_pods:
            takers = [pool for pool in pools if _schedules(pool, pod)]
            assert [pool["metadata"]["name"] for pool in takers] == ["gpu"], cluster
            assert int(takers[0]["spec"]["limits"]["nvidia.com/gpu"]) >= 1


def _schedules(pool: dict, pod: dict) -> bool:
    template_ = pool["spec"]["template"]
    labels = template_["metadata"]["labels"]
    if any(labels.get(key) != value for key, value in (pod.get("nodeSelector") or {}).items()):
        return False
    tolerated = {(t["key"], t.get("effect")) for t in pod.get("tolerations") or []}
    return all((taint["key"], taint["effect"]) in tolerated for taint in template_["spec"].get("taints") or [])


def test_prod_runs_on_demand_only_and_other_tiers_may_use_spot(prod):
    def capacity(records):
        return {
            r.inputs["metadata"]["name"]: next(
                q["values"]
                for q in r.inputs["spec"]["template"]["spec"]["requirements"]
                if q["key"] == "karpenter.sh/capacity-type"
            )
            for r in of_type(records, NODE_POOL).values()
        }

    assert capacity(prod) == {"general": ["on-demand"], "gpu": ["on-demand"]}
    assert capacity(plan_cluster("dev")) == {"general": ["spot", "on-demand"], "gpu": ["spot", "on-demand"]}


def test_node_pools_carry_the_pools_instance_type_labels_and_gpu_taint(prod):
    pools = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in of_type(prod, NODE_POOL).values()}
    gpu = pools["gpu"]["template"]
    assert gpu["metadata"]["labels"] == {"turnout.dev/pool": "gpu", "nvidia.com/gpu.present": "true"}
    assert gpu["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    types = {q["key"]: q["values"] for q in gpu["spec"]["requirements"]}
    assert types["node.kubernetes.io/instance-type"] == ["g5.xlarge"]
    general = pools["general"]["template"]
    assert "taints" not in general["spec"]
    assert {q["key"]: q["values"] for q in general["spec"]["requirements"]}["node.kubernetes.io/instance-type"] == [
        "m6i.xlarge"
    ]
    for spec in pools.values():
        assert spec["template"]["spec"]["nodeClassRef"] == {
            "group": "karpenter.k8s.aws",
            "kind": "EC2NodeClass",
            "name": "turnout",
        }
        assert spec["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"


def test_node_class_uses_the_private_subnets_cluster_security_group_and_imdsv2(prod):
    (node_class,) = of_type(prod, NODE_CLASS).values()
    spec = node_class.inputs["spec"]
    (term,) = spec["subnetSelectorTerms"]
    tagged = [
        name
        for (kind, name), r in prod.items()
        if kind == "aws:ec2/subnet:Subnet" and all(r.inputs["tags"].get(k) == v for k, v in term["tags"].items())
    ]
    assert sorted(tagged) == [f"prod-us-east-1-private-{i}" for i in range(3)], "the private subnets, only"
    cluster_sg = prod[("aws:eks/cluster:Cluster", "prod-us-east-1-eks")].raw_outputs["vpcConfig"][
        "clusterSecurityGroupId"
    ]
    assert spec["securityGroupSelectorTerms"] == [{"id": cluster_sg}], "the SG ElastiCache admits"
    assert (
        spec["metadataOptions"]["httpTokens"] == "required" and spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    )
    assert spec["blockDeviceMappings"][0]["ebs"]["encrypted"] is True
    node_role = prod[(ROLE, "prod-us-east-1-karpenter-node-role")]
    assert spec["role"] == node_role.inputs["name"] == "prod-us-east-1-karpenter-node"


# --- AWS side: upstream's template, substituted ---


def test_every_controller_policy_is_the_templates_with_its_parameters_filled(prod):
    values = template_values(
        cluster="prod-us-east-1",
        partition="aws",
        region="us-east-1",
        account="123456789012",
        dns_suffix="amazonaws.com",
        node_role_arn="arn:aws:iam::123456789012:role/prod-us-east-1-karpenter-node",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:prod-us-east-1",
    )
    policies = {
        r.name.removeprefix("prod-us-east-1-karpenter-"): r
        for r in of_type(prod, POLICY).values()
        if "karpenter" in r.name
    }
    assert sorted(policies) == sorted(name.removesuffix("Policy") for name in CONTROLLER_POLICIES)
    for name in CONTROLLER_POLICIES:
        document = json.loads(policies[name.removesuffix("Policy")].inputs["policy"])
        assert document == controller_policy(name, values)
        assert "${" not in json.dumps(document)
    lifecycle = json.loads(policies["NodeLifecycle"].inputs["policy"])
    assert any(
        s["Condition"]["StringEquals"].get("aws:RequestTag/kubernetes.io/cluster/prod-us-east-1") == "owned"
        for s in lifecycle["Statement"]
        if "Condition" in s
    ), "scoped to this cluster's tags"
    passrole = json.loads(policies["IAMIntegration"].inputs["policy"])["Statement"][0]
    assert passrole["Resource"] == values["KarpenterNodeRole.Arn"] and passrole["Action"] == "iam:PassRole"
    grants = {
        r.inputs["policyArn"]
        for r in of_type(prod, ATTACHMENT).values()
        if r.inputs["role"] == "prod-us-east-1-karpenter"
    }
    assert grants == {p.raw_outputs["arn"] for p in policies.values()}


def test_the_template_is_the_vendored_upstream_file_and_every_intrinsic_is_resolved():
    resources = template()["Resources"]
    assert set(CONTROLLER_POLICIES) <= set(resources) and set(INTERRUPTION_RULES) <= set(resources)
    managed = {name for name, r in resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy"}
    assert managed == set(CONTROLLER_POLICIES), "a new upstream policy would be missing from the controller"
    rules = {name for name, r in resources.items() if r["Type"] == "AWS::Events::Rule"}
    assert rules == set(INTERRUPTION_RULES)


def test_the_controller_role_trusts_only_its_service_account(prod):
    role = prod[(ROLE, "prod-us-east-1-karpenter-controller-role")]
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    (subject,) = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert subject == "system:serviceaccount:kube-system:karpenter"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"


def test_the_interruption_queue_and_its_rules(prod):
    (queue,) = of_type(prod, "aws:sqs/queue:Queue").values()
    assert queue.inputs["name"] == "prod-us-east-1"
    assert queue.inputs["messageRetentionSeconds"] == 300 and queue.inputs["sqsManagedSseEnabled"] is True
    (policy,) = of_type(prod, "aws:sqs/queuePolicy:QueuePolicy").values()
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert statements[0]["Principal"] == {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]}
    assert statements[0]["Resource"] == queue.raw_outputs["arn"]
    assert statements[1]["Effect"] == "Deny" and statements[1]["Condition"] == {"Bool": {"aws:SecureTransport": False}}
    rules = of_type(prod, "aws:cloudwatch/eventRule:EventRule")
    patterns = sorted(json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in rules.values())
    assert patterns == sorted(
        [
            "AWS Health Event",
            "EC2 Spot Instance Interruption Warning",
            "EC2 Instance Rebalance Recommendation",
            "EC2 Instance State-change Notification",
            "EC2 Capacity Reservation Instance Interruption Warning",
        ]
    )
    targets = of_type(prod, "aws:cloudwatch/eventTarget:EventTarget")
    assert len(targets) == len(rules) and all(t.inputs["arn"] == queue.raw_outputs["arn"] for t in targets.values())


def test_nodes_role_follows_the_template_and_joins_through_an_ec2_access_entry(prod):
    role = prod[(ROLE, "prod-us-east-1-karpenter-node-role")]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    managed = sorted(
        r.inputs["policyArn"] for r in of_type(prod, ATTACHMENT).values() if r.inputs["role"] == role.inputs["name"]
    )
    assert managed == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    ]
    entries = [r for r in of_type(prod, "aws:eks/accessEntry:AccessEntry").values() if r.inputs["type"] == "EC2_LINUX"]
    assert [e.inputs["principalArn"] for e in entries] == [role.raw_outputs["arn"]]


def test_the_chart_is_pinned_and_runs_on_the_managed_baseline(prod):
    release = prod[(RELEASE, "prod-us-east-1-karpenter-chart")]
    assert release.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert release.inputs["version"] == CHART_VERSION == "1.14.1"
    assert release.inputs["namespace"] == "kube-system"
    values = release.inputs["values"]
    assert values["settings"] == {"clusterName": "prod-us-east-1", "interruptionQueue": "prod-us-east-1"}
    assert values["replicas"] == 2, "two baseline nodes: two replicas (the chart spreads them over nodes and zones)"
    assert (
        values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
        == prod[(ROLE, "prod-us-east-1-karpenter-controller-role")].raw_outputs["arn"]
    )
    one_node = plan_cluster("dev", (NodePool(name="general", machine_type="m6i.large", min=1, max=3),))
    assert one_node[(RELEASE, "prod-us-east-1-karpenter-chart")].inputs["values"]["replicas"] == 1
    provider = prod[("pulumi:providers:kubernetes", "prod-us-east-1-k8s")]
    pools = {r.urn for r in of_type(prod, NODE_POOL).values()}
    assert pools <= set(provider.dependencies), "workloads wait for the NodePools (and go before them on destroy)"


def test_a_cluster_needs_a_cpu_pool_that_keeps_a_node():
    with pytest.raises(ConfigError) as caught:
        check_node_pools((NodePool(name="general", min=0, max=3), NodePool(name="gpu", min=1, max=2, gpu=1)))
    assert caught.value.path == "turnout:platform.nodePools"
    assert "min >= 1" in caught.value.allowed
    check_node_pools((GENERAL, GPU))
