"""The EKS cluster under mocks: private by default, encrypted secrets, IRSA, private nodes, GPU pools, and a
kubeconfig that authenticates through `aws eks get-token`."""

from __future__ import annotations

import base64
import ipaddress
import json

import pulumi
import pytest
import yaml

from components.cluster import ClusterArgs
from components.cluster.aws_identity import deployer_identity
from components.cluster.aws_lb_controller import IAM_POLICY_FILE, controller_iam_policy, irsa_trust_policy
from components.cluster.eks import CONTROL_PLANE_LOGS, EksCluster, check_api_access, node_group_settings, subnet_layout
from tests.conftest import REPO, write_stack
from turnout.cli import main
from turnout.config import NodePool
from turnout.errors import ConfigError
from turnout.offline import mocks_aws
from turnout.offline.mocks import OFFLINE_CA_PEM
from turnout.offline.planner import plan_stack
from turnout.offline.report import write_plan
from turnout.offline.runtime import run_function
from turnout.offline.stackfile import find_project

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SUBNET = "aws:ec2/subnet:Subnet"
ROLE = "aws:iam/role:Role"
RELEASE = "kubernetes:helm.sh/v3:Release"
K8S_PROVIDER = "pulumi:providers:kubernetes"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
LBC_SUBJECT = "system:serviceaccount:kube-system:aws-load-balancer-controller"
GENERAL = NodePool(name="general", machine_type="m6i.xlarge", min=2, max=6)
GPU = NodePool(name="gpu", machine_type="m6i.xlarge", min=0, max=2, gpu=1)


def eks_args(**overrides) -> ClusterArgs:
    args = {
        "cluster_name": "prod-us-east-1",
        "region": "us-east-1",
        "kubernetes_version": "1.34",
        "node_pools": (GENERAL, GPU),
    }
    return ClusterArgs(**{**args, **overrides})


def plan(*clusters: ClusterArgs, config: dict[str, str] | None = None):
    """Run EksCluster components (named after their clusters) and return the run and its records by (type, name);
    `config`: the stack's configuration (`aws:profile`, ...)."""

    def program():
        for args in clusters:
            cluster = EksCluster(args.cluster_name, args)
            pulumi.export(f"{args.cluster_name}-oidc-issuer", cluster.oidc_issuer)
            pulumi.export(f"{args.cluster_name}-oidc-provider-arn", cluster.oidc_provider_arn)
            pulumi.export(f"{args.cluster_name}-name", cluster.name)
            pulumi.export(f"{args.cluster_name}-vpc-id", cluster.vpc_id)
            pulumi.export(f"{args.cluster_name}-access", cluster.access.to_json())

    run = run_function(program, config=config)
    return run, {(r.type, r.name): r for r in run.records}


def of_type(records: dict, type_: str) -> dict:
    return {name: record for (kind, name), record in records.items() if kind == type_}


def ancestors(by_urn: dict, record) -> list[str]:
    """The URNs of a record's parent, its parent's parent, and so on."""
    chain = []
    while record.parent in by_urn:
        chain.append(record.parent)
        record = by_urn[record.parent]
    return chain


def subnets(records: dict, role: str) -> dict:
    """Subnets by name whose load balancer role tag is `role` (elb: public, internal-elb: private)."""
    return {
        name: record
        for name, record in of_type(records, SUBNET).items()
        if record.inputs["tags"].get(f"kubernetes.io/role/{role}") == "1"
    }


# Pure settings, without the Pulumi runtime.


def test_cpu_pool_keeps_its_type_and_standard_ami_without_taints():
    settings = node_group_settings(GENERAL, 0)
    assert settings.machine_type == "m6i.xlarge"
    assert settings.ami_type == "AL2023_x86_64_STANDARD"
    assert settings.labels == {"turnout.dev/pool": "general"}
    assert settings.taints == ()


def test_gpu_pool_on_the_cpu_default_type_gets_a_g5_nvidia_ami_taint_and_label():
    settings = node_group_settings(GPU, 1)
    assert settings.machine_type == "g5.xlarge"
    assert settings.ami_type == "AL2023_x86_64_NVIDIA"
    assert settings.labels == {"turnout.dev/pool": "gpu", "nvidia.com/gpu.present": "true"}
    assert settings.taints == ({"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"},)


def test_gpu_pool_keeps_an_explicit_gpu_type_and_sizes_the_default_by_gpu_count():
    assert node_group_settings(NodePool(name="a", machine_type="p5.48xlarge", gpu=8), 0).machine_type == "p5.48xlarge"
    assert node_group_settings(NodePool(name="b", machine_type=None, gpu=4), 0).machine_type == "g5.12xlarge"


