"""An EKS cluster in one region: its own VPC carved from the region's /16, KMS-encrypted secrets, IRSA, the API
reachable the way `platform.apiAccess` says (and by the same identity as the AWS provider), managed baseline
nodes, Karpenter for everything above the baseline (GPU nodes from zero included) and the AWS Load Balancer
Controller."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from components.cluster import ApiAccessPath, ClusterArgs
from components.cluster.aws_identity import DeployerIdentity, stack_identity
from components.cluster.aws_lb_controller import AwsLoadBalancerController, AwsLoadBalancerControllerArgs
from components.cluster.aws_limits import aws_name
from components.cluster.gpu import NvidiaDevicePlugin, has_gpu_pools
from components.cluster.karpenter import Karpenter, KarpenterArgs
from turnout.config import DEFAULT_MACHINE_TYPES, NodePool, key_path
from turnout.errors import ConfigError
from turnout.naming import child

POOL_LABEL = "turnout.dev/pool"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
# AMI types as the EKS API spells them (botocore's eks model, shape AMITypes): AL2023, with NVIDIA drivers for GPUs.
CPU_AMI_TYPE = "AL2023_x86_64_STANDARD"
GPU_AMI_TYPE = "AL2023_x86_64_NVIDIA"
# The smallest g5 (NVIDIA A10G) size per GPU count, used when a GPU pool keeps the CPU default machine type.
G5_BY_GPUS = {1: "g5.xlarge", 4: "g5.12xlarge", 8: "g5.48xlarge"}
CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
AZ_COUNT = 3
# Availability Zones only: an account opted into a Local Zone sees it in the same list, sorted first
# (us-east-1-bos-1a < us-east-1a), and EKS control planes and most instance types are not offered there.
AVAILABILITY_ZONES_ONLY = [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


@dataclass(frozen=True)
class NodeGroupSettings:
    """What a pool becomes on EKS: instance type, AMI, labels and taints."""

    machine_type: str
    ami_type: str
    labels: dict[str, str]
    taints: tuple[dict[str, str], ...]


def node_group_settings(pool: NodePool, index: int) -> NodeGroupSettings:
    """A pool's managed node group settings; a GPU pool gets NVIDIA AMIs, a GPU instance type and a taint."""
    labels = {POOL_LABEL: pool.name}
    machine_type = pool.machine_type or DEFAULT_MACHINE_TYPES["aws"]
    if not pool.gpu:
        return NodeGroupSettings(machine_type, CPU_AMI_TYPE, labels, ())
    if machine_type == DEFAULT_MACHINE_TYPES["aws"]:
        fitting = [size for gpus, size in sorted(G5_BY_GPUS.items()) if gpus >= pool.gpu]
        if not fitting:
            raise ConfigError(
                key_path(f"platform.nodePools[{index}].gpu"),
                f"{pool.gpu} GPUs per node without a machineType",
                f"at most {max(G5_BY_GPUS)} GPUs per node, or a machineType with {pool.gpu} GPUs",
            )
        machine_type = fitting[0]
    return NodeGroupSettings(machine_type, GPU_AMI_TYPE, {**labels, GPU_LABEL: "true"}, (dict(GPU_TAINT),))


@dataclass(frozen=True)
class SubnetLayout:
    """How the region's /16 is split: a /18 per AZ for nodes and pods (the VPC CNI gives every pod a VPC
    address: 16,379 usable each), a /24 per AZ for NAT gateways and load balancers, a quarter left free."""

    vpc: str
    private: tuple[str, ...]
    public: tuple[str, ...]


def subnet_layout(network_cidr: str) -> SubnetLayout:
    network = ipaddress.IPv4Network(network_cidr)
    if network.prefixlen != 16:
        raise ValueError(f"EKS subnets are laid out for a /16, not {network_cidr}")
    quarters = list(network.subnets(new_prefix=18))
    public = list(quarters[3].subnets(new_prefix=24))[:AZ_COUNT]
    return SubnetLayout(str(network), tuple(str(q) for q in quarters[:AZ_COUNT]), tuple(str(p) for p in public))


