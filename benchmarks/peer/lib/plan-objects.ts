import * as fs from "fs";
import * as path from "path";
import * as blueprints from "@aws-quickstart/eks-blueprints";
import * as yaml from "js-yaml";
import { Construct } from "constructs";

type KubernetesObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

/**
 * The Kubernetes objects of one cluster that no add-on creates (the endpoints' Deployments, Services,
 * VirtualServices..., Karpenter's node pools and node class, the mesh's policies), one KubernetesManifest
 * each, read from the turnout plan being compared (`manifests/<cluster>/*.yaml`): the same objects as the
 * plan, as a CDK app would declare them. Istio's namespace is the Istio add-on's.
 */
export class PlanObjectsAddOn implements blueprints.ClusterAddOn {
  readonly id = "plan-objects";

  constructor(private readonly folder: string) {}

  async deploy(clusterInfo: blueprints.ClusterInfo): Promise<Construct> {
    const cluster = clusterInfo.cluster;
    const istio = await clusterInfo.getScheduledAddOn("IstioControlPlaneAddOn");
    const karpenter = await clusterInfo.getScheduledAddOn("KarpenterV1AddOn");
    const objects = fs
      .readdirSync(this.folder)
      .filter((file) => file.endsWith(".yaml"))
      .sort()
      .flatMap((file) => yaml.loadAll(fs.readFileSync(path.join(this.folder, file), "utf8")) as KubernetesObject[])
      .filter((object) => !(object.kind === "Namespace" && object.metadata.name === "istio-system"));
    const namespaces = new Map<string, Construct>();
    const scope = new Construct(cluster.stack, "plan-objects");
    for (const object of objects) {
      const id = [object.kind, object.metadata.namespace ?? "cluster", object.metadata.name].join("-");
      const manifest = cluster.addManifest(id, object);
      if (object.kind === "Namespace") {
        namespaces.set(object.metadata.name, manifest);
      } else if (object.metadata.namespace && namespaces.has(object.metadata.namespace)) {
        manifest.node.addDependency(namespaces.get(object.metadata.namespace)!);
      }
      if (istio && object.apiVersion.includes("istio.io")) {
        manifest.node.addDependency(istio);
      }
      if (karpenter && object.apiVersion.startsWith("karpenter.")) {
        manifest.node.addDependency(karpenter);
      }
      scope.node.addDependency(manifest);
    }
    return scope;
  }
}
