"""Mesh and rollout rules of the policy pack: STRICT mTLS, deny-by-default model namespaces, Gateway
hosts and TLS, mirror percentages, sticky canaries only on Istio routing, and the advice to analyse
prod canaries. turnout's own platform and endpoints pass them; the served pack agrees offline."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.mesh.istio import gateway_spec
from tests.policy_cases import fails, missing, passes
from tests.test_policies_workloads import POLICIES, turnout_cluster
from turnout.offline.policy import evaluate
from turnout.offline.runtime import run_function

NET_ISTIO = "https://github.com/knative-extensions/net-istio/releases/download/knative-v1.23.0/net-istio.yaml"


def custom(name, api_version, kind, metadata, spec=None, opts=None):
    extra = {} if spec is None else {"spec": spec}
    return k8s.apiextensions.CustomResource(
        name, api_version=api_version, kind=kind, metadata=metadata, opts=opts, **extra
    )


def upstream(make):
    """Objects of net-istio's release manifest, applied as shipped."""

    def program():
        make(pulumi.ResourceOptions(parent=k8s.yaml.v2.ConfigFile("net-istio", file=NET_ISTIO)))

    return program


# --- mTLS ----------------------------------------------------------------------------------------


def istiod():
    return k8s.helm.v3.Release(
        "istiod",
        name="istiod",
        chart="istiod",
        version="1.30.4",
        namespace="istio-system",
        repository_opts={"repo": "https://istio-release.storage.googleapis.com/charts"},
    )


def peer_authentication(spec=None, name="default", namespace="istio-system", opts=None):
    return custom(
        f"pa-{namespace}-{name}",
        "security.istio.io/v1",
        "PeerAuthentication",
        {"name": name, "namespace": namespace},
        spec,
        opts,
    )


STRICT = {"mtls": {"mode": "STRICT"}}
NOT_STRICT = (
    "istio-system has no mesh-wide PeerAuthentication with mtls.mode STRICT, so workloads also accept plaintext."
)


# --- authorization -------------------------------------------------------------------------------


def model_namespace(name="models", labelled=True):
    labels = {"turnout.dev/endpoint": name} if labelled else {}
    return k8s.core.v1.Namespace(f"ns-{name}", metadata={"name": name, "labels": labels})


def authorization_policy(spec=None, name="deny-all", namespace="models"):
    return custom(
        f"ap-{namespace}-{name}",
        "security.istio.io/v1",
        "AuthorizationPolicy",
        {"name": name, "namespace": namespace},
        spec,
    )


ALLOW_GATEWAY = {
    "action": "ALLOW",
    "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/istio-system/sa/istio-ingressgateway"]}}]}],
}
NO_DENY = "models: no AuthorizationPolicy denies by default (an empty spec, or action DENY with an empty rule)."


# --- gateways ------------------------------------------------------------------------------------


def gateway(*servers, opts=None):
    return custom(
        "gw",
        "networking.istio.io/v1",
        "Gateway",
        {"name": "public", "namespace": "istio-system"},
        {"selector": {"istio": "ingressgateway"}, "servers": list(servers)},
        opts,
    )


def server(number=443, protocol="HTTPS", hosts=("*.models.example.com",), tls=None, name=None):
    port = {"number": number, "protocol": protocol, "name": name or protocol.lower()}
    return {"port": port, "hosts": list(hosts), **({"tls": tls} if tls is not None else {})}


def tls_secrets(*names):
    """The Secrets a Gateway serves, made by the stack beside it (tls-on-public-gateways checks they are)."""
    for name in names:
        metadata = {"name": name, "namespace": "istio-system"}
        k8s.core.v1.Secret(f"tls-{name}", metadata=metadata, type="kubernetes.io/tls")


SIMPLE = {"mode": "SIMPLE", "credentialName": "models-tls"}
REDIRECT = {"httpsRedirect": True}


# --- routes --------------------------------------------------------------------------------------


def virtual_service(http, metadata=None):
    return custom(
        "vs",
        "networking.istio.io/v1",
        "VirtualService",
        metadata or {"name": "m", "namespace": "models"},
        {"hosts": ["m.models.svc.cluster.local"], "http": http},
    )


def mirrored(*percents, legacy=None):
    """A route to v1 mirrored to a shadow per percent (None: no percentage, Istio's 100%)."""
    shadow = {"host": "m-shadow.models.svc.cluster.local", "subset": "v2"}
    route = {"name": "primary", "route": [{"destination": {"host": "m.models.svc.cluster.local", "subset": "v1"}}]}
    route["mirrors"] = [
        {"destination": shadow, **({"percentage": {"value": p}} if p is not None else {})} for p in percents
    ]
    if legacy is not None:
        route = {"route": route["route"], "mirror": shadow, "mirrorPercentage": {"value": legacy}}
    return lambda: virtual_service([route])