def check_api_access(args: ClusterArgs) -> None:
    """The access modes EKS has: a public endpoint only to declared CIDRs, or a private one only."""
    if args.api_access not in ("allowlist", "in-network"):
        raise ConfigError(
            key_path("platform.apiAccess"),
            f"{args.api_access!r} with cloud aws",
            "allowlist (a public endpoint open only to apiAccessCidrs, and private) or in-network (private only)",
        )
    if args.api_access == "allowlist" and not args.api_access_cidrs:
        raise ConfigError(
            key_path("platform.apiAccessCidrs"), "nothing, with apiAccess allowlist", "the CIDRs `pulumi up` runs from"
        )
    if args.api_access != "allowlist" and args.api_access_cidrs:
        raise ConfigError(
            key_path("platform.apiAccessCidrs"),
            f"{len(args.api_access_cidrs)} CIDR(s) with apiAccess {args.api_access}",
            "apiAccessCidrs only with apiAccess allowlist",
        )


def check_node_pools(pools: tuple[NodePool, ...]) -> None:
    """Karpenter's controller (and the other add-ons) run on managed nodes Karpenter does not launch: at least
    one CPU pool keeps a node (`min` 1 or more)."""
    if not any(pool.min >= 1 and not pool.gpu for pool in pools):
        raise ConfigError(
            key_path("platform.nodePools"),
            "no pool without gpu and with min 1 or more",
            "at least one CPU pool with min >= 1 on aws: its managed nodes run Karpenter, which adds every other "
            "node (up to each pool's max), and the cluster's add-ons",
        )


def api_access_path(args: ClusterArgs, identity: DeployerIdentity) -> ApiAccessPath:
    """What the plan shows about reaching this cluster's API."""
    inside = f"inside {args.network_cidr} (the cluster's VPC) or a network routed to it"
    reachable = (
        f"{', '.join(args.api_access_cidrs)} (public endpoint, allowlisted), and {inside}"
        if args.api_access == "allowlist"
        else f"{inside} only (private endpoint): a self-hosted runner or VPN there"
    )
    command = " ".join(["aws eks get-token", *identity.get_token_args()])
    profile = f" with AWS_PROFILE={identity.profile}" if identity.profile else ""
    return ApiAccessPath(
        mode=args.api_access,
        reachable_from=reachable,
        identity=f"{identity.describe()}: the AWS provider's, which EKS makes the cluster's creator and admin; "
        f"the Kubernetes provider signs in as the same with `{command}`{profile}",
        admins=tuple(args.admins),
    )


