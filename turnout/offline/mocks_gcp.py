"""Google Cloud's answers for offline plans: the inputs back, plus the outputs GCP computes, in the
provider's camelCase wire names, derived from the resource's type and name (never random); and
pulumi-random's RandomId, which GCP names carry as a suffix, derived from its name likewise."""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress

from turnout.offline.mocks import OFFLINE_CA_PEM, stable_hash

OFFLINE_PROJECT = "turnout-offline"
OFFLINE_PROJECT_NUMBER = "123456789012"
OFFLINE_REGION = "us-central1"
COMPUTE = "https://www.googleapis.com/compute/v1"
CONTAINER = "https://container.googleapis.com/v1"
# pulumi-random's ids suffix GCP names that must change when a stack is recreated (Cloud KMS key rings).
RANDOM_ID = "random:index/randomId:RandomId"


def _octets(*parts: str) -> tuple[int, int, int]:
    digest = int(stable_hash(*parts, length=6), 16)
    return digest >> 16 & 0xFF, digest >> 8 & 0xFF, digest % 254 + 1


def _cluster(name: str, physical: str, state: dict, project: str) -> dict:
    location = state.get("location") or OFFLINE_REGION
    a, b, c = _octets("gcp:container/cluster", name)
    config = state.setdefault("privateClusterConfig", {})
    control_plane = config.get("masterIpv4CidrBlock")
    private = str(ipaddress.ip_network(control_plane).network_address + 2) if control_plane else f"10.{a}.{b}.2"
    endpoints = state.setdefault("controlPlaneEndpointsConfig", {})
    ip_enabled = (endpoints.get("ipEndpointsConfig") or {}).get("enabled", True)
    private_endpoint = config.get("enablePrivateEndpoint", False)
    public = "" if private_endpoint or not ip_enabled else f"34.{a}.{b}.{c}"
    dns_endpoint = f"gke-{stable_hash('dns-endpoint', name, length=32)}-{OFFLINE_PROJECT_NUMBER}.{location}.gke.goog"
    endpoints["dnsEndpointConfig"] = {**(endpoints.get("dnsEndpointConfig") or {}), "endpoint": dns_endpoint}
    config.update(privateEndpoint=private, publicEndpoint=public)
    path = f"projects/{project}/locations/{location}/clusters/{physical}"
    return {
        **state,
        "id": path,
        "selfLink": f"{CONTAINER}/{path}",
        # With no IP endpoint, GKE reports the DNS endpoint here.
        "endpoint": (public or private) if ip_enabled else dns_endpoint,
        "masterAuth": {
            "clusterCaCertificate": base64.b64encode(OFFLINE_CA_PEM.encode()).decode(),
            "clientCertificateConfig": {"issueClientCertificate": False},
        },
        "masterVersion": f"{state.get('minMasterVersion', '1.34')}.1-gke.100",
        "labelFingerprint": stable_hash("labels", name),
    }


def _random_id(name: str, inputs: dict) -> dict:
    """pulumi-random's RandomId: bytes derived from the resource's name, in each of its encodings."""
    raw = hashlib.sha256(f"random-id/{name}".encode()).digest()[: int(inputs.get("byteLength") or 8)]
    prefix = inputs.get("prefix") or ""
    b64_url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {
        **inputs,
        "hex": prefix + raw.hex(),
        "b64Url": prefix + b64_url,
        "b64Std": prefix + base64.b64encode(raw).decode(),
        "dec": prefix + str(int.from_bytes(raw, "big")),
        "id": b64_url,
    }


def resource_outputs(type_: str, name: str, inputs: dict) -> dict | None:
    if type_ == RANDOM_ID:
        return _random_id(name, inputs)
    if not type_.startswith("gcp:"):
        return None
    state = copy.deepcopy(inputs)
    physical = state.get("name") or name
    project = state.get("project") or OFFLINE_PROJECT
    region = state.get("region") or OFFLINE_REGION
    if type_ == "gcp:container/cluster:Cluster":
        return _cluster(name, physical, state, project)
    if type_ == "gcp:container/nodePool:NodePool":
        location = state.get("location") or region
        path = f"projects/{project}/locations/{location}/clusters/{state.get('cluster')}/nodePools/{physical}"
        return {**state, "id": path, "instanceGroupUrls": []}
    if type_ == "gcp:compute/network:Network":
        path = f"projects/{project}/global/networks/{physical}"
        return {**state, "id": path, "selfLink": f"{COMPUTE}/{path}", "numericId": str(int(stable_hash(path), 16))}
    if type_ == "gcp:compute/subnetwork:Subnetwork":
        path = f"projects/{project}/regions/{region}/subnetworks/{physical}"
        network_address = state.get("ipCidrRange", "10.0.0.0/20").split("/")[0]
        gateway = network_address.rsplit(".", 1)[0] + ".1"
        return {**state, "id": path, "selfLink": f"{COMPUTE}/{path}", "gatewayAddress": gateway}
    if type_ == "gcp:compute/firewall:Firewall":
        path = f"projects/{project}/global/firewalls/{physical}"
        return {**state, "id": path, "selfLink": f"{COMPUTE}/{path}", "creationTimestamp": "2026-01-01T00:00:00Z"}
    if type_ == "gcp:projects/service:Service":
        return {**state, "id": f"{project}/{state.get('service')}", "project": project}
    if type_ == "gcp:compute/router:Router":
        path = f"projects/{project}/regions/{region}/routers/{physical}"
        return {**state, "id": path, "selfLink": f"{COMPUTE}/{path}"}
    if type_ == "gcp:compute/routerNat:RouterNat":
        return {**state, "id": f"{project}/{region}/{state.get('router')}/{physical}"}
    if type_ == "gcp:kms/keyRing:KeyRing":
        return {**state, "id": f"projects/{project}/locations/{state.get('location')}/keyRings/{physical}"}
    if type_ == "gcp:kms/cryptoKey:CryptoKey":
        # `keyRing` is the ring's id; a crypto key's id extends it.
        return {**state, "id": f"{state.get('keyRing')}/cryptoKeys/{physical}"}
    if type_ == "gcp:serviceaccount/account:Account":
        email = f"{state.get('accountId', name)}@{project}.iam.gserviceaccount.com"
        return {
            **state,
            "id": f"projects/{project}/serviceAccounts/{email}",
            "name": f"projects/{project}/serviceAccounts/{email}",
            "email": email,
            "member": f"serviceAccount:{email}",
            "uniqueId": str(int(stable_hash(email, length=12), 16)),
        }
    return state


def invoke(token: str, args: dict) -> dict | None:
    if token == "gcp:organizations/getProject:getProject":
        project = args.get("projectId") or OFFLINE_PROJECT
        return {
            "projectId": project,
            "number": OFFLINE_PROJECT_NUMBER,
            "name": project,
            "id": f"projects/{project}",
        }
    return None
