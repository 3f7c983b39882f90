"""What the experiment agent of an `interleaved` endpoint or a compared shadow (`shadow.compare`) runs with: its
settings document (apps/experiment-agent/turnout_agent/interleave.py and compare.py read it), the ports the
VirtualService sends it traffic on, who may call its API, and what traffic.json says about it. Plain functions:
the ExperimentAgent component deploys them, IstioRoutes routes to the ports."""

from __future__ import annotations

from turnout.naming import k8s_name
from turnout.strategies import Interleaved, Shadow

API_PORT = 8080
PROXY_PORT = 8081
"""An interleaved endpoint's share of user requests reaches the agent here (its API stays on API_PORT)."""
MIRROR_PORT_BASE = 8100
"""A compared shadow's mirrored copies reach the agent on MIRROR_PORT_BASE + the shadow's index."""
VERSION_PORT = 80
COMPARE_ALPHA = 0.01
WORKERS = 16


def mirror_port(index: int) -> int:
    return MIRROR_PORT_BASE + index


def agent_host(endpoint: str, namespace: str) -> str:
    """The agent's Service (components.endpoint.experiment_agent.agent_name), as the mesh names it."""
    return f"{k8s_name(endpoint, 'agent')}.{namespace}.svc.cluster.local"


def version_service(endpoint: str, version: str) -> str:
    """A version's own Service, which only the agent calls: the endpoint's Service would route the agent's call
    through the VirtualService again (back to the agent, or mirrored once more)."""
    return k8s_name(endpoint, "version", version)


def backends(endpoint: str, namespace: str, versions: tuple[str, ...]) -> dict[str, str]:
    return {v: f"http://{version_service(endpoint, v)}.{namespace}.svc.cluster.local:{VERSION_PORT}" for v in versions}


def called_versions(strategy: Interleaved | Shadow) -> tuple[str, ...]:
    if isinstance(strategy, Interleaved):
        return (strategy.control, strategy.treatment)
    return (strategy.primary, *strategy.shadows)


def listener_ports(strategy: Interleaved | Shadow) -> list[tuple[str, int]]:
    """(port name, number) of the agent's experiment listeners, besides its API."""
    if isinstance(strategy, Interleaved):
        return [("proxy", PROXY_PORT)]
    return [(f"mirror-{index}", mirror_port(index)) for index in range(len(strategy.shadows))]


def experiment_settings(
    *, endpoint: str, namespace: str, strategy: Interleaved | Shadow, peers: list[dict], ledger: dict, cache: bool
) -> dict:
    """The agent's settings document for an interleaved endpoint or a compared shadow."""
    common = {
        "endpoint": endpoint,
        "namespace": namespace,
        "backends": backends(endpoint, namespace, called_versions(strategy)),
        "peers": peers,
        "ledger": ledger,
        "port": API_PORT,
    }
    if isinstance(strategy, Interleaved):
        return {
            "strategy": "interleaved",
            **common,
            "interleaving": {
                "control": strategy.control,
                "treatment": strategy.treatment,
                "method": strategy.method,
                "items": strategy.items,
                "itemId": strategy.item_id,
                "budgetMs": strategy.budget_ms,
                "clickWindowSeconds": strategy.click_window,
                "proxyPort": PROXY_PORT,
                "store": "cache" if cache else "ledger",
                "cachePrefix": f"turnout:{namespace}:{endpoint}",
            },
        }
    compare = strategy.compare
    assert compare is not None
    return {
        "strategy": "shadow",
        **common,
        "compare": {
            "primary": strategy.primary,
            "shadows": {
                version: {"port": mirror_port(index), "percent": percent}
                for index, (version, percent) in enumerate(strategy.shadows.items())
            },
            "fields": list(compare.fields),
            "tolerance": compare.tolerance,
            "sample": compare.sample,
            "redact": list(compare.redact),
            "alpha": COMPARE_ALPHA,
            "workers": WORKERS,
        },
    }


def api_operations(endpoint: str, strategy: Interleaved | Shadow) -> tuple[tuple[str, ...], list[dict], list[dict]]:
    """(callers, what they may call, what the agent's replicas call on each other)."""
    api = f"/v1/endpoints/{endpoint}/"
    report = {"operation": {"methods": ["GET"], "paths": [api + "report"]}}
    totals = {"operation": {"methods": ["GET"], "paths": ["/internal/totals"]}}
    if isinstance(strategy, Interleaved):
        clicks = {"operation": {"methods": ["POST"], "paths": [api + "clicks"]}}
        internal = {"operation": {"methods": ["POST"], "paths": ["/internal/clicks"]}}
        return strategy.callers, [report, clicks], [totals, internal]
    return (), [report], [totals]


def traffic_note(endpoint: str, namespace: str, strategy: Interleaved | Shadow, *, cache: bool) -> dict:
    """traffic.json's `agent` entry: what the agent does in (or beside) the endpoint's routes, and its API."""
    api = f"/v1/endpoints/{endpoint}/"
    service = f"{agent_host(endpoint, namespace).split('.svc.', 1)[0]}.svc.cluster.local:{API_PORT}"
    if isinstance(strategy, Interleaved):
        return {
            "owns": "interleaving",
            "note": f"{strategy.percent}% of requests reach the experiment agent, which answers in "
            f"{strategy.control}'s shape with one list merged ({strategy.method}) from {strategy.control}'s and "
            f"{strategy.treatment}'s answers; a late or failed {strategy.treatment} leaves {strategy.control}'s "
            "answer unchanged",
            "service": service,
            "clicks": api + "clicks",
            "report": api + "report",
            "control": strategy.control,
            "treatment": strategy.treatment,
            "percent": strategy.percent,
            "items": strategy.items,
            "itemId": strategy.item_id,
            "impressions": "cache" if cache else "ledger",
        }
    return {
        "owns": "comparison",
        "note": f"the mirrored copies reach the experiment agent, which sends each to the shadow and twice to "
        f"{strategy.primary} (the answer compared and the noise baseline) and compares them; users get "
        f"{strategy.primary}'s answers through the route, unchanged",
        "service": service,
        "report": api + "report",
        "primary": strategy.primary,
        "shadows": {v: {"percent": p, "port": mirror_port(i)} for i, (v, p) in enumerate(strategy.shadows.items())},
        "primaryExtraLoadPercent": 2 * sum(strategy.shadows.values()),
    }
