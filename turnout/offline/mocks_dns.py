"""Global traffic routing's answers for offline plans: hosted zones, load balancers found by tag, health
checks, Traffic Manager profiles, and the address each cloud's load balancer gives the Istio ingress
gateway Service. Everything is derived from names with `stable_hash`, never random.

Registered before the per-cloud modules: for the types it owns it starts from that cloud's answer and
adds what the provider computes; it answers None for everything else.
"""

from __future__ import annotations

import copy

import yaml

from turnout.offline import mocks_aws, mocks_azure, mocks_gcp
from turnout.offline.mocks import stable_hash

GATEWAY_SERVICE = "istio-system/istio-ingressgateway"
SERVICE = "kubernetes:core/v1:Service"

GET_ZONE = "aws:route53/getZone:getZone"
GET_LOAD_BALANCER = "aws:lb/getLoadBalancer:getLoadBalancer"
GET_TARGET_GROUP = "aws:lb/getTargetGroup:getTargetGroup"
GET_MANAGED_ZONE = "gcp:dns/getManagedZone:getManagedZone"
CLUSTER_TAG = "elbv2.k8s.aws/cluster"
RESOURCE_TAG = "service.k8s.aws/resource"

# The kubeconfig credential command says which cloud a cluster (and so its load balancer) is on.
CLOUD_BY_COMMAND = {"aws": "aws", "gke-gcloud-auth-plugin": "gcp", "kubelogin": "azure"}


def nlb_name(cluster: str) -> str:
    """The name the AWS Load Balancer Controller gives the gateway's NLB: `k8s-<ns>-<svc>-<hash>`, 32 characters."""
    return f"k8s-istiosys-istioing-{stable_hash('nlb', cluster, length=10)}"


def nlb_hostname(cluster: str, region: str) -> str:
    return f"{nlb_name(cluster)}-{stable_hash('nlb-id', cluster, length=16)}.elb.{region}.amazonaws.com"


def _octets(*parts: str) -> str:
    digest = int(stable_hash(*parts, length=6), 16)
    return f"{digest >> 16 & 0xFF}.{digest >> 8 & 0xFF}.{digest % 254 + 1}"


def load_balancer_ingress(cloud: str, cluster: str, region: str) -> dict:
    """What each cloud writes into the gateway Service's status: an NLB hostname on AWS, a public IP elsewhere."""
    if cloud == "aws":
        return {"hostname": nlb_hostname(cluster, region)}
    first_octet = {"gcp": 34, "azure": 20}[cloud]
    return {"ip": f"{first_octet}.{_octets(cloud, cluster)}"}


def _kubeconfig_cluster(provider_inputs: dict) -> tuple[str, str, str] | None:
    """(cloud, cluster, region) of the cluster a Kubernetes provider's kubeconfig points at; None for kind."""
    kubeconfig = provider_inputs.get("kubeconfig")
    if isinstance(kubeconfig, dict):  # a secret, as the mock monitor hands it over
        kubeconfig = kubeconfig.get("value")
    if not isinstance(kubeconfig, str):
        return None
    document = yaml.safe_load(kubeconfig) or {}
    users = document.get("users") or [{}]
    credential = ((users[0] or {}).get("user") or {}).get("exec") or {}
    cloud = CLOUD_BY_COMMAND.get(credential.get("command", ""))
    if cloud is None:
        return None
    arguments = list(credential.get("args") or [])
    cluster = document.get("current-context", "")
    region = ""
    if cloud == "aws":
        cluster = arguments[arguments.index("--cluster-name") + 1] if "--cluster-name" in arguments else cluster
        region = arguments[arguments.index("--region") + 1] if "--region" in arguments else mocks_aws.DEFAULT_REGION
    return cloud, cluster, region


def read_outputs(type_: str, resource_id: str, provider_inputs: dict) -> dict | None:
    """The live state of a resource the program reads (`Resource.get`); None for reads that are not mine."""
    if type_ != SERVICE or resource_id != GATEWAY_SERVICE:
        return None
    located = _kubeconfig_cluster(provider_inputs)
    if located is None:
        return None
    cloud, cluster, region = located
    namespace, name = resource_id.split("/")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "{}-{}-{}-{}-{}".format(
                *(stable_hash(cluster, resource_id, str(i), length=n) for i, n in enumerate((8, 4, 4, 4, 12)))
            ),
            "resourceVersion": "1",
        },
        "spec": {
            "type": "LoadBalancer",
            "ports": [
                {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
                {"name": "http2", "port": 80, "targetPort": 80, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 443, "protocol": "TCP"},
            ],
        },
        "status": {"loadBalancer": {"ingress": [load_balancer_ingress(cloud, cluster, region)]}},
    }


