"""Google Cloud's limits on the names turnout generates, in one table that the GCP components
(components/cluster/gke.py, components/cache/memorystore.py, components/globaltraffic/cloud_dns.py)
name their resources through, and that tests check a whole plan against.

Every generated name starts with the stack name (`<stack>-<region>`, `<stack>-cache`), so a long stack
name is shortened with a stable hash (`turnout.naming.fit`) rather than refused; a stack name whose
characters no GCP name accepts is refused once, naming the stack name, before anything is created.

Sources: the pulumi-gcp docstrings of each resource's `name` (Compute Engine: RFC 1035, 1-63
characters; service account ids: 6-30 characters) and the products' documentation (GKE cluster and
node pool names: 40 characters; Memorystore for Redis instance ids: 40; Cloud KMS key ring and key
ids: `[a-zA-Z0-9_-]{1,63}`; network tags: RFC 1035, 1-63).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from turnout.errors import ConfigError
from turnout.naming import fit

# RFC 1035 labels, as Compute Engine and GKE phrase them: a lowercase letter first, no '-' last.
RFC1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
KMS_ID = r"[a-zA-Z0-9_-]+"


@dataclass(frozen=True)
class NameRule:
    what: str
    """The resource, as the error and the README name it."""
    max_length: int
    pattern: str
    min_length: int = 1

    def accepts(self, name: str) -> bool:
        return self.min_length <= len(name) <= self.max_length and re.fullmatch(self.pattern, name) is not None


GCP_NAMES: dict[str, NameRule] = {
    "cluster": NameRule("GKE cluster name", 40, RFC1035),
    "node_pool": NameRule("GKE node pool name", 40, RFC1035),
    "network": NameRule("VPC network name", 63, RFC1035),
    "subnetwork": NameRule("subnetwork name", 63, RFC1035),
    "router": NameRule("Cloud Router name", 63, RFC1035),
    "router_nat": NameRule("Cloud NAT name", 63, RFC1035),
    "firewall": NameRule("firewall rule name", 63, RFC1035),
    "network_tag": NameRule("network tag", 63, RFC1035),
    "global_address": NameRule("global address name", 63, RFC1035),
    "health_check": NameRule("health check name", 63, RFC1035),
    "service_account": NameRule("service account id", 30, RFC1035, min_length=6),
    "kms_key_ring": NameRule("Cloud KMS key ring id", 63, KMS_ID),
    "kms_crypto_key": NameRule("Cloud KMS key id", 63, KMS_ID),
    "redis_instance": NameRule("Memorystore instance id", 40, RFC1035),
    "dns_managed_zone": NameRule("Cloud DNS managed zone name", 63, RFC1035),
    "network_peering": NameRule("VPC network peering name", 63, RFC1035),
}

# Which input names each GCP resource type, and under which rule: what a test checks a plan against.
NAME_INPUTS: dict[str, tuple[str, str]] = {
    "gcp:container/cluster:Cluster": ("name", "cluster"),
    "gcp:container/nodePool:NodePool": ("name", "node_pool"),
    "gcp:compute/network:Network": ("name", "network"),
    "gcp:compute/subnetwork:Subnetwork": ("name", "subnetwork"),
    "gcp:compute/router:Router": ("name", "router"),
    "gcp:compute/routerNat:RouterNat": ("name", "router_nat"),
    "gcp:compute/firewall:Firewall": ("name", "firewall"),
    "gcp:compute/globalAddress:GlobalAddress": ("name", "global_address"),
    "gcp:compute/healthCheck:HealthCheck": ("name", "health_check"),
    "gcp:serviceaccount/account:Account": ("accountId", "service_account"),
    "gcp:kms/keyRing:KeyRing": ("name", "kms_key_ring"),
    "gcp:kms/cryptoKey:CryptoKey": ("name", "kms_crypto_key"),
    "gcp:redis/instance:Instance": ("name", "redis_instance"),
    "gcp:dns/managedZone:ManagedZone": ("name", "dns_managed_zone"),
    "gcp:compute/networkPeering:NetworkPeering": ("name", "network_peering"),
}

STACK_NAME = "the stack name"
STACK_ALLOWED = (
    "on gcp, a stack name of lowercase letters, digits and '-' that starts with a letter (GCP resource names "
    "begin with it; any length: longer names are shortened with a stable hash)"
)


def gcp_name(kind: str, name: str, *, reserve: int = 0) -> str:
    """`name` fitted to the `kind` rule's length (minus `reserve` characters for a suffix added later, such as a
    random id), shortened with a stable hash when longer. A name the rule's characters refuse is a bug in turnout
    (the stack name is checked first, `check_stack_name`), so it raises ValueError."""
    rule = GCP_NAMES[kind]
    fitted = fit(name, rule.max_length - reserve)
    if not rule.accepts(fitted + "0" * reserve):
        raise ValueError(f"{rule.what} {fitted!r} does not match {rule.pattern} ({rule.max_length} characters)")
    return fitted


def check_stack_name(stack: str) -> None:
    """Refuse a stack name whose characters no GCP resource name accepts, naming the stack name."""
    if not re.fullmatch(r"[a-z][-a-z0-9]*", stack):
        raise ConfigError(STACK_NAME, repr(stack), STACK_ALLOWED)