def static_canary(tier="prod", annotated=True):
    labels = {"turnout.dev/tier": tier} if tier else {}
    metadata = {"name": "m", "namespace": "models", "labels": labels}
    if annotated:
        metadata["annotations"] = {"turnout.dev/canary-version": "v2"}
    route = [
        {"destination": {"host": "m", "subset": "v1"}, "weight": 90},
        {"destination": {"host": "m", "subset": "v2"}, "weight": 10},
    ]
    return lambda: virtual_service([{"name": "default", "route": route}], metadata)


# --- sticky --------------------------------------------------------------------------------------


def flagger(mesh_provider=None):
    values = {"meshProvider": mesh_provider} if mesh_provider else {}
    return k8s.helm.v3.Release(
        "flagger",
        name="flagger",
        chart="flagger",
        version="1.44.0",
        namespace="istio-system",
        repository_opts={"repo": "https://flagger.app"},
        values=values,
    )


def flagger_canary(provider=None, affinity=True):
    analysis = {"interval": "1m", "threshold": 5, "stepWeights": [10, 20]}
    if affinity:
        analysis["sessionAffinity"] = {"cookieName": "flagger-cookie", "maxAge": 3600}
    spec = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "m"},
        "service": {"port": 80},
        "analysis": analysis,
        **({"provider": provider} if provider else {}),
    }
    return custom("canary", "flagger.app/v1beta1", "Canary", {"name": "m", "namespace": "models"}, spec)


def model_service(affinity=None, labelled=True):
    labels = {"turnout.dev/endpoint": "m"} if labelled else {}
    spec = {"selector": {"app.kubernetes.io/name": "m"}, "ports": [{"port": 80, "targetPort": "http"}]}
    if affinity:
        spec["sessionAffinity"] = affinity
    return k8s.core.v1.Service("svc", metadata={"name": "m", "namespace": "models", "labels": labels}, spec=spec)


def sticky_canary_on(provider):
    return (
        f"models/m: session affinity (cookie flagger-cookie) on Flagger's {provider} provider; "
        "only istio routing pins users."
    )


