"""`endpoints.NAME.egress`: named hosts outside the mesh become ServiceEntries of the endpoint's namespace, as
Istio admits them (exact hosts resolved by DNS, wildcard ones passed through), so pods reach them under the
mesh's REGISTRY_ONLY policy; hosts are checked as Istio checks them, and nothing beneath the mesh blocks them."""

from __future__ import annotations

import pytest

from components.endpoint.egress import service_entries
from tests.conftest import CRDS, dependency_closure, load
from tests.crd_schema import load_crds, validate_custom_resource
from tests.test_mesh import plan_records
from turnout.errors import ConfigError

SERVICE_ENTRY = "kubernetes:networking.istio.io/v1:ServiceEntry"
OBJECT_STORES = [
    "s3.us-east-1.amazonaws.com",  # model weights on S3
    "storage.googleapis.com",  # on GCS
    "*.blob.core.windows.net",  # on Azure Blob storage (an account per host)
    "feast.example.com:6566",  # a feature store's TLS port
]


def with_egress(config: dict, hosts, backend: str = "istio") -> dict:
    endpoint = config["endpoints"]["fraud-score"]
    endpoint["egress"] = hosts
    endpoint["backend"] = backend
    if backend == "knative":
        endpoint["strategy"] = {"type": "rolling", "version": "v1"}
    return config


# --- configuration ----------------------------------------------------------------------------------------


def test_hosts_are_normalized_to_host_and_port(config):
    endpoint = load(with_egress(config, [*OBJECT_STORES, "S3.EU-WEST-1.AMAZONAWS.COM:443"])).endpoints["fraud-score"]
    assert endpoint.egress == (
        "s3.us-east-1.amazonaws.com:443",
        "storage.googleapis.com:443",
        "*.blob.core.windows.net:443",
        "feast.example.com:6566",
        "s3.eu-west-1.amazonaws.com:443",
    )


@pytest.mark.parametrize(
    "host",
    [
        "*",  # Istio refuses a ServiceEntry for every host
        "*.com:443:1",
        "s3.*.amazonaws.com",  # a wildcard only as the whole first label
        "*s3.amazonaws.com",  # a partial wildcard
        "localhost",  # a short name: a Service of the cluster, not an external host
        "s3.amazonaws.com:0",
        "s3.amazonaws.com:65536",
        "https://s3.amazonaws.com",
        "10.0.0.1",
        "bucket_1.s3.amazonaws.com",
        42,
    ],
)
def test_hosts_istio_would_refuse_are_exit_2_naming_the_entry(config, host):
    with pytest.raises(ConfigError) as error:
        load(with_egress(config, ["storage.googleapis.com", host]))
    assert error.value.path == "turnout:endpoints.fraud-score.egress[1]"


def test_a_host_listed_twice_is_refused(config):
    with pytest.raises(ConfigError) as error:
        load(with_egress(config, ["storage.googleapis.com", "storage.googleapis.com:443"]))
    assert error.value.path == "turnout:endpoints.fraud-score.egress[1]"
    assert "listed twice" in str(error.value)


def test_egress_must_be_a_list(config):
    with pytest.raises(ConfigError) as error:
        load(with_egress(config, "storage.googleapis.com"))
    assert error.value.path == "turnout:endpoints.fraud-score.egress"


# --- ServiceEntries ---------------------------------------------------------------------------------------


def test_hosts_are_grouped_by_port_and_by_how_istio_resolves_them():
    entries = service_entries(
        ("s3.us-east-1.amazonaws.com:443", "*.blob.core.windows.net:443", "feast.example.com:6566", "a.example.com:443")
    )
    assert {name: (spec["hosts"], spec["resolution"]) for name, spec in entries.items()} == {
        "turnout-egress-443": (["s3.us-east-1.amazonaws.com", "a.example.com"], "DNS"),
        "turnout-egress-443-wildcard": (["*.blob.core.windows.net"], "NONE"),
        "turnout-egress-6566": (["feast.example.com"], "DNS"),
    }
    for spec in entries.values():
        (port,) = spec["ports"]
        assert port["protocol"] == "TLS" and port["name"] == f"tls-{port['number']}"
        assert spec["location"] == "MESH_EXTERNAL" and spec["exportTo"] == ["."]
        # Istio's validation: resolution DNS without endpoints takes fully qualified hosts only.
        if spec["resolution"] == "DNS":
            assert not [h for h in spec["hosts"] if "*" in h]


@pytest.mark.parametrize("backend", ["istio", "knative"])
def test_service_entries_in_the_endpoint_namespace_before_its_pods(config, backend):
    records, run = plan_records(with_egress(config, OBJECT_STORES, backend), "lab")
    entries = {r.inputs["metadata"]["name"]: r for r in records.values() if r.type == SERVICE_ENTRY}
    assert sorted(entries) == ["turnout-egress-443", "turnout-egress-443-wildcard", "turnout-egress-6566"]
    crds = load_crds(CRDS)
    for entry in entries.values():
        assert entry.inputs["metadata"]["namespace"] == "fraud-score"
        assert entry.inputs["metadata"]["labels"]["turnout.dev/endpoint"] == "fraud-score"
        document = {key: entry.inputs[key] for key in ("apiVersion", "kind", "metadata", "spec")}
        assert validate_custom_resource(document, crds) == []
    # A model that fetches its weights as it starts needs its hosts registered first.
    by_urn = {r.urn: r for r in run.records}
    pods = [
        r
        for r in records.values()
        if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:serving.knative.dev/v1:Configuration")
    ]
    assert pods
    for pod in pods:
        assert {e.urn for e in entries.values()} <= dependency_closure(by_urn, pod.urn), pod.name


def test_registry_only_is_why_and_nothing_beneath_the_mesh_blocks_the_hosts(config):
    records, _ = plan_records(with_egress(config, OBJECT_STORES), "lab")
    (istiod,) = [r for r in records.values() if r.type.endswith("Release") and r.inputs["chart"] == "istiod"]
    assert istiod.inputs["values"]["meshConfig"]["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    policies = [
        r.inputs
        for r in records.values()
        if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy"
        and r.inputs["metadata"]["namespace"] == "fraud-score"
    ]
    assert policies
    for policy in policies:  # an Egress policy would have to allow the hosts' ports too
        assert "Egress" not in policy["spec"]["policyTypes"]
    authorizations = [
        r.inputs["spec"]
        for r in records.values()
        if r.type.endswith(":AuthorizationPolicy") and r.inputs["metadata"]["namespace"] == "fraud-score"
    ]
    for spec in authorizations:  # they judge requests coming in: a `to` naming external hosts would be egress
        assert not [rule for rule in spec.get("rules", []) if "hosts" in str(rule.get("to", ""))]


def test_no_egress_no_service_entries(config):
    records, _ = plan_records(config, "lab")
    assert not [r for r in records.values() if r.type == SERVICE_ENTRY]
