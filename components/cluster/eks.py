"""An EKS cluster in one region: its own VPC, KMS-encrypted secrets, IRSA, a managed node group per pool and
the AWS Load Balancer Controller."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from components.cluster import ClusterArgs
from components.cluster.aws_lb_controller import AwsLoadBalancerController, AwsLoadBalancerControllerArgs
from components.cluster.gpu import NvidiaDevicePlugin, has_gpu_pools
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
# Private subnets are large because the VPC CNI gives every pod a VPC address; public ones hold only NATs and LBs.
VPC_CIDR = "10.0.0.0/16"
PRIVATE_CIDRS = ("10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19")
PUBLIC_CIDRS = ("10.0.96.0/24", "10.0.97.0/24", "10.0.98.0/24")


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


def eks_kubeconfig(cluster_name: str, region: str, endpoint: str, ca_data: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (short-lived IAM tokens, no stored credentials)."""
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
                        "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
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
    region: str
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    oidc_issuer: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    """The cluster's VPC, for services that live beside it (caches)."""
    private_subnet_ids: list[pulumi.Output[str]]
    """The private subnets (one per AZ) the nodes run in."""
    cluster_security_group_id: pulumi.Output[str]
    """The security group EKS attaches to the control plane and managed nodes (and so to pods)."""
    load_balancer_controller: AwsLoadBalancerController
    """The AWS Load Balancer Controller, which gives LoadBalancer Services (the Istio gateway's) their NLB."""

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cluster:EksCluster", name, None, opts)
        self.name = args.cluster_name
        self.region = args.region
        pools = [node_group_settings(pool, index) for index, pool in enumerate(args.node_pools)]

        # One explicit provider per cluster: the region comes from the stack, never from ambient AWS config.
        aws_provider = aws.Provider(
            child(name, "aws"),
            region=args.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags={"turnout.dev/cluster": args.cluster_name}),
            opts=pulumi.ResourceOptions(parent=self),
        )
        mine = pulumi.ResourceOptions(parent=self, provider=aws_provider)

        private_subnets, private_routes = self._network(name, args, mine, aws_provider)
        self.private_subnet_ids = [subnet.id for subnet in private_subnets]
        key = aws.kms.Key(
            child(name, "secrets-key"),
            description=f"EKS secrets envelope encryption for {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=mine,
        )
        cluster_role, cluster_grants = _service_role(
            child(name, "cluster-role"),
            child(args.cluster_name, "cluster"),
            "eks.amazonaws.com",
            CLUSTER_POLICIES,
            mine,
        )
        # The managed cluster policy has no KMS rights; the control plane needs these to use the secrets key.
        cluster_grants.append(
            aws.iam.RolePolicy(
                child(name, "cluster-role", "secrets-key"),
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

        public_api = bool(args.api_access_cidrs)
        cluster = aws.eks.Cluster(
            child(name, "eks"),
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=[subnet.id for subnet in private_subnets],
                endpoint_private_access=True,
                # EKS makes the endpoint public (to 0.0.0.0/0) unless told otherwise: say so explicitly.
                endpoint_public_access=public_api,
                public_access_cidrs=list(args.api_access_cidrs) if public_api else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn), resources=["secrets"]
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            # Access entries only (no aws-auth ConfigMap); the creator is admin so the stack can deploy into it.
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=aws_provider, depends_on=cluster_grants),
        )

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
            child(name, "node-role"), child(args.cluster_name, "node"), "ec2.amazonaws.com", NODE_POLICIES, mine
        )
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
                    min_size=pool.min, max_size=pool.max, desired_size=pool.min
                ),
                labels=settings.labels,
                taints=[aws.eks.NodeGroupTaintArgs(**taint) for taint in settings.taints] or None,
                update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=aws_provider,
                    # Nodes need their policies and a NAT route to join; the autoscaler owns the desired size.
                    depends_on=[*node_grants, *private_routes],
                    ignore_changes=["scalingConfig.desiredSize"],
                ),
            )
            for pool, settings in zip(args.node_pools, pools, strict=True)
        ]

        kubeconfig = pulumi.Output.all(cluster.endpoint, cluster.certificate_authority.data).apply(
            lambda values: eks_kubeconfig(args.cluster_name, args.region, values[0], values[1])
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        # The load balancer controller installs through a provider of its own, usable once nodes exist.
        addons_provider = k8s.Provider(
            child(name, "k8s-addons"),
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_groups),
        )
        self.load_balancer_controller = AwsLoadBalancerController(
            child(name, "lb-controller"),
            AwsLoadBalancerControllerArgs(
                cluster_name=args.cluster_name,
                region=args.region,
                vpc_id=self.vpc_id,
                oidc_provider_arn=self.oidc_provider_arn,
                oidc_issuer=self.oidc_issuer,
            ),
            pulumi.ResourceOptions(parent=self, providers=[aws_provider, addons_provider]),
        )
        # Usable only once nodes and the load balancer controller exist: everything deployed through this
        # provider waits for them, so the gateway's Service is created after the controller's webhook, which
        # sets its (immutable) load balancer class, and on destroy the controller is deleted after that Service.
        self.provider = k8s.Provider(
            child(name, "k8s"),
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*node_groups, *self.load_balancer_controller.ready]),
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
            }
        )

    def _network(
        self, name: str, args: ClusterArgs, mine: pulumi.ResourceOptions, aws_provider: aws.Provider
    ) -> tuple[list[aws.ec2.Subnet], list[aws.ec2.Route]]:
        """A VPC over the region's first three AZs: public subnets for NATs and load balancers, private ones for
        the control plane's interfaces and the nodes. One NAT gateway per AZ, so losing an AZ never cuts the
        others' egress (it costs two more gateways than a shared one)."""
        zones = aws.get_availability_zones_output(
            state="available",
            # The provider already sets the region; passing it too lets offline plans answer for the right region.
            region=args.region,
            opts=pulumi.InvokeOutputOptions(provider=aws_provider, parent=self),
        )
        owned = {f"kubernetes.io/cluster/{args.cluster_name}": "owned"}
        vpc = aws.ec2.Vpc(
            child(name, "vpc"),
            cidr_block=VPC_CIDR,
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
                cidr_block=PUBLIC_CIDRS[index],
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
                cidr_block=PRIVATE_CIDRS[index],
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
