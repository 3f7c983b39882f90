"""The CRD validator accepts valid custom resources and reports schema violations and pruned fields."""

from __future__ import annotations

import copy

import pytest

from tests.conftest import CRDS
from tests.crd_schema import load_crds, validate_custom_resource


@pytest.fixture(scope="module")
def crds():
    return load_crds(CRDS)


def spec_schema(crds, api_version: str, kind: str) -> dict:
    return crds[(api_version, kind)]["properties"]["spec"]


# --- loading ---


def test_load_crds_indexes_every_served_version(crds):
    for version in ("v1", "v1beta1", "v1alpha3"):
        assert (f"networking.istio.io/{version}", "VirtualService") in crds
        assert (f"networking.istio.io/{version}", "Gateway") in crds
    for version in ("v1", "v1beta1"):
        assert (f"security.istio.io/{version}", "PeerAuthentication") in crds
        assert (f"security.istio.io/{version}", "AuthorizationPolicy") in crds
    assert ("security.istio.io/v1alpha3", "PeerAuthentication") not in crds
    assert ("serving.knative.dev/v1", "Service") in crds
    assert ("flagger.app/v1beta1", "Canary") in crds
    assert crds[("networking.istio.io/v1", "VirtualService")]["type"] == "object"


def test_load_crds_parses_once_per_folder(crds):
    assert load_crds(CRDS) is crds
    assert load_crds(CRDS / "." / ".." / "crds") is crds


# --- Istio VirtualService ---


def virtual_service(api_version: str = "networking.istio.io/v1") -> dict:
    return {
        "apiVersion": api_version,
        "kind": "VirtualService",
        "metadata": {"name": "echo", "namespace": "models", "labels": {"app.kubernetes.io/name": "echo"}},
        "spec": {
            "hosts": ["echo.models.svc.cluster.local"],
            "gateways": ["mesh"],
            "http": [
                {
                    "name": "primary",
                    "match": [{"headers": {"x-canary": {"exact": "always"}}}],
                    "route": [
                        {"destination": {"host": "echo", "subset": "stable", "port": {"number": 80}}, "weight": 90},
                        {"destination": {"host": "echo", "subset": "canary"}, "weight": 10},
                    ],
                    "timeout": "30s",
                    "retries": {"attempts": 3, "perTryTimeout": "10s"},
                }
            ],
        },
    }


@pytest.mark.parametrize("api_version", ["networking.istio.io/v1", "networking.istio.io/v1beta1"])
def test_valid_virtual_service_passes(crds, api_version):
    assert validate_custom_resource(virtual_service(api_version), crds) == []


def test_misspelled_field_is_reported_as_pruned(crds):
    vs = virtual_service()
    route = vs["spec"]["http"][0]["route"][0]
    route["wieght"] = route.pop("weight")
    assert validate_custom_resource(vs, crds) == ["spec.http[0].route[0].wieght: unknown field (would be pruned)"]


def test_string_weight_is_a_type_error(crds):
    weight = spec_schema(crds, "networking.istio.io/v1", "VirtualService")["properties"]["http"]["items"]
    weight = weight["properties"]["route"]["items"]["properties"]["weight"]
    assert weight["type"] == "integer"

    vs = virtual_service()
    vs["spec"]["http"][0]["route"][1]["weight"] = "ten"
    assert validate_custom_resource(vs, crds) == ["spec.http[0].route[1].weight: 'ten' is not of type 'integer'"]


def test_missing_required_field_is_reported(crds):
    vs = virtual_service()
    del vs["spec"]["http"][0]["route"][0]["destination"]["host"]
    assert validate_custom_resource(vs, crds) == ["spec.http[0].route[0].destination: 'host' is a required property"]


def test_string_match_takes_one_of_exact_prefix_regex(crds):
    vs = virtual_service()
    vs["spec"]["http"][0]["match"][0]["uri"] = {"exact": "/v1/predict", "prefix": "/v1"}
    problems = validate_custom_resource(vs, crds)
    assert len(problems) == 1
    assert problems[0].startswith("spec.http[0].match[0].uri: object is valid under each of ")


def test_unknown_fields_are_reported_at_every_level(crds):
    vs = virtual_service()
    vs["spec"]["http"][0]["route"][0]["destination"]["port"]["nmuber"] = 8080
    vs["spec"]["htpp"] = []
    vs["data"] = {"a": 1}
    problems = validate_custom_resource(vs, crds)
    assert sorted(problems) == [
        "data: unknown field (would be pruned)",
        "spec.htpp: unknown field (would be pruned)",
        "spec.http[0].route[0].destination.port.nmuber: unknown field (would be pruned)",
    ]


