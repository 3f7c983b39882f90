"""strict-mtls and the one exception it accepts: net-istio's port-level PERMISSIVE for Knative's webhooks.

`knative-serving` is injected (components/mesh/knative.py), so the API server, which has no sidecar
certificate, reaches Knative's webhooks only through net-istio's `config/400-webhook-peer-authentication.yaml`
(knative-v1.23.0): `webhook` and `net-istio-webhook` pods, port 8443, PERMISSIVE. Those objects, and only
objects of exactly that shape, pass; anything wider fails, whether turnout or an upstream manifest ships it."""

from __future__ import annotations

from tests.policy_cases import fails, missing, passes
from tests.test_policies_mesh import STRICT, istiod, peer_authentication, upstream


def webhook_policy(app="webhook", ports=None, mode=None, selector=True):
    spec: dict = {"portLevelMtls": ports if ports is not None else {"8443": {"mode": "PERMISSIVE"}}}
    if selector:
        spec["selector"] = {"matchLabels": {"app": app}}
    if mode:
        spec["mtls"] = {"mode": mode}
    return spec


def shipped(*specs):
    """net-istio.yaml's objects as applied (children of its ConfigFile), beside turnout's istiod and STRICT policy."""

    def make(opts):
        for index, spec in enumerate(specs):
            peer_authentication(spec, f"webhook-{index}", "knative-serving", opts)

    return lambda: (istiod(), peer_authentication(STRICT), upstream(make)())


CASES = {
    "strict-mtls": [
        passes(shipped(webhook_policy("webhook"), webhook_policy("net-istio-webhook"))),
        # The same shape rendered by turnout itself is the same exception.
        passes(
            lambda: (
                istiod(),
                peer_authentication(STRICT),
                peer_authentication(webhook_policy(), "webhook", "knative-serving"),
            )
        ),
        passes(shipped(webhook_policy(mode="STRICT"))),
        # Older net-istio releases relaxed the whole webhook pod: no longer accepted, even from upstream.
        fails(
            shipped(webhook_policy(ports={}, mode="PERMISSIVE")),
            "knative-serving/webhook-0 sets mtls.mode PERMISSIVE.",
        ),
        fails(
            shipped(webhook_policy(ports={"8443": {"mode": "PERMISSIVE"}, "9090": {"mode": "PERMISSIVE"}})),
            "knative-serving/webhook-0 sets port 8443 to mtls.mode PERMISSIVE.",
            "knative-serving/webhook-0 sets port 9090 to mtls.mode PERMISSIVE.",
        ),
        fails(
            shipped(webhook_policy("activator")),
            "knative-serving/webhook-0 sets port 8443 to mtls.mode PERMISSIVE.",
        ),
        fails(
            shipped(webhook_policy(ports={"8443": {"mode": "DISABLE"}})),
            "knative-serving/webhook-0 sets port 8443 to mtls.mode DISABLE.",
        ),
        fails(
            lambda: (
                istiod(),
                peer_authentication(STRICT),
                peer_authentication(webhook_policy(), "webhook", "models"),
            ),
            "models/webhook sets port 8443 to mtls.mode PERMISSIVE.",
        ),
        # An upstream mesh-wide STRICT policy does not stand in for turnout's own.
        fails(
            lambda: (istiod(), upstream(lambda opts: peer_authentication(STRICT, opts=opts))()),
            "istio-system has no mesh-wide PeerAuthentication with mtls.mode STRICT, so workloads also accept "
            "plaintext.",
        ),
        # No selector: the port is relaxed for every pod of knative-serving.
        missing(
            shipped(webhook_policy(selector=False)),
            "knative-serving/webhook-0 sets port 8443 to mtls.mode PERMISSIVE.",
        ),
    ],
}