def test_more_gpus_than_any_default_type_holds_names_the_key():
    with pytest.raises(ConfigError) as caught:
        node_group_settings(NodePool(name="big", machine_type="m6i.xlarge", gpu=16), 2)
    assert caught.value.path == "turnout:platform.nodePools[2].gpu"
    assert "at most 8 GPUs" in caught.value.allowed


# The component under mocks.


def test_api_endpoint_is_private_by_default():
    _, records = plan(eks_args())
    vpc_config = records[(CLUSTER, "prod-us-east-1-eks")].inputs["vpcConfig"]
    assert vpc_config["endpointPrivateAccess"] is True
    assert vpc_config["endpointPublicAccess"] is False, "EKS defaults to public: it must be turned off explicitly"
    assert "publicAccessCidrs" not in vpc_config


def test_api_endpoint_is_public_only_to_the_allowlist():
    _, records = plan(eks_args(api_access="allowlist", api_access_cidrs=("203.0.113.0/24", "198.51.100.7/32")))
    vpc_config = records[(CLUSTER, "prod-us-east-1-eks")].inputs["vpcConfig"]
    assert vpc_config["endpointPrivateAccess"] is True
    assert vpc_config["endpointPublicAccess"] is True
    assert vpc_config["publicAccessCidrs"] == ["203.0.113.0/24", "198.51.100.7/32"]


def test_secrets_are_encrypted_with_a_rotating_key_the_control_plane_may_use():
    _, records = plan(eks_args())
    key = records[("aws:kms/key:Key", "prod-us-east-1-secrets-key")]
    assert key.inputs["enableKeyRotation"] is True
    key_arn = key.raw_outputs["arn"]
    assert key_arn.startswith("arn:aws:kms:us-east-1:123456789012:key/")
    cluster = records[(CLUSTER, "prod-us-east-1-eks")]
    assert cluster.inputs["encryptionConfig"] == {"resources": ["secrets"], "provider": {"keyArn": key_arn}}
    assert key.urn in cluster.dependencies
    grant = json.loads(
        records[("aws:iam/rolePolicy:RolePolicy", "prod-us-east-1-cluster-role-secrets-key")].inputs["policy"]
    )
    assert grant["Statement"][0]["Resource"] == key_arn
    assert {"kms:Encrypt", "kms:Decrypt"} <= set(grant["Statement"][0]["Action"])


def test_cluster_version_logs_and_access_entries():
    _, records = plan(eks_args())
    cluster = records[(CLUSTER, "prod-us-east-1-eks")].inputs
    assert cluster["name"] == "prod-us-east-1"
    assert cluster["version"] == "1.34"
    assert cluster["enabledClusterLogTypes"] == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert list(CONTROL_PLANE_LOGS) == cluster["enabledClusterLogTypes"]
    assert cluster["accessConfig"]["authenticationMode"] == "API"


def test_roles_trust_their_service_and_carry_the_eks_managed_policies():
    _, records = plan(eks_args())
    roles = of_type(records, "aws:iam/role:Role")
    trust = {name: json.loads(role.inputs["assumeRolePolicy"])["Statement"][0] for name, role in roles.items()}
    assert trust["prod-us-east-1-cluster-role"]["Principal"] == {"Service": "eks.amazonaws.com"}
    assert trust["prod-us-east-1-node-role"]["Principal"] == {"Service": "ec2.amazonaws.com"}
    attached = {
        (record.inputs["role"], record.inputs["policyArn"].rsplit("/", 1)[1])
        for record in of_type(records, "aws:iam/rolePolicyAttachment:RolePolicyAttachment").values()
        if record.inputs["policyArn"].startswith("arn:aws:iam::aws:policy/") and "karpenter" not in record.name
    }
    assert attached == {
        ("prod-us-east-1-cluster", "AmazonEKSClusterPolicy"),
        ("prod-us-east-1-node", "AmazonEKSWorkerNodePolicy"),
        ("prod-us-east-1-node", "AmazonEKS_CNI_Policy"),
        ("prod-us-east-1-node", "AmazonEC2ContainerRegistryReadOnly"),
    }
    cluster = records[(CLUSTER, "prod-us-east-1-eks")]
    assert cluster.inputs["roleArn"] == "arn:aws:iam::123456789012:role/prod-us-east-1-cluster"