def test_metadata_and_status_are_not_validated(crds):
    vs = virtual_service()
    vs["metadata"]["anything"] = {"goes": True}
    vs["status"] = {"whatever": 1}
    assert validate_custom_resource(vs, crds) == []


def test_null_in_non_nullable_field_is_reported_and_nullable_null_is_not(crds):
    vs = virtual_service()
    vs["spec"]["http"][0]["timeout"] = None
    assert validate_custom_resource(vs, crds) == [
        "spec.http[0].timeout: null in a non-nullable field (would be pruned)"
    ]

    tls = spec_schema(crds, "networking.istio.io/v1", "Gateway")["properties"]["servers"]["items"]
    assert tls["properties"]["tls"]["properties"]["insecureSkipVerify"]["nullable"] is True
    gw = gateway()
    gw["spec"]["servers"][0]["tls"]["insecureSkipVerify"] = None
    assert validate_custom_resource(gw, crds) == []


# --- Istio security ---


def peer_authentication(mode: str) -> dict:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "istio-system"},
        "spec": {"mtls": {"mode": mode}},
    }


def test_peer_authentication_mode_is_an_enum(crds):
    mode = spec_schema(crds, "security.istio.io/v1", "PeerAuthentication")["properties"]["mtls"]["properties"]["mode"]
    assert mode["enum"] == ["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]

    assert validate_custom_resource(peer_authentication("STRICT"), crds) == []
    problems = validate_custom_resource(peer_authentication("SUPER"), crds)
    assert len(problems) == 1
    assert problems[0].startswith("spec.mtls.mode: 'SUPER' is not one of ")


def authorization_policy(spec: dict) -> dict:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "policy", "namespace": "models"},
        "spec": spec,
    }


def test_authorization_policies_pass(crds):
    allow = {
        "selector": {"matchLabels": {"app": "echo"}},
        "action": "ALLOW",
        "rules": [
            {
                "from": [{"source": {"principals": ["cluster.local/ns/istio-system/sa/istio-ingressgateway"]}}],
                "to": [{"operation": {"methods": ["GET", "POST"], "paths": ["/v1/*"], "ports": ["8080"]}}],
            }
        ],
    }
    assert validate_custom_resource(authorization_policy({}), crds) == []  # deny-all
    assert validate_custom_resource(authorization_policy(allow), crds) == []


def test_misspelled_principals_is_reported(crds):
    # Pruning `principal` would leave an empty source, which matches every caller: the ALLOW rule would open up.
    spec = {"action": "ALLOW", "rules": [{"from": [{"source": {"principal": ["cluster.local/ns/a/sa/b"]}}]}]}
    assert validate_custom_resource(authorization_policy(spec), crds) == [
        "spec.rules[0].from[0].source.principal: unknown field (would be pruned)"
    ]


def test_authorization_policy_action_is_an_enum(crds):
    problems = validate_custom_resource(authorization_policy({"action": "PERMIT"}), crds)
    assert len(problems) == 1
    assert problems[0].startswith("spec.action: 'PERMIT' is not one of ")


# --- Istio Gateway ---


def gateway() -> dict:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "public", "namespace": "istio-ingress"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {
                    "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                    "hosts": ["models/echo.example.com"],
                    "tls": {"mode": "SIMPLE", "credentialName": "echo-tls"},
                }
            ],
        },
    }


def test_valid_gateway_passes(crds):
    assert validate_custom_resource(gateway(), crds) == []


def test_gateway_port_needs_a_name_and_tls_mode_is_an_enum(crds):
    server = spec_schema(crds, "networking.istio.io/v1", "Gateway")["properties"]["servers"]["items"]
    assert set(server["properties"]["port"]["required"]) == {"number", "protocol", "name"}

    gw = gateway()
    del gw["spec"]["servers"][0]["port"]["name"]
    gw["spec"]["servers"][0]["tls"]["mode"] = "TLS"
    problems = validate_custom_resource(gw, crds)
    assert problems[0] == "spec.servers[0].port: 'name' is a required property"
    assert problems[1].startswith("spec.servers[0].tls.mode: 'TLS' is not one of ")
    assert len(problems) == 2


# --- Knative Serving ---


def knative_service() -> dict:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "echo", "namespace": "models"},
        "spec": {
            "template": {
                "metadata": {"name": "echo-v2", "annotations": {"autoscaling.knative.dev/min-scale": "1"}},
                "spec": {
                    "containerConcurrency": 10,
                    "timeoutSeconds": 300,
                    "containers": [
                        {
                            "image": "ghcr.io/example/echo:2",
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "MODEL", "value": "echo"}],
                            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": 1}},
                            "readinessProbe": {"httpGet": {"path": "/healthz"}},
                        }
                    ],
                },
            },
            "traffic": [
                {"revisionName": "echo-v1", "percent": 90, "tag": "stable"},
                {"revisionName": "echo-v2", "percent": 10, "tag": "canary"},
                {"latestRevision": True, "percent": 0, "tag": "latest"},
            ],
        },
    }