def _traffic_manager(type_: str, name: str, inputs: dict, base: dict) -> dict:
    state = copy.deepcopy(base)
    group = inputs.get("resourceGroupName", "")
    if type_ == "azure-native:trafficmanager:Profile":
        profile = inputs.get("profileName") or name
        state["name"] = profile
        state["id"] = f"{mocks_azure.group_id(group)}/providers/Microsoft.Network/trafficManagerProfiles/{profile}"
        state["type"] = "Microsoft.Network/trafficManagerProfiles"
        dns = dict(inputs.get("dnsConfig") or {})
        dns["fqdn"] = f"{dns.get('relativeName', profile)}.trafficmanager.net"
        state["dnsConfig"] = dns
        state["monitorConfig"] = {**(inputs.get("monitorConfig") or {}), "profileMonitorStatus": "Online"}
    else:
        endpoint = inputs.get("endpointName") or name
        kind = inputs.get("endpointType", "ExternalEndpoints")
        profile_id = f"{mocks_azure.group_id(group)}/providers/Microsoft.Network/trafficManagerProfiles"
        state["name"] = endpoint
        state["id"] = f"{profile_id}/{inputs.get('profileName')}/{kind}/{endpoint}"
        state["type"] = f"Microsoft.Network/trafficManagerProfiles/{kind[:1].lower()}{kind[1:]}"
        state["endpointMonitorStatus"] = "Online" if inputs.get("endpointStatus") != "Disabled" else "Disabled"
    state.pop("provisioningState", None)
    return state


def resource_outputs(type_: str, name: str, inputs: dict) -> dict | None:
    """Outputs of the global-routing types, on top of their cloud's answer; None for any other type."""
    if type_ == "aws:route53/healthCheck:HealthCheck":
        base = mocks_aws.resource_outputs(type_, name, inputs) or {}
        check_id = "{}-{}-{}-{}-{}".format(
            *(stable_hash(name, str(i), length=n) for i, n in enumerate((8, 4, 4, 4, 12)))
        )
        return {**base, "arn": f"arn:aws:route53:::healthcheck/{check_id}"}
    if type_ == "aws:route53/record:Record":
        base = mocks_aws.resource_outputs(type_, name, inputs) or {}
        return {**base, "fqdn": inputs.get("name", "")}
    if type_ == "gcp:compute/healthCheck:HealthCheck":
        base = mocks_gcp.resource_outputs(type_, name, inputs) or {}
        project = inputs.get("project") or mocks_gcp.OFFLINE_PROJECT
        path = f"projects/{project}/global/healthChecks/{inputs.get('name') or name}"
        kind = "HTTP" if "httpHealthCheck" in inputs else "TCP"
        return {**base, "selfLink": f"{mocks_gcp.COMPUTE}/{path}", "type": kind, "project": project}
    if type_ in ("azure-native:trafficmanager:Profile", "azure-native:trafficmanager:Endpoint"):
        return _traffic_manager(type_, name, inputs, mocks_azure.resource_outputs(type_, name, inputs) or {})
    return None


def _zone_id(*parts: str) -> str:
    return "Z" + stable_hash("route53", *parts, length=20).upper()


def invoke(token: str, args: dict) -> dict | None:
    """Hosted zones and the load balancers the controller tagged; None for any other function."""
    if token == GET_ZONE:
        domain = str(args.get("name", "")).rstrip(".")
        private = bool(args.get("privateZone"))
        zone = _zone_id(domain, str(private))
        servers = [] if private else [f"ns-{n}.awsdns-{n:02d}.org" for n in range(1, 5)]
        return {
            "id": zone,
            "zoneId": zone,
            "name": domain,
            "privateZone": private,
            "arn": f"arn:aws:route53:::hostedzone/{zone}",
            "nameServers": servers,
            "primaryNameServer": servers[0] if servers else "",
            "callerReference": stable_hash("caller", domain),
            "comment": "",
            "resourceRecordSetCount": 2,
            "tags": {},
        }
    if token in (GET_LOAD_BALANCER, GET_TARGET_GROUP):
        tags = dict(args.get("tags") or {})
        cluster = tags.get(CLUSTER_TAG, "cluster")
        region = args.get("region") or mocks_aws.DEFAULT_REGION
        prefix = f"arn:aws:elasticloadbalancing:{region}:{mocks_aws.ACCOUNT_ID}"
        if token == GET_LOAD_BALANCER:
            suffix = f"net/{nlb_name(cluster)}/{stable_hash('nlb-id', cluster, length=16)}"
            return {
                "arn": f"{prefix}:loadbalancer/{suffix}",
                "arnSuffix": suffix,
                "id": f"{prefix}:loadbalancer/{suffix}",
                "name": nlb_name(cluster),
                "dnsName": nlb_hostname(cluster, region),
                "zoneId": _zone_id("nlb", region),
                "loadBalancerType": "network",
                "internal": True,
                "region": region,
                "tags": tags,
            }
        resource = tags.get(RESOURCE_TAG, "")
        port = int(resource.rsplit(":", 1)[1]) if ":" in resource else 443
        suffix = f"targetgroup/{nlb_name(cluster)}/{stable_hash('tg', cluster, str(port), length=16)}"
        return {
            "arn": f"{prefix}:{suffix}",
            "arnSuffix": suffix,
            "id": f"{prefix}:{suffix}",
            "name": nlb_name(cluster),
            "port": port,
            "protocol": "TCP",
            "targetType": "ip",
            "region": region,
            "tags": tags,
        }
    if token == GET_MANAGED_ZONE:
        zone = args.get("name", "")
        project = args.get("project") or mocks_gcp.OFFLINE_PROJECT
        return {
            "id": f"projects/{project}/managedZones/{zone}",
            "name": zone,
            "dnsName": zone.replace("-", ".") + ".",
            "visibility": "public",
            "managedZoneId": str(int(stable_hash("managed-zone", zone, length=12), 16)),
            "nameServers": [f"ns-cloud-a{n}.googledomains.com." for n in range(1, 5)],
            "project": project,
            "description": "",
        }
    return None