def test_irsa_provider_trusts_the_cluster_issuer_and_is_exposed():
    run, records = plan(eks_args())
    issuer = records[(CLUSTER, "prod-us-east-1-eks")].raw_outputs["identities"][0]["oidcs"][0]["issuer"]
    assert issuer.startswith("https://oidc.eks.us-east-1.amazonaws.com/id/")
    oidc = records[("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "prod-us-east-1-oidc")]
    assert oidc.inputs["url"] == issuer
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert "thumbprintLists" not in oidc.inputs, "IAM verifies EKS issuers with its own trusted CAs"
    assert run.stack_outputs["prod-us-east-1-oidc-issuer"] == issuer
    provider_arn = "arn:aws:iam::123456789012:oidc-provider/" + issuer.removeprefix("https://")
    assert run.stack_outputs["prod-us-east-1-oidc-provider-arn"] == provider_arn
    assert run.stack_outputs["prod-us-east-1-name"] == "prod-us-east-1"


def test_vpc_spans_three_zones_with_tagged_subnets_and_a_nat_per_zone():
    _, records = plan(eks_args())
    vpc = records[("aws:ec2/vpc:Vpc", "prod-us-east-1-vpc")].inputs
    assert vpc["enableDnsSupport"] is True and vpc["enableDnsHostnames"] is True, "the private endpoint needs VPC DNS"
    public, private = subnets(records, "elb"), subnets(records, "internal-elb")
    assert sorted(public) == [f"prod-us-east-1-public-{i}" for i in range(3)]
    assert sorted(private) == [f"prod-us-east-1-private-{i}" for i in range(3)]
    for group in (public, private):
        assert sorted(s.inputs["availabilityZone"] for s in group.values()) == [
            "us-east-1a",
            "us-east-1b",
            "us-east-1c",
        ]
    for subnet in [*public.values(), *private.values()]:
        assert subnet.inputs["tags"]["kubernetes.io/cluster/prod-us-east-1"] == "owned"
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
    nats = of_type(records, "aws:ec2/natGateway:NatGateway")
    assert sorted(nats) == [f"prod-us-east-1-nat-{i}" for i in range(3)]
    for index, nat in enumerate(sorted(nats)):
        assert records[(SUBNET, f"prod-us-east-1-public-{index}")].urn in nats[nat].dependencies
    routes = of_type(records, "aws:ec2/route:Route")
    for index in range(3):
        route = routes[f"prod-us-east-1-private-{index}-routes-default"]
        assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
        assert nats[f"prod-us-east-1-nat-{index}"].urn in route.dependencies, "each zone egresses through its own NAT"
    assert "gatewayId" in routes["prod-us-east-1-public-routes-default"].inputs


def test_control_plane_and_nodes_use_private_subnets_only():
    _, records = plan(eks_args())
    public = {s.urn for s in subnets(records, "elb").values()}
    private = {s.urn for s in subnets(records, "internal-elb").values()}
    cluster = records[(CLUSTER, "prod-us-east-1-eks")]
    groups = of_type(records, NODE_GROUP)
    assert sorted(groups) == ["prod-us-east-1-pool-general"], "a pool with min 0 has no managed nodes"
    for resource in [cluster, *groups.values()]:
        assert private <= set(resource.dependencies)
        assert not public & set(resource.dependencies), f"{resource.name} must not use a public subnet"
    private_ids = cluster.inputs["vpcConfig"]["subnetIds"]
    assert len(private_ids) == 3
    for group in groups.values():
        assert group.inputs["subnetIds"] == private_ids


def test_gpu_pool_is_tainted_nvidia_and_cpu_pool_is_not():
    always_on = NodePool(name="gpu", machine_type="m6i.xlarge", min=1, max=2, gpu=1)
    _, records = plan(eks_args(node_pools=(GENERAL, always_on)))
    general = records[(NODE_GROUP, "prod-us-east-1-pool-general")].inputs
    gpu = records[(NODE_GROUP, "prod-us-east-1-pool-gpu")].inputs
    assert gpu["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu["instanceTypes"] == ["g5.xlarge"]
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert gpu["labels"] == {"turnout.dev/pool": "gpu", "nvidia.com/gpu.present": "true"}
    assert general["amiType"] == "AL2023_x86_64_STANDARD"
    assert general["instanceTypes"] == ["m6i.xlarge"]
    assert "taints" not in general
    assert general["labels"] == {"turnout.dev/pool": "general"}
    assert general["clusterName"] == "prod-us-east-1" and general["nodeGroupName"] == "general"


def test_managed_node_groups_are_the_fixed_baseline_and_karpenter_the_rest():
    _, records = plan(eks_args())
    general = records[(NODE_GROUP, "prod-us-east-1-pool-general")].inputs
    assert general["scalingConfig"] == {"minSize": 2, "maxSize": 2, "desiredSize": 2}, "min nodes, never scaled"
    pools = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in of_type(records, NODE_POOL).values()}
    assert sorted(pools) == ["general", "gpu"]
    assert pools["general"]["limits"] == {"nodes": "4"}, "max 6 - the 2 managed"
    assert pools["gpu"]["limits"] == {"nodes": "2", "nvidia.com/gpu": "2"}, "min 0: every GPU node is Karpenter's"


def test_kubeconfig_is_secret_uses_the_cluster_endpoint_and_aws_tokens_and_waits_for_nodes():
    _, records = plan(eks_args())
    cluster = records[(CLUSTER, "prod-us-east-1-eks")]
    provider = records[("pulumi:providers:kubernetes", "prod-us-east-1-k8s")]
    assert provider.inputs["kubeconfig"] == "[secret]"
    kubeconfig = yaml.safe_load(provider.raw_inputs["kubeconfig"]["value"])
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    assert server == cluster.raw_outputs["endpoint"]
    assert server.startswith("https://") and server.endswith(".gr7.us-east-1.eks.amazonaws.com")
    ca = kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]
    assert base64.b64decode(ca).decode() == OFFLINE_CA_PEM
    assert kubeconfig["current-context"] == "prod-us-east-1"
    credential = kubeconfig["users"][0]["user"]["exec"]
    command = " ".join([credential["command"], *credential["args"]])
    assert command == "aws eks get-token --cluster-name prod-us-east-1 --region us-east-1"
    groups = {g.urn for g in of_type(records, NODE_GROUP).values()}
    assert groups and groups <= set(provider.dependencies), "the provider is usable only once nodes exist"


def test_every_aws_child_uses_the_cluster_region_provider():
    _, records = plan(eks_args(cluster_name="prod-eu-west-1", region="eu-west-1"))
    aws_provider = records[("pulumi:providers:aws", "prod-eu-west-1-aws")]
    assert aws_provider.inputs["region"] == "eu-west-1"
    component = records[("turnout:cluster:EksCluster", "prod-eu-west-1")]
    by_urn = {r.urn: r for r in records.values()}
    children = [r for (kind, _), r in records.items() if kind.startswith("aws:")]
    assert len(children) > 30
    for child in children:
        assert child.provider == aws_provider.urn, child.name
        assert component.urn in ancestors(by_urn, child), child.name
    zones = sorted(s.inputs["availabilityZone"] for s in subnets(records, "internal-elb").values())
    assert zones == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def test_two_regions_get_distinct_names_derived_from_their_cluster_names():
    east = eks_args()
    west = eks_args(cluster_name="prod-eu-west-1", region="eu-west-1")
    run, records = plan(east, west)
    names = [name for (kind, name) in records if kind != "pulumi:pulumi:Stack"]
    assert len(names) == len(set((kind, name) for (kind, name) in records if kind != "pulumi:pulumi:Stack"))
    for prefix in ("prod-us-east-1", "prod-eu-west-1"):
        mine = [n for n in names if n.startswith(prefix)]
        assert len(mine) == len(names) // 2
    assert {r.inputs["name"] for r in of_type(records, CLUSTER).values()} == {"prod-us-east-1", "prod-eu-west-1"}
    roles = {r.inputs["name"] for r in of_type(records, "aws:iam/role:Role").values()}
    assert roles == {
        f"{cluster}-{role}"
        for cluster in ("prod-us-east-1", "prod-eu-west-1")
        for role in ("cluster", "node", "lb-controller", "karpenter", "karpenter-node")
    }
    _, again = plan(east, west)
    assert {k: r.inputs for k, r in again.items()} == {k: r.inputs for k, r in records.items()}, "plans are stable"


def test_aws_mocks_answer_only_for_aws():
    assert mocks_aws.resource_outputs("kubernetes:core/v1:Namespace", "ns", {}) is None
    assert mocks_aws.invoke("gcp:compute/getZones:getZones", {}) is None
    zones = mocks_aws.invoke(mocks_aws.AVAILABILITY_ZONES, {"state": "available"})
    assert zones["names"] == ["us-east-1-bos-1a", "us-east-1a", "us-east-1b", "us-east-1c"], "a Local Zone first"
    only_azs = {"state": "available", "filters": [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]}
    zones = mocks_aws.invoke(mocks_aws.AVAILABILITY_ZONES, only_azs)
    assert zones["names"] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert zones["zoneIds"] == ["use1-az1", "use1-az2", "use1-az3"]
    vpc = mocks_aws.resource_outputs("aws:ec2/vpc:Vpc", "lab-vpc", {"cidrBlock": "10.0.0.0/16"})
    assert vpc["cidrBlock"] == "10.0.0.0/16" and vpc["region"] == "us-east-1"
    assert vpc["arn"].startswith("arn:aws:ec2:us-east-1:123456789012:vpc/vpc-")
    cluster = mocks_aws.resource_outputs(CLUSTER, "lab-eks", {"name": "lab", "region": "ap-south-1"})
    assert cluster["arn"] == "arn:aws:eks:ap-south-1:123456789012:cluster/lab"
    assert cluster["endpoint"].endswith(".gr7.ap-south-1.eks.amazonaws.com")
    assert cluster == mocks_aws.resource_outputs(CLUSTER, "lab-eks", {"name": "lab", "region": "ap-south-1"})
    policy = mocks_aws.resource_outputs("aws:iam/policy:Policy", "lab-policy", {"name": "lab-lb-controller"})
    assert policy["arn"] == "arn:aws:iam::123456789012:policy/lab-lb-controller" and "region" not in policy
    assert policy == mocks_aws.resource_outputs("aws:iam/policy:Policy", "lab-policy", {"name": "lab-lb-controller"})


def test_aws_stack_plans_end_to_end(project, tmp_path, capsys):
    config = {
        "platform": {"cloud": "aws", "regions": ["us-east-1"]},
        "endpoints": {"scores": {"versions": {"v1": {"image": "ghcr.io/acme/scores:1.0.0"}}}},
    }
    write_stack(project, "cloud", config)
    status = main(["plan", "cloud", "--project", str(project), "--out", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    inventory = json.loads((tmp_path / "cloud" / "inventory.json").read_text())
    clusters = [r for r in inventory["resources"] if r["type"] == CLUSTER]
    assert [c["inputs"]["name"] for c in clusters] == ["cloud-us-east-1"]
    groups = [r for r in inventory["resources"] if r["type"] == NODE_GROUP]
    assert [g["inputs"]["instanceTypes"] for g in groups] == [["m6i.xlarge"]]
    assert inventory["outputs"]["kubeconfigs"] == {"cloud-us-east-1": "[secret]"}


def test_the_vpc_cni_enforces_network_policies():
    _, records = plan(eks_args())
    (addon,) = of_type(records, "aws:eks/addon:Addon").values()
    assert addon.inputs["addonName"] == "vpc-cni"
    assert json.loads(addon.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


# The AWS Load Balancer Controller: what gives the Istio gateway's Service its NLB.


def test_the_lb_controller_role_trusts_only_its_service_account_through_the_cluster_oidc_provider():
    _, records = plan(eks_args())
    oidc = records[(OIDC_PROVIDER, "prod-us-east-1-oidc")]
    host = oidc.inputs["url"].removeprefix("https://")
    role = records[(ROLE, "prod-us-east-1-lb-controller-role")]
    assert role.inputs["name"] == "prod-us-east-1-lb-controller"
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": oidc.raw_outputs["arn"]}
    assert statement["Condition"] == {
        "StringEquals": {f"{host}:sub": LBC_SUBJECT, f"{host}:aud": "sts.amazonaws.com"}
    }, "only this ServiceAccount, and only with a token minted for STS"
    assert oidc.urn in role.dependencies


def test_irsa_trust_policy_scopes_the_issuer_host_not_its_url():
    trust = json.loads(irsa_trust_policy("arn:p", "https://oidc.example/id/AB", "ns", "sa"))
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {
        "oidc.example/id/AB:sub": "system:serviceaccount:ns:sa",
        "oidc.example/id/AB:aud": "sts.amazonaws.com",
    }


def test_the_lb_controller_role_carries_exactly_the_vendored_upstream_policy():
    _, records = plan(eks_args())
    vendored = json.loads(IAM_POLICY_FILE.read_text())
    assert vendored == controller_iam_policy()
    policy = records[("aws:iam/policy:Policy", "prod-us-east-1-lb-controller-policy")]
    assert json.loads(policy.inputs["policy"]) == vendored
    grants = [
        r
        for r in of_type(records, "aws:iam/rolePolicyAttachment:RolePolicyAttachment").values()
        if r.inputs["role"] == "prod-us-east-1-lb-controller"
    ]
    assert [g.inputs["policyArn"] for g in grants] == [policy.raw_outputs["arn"]], "nothing but that policy"
    assert not [r for r in of_type(records, "aws:iam/rolePolicy:RolePolicy").values() if "lb-controller" in r.name]
    # IAM rejects a managed policy over 6,144 characters, whitespace excluded.
    assert len(json.dumps(vendored, separators=(",", ":"))) <= 6144


def test_the_lb_controller_chart_is_pinned_and_configured_for_its_cluster():
    run, records = plan(eks_args())
    release = records[(RELEASE, "prod-us-east-1-lb-controller-chart")]
    inputs = release.inputs
    assert inputs["chart"] == "aws-load-balancer-controller" and inputs["name"] == "aws-load-balancer-controller"
    assert inputs["version"] == "1.13.4", "chart 1.13.4 ships controller v2.13.4, the policy's version"
    assert inputs["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"}
    assert inputs["namespace"] == "kube-system"
    values = inputs["values"]
    assert values["clusterName"] == "prod-us-east-1"
    assert values["region"] == "us-east-1"
    assert values["vpcId"] == run.stack_outputs["prod-us-east-1-vpc-id"]
    role_arn = records[(ROLE, "prod-us-east-1-lb-controller-role")].raw_outputs["arn"]
    assert values["serviceAccount"] == {
        "create": True,
        "name": "aws-load-balancer-controller",
        "annotations": {"eks.amazonaws.com/role-arn": role_arn},
    }
    assert values["replicaCount"] == 2 and values["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert values["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert values["enableServiceMutatorWebhook"] is True
    assert values["createIngressClassResource"] is False
    grant = records[
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "prod-us-east-1-lb-controller-policy-attachment")
    ]
    assert grant.urn in release.dependencies, "the pods start with their permissions attached"


def test_the_lb_controller_installs_after_the_nodes_and_the_cluster_provider_waits_for_it():
    _, records = plan(eks_args())
    release = records[(RELEASE, "prod-us-east-1-lb-controller-chart")]
    addons = records[(K8S_PROVIDER, "prod-us-east-1-k8s-addons")]
    provider = records[(K8S_PROVIDER, "prod-us-east-1-k8s")]
    groups = {g.urn for g in of_type(records, NODE_GROUP).values()}
    assert release.provider == addons.urn
    assert groups <= set(addons.dependencies)
    assert release.urn in provider.dependencies, "what deploys through the cluster waits for the controller"
    assert provider.inputs["kubeconfig"] == addons.inputs["kubeconfig"] == "[secret]"


def waits_for(by_urn: dict, urn: str) -> set[str]:
    """Every URN `urn` waits for before it is created: its dependencies and its provider, transitively."""
    seen, todo = set(), [urn]
    while todo:
        record = by_urn[todo.pop()]
        for before in [*record.dependencies, *([record.provider] if record.provider else [])]:
            if before not in seen:
                seen.add(before)
                todo.append(before)
    return seen


def test_in_the_planned_prod_aws_stack_the_istio_gateway_waits_for_the_lb_controller(tmp_path):
    plan_ = plan_stack(find_project(REPO), "prod-aws")
    inventory = json.loads((write_plan(plan_, tmp_path) / "inventory.json").read_text())
    controllers = {r["name"]: r["inputs"] for r in inventory["resources"] if r["name"].endswith("-lb-controller-chart")}
    clusters = ["prod-aws-us-east-1", "prod-aws-us-west-2"]
    assert sorted(controllers) == [f"{cluster}-lb-controller-chart" for cluster in clusters]
    for cluster in clusters:
        values = controllers[f"{cluster}-lb-controller-chart"]["values"]
        assert values["clusterName"] == cluster and values["region"] == cluster.removeprefix("prod-aws-")
    by_urn = {r.urn: r for r in plan_.records}
    urn = {r.name: r.urn for r in plan_.records}
    for cluster in clusters:
        gateway = urn[f"{cluster}-serving-istio-gateway"]
        assert urn[f"{cluster}-lb-controller-chart"] in waits_for(by_urn, gateway), cluster
        other = next(c for c in clusters if c != cluster)
        assert urn[f"{other}-lb-controller-chart"] not in waits_for(by_urn, gateway), "each waits for its own"


# The way in: network, access mode, identity, admins.


def test_subnets_are_carved_from_the_regions_network():
    _, records = plan(eks_args(network_cidr="10.7.0.0/16"))
    assert records[("aws:ec2/vpc:Vpc", "prod-us-east-1-vpc")].inputs["cidrBlock"] == "10.7.0.0/16"
    cidrs = {name: r.inputs["cidrBlock"] for name, r in of_type(records, SUBNET).items()}
    assert [cidrs[f"prod-us-east-1-private-{i}"] for i in range(3)] == ["10.7.0.0/18", "10.7.64.0/18", "10.7.128.0/18"]
    assert [cidrs[f"prod-us-east-1-public-{i}"] for i in range(3)] == [
        "10.7.192.0/24",
        "10.7.193.0/24",
        "10.7.194.0/24",
    ]


def test_two_regions_networks_never_overlap():
    east, west = subnet_layout("10.0.0.0/16"), subnet_layout("10.1.0.0/16")
    subnets = [ipaddress.ip_network(c) for layout in (east, west) for c in (*layout.private, *layout.public)]
    assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1 :])


def test_in_network_access_keeps_the_endpoint_private_and_says_where_to_deploy_from():
    args = eks_args(api_access="in-network", network_cidr="10.3.0.0/16")
    run, records = plan(args)
    vpc_config = records[(CLUSTER, "prod-us-east-1-eks")].inputs["vpcConfig"]
    assert (vpc_config["endpointPrivateAccess"], vpc_config["endpointPublicAccess"]) == (True, False)
    access = run.stack_outputs["prod-us-east-1-access"]
    assert access["mode"] == "in-network"
    assert "10.3.0.0/16" in access["reachableFrom"] and "private endpoint" in access["reachableFrom"]


def test_allowlist_access_is_public_only_to_the_cidrs_and_private_too():
    args = eks_args(api_access="allowlist", api_access_cidrs=("203.0.113.0/24",))
    run, records = plan(args)
    vpc_config = records[(CLUSTER, "prod-us-east-1-eks")].inputs["vpcConfig"]
    assert vpc_config["endpointPublicAccess"] is True and vpc_config["endpointPrivateAccess"] is True
    assert vpc_config["publicAccessCidrs"] == ["203.0.113.0/24"]
    access = run.stack_outputs["prod-us-east-1-access"]
    assert access["mode"] == "allowlist" and access["reachableFrom"].startswith("203.0.113.0/24 (public endpoint")


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"api_access": "dns"}, "turnout:platform.apiAccess"),
        ({"api_access": "allowlist"}, "turnout:platform.apiAccessCidrs"),
        ({"api_access": "in-network", "api_access_cidrs": ("203.0.113.0/24",)}, "turnout:platform.apiAccessCidrs"),
    ],
)
def test_access_modes_eks_has_not_are_refused_naming_the_key(overrides, path):
    with pytest.raises(ConfigError) as caught:
        check_api_access(eks_args(**overrides))
    assert caught.value.path == path