def test_valid_knative_service_passes(crds):
    assert validate_custom_resource(knative_service(), crds) == []


def test_unknown_traffic_field_is_reported(crds):
    svc = knative_service()
    svc["spec"]["traffic"][1]["weight"] = svc["spec"]["traffic"][1].pop("percent")
    assert validate_custom_resource(svc, crds) == ["spec.traffic[1].weight: unknown field (would be pruned)"]


def test_knative_percent_is_an_integer(crds):
    svc = knative_service()
    svc["spec"]["traffic"][0]["percent"] = "90%"
    assert validate_custom_resource(svc, crds) == ["spec.traffic[0].percent: '90%' is not of type 'integer'"]


def test_knative_template_metadata_preserves_unknown_fields(crds):
    metadata = spec_schema(crds, "serving.knative.dev/v1", "Service")["properties"]["template"]["properties"][
        "metadata"
    ]
    assert metadata["x-kubernetes-preserve-unknown-fields"] is True

    svc = knative_service()
    svc["spec"]["template"]["metadata"]["generateName"] = "echo-"
    svc["spec"]["template"]["metadata"]["labels"] = {"tier": 1}  # declared, so still validated
    assert validate_custom_resource(svc, crds) == ["spec.template.metadata.labels.tier: 1 is not of type 'string'"]


def test_knative_container_fields_outside_its_schema_are_pruned(crds):
    svc = knative_service()
    svc["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    assert validate_custom_resource(svc, crds) == [
        "spec.template.spec.containers[0].lifecycle: unknown field (would be pruned)"
    ]


def test_quantities_are_int_or_string(crds):
    svc = knative_service()
    svc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 0.5
    problems = validate_custom_resource(svc, crds)
    assert problems == ["spec.template.spec.containers[0].resources.limits.cpu: 0.5 is not of type 'integer', 'string'"]


# --- Flagger ---


def canary() -> dict:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "echo", "namespace": "models"},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "echo"},
            "progressDeadlineSeconds": 600,
            "service": {"port": 80, "targetPort": 8080, "gateways": ["istio-ingress/public"], "hosts": ["echo"]},
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "maxWeight": 50,
                "stepWeight": 10,
                "metrics": [
                    {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
                    {"name": "latency", "templateRef": {"name": "latency", "namespace": "flagger"}, "threshold": 500},
                ],
                "webhooks": [{"name": "load-test", "url": "http://flagger-loadtester.test/", "timeout": "5s"}],
            },
        },
    }


def test_valid_canary_passes(crds):
    assert validate_custom_resource(canary(), crds) == []


def test_unknown_canary_field_is_reported(crds):
    c = canary()
    c["spec"]["service"]["prot"] = 8080
    assert validate_custom_resource(c, crds) == ["spec.service.prot: unknown field (would be pruned)"]


def test_pruned_step_weight_also_breaks_the_analysis_one_of(crds):
    analysis = spec_schema(crds, "flagger.app/v1beta1", "Canary")["properties"]["analysis"]
    assert {"required": ["interval", "threshold", "stepWeight"]} in analysis["oneOf"]

    c = canary()
    c["spec"]["analysis"]["stepWeigth"] = c["spec"]["analysis"].pop("stepWeight")
    problems = validate_custom_resource(c, crds)
    assert problems[0] == "spec.analysis.stepWeigth: unknown field (would be pruned)"
    assert problems[1].startswith("spec.analysis: object is not valid under any of the given schemas: [{'required'")
    assert len(problems) == 2


def test_canary_requires_target_ref_and_analysis(crds):
    assert set(spec_schema(crds, "flagger.app/v1beta1", "Canary")["required"]) == {"targetRef", "analysis"}
    c = canary()
    del c["spec"]["analysis"]
    c["spec"]["targetRef"]["kind"] = "StatefulSet"
    problems = validate_custom_resource(c, crds)
    assert problems[0] == "spec: 'analysis' is a required property"
    assert problems[1].startswith("spec.targetRef.kind: 'StatefulSet' is not one of ")
    assert len(problems) == 2


def test_canary_target_port_is_int_or_string(crds):
    c = canary()
    c["spec"]["service"]["targetPort"] = "http"
    assert validate_custom_resource(c, crds) == []
    c["spec"]["service"]["targetPort"] = True
    assert validate_custom_resource(c, crds) == ["spec.service.targetPort: True is not of type 'integer', 'string'"]