CASES = {
    "strict-mtls": [
        passes(lambda: (istiod(), peer_authentication(STRICT))),
        passes(
            lambda: (
                istiod(),
                peer_authentication(STRICT),
                peer_authentication({"mtls": {"mode": "UNSET"}}, "m", "models"),
            )
        ),
        passes(lambda: virtual_service([])),  # Istio is not installed by this stack: its mesh-wide policy is not ours
        # Knative's webhooks: tests/test_policies_mesh_knative.py
        fails(
            istiod,
            NOT_STRICT,
        ),
        fails(
            lambda: (istiod(), peer_authentication(STRICT, namespace="models")),  # namespace-wide only
            NOT_STRICT,
        ),
        fails(
            lambda: (istiod(), peer_authentication({**STRICT, "selector": {"matchLabels": {"app": "m"}}})),
            NOT_STRICT,
        ),
        fails(
            lambda: (
                istiod(),
                peer_authentication(STRICT),
                peer_authentication({"mtls": {"mode": "PERMISSIVE"}}, "m", "models"),
            ),
            "models/m sets mtls.mode PERMISSIVE.",
        ),
        fails(
            lambda: (
                istiod(),
                peer_authentication(STRICT),
                peer_authentication(
                    {"selector": {"matchLabels": {"app": "m"}}, "portLevelMtls": {"8443": {"mode": "DISABLE"}}},
                    "m",
                    "models",
                ),
            ),
            "models/m sets port 8443 to mtls.mode DISABLE.",
        ),
        fails(
            lambda: peer_authentication({"mtls": {"mode": "PERMISSIVE"}}, "m", "models"),  # without Istio in the stack
            "models/m sets mtls.mode PERMISSIVE.",
        ),
        missing(
            lambda: (istiod(), peer_authentication()),  # no mtls: Istio's default, PERMISSIVE
            NOT_STRICT,
        ),
    ],
    "default-deny-per-model-namespace": [
        passes(lambda: (model_namespace(), authorization_policy({}), authorization_policy(ALLOW_GATEWAY, "allow"))),
        passes(lambda: (model_namespace(), authorization_policy({"action": "DENY", "rules": [{}]}))),
        passes(lambda: (model_namespace(), authorization_policy({"action": "ALLOW", "rules": []}))),
        passes(lambda: model_namespace(labelled=False)),  # not a model namespace
        fails(lambda: (model_namespace(), authorization_policy(ALLOW_GATEWAY, "allow")), NO_DENY),
        fails(
            lambda: (model_namespace(), authorization_policy({"action": "ALLOW", "rules": [{}]})), NO_DENY
        ),  # allow-all
        fails(lambda: (model_namespace(), authorization_policy({"selector": {"matchLabels": {"app": "m"}}})), NO_DENY),
        fails(lambda: (model_namespace(), authorization_policy({}, namespace="elsewhere")), NO_DENY),
        fails(
            lambda: (
                model_namespace(),
                authorization_policy({"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["DELETE"]}}]}]}),
            ),
            NO_DENY,
        ),
        missing(lambda: model_namespace(), NO_DENY),
        missing(lambda: (model_namespace(), authorization_policy())),  # no spec at all is the empty spec
    ],
    "no-wildcard-gateway-hosts": [
        passes(
            lambda: custom(
                "gw",
                "networking.istio.io/v1",
                "Gateway",
                {"name": "g", "namespace": "istio-system"},
                gateway_spec("models.example.com", "tls"),
            )
        ),
        passes(lambda: gateway(server(hosts=["*.models.example.com", "models/api.example.com", "./*.internal"]))),
        passes(upstream(lambda opts: gateway(server(80, "HTTP", ["*"]), opts=opts))),  # net-istio's, as shipped
        fails(
            lambda: gateway(server(tls=SIMPLE, hosts=["*"])),
            "istio-system/public: server https accepts any host ('*').",
        ),
        fails(
            lambda: gateway(server(80, "HTTP", ["*/*", "ns/*"], REDIRECT), server(tls=SIMPLE)),
            "istio-system/public: server http accepts any host ('*/*').",
            "istio-system/public: server http accepts any host ('ns/*').",
        ),
        missing(lambda: gateway({"port": {"number": 443, "protocol": "HTTPS", "name": "https"}, "tls": SIMPLE})),
        missing(lambda: gateway()),
    ],
    "tls-on-public-gateways": [
        passes(
            lambda: (
                custom(
                    "gw",
                    "networking.istio.io/v1",
                    "Gateway",
                    {"name": "g", "namespace": "istio-system"},
                    gateway_spec("models.example.com", "tls"),
                ),
                tls_secrets("tls"),
            )
        ),
        passes(lambda: gateway(server(443, "TLS", tls={"mode": "PASSTHROUGH"}))),
        passes(lambda: gateway(server(15443, "TLS", tls={"mode": "ISTIO_MUTUAL"}))),
        passes(
            lambda: (
                gateway(server(8443, "HTTPS", tls={"mode": "MUTUAL", "credentialNames": ["a", "b"]})),
                tls_secrets("a", "b"),
            )
        ),
        passes(lambda: gateway(server(9000, "GRPC"))),  # not HTTP, not TLS: not this rule's
        passes(upstream(lambda opts: gateway(server(80, "HTTP", ["*"]), opts=opts))),
        fails(
            lambda: gateway(server(80, "HTTP")),
            "istio-system/public: server http (port 80) serves plain HTTP without redirecting to HTTPS "
            "(tls.httpsRedirect: true).",
        ),
        fails(
            lambda: gateway(server(tls={"mode": "SIMPLE"})),
            "istio-system/public: server https (port 443) terminates TLS (SIMPLE) without a credentialName.",
        ),
        fails(
            lambda: gateway(server(443, "HTTP", tls=REDIRECT)),  # plain HTTP on the TLS port
            "istio-system/public: server http (port 443) names neither a tls mode nor a credentialName.",
        ),
        missing(
            lambda: gateway(server()),
            "istio-system/public: server https (port 443) names neither a tls mode nor a credentialName.",
        ),
        missing(lambda: gateway({"hosts": ["*.models.example.com"]})),  # no port: nothing to judge
    ],
    "mirror-percent-in-range": [
        passes(mirrored(50)),
        passes(mirrored(0, 100)),
        passes(mirrored(legacy=25)),
        fails(mirrored(150), "models/m: route primary mirrors 150% to v2; a mirror percentage is 0 to 100."),
        fails(
            mirrored(10, -0.5),
            "models/m: route primary mirrors -0.5% to v2; a mirror percentage is 0 to 100.",
        ),
        fails(mirrored(legacy=101), "models/m: route http[0] mirrors 101% to v2; a mirror percentage is 0 to 100."),
        missing(mirrored(None)),  # no percentage: Istio mirrors all requests, which is in range
    ],
    "progressive-analysis-on-prod-canaries": [
        passes(static_canary(tier="dev")),
        passes(static_canary(annotated=False)),
        passes(turnout_cluster("prod", ("ranker",))),  # a progressive canary: Flagger's Canary, no static weights
        fails(static_canary(), "models/m: prod canary v2 runs on static weights, with no analysis to roll it back."),
        fails(
            turnout_cluster("prod", ("fraud-score",)),
            "fraud-score/fraud-score: prod canary v2 runs on static weights, with no analysis to roll it back.",
        ),
        missing(static_canary(tier=None)),  # no tier label: not known to be prod
    ],
    "sticky-canary-istio-only": [
        passes(lambda: flagger_canary()),  # Flagger's default provider is istio
        passes(lambda: (flagger("istio"), flagger_canary())),
        passes(lambda: (flagger("linkerd"), flagger_canary("istio"))),
        passes(lambda: model_service("None")),
        passes(lambda: model_service("ClientIP", labelled=False)),  # not a model Service
        fails(lambda: flagger_canary("knative"), sticky_canary_on("knative")),
        fails(lambda: (flagger("linkerd"), flagger_canary()), sticky_canary_on("linkerd")),
        fails(
            lambda: model_service("ClientIP"),
            "models/m: sessionAffinity ClientIP is bypassed by Istio's sidecars; only istio routing pins users.",
        ),
        missing(lambda: flagger_canary("knative", affinity=False)),  # not sticky
        missing(lambda: model_service()),
    ],
}

MESH_RULES = tuple(CASES)


@pytest.mark.parametrize("tier", ["prod", "dev"])
def test_turnout_output_passes(tier):
    """turnout's platform and endpoints (a sticky canary as cookie routes, a progressive one, Knative,
    shadows, flagd): nothing to report but the advice on the static prod canary."""
    found = evaluate(run_function(turnout_cluster(tier)).records, POLICIES, tier=tier)
    advice = ["fraud-score/fraud-score: prod canary v2 runs on static weights, with no analysis to roll it back."]
    assert [v.message.splitlines()[-1] for v in found if v.policy in MESH_RULES] == (advice if tier == "prod" else [])


def test_advice_on_static_prod_canaries_stays_advice_in_prod():
    found = evaluate(run_function(static_canary()).records, POLICIES, tier="prod")
    assert {(v.policy, v.level) for v in found if v.policy in MESH_RULES} == {
        ("progressive-analysis-on-prod-canaries", "advisory")
    }


def test_sticky_canaries_are_advisory_below_prod():
    records = run_function(lambda: flagger_canary("knative")).records
    for tier, level in (("dev", "advisory"), ("staging", "advisory"), ("prod", "mandatory")):
        found = [v for v in evaluate(records, POLICIES, tier=tier) if v.policy == "sticky-canary-istio-only"]
        assert [v.level for v in found] == [level]


def test_security_rules_are_mandatory_in_every_tier():
    def insecure():
        istiod()
        model_namespace()
        gateway(server(80, "HTTP", ["*"]))
        mirrored(150)()

    for tier in ("dev", "prod"):
        found = {(v.policy, v.level) for v in evaluate(run_function(insecure).records, POLICIES, tier=tier)}
        assert found >= {
            ("strict-mtls", "mandatory"),
            ("default-deny-per-model-namespace", "mandatory"),
            ("no-wildcard-gateway-hosts", "mandatory"),
            ("tls-on-public-gateways", "mandatory"),
            ("mirror-percent-in-range", "mandatory"),
        }


def test_stack_rules_judge_each_cluster_on_its_own():
    """Two clusters (providers): each Istio needs its own mesh-wide STRICT policy, each namespace its deny-all."""

    def two_clusters():
        for cluster in ("east", "west"):
            opts = pulumi.ResourceOptions(provider=k8s.Provider(cluster, kubeconfig="apiVersion: v1"))
            k8s.helm.v3.Release(f"{cluster}-istiod", name="istiod", chart="istiod", namespace="istio-system", opts=opts)
            k8s.core.v1.Namespace(
                f"{cluster}-ns", metadata={"name": "models", "labels": {"turnout.dev/endpoint": "m"}}, opts=opts
            )
            if cluster == "east":
                meta = {"name": "default", "namespace": "istio-system"}
                custom("east-pa", "security.istio.io/v1", "PeerAuthentication", meta, STRICT, opts)
                meta = {"name": "deny-all", "namespace": "models"}
                custom("east-deny", "security.istio.io/v1", "AuthorizationPolicy", meta, {}, opts)

    found = [
        (v.policy, v.urn.rsplit("::", 1)[-1])
        for v in evaluate(run_function(two_clusters).records, POLICIES)
        if v.policy in MESH_RULES
    ]
    assert sorted(found) == [("default-deny-per-model-namespace", "west-ns"), ("strict-mtls", "west-istiod")]