ADMIN = "arn:aws:iam::123456789012:role/platform-admins"
IDENTITY = {
    "aws:profile": "deploy",
    "aws:assumeRoles": json.dumps(
        [{"roleArn": "arn:aws:iam::123456789012:role/turnout-deployer", "sessionName": "ci"}]
    ),
}


def test_admins_get_cluster_scoped_admin_access_entries():
    _, records = plan(eks_args(admins=(ADMIN, "arn:aws:iam::123456789012:user/oncall")))
    entries = of_type(records, "aws:eks/accessEntry:AccessEntry")
    standard = sorted(e.inputs["principalArn"] for e in entries.values() if e.inputs["type"] == "STANDARD")
    assert standard == sorted([ADMIN, "arn:aws:iam::123456789012:user/oncall"])
    associations = of_type(records, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert sorted(a.inputs["principalArn"] for a in associations.values()) == standard
    for association in associations.values():
        assert association.inputs["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        assert association.inputs["accessScope"] == {"type": "cluster"}
        assert association.inputs["clusterName"] == "prod-us-east-1"


def test_the_aws_provider_and_the_kubeconfig_sign_in_as_the_stacks_aws_identity():
    _, records = plan(eks_args(), config=IDENTITY)
    provider = records[("pulumi:providers:aws", "prod-us-east-1-aws")]
    assert provider.inputs["profile"] == "deploy", "an explicit provider does not read aws:profile by itself"
    roles = provider.inputs["assumeRoles"]  # a provider gets nested settings JSON-encoded
    assert json.loads(roles) == [{"roleArn": "arn:aws:iam::123456789012:role/turnout-deployer", "sessionName": "ci"}]
    for name in ("prod-us-east-1-k8s", "prod-us-east-1-k8s-addons"):
        kubeconfig = yaml.safe_load(records[(K8S_PROVIDER, name)].raw_inputs["kubeconfig"]["value"])
        credential = kubeconfig["users"][0]["user"]["exec"]
        assert credential["args"][-2:] == ["--role-arn", "arn:aws:iam::123456789012:role/turnout-deployer"]
        assert credential["env"] == [{"name": "AWS_PROFILE", "value": "deploy"}]
    cluster = records[(CLUSTER, "prod-us-east-1-eks")].inputs
    assert cluster["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is True, "the creator is that role"


def test_without_aws_identity_settings_both_use_the_ambient_credentials():
    _, records = plan(eks_args())
    provider = records[("pulumi:providers:aws", "prod-us-east-1-aws")]
    assert "profile" not in provider.inputs and "assumeRoles" not in provider.inputs
    kubeconfig = yaml.safe_load(records[(K8S_PROVIDER, "prod-us-east-1-k8s")].raw_inputs["kubeconfig"]["value"])
    assert "env" not in kubeconfig["users"][0]["user"]["exec"]


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"accessKey": "AKIA..."}, "aws:accessKey"),
        ({"assumeRoleWithWebIdentity": '{"roleArn": "arn:aws:iam::1:role/x"}'}, "aws:assumeRoleWithWebIdentity"),
        ({"assumeRoles": '[{"roleArn": "a"}, {"roleArn": "b"}]'}, "aws:assumeRoles"),
        ({"assumeRoles": '[{"roleArn": "a", "externalId": "x"}]'}, "aws:assumeRoles[0].externalId"),
        ({"assumeRoles": '[{"sessionName": "x"}]'}, "aws:assumeRoles[0].roleArn"),
        ({"sharedConfigFiles": '["a", "b"]'}, "aws:sharedConfigFiles"),
    ],
)
def test_identities_the_kubeconfig_could_not_reproduce_are_refused_naming_the_aws_key(values, path):
    with pytest.raises(ConfigError) as caught:
        deployer_identity(values)
    assert caught.value.path == path