# --- unknown kinds ---


def test_unknown_kind_is_reported(crds):
    problems = validate_custom_resource({"apiVersion": "networking.istio.io/v1", "kind": "VirtualServce"}, crds)
    assert problems == ["kind: no CRD defines kind 'VirtualServce' (apiVersion 'networking.istio.io/v1')"]


def test_unserved_version_is_reported_with_the_served_ones(crds):
    problems = validate_custom_resource(
        peer_authentication("STRICT") | {"apiVersion": "security.istio.io/v1alpha1"}, crds
    )
    assert problems == [
        "apiVersion: 'security.istio.io/v1alpha1' does not serve kind 'PeerAuthentication' "
        "(served: security.istio.io/v1, security.istio.io/v1beta1)"
    ]


# --- pruning and conversion rules on a synthetic CRD ---

WIDGET = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "format": "int32", "minimum": 0},
                "ratio": {"type": "number", "format": "double", "nullable": True},
                "port": {"x-kubernetes-int-or-string": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "routes": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"host": {"type": "string"}}, "required": ["host"]},
                },
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "options": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"level": {"type": "object", "properties": {"name": {"type": "string"}}}},
                },
                "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
                "share": {"type": "number", "minimum": 0, "exclusiveMinimum": True},  # OpenAPI 3.0 spelling
                "plugins": {
                    "type": "array",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "match": {
                    "type": "object",
                    "nullable": True,
                    "properties": {"exact": {"type": "string"}, "prefix": {"type": "string"}},
                    "oneOf": [
                        {"not": {"anyOf": [{"required": ["exact"]}, {"required": ["prefix"]}]}},
                        {"required": ["exact"]},
                        {"required": ["prefix"]},
                    ],
                },
            },
        }
    },
}
WIDGETS = {("example.com/v1", "Widget"): WIDGET}


def widget(**spec) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def test_synthetic_valid_widget_passes():
    obj = widget(
        replicas=3,
        ratio=None,
        port="http",
        labels={"app.kubernetes.io/name": "w"},
        routes=[{"host": "a"}],
        config={"anything": {"nested": [1, {"deep": None}]}},
        options={"level": {"name": "x"}, "extra": {"kept": True}},
        mode=None,  # has a default: the API server defaults it instead of pruning it
        match=None,
    )
    assert validate_custom_resource(obj, WIDGETS) == []
    assert validate_custom_resource(widget(port=8080, match={"exact": "a"}), WIDGETS) == []


def test_synthetic_problems_are_all_reported():
    obj = widget(
        replicas=-1,
        port=1.5,
        labels={"app.kubernetes.io/name": 3},
        routes=[{"hots": "a"}],
        options={"level": {"nmae": "x"}},
        match={"exact": "a", "prefix": "b"},
        typo=None,
    )
    problems = validate_custom_resource(obj, WIDGETS)
    assert problems[:3] == [
        "spec.routes[0].hots: unknown field (would be pruned)",
        "spec.options.level.nmae: unknown field (would be pruned)",  # preserve-unknown-fields is not inherited
        "spec.typo: unknown field (would be pruned)",
    ]
    assert problems[3:] == [
        "spec.labels['app.kubernetes.io/name']: 3 is not of type 'string'",
        "spec.match: object is valid under each of {'required': ['prefix']}, {'required': ['exact']}",
        "spec.port: 1.5 is not of type 'integer', 'string'",
        "spec.replicas: -1 is less than the minimum of 0",
        "spec.routes[0]: 'host' is a required property",  # validated after pruning, as the API server does
    ]


def test_synthetic_exclusive_minimum_and_preserving_array():
    assert validate_custom_resource(widget(share=0.1, plugins=[{"name": "a", "any": {"x": 1}}]), WIDGETS) == []
    assert validate_custom_resource(widget(share=0), WIDGETS) == [
        "spec.share: 0 is less than or equal to the minimum of 0"
    ]


def test_synthetic_nulls_and_missing_spec():
    assert validate_custom_resource(widget(replicas=None, labels={"a": None}), WIDGETS) == [
        "spec.replicas: null in a non-nullable field (would be pruned)",
        "spec.labels.a: null in a non-nullable field (would be pruned)",
    ]
    assert validate_custom_resource({"apiVersion": "example.com/v1", "kind": "Widget"}, WIDGETS) == [
        "<root>: 'spec' is a required property"
    ]


def test_validation_does_not_modify_the_object(crds):
    vs = virtual_service()
    vs["spec"]["htpp"] = None
    before = copy.deepcopy(vs)
    validate_custom_resource(vs, crds)
    assert vs == before
