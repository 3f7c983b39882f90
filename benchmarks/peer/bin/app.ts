#!/usr/bin/env node
/**
 * The closest AWS CDK EKS Blueprints app to turnout's prod-aws stack (environments/Pulumi.prod-aws.yaml):
 * the yardstick of benchmarks/peer_ratio.py, which times `cdk synth` of it against `turnout plan prod-aws`.
 *
 * Per region (us-east-1 primary, us-west-2 standby): a VPC, EKS 1.34 with KMS secrets encryption, control
 * plane logs, an API allowlist, a system managed node group, the platform admins' access entry; the VPC
 * CNI (network policies), AWS Load Balancer Controller, Karpenter (with interruption handling), metrics
 * server, Istio (base, CNI, istiod, ingress gateway) and NVIDIA device plugin add-ons; the Kubernetes
 * objects of the turnout plan being compared (endpoints, Karpenter's node pools and node class, the mesh's
 * policies); a Valkey replication group of one ElastiCache Global Datastore; a Route 53 failover record
 * with a health check on the region's ingress gateway. Offline: cdk.context.json answers the lookups.
 */
import * as path from "path";
import * as blueprints from "@aws-quickstart/eks-blueprints";
import * as cdk from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as eks from "aws-cdk-lib/aws-eks";
import * as elasticache from "aws-cdk-lib/aws-elasticache";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import { AUTH_SECRET, RegionalCache } from "../lib/cache";
import { PlanObjectsAddOn } from "../lib/plan-objects";
import { FailoverRecord } from "../lib/failover-dns";
import { NvidiaDevicePluginAddOn } from "../lib/nvidia-device-plugin";

const ACCOUNT = "123456789012";
const REGIONS = ["us-east-1", "us-west-2"];
const DOMAIN = "models.acme.example";
const ISTIO = "1.30.4";
const API_ACCESS_CIDRS = ["198.51.100.0/24", "203.0.113.0/24"];
const ADMINS_ROLE = "arn:aws:iam::123456789012:role/platform-admins";

function clusterProvider(): blueprints.GenericClusterProvider {
  return new blueprints.GenericClusterProvider({
    version: eks.KubernetesVersion.V1_34,
    endpointAccess: eks.EndpointAccess.PUBLIC_AND_PRIVATE.onlyFrom(...API_ACCESS_CIDRS),
    authenticationMode: eks.AuthenticationMode.API_AND_CONFIG_MAP, // Blueprints' Karpenter maps its node role in aws-auth
    managedNodeGroups: [
      {
        id: "general",
        nodegroupName: "general",
        instanceTypes: [new ec2.InstanceType("m6i.xlarge")],
        amiType: eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
        minSize: 2,
        desiredSize: 2,
        maxSize: 2, // the system pool: Karpenter's node pools (from the plan) scale the rest
        labels: { "turnout.dev/pool": "general" },
      },
    ],
  });
}

function addOns(manifests: string, cluster: string): blueprints.ClusterAddOn[] {
  return [
    new blueprints.addons.VpcCniAddOn({ version: "v1.20.4-eksbuild.2", enableNetworkPolicy: true }),
    new blueprints.addons.AwsLoadBalancerControllerAddOn({
      version: "1.13.4",
      createIngressClassResource: false,
      enableServiceMutatorWebhook: true,
      values: { replicaCount: 2, podDisruptionBudget: { maxUnavailable: 1 } },
    }),
    new blueprints.addons.KarpenterV1AddOn({ version: "1.14.1", interruptionHandling: true }),
    new blueprints.addons.MetricsServerAddOn({ version: "3.13.1" }),
    new blueprints.addons.IstioBaseAddOn({ version: ISTIO }),
    new blueprints.addons.IstioControlPlaneAddOn({
      version: ISTIO,
      values: {
        meshConfig: { accessLogFile: "/dev/stdout", outboundTrafficPolicy: { mode: "REGISTRY_ONLY" } },
        pilot: { autoscaleMin: 2, replicaCount: 2 },
      } as never,
    }),
    new blueprints.addons.IstioCniAddon({ version: ISTIO }),
    new blueprints.addons.IstioIngressGatewayAddon({
      version: ISTIO,
      values: {
        autoscaling: { minReplicas: 2 },
        service: {
          type: "LoadBalancer",
          externalTrafficPolicy: "Local",
          annotations: {
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
          },
        },
      },
    }),
    new NvidiaDevicePluginAddOn(),
    new PlanObjectsAddOn(path.join(manifests, cluster)),
  ];
}

async function main(): Promise<void> {
  const app = new cdk.App();
  const manifests = path.resolve(__dirname, "..", "..", app.node.tryGetContext("manifests") as string);
  const stacks: blueprints.EksBlueprint[] = [];
  for (const region of REGIONS) {
    const name = `prod-aws-${region}`;
    const stack = await blueprints.EksBlueprint.builder()
      .account(ACCOUNT)
      .region(region)
      .version(eks.KubernetesVersion.V1_34)
      .resourceProvider(blueprints.GlobalResources.Vpc, new blueprints.VpcProvider(undefined, { primaryCidr: "10.0.0.0/16" }))
      .clusterProvider(clusterProvider())
      .enableControlPlaneLogTypes(
        blueprints.ControlPlaneLogType.API,
        blueprints.ControlPlaneLogType.AUDIT,
        blueprints.ControlPlaneLogType.AUTHENTICATOR,
        blueprints.ControlPlaneLogType.CONTROLLER_MANAGER,
        blueprints.ControlPlaneLogType.SCHEDULER,
      )
      .useDefaultSecretEncryption(true)
      .addOns(...addOns(manifests, name))
      .buildAsync(app, name, { crossRegionReferences: true });
    (stack.getClusterInfo().cluster as eks.Cluster).grantAccess("platform-admins", ADMINS_ROLE, [
      eks.AccessPolicy.fromAccessPolicyName("AmazonEKSClusterAdminPolicy", { accessScopeType: eks.AccessScopeType.CLUSTER }),
    ]);
    stacks.push(stack);
  }

  const [primary, standby] = stacks;
  new secretsmanager.Secret(primary, "CacheAuth", {
    secretName: AUTH_SECRET,
    generateSecretString: { excludePunctuation: true, passwordLength: 32 },
    replicaRegions: [{ region: REGIONS[1] }],
  });
  const primaryCache = new RegionalCache(primary, "Cache", {
    cluster: primary.getClusterInfo().cluster,
    vpc: primary.getClusterInfo().cluster.vpc,
    name: `prod-aws-cache-${REGIONS[0]}`,
  });
  const global = new elasticache.CfnGlobalReplicationGroup(primary, "CacheGlobal", {
    globalReplicationGroupIdSuffix: "prod-aws-cache",
    globalReplicationGroupDescription: "cache prod-aws-cache",
    members: [{ replicationGroupId: primaryCache.replicationGroup.ref, replicationGroupRegion: REGIONS[0], role: "PRIMARY" }],
  });
  new RegionalCache(standby, "Cache", {
    cluster: standby.getClusterInfo().cluster,
    vpc: standby.getClusterInfo().cluster.vpc,
    name: `prod-aws-cache-${REGIONS[1]}`,
    globalReplicationGroupId: global.attrGlobalReplicationGroupId,
  });
  standby.addDependency(primary);

  stacks.forEach((stack, index) => {
    new FailoverRecord(stack, "Dns", {
      cluster: stack.getClusterInfo().cluster,
      domain: DOMAIN,
      role: index === 0 ? "PRIMARY" : "SECONDARY",
      setIdentifier: stack.stackName,
    });
  });
  app.synth();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
