import * as blueprints from "@aws-quickstart/eks-blueprints";
import { Construct } from "constructs";

/** NVIDIA's device plugin chart on the GPU nodes only (EKS Blueprints has the whole GPU Operator, not this). */
export class NvidiaDevicePluginAddOn extends blueprints.HelmAddOn {
  constructor() {
    super({
      name: "nvidia-device-plugin",
      namespace: "kube-system",
      chart: "nvidia-device-plugin",
      version: "0.18.2",
      release: "nvidia-device-plugin",
      repository: "https://nvidia.github.io/k8s-device-plugin",
    });
  }

  deploy(clusterInfo: blueprints.ClusterInfo): Promise<Construct> {
    const values = {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: "nvidia.com/gpu.present", operator: "In", values: ["true"] }] },
            ],
          },
        },
      },
      tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
    };
    return Promise.resolve(this.addHelmChart(clusterInfo, values));
  }
}