def test_a_profile_with_its_own_config_file_reaches_both():
    identity = deployer_identity({"profile": "ops", "sharedConfigFiles": '["/etc/aws/config"]'})
    assert identity.provider_args() == {"profile": "ops", "shared_config_files": ["/etc/aws/config"]}
    assert identity.get_token_env() == [
        {"name": "AWS_PROFILE", "value": "ops"},
        {"name": "AWS_CONFIG_FILE", "value": "/etc/aws/config"},
    ]


def test_the_bundled_prod_aws_stack_states_its_access_path_and_builds_it(tmp_path):
    """Who can reach each cluster's API and from where, which identity the Kubernetes provider uses, and the
    admins' access entries: what the plan shows, and that the resources say the same."""
    plan_ = plan_stack(find_project(REPO), "prod-aws")
    inventory = json.loads((write_plan(plan_, tmp_path) / "inventory.json").read_text())
    resources = inventory["resources"]
    clusters = {c["name"]: c for c in inventory["outputs"]["clusters"]}
    assert sorted(clusters) == ["prod-aws-us-east-1", "prod-aws-us-west-2"]
    by_name = {r["name"]: r for r in resources}
    records = {r.name: r for r in plan_.records}
    for name, described in clusters.items():
        access = described["apiAccess"]
        assert access["mode"] == "allowlist"
        assert access["reachableFrom"].startswith("198.51.100.0/24, 203.0.113.0/24 (public endpoint, allowlisted)")
        assert described["network"] in access["reachableFrom"]
        assert "aws eks get-token" in access["identity"]
        assert access["admins"] == [ADMIN]
        vpc_config = by_name[f"{name}-eks"]["inputs"]["vpcConfig"]
        assert vpc_config["publicAccessCidrs"] == ["198.51.100.0/24", "203.0.113.0/24"]
        assert vpc_config["endpointPrivateAccess"] is True
        assert by_name[f"{name}-vpc"]["inputs"]["cidrBlock"] == described["network"]
        kubeconfig = yaml.safe_load(records[f"{name}-k8s"].raw_inputs["kubeconfig"]["value"])
        command = kubeconfig["users"][0]["user"]["exec"]
        assert [command["command"], *command["args"][:4]] == ["aws", "eks", "get-token", "--cluster-name", name]
        admin = by_name[f"{name}-admin-0-cluster-admin"]["inputs"]
        assert admin["principalArn"] == ADMIN and admin["accessScope"] == {"type": "cluster"}
        assert admin["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
    assert clusters["prod-aws-us-east-1"]["network"] != clusters["prod-aws-us-west-2"]["network"]
