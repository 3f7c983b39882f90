import * as eks from "aws-cdk-lib/aws-eks";
import * as route53 from "aws-cdk-lib/aws-route53";
import { Construct } from "constructs";

export interface FailoverRecordProps {
  readonly cluster: eks.ICluster;
  readonly domain: string;
  readonly role: "PRIMARY" | "SECONDARY";
  readonly setIdentifier: string;
}

/** `*.<domain>` to this region's Istio ingress gateway, failing over on the gateway's readiness probe. */
export class FailoverRecord extends Construct {
  constructor(scope: Construct, id: string, props: FailoverRecordProps) {
    super(scope, id);
    const zone = route53.HostedZone.fromLookup(this, "Zone", { domainName: props.domain });
    const gateway = new eks.KubernetesObjectValue(this, "GatewayAddress", {
      cluster: props.cluster,
      objectType: "service",
      objectName: "istio-ingressgateway",
      objectNamespace: "istio-system",
      jsonPath: ".status.loadBalancer.ingress[0].hostname",
    });
    const health = new route53.CfnHealthCheck(this, "Health", {
      healthCheckConfig: {
        type: "HTTP",
        fullyQualifiedDomainName: gateway.value,
        port: 15021,
        resourcePath: "/healthz/ready",
        requestInterval: 10,
        failureThreshold: 3,
      },
      healthCheckTags: [{ key: "Name", value: `models-${props.setIdentifier}` }],
    });
    new route53.CfnRecordSet(this, "Record", {
      hostedZoneId: zone.hostedZoneId,
      name: `*.${props.domain}`,
      type: "CNAME",
      ttl: "60",
      resourceRecords: [gateway.value],
      setIdentifier: props.setIdentifier,
      failover: props.role,
      healthCheckId: health.attrHealthCheckId,
    });
  }
}
