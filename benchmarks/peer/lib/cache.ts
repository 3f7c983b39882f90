import * as cdk from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as elasticache from "aws-cdk-lib/aws-elasticache";
import * as kms from "aws-cdk-lib/aws-kms";
import * as eks from "aws-cdk-lib/aws-eks";
import { Construct } from "constructs";

export const AUTH_SECRET = "prod-aws-cache-auth";

export interface RegionalCacheProps {
  readonly cluster: eks.ICluster;
  readonly vpc: ec2.IVpc;
  readonly name: string;
  /** Absent: the primary; present: a secondary joining that Global Datastore. */
  readonly globalReplicationGroupId?: string;
}

/** One region's Valkey replication group: encrypted with its own key, reachable from its cluster only. */
export class RegionalCache extends Construct {
  readonly replicationGroup: elasticache.CfnReplicationGroup;

  constructor(scope: Construct, id: string, props: RegionalCacheProps) {
    super(scope, id);
    const region = cdk.Stack.of(this).region;
    const key = new kms.Key(this, "Key", {
      description: `ElastiCache ${props.name} encryption at rest`,
      enableKeyRotation: true,
      pendingWindow: cdk.Duration.days(30),
    });
    const subnets = new elasticache.CfnSubnetGroup(this, "Subnets", {
      cacheSubnetGroupName: props.name,
      description: `Private subnets of ${props.cluster.clusterName}`,
      subnetIds: props.vpc.privateSubnets.map((subnet) => subnet.subnetId),
    });
    const group = new ec2.SecurityGroup(this, "SecurityGroup", {
      vpc: props.vpc,
      securityGroupName: props.name,
      description: `ElastiCache ${props.name}: 6379 from the pods of the cluster only`,
      allowAllOutbound: false,
    });
    group.addIngressRule(
      ec2.Peer.securityGroupId(props.cluster.clusterSecurityGroupId),
      ec2.Port.tcp(6379),
      "Redis from the nodes and pods of the cluster",
    );
    const primary = props.globalReplicationGroupId === undefined;
    this.replicationGroup = new elasticache.CfnReplicationGroup(this, "Group", {
      replicationGroupId: props.name,
      replicationGroupDescription: `cache ${props.name} in ${region}`,
      ...(primary
        ? { engine: "valkey", engineVersion: "8.0", cacheNodeType: "cache.r7g.large" }
        : { globalReplicationGroupId: props.globalReplicationGroupId }),
      numCacheClusters: 3,
      multiAzEnabled: true,
      automaticFailoverEnabled: true,
      autoMinorVersionUpgrade: true,
      atRestEncryptionEnabled: true,
      kmsKeyId: key.keyArn,
      transitEncryptionEnabled: true,
      transitEncryptionMode: "required",
      authToken: cdk.SecretValue.secretsManager(AUTH_SECRET).unsafeUnwrap(),
      port: 6379,
      cacheSubnetGroupName: subnets.ref,
      securityGroupIds: [group.securityGroupId],
      snapshotRetentionLimit: 7,
      snapshotWindow: "03:00-05:00",
      preferredMaintenanceWindow: "sun:05:30-sun:07:00",
    });
    this.replicationGroup.addDependency(subnets);
    this.replicationGroup.applyRemovalPolicy(cdk.RemovalPolicy.SNAPSHOT); // a final snapshot on deletion
  }
}
