"""Knative's public routes go through turnout's HTTPS Gateway, never net-istio's plain-HTTP one.

net-istio (knative-v1.23.0) ships `knative-serving/knative-ingress-gateway`: port 80, HTTP, every
host, on the `istio: ingressgateway` pods turnout exposes. Unless `config-istio` names another
external gateway, every Knative route binds to it and is served in cleartext."""

from __future__ import annotations

import re

import pytest
import yaml

from components.mesh.knative import DOMAIN_TEMPLATE, istio_config, shipped_gateway_spec
from tests.conftest import CRDS, REPO, dependency_closure
from tests.crd_schema import load_crds, validate_custom_resource

PREFIX = "lab-serving"
# Knative's default tag template (config-network `tag-template`), which turnout leaves alone.
DEFAULT_TAG_TEMPLATE = "{{.Tag}}-{{.Name}}"


def plan_records(config: dict):
    from tests.conftest import as_cli
    from turnout.offline.runtime import run_program

    raw = {f"turnout:{k}": v for k, v in as_cli(config).items()}
    run = run_program(REPO, "turnout", "lab", raw, [])
    return {r.name: r for r in run.records}, run


def knative_stack(config: dict, **knative) -> dict:
    """fraud-score (a v1/v2 canary) on Knative, on one kind cluster named `lab`."""
    config["platform"]["regions"] = ["lab"]
    config["endpoints"]["fraud-score"]["backend"] = "knative"
    if knative:
        config["platform"]["serving"] = {"knative": knative}
    return config


def execute(template: str, **fields: str) -> str:
    """A Go text/template made only of field references (`{{.Name}}`), executed as Knative does."""
    result = re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda match: fields[match.group(1)], template)
    assert "{{" not in result, f"{template!r} uses more than field references"
    return result


def one_label_wildcard_covers(pattern: str, host: str) -> bool:
    """`*.<domain>` as a TLS certificate reads it (RFC 6125): the star stands for exactly one label.

    Istio's Gateway hosts would also accept deeper names; the certificate would not."""
    if not pattern.startswith("*."):
        return pattern == host
    label, _, rest = host.partition(".")
    return bool(label) and "*" not in label and rest == pattern[2:]


@pytest.fixture(scope="module")
def planned():
    from tests.conftest import sample_config

    return plan_records(knative_stack(sample_config()))