def eks_kubeconfig(
    cluster_name: str, region: str, endpoint: str, ca_data: str, identity: DeployerIdentity | None = None
) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (short-lived IAM tokens, no stored credentials) as
    `identity`: its role (`--role-arn`) and profile (AWS_PROFILE), those of the AWS provider that created the
    cluster."""
    identity = identity or DeployerIdentity()
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [
            {
                "name": cluster_name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": [
                            "eks",
                            "get-token",
                            "--cluster-name",
                            cluster_name,
                            "--region",
                            region,
                            *identity.get_token_args(),
                        ],
                        **({"env": identity.get_token_env()} if identity.get_token_env() else {}),
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


def _assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def _service_role(
    resource_name: str, role_name: str, service: str, policies: tuple[str, ...], opts: pulumi.ResourceOptions
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """An IAM role `service` may assume, with AWS-managed `policies` attached."""
    role = aws.iam.Role(resource_name, name=role_name, assume_role_policy=_assume_role_policy(service), opts=opts)
    grants = [
        aws.iam.RolePolicyAttachment(
            child(resource_name, policy), role=role.name, policy_arn=f"arn:aws:iam::aws:policy/{policy}", opts=opts
        )
        for policy in policies
    ]
    return role, grants


class EksCluster(pulumi.ComponentResource):
    name: str
    """The cluster's name in AWS (`args.cluster_name`, fitted to EKS's limits)."""
    region: str
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    access: ApiAccessPath
    oidc_issuer: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    """The cluster's VPC, for services that live beside it (caches, private DNS zones)."""
    private_subnet_ids: list[pulumi.Output[str]]
    """The private subnets (one per AZ) the nodes run in."""
    cluster_security_group_id: pulumi.Output[str]
    """The security group EKS attaches to the control plane and managed nodes (and so to pods)."""
    load_balancer_controller: AwsLoadBalancerController
    """The AWS Load Balancer Controller, which gives LoadBalancer Services (the Istio gateway's) their NLB."""
    karpenter: Karpenter
    """Karpenter, which adds nodes above the managed baseline, up to each pool's max."""

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cluster:EksCluster", name, None, opts)
        check_api_access(args)
        check_node_pools(args.node_pools)
        self.name = aws_name("eks-cluster", args.cluster_name)
        self.region = args.region
        pools = [node_group_settings(pool, index) for index, pool in enumerate(args.node_pools)]
        identity = stack_identity()
        self.access = api_access_path(args, identity)

        # One explicit provider per cluster: the region comes from the stack, the identity from its aws: config
        # (an explicit provider reads neither by itself).
        aws_provider = aws.Provider(
            child(name, "aws"),
            region=args.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags={"turnout.dev/cluster": self.name}),
            **identity.provider_args(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        mine = pulumi.ResourceOptions(parent=self, provider=aws_provider)

        private_subnets, private_routes = self._network(name, args, mine, aws_provider)
        self.private_subnet_ids = [subnet.id for subnet in private_subnets]
        key = aws.kms.Key(
            child(name, "secrets-key"),
            description=f"EKS secrets envelope encryption for {self.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=mine,
        )
        cluster_role, cluster_grants = _service_role(
            child(name, "cluster-role"),
            aws_name("iam-role", f"{self.name}-cluster", keep="-cluster"),
            "eks.amazonaws.com",
            CLUSTER_POLICIES,
            mine,
        )
        # The managed cluster policy has no KMS rights; the control plane needs these to use the secrets key.
        cluster_grants.append(
            aws.iam.RolePolicy(
                child(name, "cluster-role", "secrets-key"),
                name="secrets-key",
                role=cluster_role.name,
                policy=key.arn.apply(
                    lambda arn: json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                                    "Resource": arn,
                                }
                            ],
                        }
                    )
                ),
                opts=mine,
            )
        )

        public_api = args.api_access == "allowlist"
        cluster = aws.eks.Cluster(
            child(name, "eks"),
            name=self.name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=[subnet.id for subnet in private_subnets],
                # Nodes (and an in-network deployer) reach the API privately in every mode.
                endpoint_private_access=True,
                # EKS makes the endpoint public (to 0.0.0.0/0) unless told otherwise: say so explicitly.
                endpoint_public_access=public_api,
                public_access_cidrs=list(args.api_access_cidrs) if public_api else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn), resources=["secrets"]
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            # Access entries only (no aws-auth ConfigMap). The creator (the AWS provider's identity, which the
            # kubeconfig signs in as) is admin, so the stack can deploy into it; platform.admins get entries below.
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=aws_provider, depends_on=cluster_grants),
        )
        self._admins(name, args.admins, cluster, mine)

        # The VPC CNI enforces NetworkPolicies only with its policy agent on (v1.14+, the default for our versions);
        # turnout's model namespaces rely on them as defence in depth behind Istio's authorization.
        aws.eks.Addon(
            child(name, "vpc-cni"),
            cluster_name=cluster.name,
            addon_name="vpc-cni",
            configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=mine,
        )
        self.cluster_security_group_id = cluster.vpc_config.cluster_security_group_id
        self.oidc_issuer = cluster.identities.apply(lambda identities: identities[0].oidcs[0].issuer)
        # No thumbprint: IAM validates EKS issuers against its own trusted CAs and ignores configured thumbprints.
        oidc = aws.iam.OpenIdConnectProvider(
            child(name, "oidc"),
            url=self.oidc_issuer,
            client_id_lists=["sts.amazonaws.com"],
            opts=mine,
        )
        self.oidc_provider_arn = oidc.arn

        node_role, node_grants = _service_role(
            child(name, "node-role"),
            aws_name("iam-role", f"{self.name}-node", keep="-node"),
            "ec2.amazonaws.com",
            NODE_POLICIES,
            mine,
        )
        # The managed baseline: each pool's `min` nodes, fixed; Karpenter adds the rest up to `max`.
        node_groups = [
            aws.eks.NodeGroup(
                child(name, "pool", pool.name),
                cluster_name=cluster.name,
                node_group_name=pool.name,
                node_role_arn=node_role.arn,
                subnet_ids=[subnet.id for subnet in private_subnets],
                instance_types=[settings.machine_type],
                ami_type=settings.ami_type,
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                    min_size=pool.min, max_size=pool.min, desired_size=pool.min
                ),
                labels=settings.labels,
                taints=[aws.eks.NodeGroupTaintArgs(**taint) for taint in settings.taints] or None,
                update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=aws_provider,
                    # Nodes need their policies and a NAT route to join.
                    depends_on=[*node_grants, *private_routes],
                ),
            )
            for pool, settings in zip(args.node_pools, pools, strict=True)
            if pool.min >= 1
        ]

        kubeconfig = pulumi.Output.all(cluster.endpoint, cluster.certificate_authority.data).apply(
            lambda values: eks_kubeconfig(self.name, args.region, values[0], values[1], identity)
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        # The add-ons install through a provider of their own, usable once nodes exist.
        addons_provider = k8s.Provider(
            child(name, "k8s-addons"),
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_groups),
        )
        addons = pulumi.ResourceOptions(parent=self, providers=[aws_provider, addons_provider])
        self.load_balancer_controller = AwsLoadBalancerController(
            child(name, "lb-controller"),
            AwsLoadBalancerControllerArgs(
                cluster_name=self.name,
                region=args.region,
                vpc_id=self.vpc_id,
                oidc_provider_arn=self.oidc_provider_arn,
                oidc_issuer=self.oidc_issuer,
            ),
            addons,
        )
        self.karpenter = Karpenter(
            child(name, "karpenter"),
            KarpenterArgs(
                cluster_name=self.name,
                eks_cluster=cluster.name,
                region=args.region,
                tier=args.tier,
                node_pools=tuple(
                    (pool, settings.machine_type) for pool, settings in zip(args.node_pools, pools, strict=True)
                ),
                baseline_nodes=sum(pool.min for pool in args.node_pools if not pool.gpu),
                security_group_id=self.cluster_security_group_id,
                oidc_provider_arn=self.oidc_provider_arn,
                oidc_issuer=self.oidc_issuer,
            ),
            addons,
        )
        # Usable only once nodes, the load balancer controller and Karpenter's NodePools exist: everything deployed
        # through this provider waits for them, so the gateway's Service is created after the controller's webhook,
        # which sets its (immutable) load balancer class, pods that need a new node (a GPU) find a NodePool, and on
        # destroy the controllers are deleted after what they serve (Karpenter's nodes go with its NodePools).
        self.provider = k8s.Provider(
            child(name, "k8s"),
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*node_groups, *self.load_balancer_controller.ready, *self.karpenter.ready],
            ),
        )
        if has_gpu_pools(args.node_pools):
            NvidiaDevicePlugin(child(name, "gpu"), pulumi.ResourceOptions(parent=self, provider=self.provider))
        self.register_outputs(
            {
                "name": self.name,
                "region": self.region,
                "kubeconfig": self.kubeconfig,
                "oidc_issuer": self.oidc_issuer,
                "oidc_provider_arn": self.oidc_provider_arn,
                "access": self.access.to_json(),
            }
        )

    def _admins(
        self, name: str, admins: tuple[str, ...], cluster: aws.eks.Cluster, mine: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        """An access entry per `platform.admins` principal with the cluster-wide AmazonEKSClusterAdminPolicy."""
        grants: list[pulumi.Resource] = []
        for index, principal in enumerate(admins):
            entry = aws.eks.AccessEntry(
                child(name, "admin", str(index)),
                cluster_name=cluster.name,
                principal_arn=principal,
                type="STANDARD",
                opts=mine,
            )
            grants.append(
                aws.eks.AccessPolicyAssociation(
                    child(name, "admin", str(index), "cluster-admin"),
                    cluster_name=cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=CLUSTER_ADMIN_POLICY,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    opts=mine,
                )
            )
        return grants

    def _network(
        self, name: str, args: ClusterArgs, mine: pulumi.ResourceOptions, aws_provider: aws.Provider
    ) -> tuple[list[aws.ec2.Subnet], list[aws.ec2.Route]]:
        """A VPC on the region's /16 over its first three Availability Zones (`subnet_layout`): public subnets for
        NATs and load balancers, private ones for the control plane's interfaces, the nodes and the pods. One NAT
        gateway per AZ, so losing an AZ never cuts the others' egress (it costs two more gateways than a shared one)."""
        layout = subnet_layout(args.network_cidr)
        zones = aws.get_availability_zones_output(
            state="available",
            filters=AVAILABILITY_ZONES_ONLY,
            # The provider already sets the region; passing it too lets offline plans answer for the right region.
            region=args.region,
            opts=pulumi.InvokeOutputOptions(provider=aws_provider, parent=self),
        )
        owned = {f"kubernetes.io/cluster/{self.name}": "owned"}
        vpc = aws.ec2.Vpc(
            child(name, "vpc"),
            cidr_block=layout.vpc,
            # Required for the private API endpoint: nodes resolve it through the VPC's DNS.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": child(name, "vpc")},
            opts=mine,
        )
        self.vpc_id = vpc.id
        gateway = aws.ec2.InternetGateway(
            child(name, "igw"), vpc_id=vpc.id, tags={"Name": child(name, "igw")}, opts=mine
        )
        public_table = aws.ec2.RouteTable(
            child(name, "public-routes"), vpc_id=vpc.id, tags={"Name": child(name, "public-routes")}, opts=mine
        )
        aws.ec2.Route(
            child(name, "public-routes", "default"),
            route_table_id=public_table.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=mine,
        )
        private_subnets: list[aws.ec2.Subnet] = []
        private_routes: list[aws.ec2.Route] = []
        for index in range(AZ_COUNT):
            zone = zones.names[index]
            az = str(index)
            public = aws.ec2.Subnet(
                child(name, "public", az),
                vpc_id=vpc.id,
                cidr_block=layout.public[index],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": child(name, "public", az), "kubernetes.io/role/elb": "1", **owned},
                opts=mine,
            )
            aws.ec2.RouteTableAssociation(
                child(name, "public", az, "association"), subnet_id=public.id, route_table_id=public_table.id, opts=mine
            )
            address = aws.ec2.Eip(
                child(name, "nat", az, "ip"), domain="vpc", tags={"Name": child(name, "nat", az)}, opts=mine
            )
            nat = aws.ec2.NatGateway(
                child(name, "nat", az),
                allocation_id=address.id,
                subnet_id=public.id,
                tags={"Name": child(name, "nat", az)},
                opts=pulumi.ResourceOptions(parent=self, provider=aws_provider, depends_on=[gateway]),
            )
            private = aws.ec2.Subnet(
                child(name, "private", az),
                vpc_id=vpc.id,
                cidr_block=layout.private[index],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": child(name, "private", az), "kubernetes.io/role/internal-elb": "1", **owned},
                opts=mine,
            )
            table = aws.ec2.RouteTable(
                child(name, "private", az, "routes"),
                vpc_id=vpc.id,
                tags={"Name": child(name, "private", az, "routes")},
                opts=mine,
            )
            aws.ec2.RouteTableAssociation(
                child(name, "private", az, "association"), subnet_id=private.id, route_table_id=table.id, opts=mine
            )
            private_routes.append(
                aws.ec2.Route(
                    child(name, "private", az, "routes", "default"),
                    route_table_id=table.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat.id,
                    opts=mine,
                )
            )
            private_subnets.append(private)
        return private_subnets, private_routes
