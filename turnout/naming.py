"""The one naming helper: deterministic names for clusters, components and Kubernetes objects."""

from __future__ import annotations

import hashlib
import json

PROJECT = "turnout"
K8S_NAME_MAX = 63


def cluster_name(stack: str, region: str) -> str:
    """`<stack>-<region>`, or just the stack when the region repeats it (`local` on kind)."""
    return stack if region == stack else f"{stack}-{region}"


def child(parent: str, *parts: str) -> str:
    """A child resource's Pulumi name, derived from its component's (`local-echo-v1`)."""
    return "-".join((parent, *parts))


def fit(name: str, limit: int, *, separator: str = "-") -> str:
    """`name` if it fits `limit` characters, else its head and a stable 8-character hash of the whole name, so
    distinct long names stay distinct and the same name always gives the same result (cloud name limits)."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - len(digest) - len(separator)].rstrip(separator + '.')}{separator}{digest}"


def k8s_name(*parts: str) -> str:
    """A DNS-1123 object name; over-long names keep a stable hash suffix instead of being cut blindly."""
    return fit("-".join(parts), K8S_NAME_MAX)


def labels(endpoint: str, version: str | None, tier: str) -> dict[str, str]:
    """Labels every model object carries; policies read the tier from `turnout.dev/tier`."""
    result = {
        "app.kubernetes.io/name": endpoint,
        "app.kubernetes.io/part-of": PROJECT,
        "app.kubernetes.io/managed-by": "pulumi",
        "turnout.dev/endpoint": endpoint,
        "turnout.dev/tier": tier,
    }
    if version is not None:
        result["app.kubernetes.io/version"] = version
        result["turnout.dev/version"] = version
    return result


HASH_SUFFIX = 9  # "-" and 8 hex digits
HASHED_PREFIX_MAX = K8S_NAME_MAX - HASH_SUFFIX


def content_hash(content: object) -> str:
    """Eight hex digits of the SHA-256 of `content` as canonical JSON: equal contents give equal hashes."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def hashed_name_prefix(*parts: str) -> str:
    """The parts joined, shortened like k8s_name's (head and a hash of the whole) to leave room for `-<hash>`."""
    name = "-".join(parts)
    if len(name) <= HASHED_PREFIX_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: HASHED_PREFIX_MAX - HASH_SUFFIX].rstrip('-')}-{digest}"


def hashed_name(*parts: str, content: object) -> str:
    """`<parts>-<hash of content>` within 63 characters: a name that changes exactly when `content` does."""
    return f"{hashed_name_prefix(*parts)}-{content_hash(content)}"