def test_config_istio_names_turnouts_gateway_and_keeps_the_shipped_local_gateway(planned):
    records, _ = planned
    patch = records[f"{PREFIX}-knative-config-istio"]
    assert patch.type == "kubernetes:core/v1:ConfigMapPatch"
    assert patch.inputs["metadata"]["name"] == "config-istio"
    assert patch.inputs["metadata"]["namespace"] == "knative-serving"
    assert patch.inputs["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}
    data = patch.inputs["data"]
    assert yaml.safe_load(data["external-gateways"]) == [
        {
            "name": "turnout-gateway",
            "namespace": "istio-system",
            "service": "istio-ingressgateway.istio-system.svc.cluster.local",
        }
    ]
    assert yaml.safe_load(data["local-gateways"]) == [
        {
            "name": "knative-local-gateway",
            "namespace": "knative-serving",
            "service": "knative-local-gateway.istio-system.svc.cluster.local",
        }
    ]
    # The Gateway and the Service named are the ones turnout's Istio creates.
    gateway = records[f"{PREFIX}-istio-gateway-cr"].inputs["metadata"]
    release = records[f"{PREFIX}-istio-gateway"].inputs
    (external,) = yaml.safe_load(data["external-gateways"])
    assert (external["namespace"], external["name"]) == (gateway["namespace"], gateway["name"])
    assert external["service"] == f"{release['name']}.{release['namespace']}.svc.cluster.local"


def test_config_istio_is_what_net_istio_accepts():
    """net-istio refuses the YAML lists beside the older `gateway.<ns>.<name>` keys, and wants exactly
    one external and one local gateway without a labelSelector, each with name, namespace and service."""
    data = istio_config()
    assert set(data) == {"external-gateways", "local-gateways"}
    assert not [key for key in data if key.startswith(("gateway.", "local-gateway."))]
    dns_subdomain = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
    for key in ("external-gateways", "local-gateways"):
        gateways = yaml.safe_load(data[key])
        assert len([g for g in gateways if "labelSelector" not in g]) == 1, key
        for gateway in gateways:
            assert set(gateway) == {"name", "namespace", "service"}
            assert all(isinstance(v, str) and v for v in gateway.values())
            assert dns_subdomain.fullmatch(gateway["service"])


def test_config_istio_waits_for_net_istio_which_ships_it(planned):
    records, run = planned
    by_urn = {r.urn: r for r in run.records}
    net_istio = records[f"{PREFIX}-knative-net-istio"].urn
    assert net_istio in dependency_closure(by_urn, records[f"{PREFIX}-knative-config-istio"].urn)
    assert net_istio in dependency_closure(by_urn, records[f"{PREFIX}-knative-ingress-gateway-redirect"].urn)


def test_the_shipped_plain_http_gateway_only_redirects(planned):
    records, _ = planned
    patch = records[f"{PREFIX}-knative-ingress-gateway-redirect"]
    assert patch.type == "kubernetes:networking.istio.io/v1:GatewayPatch"
    metadata = patch.inputs["metadata"]
    assert (metadata["namespace"], metadata["name"]) == ("knative-serving", "knative-ingress-gateway")
    assert metadata["annotations"]["pulumi.com/patchForce"] == "true"
    assert metadata["annotations"]["turnout.dev/knative-release"] == "1.23.0"
    spec = patch.inputs["spec"]
    # The same pods as turnout's Gateway, and on them no server that answers in cleartext.
    assert spec["selector"] == records[f"{PREFIX}-istio-gateway-cr"].inputs["spec"]["selector"]
    assert spec["servers"], "an empty servers list would not replace the shipped one"
    for server in spec["servers"]:
        assert server["port"]["protocol"] == "HTTP"
        assert server["tls"] == {"httpsRedirect": True}
    document = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": metadata, "spec": spec}
    assert validate_custom_resource(document, load_crds(CRDS)) == []


def test_a_new_release_re_applies_the_redirect(config):
    records, _ = plan_records(knative_stack(config, install="always", version="1.23.1"))
    annotations = records[f"{PREFIX}-knative-ingress-gateway-redirect"].inputs["metadata"]["annotations"]
    assert annotations["turnout.dev/knative-release"] == "1.23.1"


def test_network_settings_keep_routes_on_turnouts_gateway(planned):
    records, _ = planned
    network = records[f"{PREFIX}-knative-config-network"].inputs["data"]
    assert network["domain-template"] == DOMAIN_TEMPLATE == "{{.Name}}.{{.Domain}}"
    # Redirected would bind routes to net-istio's per-route HTTP Gateways instead of turnout's.
    assert network["http-protocol"] == "Enabled"
    assert "tag-template" not in network


def test_knative_hosts_are_served_by_turnouts_gateway_and_certificate(planned):
    records, run = planned
    domain = "127.0.0.1.sslip.io"
    assert records[f"{PREFIX}-knative-config-domain"].inputs["data"] == {domain: ""}
    template = records[f"{PREFIX}-knative-config-network"].inputs["data"]["domain-template"]
    route = next(r.inputs for r in run.records if r.type == "kubernetes:serving.knative.dev/v1:Route")
    name, namespace = route["metadata"]["name"], route["metadata"]["namespace"]
    host = execute(template, Name=name, Namespace=namespace, Domain=domain)
    assert host == "fraud-score.127.0.0.1.sslip.io", "Knative hosts are <endpoint>.<domain>, like Istio endpoints'"
    tagged = [
        execute(
            template, Name=execute(DEFAULT_TAG_TEMPLATE, Tag=t["tag"], Name=name), Namespace=namespace, Domain=domain
        )
        for t in route["spec"]["traffic"]
    ]
    assert tagged == ["v1-fraud-score.127.0.0.1.sslip.io", "v2-fraud-score.127.0.0.1.sslip.io"]
    gateway = records[f"{PREFIX}-istio-gateway-cr"].inputs["spec"]
    https = next(s for s in gateway["servers"] if s["port"]["protocol"] == "HTTPS")
    openssl = records[f"{PREFIX}-tls-openssl"].inputs["create"]
    certificate_names = re.search(r"subjectAltName=([^\"']+)", openssl).group(1).replace("DNS:", "").split(",")
    for knative_host in (host, *tagged):
        assert any(one_label_wildcard_covers(pattern, knative_host) for pattern in https["hosts"]), knative_host
        assert any(one_label_wildcard_covers(pattern, knative_host) for pattern in certificate_names), knative_host


def test_the_default_template_would_escape_the_gateway():
    """Why the template drops the namespace: `<name>.<namespace>.<domain>` is two labels under the domain."""
    host = execute("{{.Name}}.{{.Namespace}}.{{.Domain}}", Name="fraud-score", Namespace="fraud-score", Domain="d.io")
    assert not one_label_wildcard_covers("*.d.io", host)
    assert one_label_wildcard_covers("*.d.io", execute(DOMAIN_TEMPLATE, Name="fraud-score", Domain="d.io"))


def test_redirect_spec_keeps_the_shipped_listener():
    """Port, name and hosts as net-istio ships them (config/202-gateway.yaml), so nothing else moves."""
    (server,) = shipped_gateway_spec()["servers"]
    assert server["port"] == {"number": 80, "name": "http", "protocol": "HTTP"}
    assert server["hosts"] == ["*"]
