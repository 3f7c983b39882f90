"""Azure's name rules for every resource turnout creates on azure, in one table, and the two ways a
generated name is made to fit one: `azure_name` (unique within its scope: what Azure allows of the
name, cut with a stable hash when too long) and `global_name` (unique across Azure: the same, plus a hash
of the subscription, so that the same stack in another organisation's subscription does not claim it).

The components name their resources through these functions; `name_violations` checks a planned
resource against the table (tests/test_azure_names.py runs it over a whole plan with a 50-character stack
name). Sources: "Naming rules and restrictions for Azure resources" (learn.microsoft.com/azure/
azure-resource-manager/management/resource-name-rules), and the AKS docs for the DNS prefix (1-54) and
agent pools (1-12, lowercase letters and digits, starting with a letter).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from turnout.naming import fit

GLOBAL_DIGEST = 6
"""Hex digits of sha256(subscription/name) that make a global name unique per subscription."""


@dataclass(frozen=True)
class NameRule:
    resource: str
    """The ARM type, as the naming rules list it."""
    lengths: tuple[int, int]
    chars: str
    """The characters allowed anywhere, as the inside of a regular-expression class."""
    allowed: str
    """What Azure allows, in the docs' words."""
    scope: str
    """Where the name must be unique: global, subscription, resource group or the parent resource."""
    first: str = "A-Za-z0-9"
    """The characters a name may start with."""
    last: str = "A-Za-z0-9"
    """The characters a name may end with."""
    double_hyphens: bool = True
    lowercase: bool = False
    """Whether Azure accepts lowercase only."""

    @property
    def hyphens(self) -> bool:
        return r"\-" in self.chars

    @property
    def pattern(self) -> str:
        body = f"[{self.first}]([{self.chars}]*[{self.last}])?"
        return body if self.double_hyphens else f"(?!.*--){body}"

    def violation(self, name: object) -> str | None:
        """Why `name` breaks this rule, or None."""
        if not isinstance(name, str):
            return f"{name!r} is not a name"
        low, high = self.lengths
        if not low <= len(name) <= high:
            return f"{name!r} has {len(name)} characters; {self.resource} takes {low}-{high}"
        if not re.fullmatch(self.pattern, name):
            return f"{name!r} breaks {self.resource}'s rule: {self.allowed}"
        return None


_ENDS = "start and end alphanumeric"
_NETWORK = "letters, digits, underscores, periods and hyphens; start alphanumeric, end alphanumeric or underscore"
RULES: dict[str, NameRule] = {
    # Azure allows 90 for resource groups, 64 for VNets and 80 for subnets; AKS writes the names of its network's
    # resource group, VNet and subnet into node labels (reported for CNI overlay), whose values Kubernetes caps at
    # 63: turnout keeps all three within 63.
    "resource_group": NameRule(
        "Microsoft.Resources/resourceGroups",
        (1, 63),
        r"A-Za-z0-9_.()\-",
        "letters, digits, underscores, hyphens, periods and parentheses; not ending in a period",
        "subscription",
        first=r"A-Za-z0-9_.()\-",
        last=r"A-Za-z0-9_()\-",
    ),
    "virtual_network": NameRule(
        "Microsoft.Network/virtualNetworks",
        (2, 63),
        r"A-Za-z0-9_.\-",
        _NETWORK,
        "resource group",
        last="A-Za-z0-9_",
    ),
    "subnet": NameRule(
        "Microsoft.Network/virtualNetworks/subnets",
        (1, 63),
        r"A-Za-z0-9_.\-",
        _NETWORK,
        "virtual network",
        last="A-Za-z0-9_",
    ),
    "managed_identity": NameRule(
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        (3, 128),
        r"A-Za-z0-9_\-",
        "letters, digits, hyphens and underscores; start with a letter or digit",
        "resource group",
        last=r"A-Za-z0-9_\-",
    ),
    "log_analytics_workspace": NameRule(
        "Microsoft.OperationalInsights/workspaces",
        (4, 63),
        r"A-Za-z0-9\-",
        f"letters, digits and hyphens; {_ENDS}",
        "resource group",
    ),
    "key_vault": NameRule(
        "Microsoft.KeyVault/vaults",
        (3, 24),
        r"A-Za-z0-9\-",
        "letters, digits and hyphens; start with a letter, end with a letter or digit, no consecutive hyphens",
        "global",
        first="A-Za-z",
        double_hyphens=False,
    ),
    "key_vault_key": NameRule(
        "Microsoft.KeyVault/vaults/keys",
        (1, 127),
        r"A-Za-z0-9\-",
        "letters, digits and hyphens",
        "vault",
        first=r"A-Za-z0-9\-",
        last=r"A-Za-z0-9\-",
    ),
    "aks_cluster": NameRule(
        "Microsoft.ContainerService/managedClusters",
        (1, 63),
        r"A-Za-z0-9_\-",
        f"letters, digits, underscores and hyphens; {_ENDS}",
        "resource group",
    ),
    "aks_dns_prefix": NameRule(
        "managedClusters dnsPrefix", (1, 54), r"A-Za-z0-9\-", f"letters, digits and hyphens; {_ENDS}", "cluster"
    ),
    "aks_agent_pool": NameRule(
        "Microsoft.ContainerService/managedClusters/agentPools",
        (1, 12),
        "a-z0-9",
        "lowercase letters and digits, starting with a letter (Linux pools)",
        "cluster",
        first="a-z",
        last="a-z0-9",
        lowercase=True,
    ),
    "redis": NameRule(
        "Microsoft.Cache/Redis",
        (1, 63),
        r"A-Za-z0-9\-",
        f"letters, digits and hyphens; {_ENDS}; no consecutive hyphens",
        "global",
        double_hyphens=False,
    ),
    "redis_enterprise": NameRule(
        "Microsoft.Cache/redisEnterprise",
        (1, 60),
        r"A-Za-z0-9\-",
        f"letters, digits and hyphens; {_ENDS}; no consecutive hyphens",
        "global",
        double_hyphens=False,
    ),
    "storage_account": NameRule(
        "Microsoft.Storage/storageAccounts",
        (3, 24),
        "a-z0-9",
        "lowercase letters and digits",
        "global",
        first="a-z0-9",
        last="a-z0-9",
        lowercase=True,
    ),
    "private_endpoint": NameRule(
        "Microsoft.Network/privateEndpoints",
        (2, 64),
        r"A-Za-z0-9_.\-",
        _NETWORK,
        "resource group",
        last="A-Za-z0-9_",
    ),
    "private_dns_zone_link": NameRule(
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
        (1, 80),
        r"A-Za-z0-9_.\-",
        _NETWORK,
        "private DNS zone",
        last="A-Za-z0-9_",
    ),
    "traffic_manager_profile": NameRule(
        "Microsoft.Network/trafficmanagerprofiles",
        (1, 63),
        r"A-Za-z0-9.\-",
        f"letters, digits, hyphens and periods; {_ENDS}",
        "global",
    ),
    "traffic_manager_dns_name": NameRule(
        "trafficmanagerprofiles relativeName (<name>.trafficmanager.net)",
        (1, 63),
        r"a-z0-9\-",
        "a DNS label: lowercase letters, digits and hyphens",
        "global",
        first="a-z0-9",
        last="a-z0-9",
        lowercase=True,
    ),
    "traffic_manager_endpoint": NameRule(
        "Microsoft.Network/trafficmanagerprofiles/externalEndpoints",
        (1, 260),
        r"A-Za-z0-9_.\-",
        "letters, digits, underscores, periods and hyphens (turnout's subset)",
        "profile",
    ),
    "role_assignment": NameRule(
        "Microsoft.Authorization/roleAssignments",
        (36, 36),
        r"0-9a-f\-",
        "a GUID",
        "tenant",
        first="0-9a-f",
        last="0-9a-f",
    ),
    "diagnostic_setting": NameRule(
        "Microsoft.Insights/diagnosticSettings",
        (1, 260),
        r"A-Za-z0-9_.\-",
        "letters, digits, underscores, periods and hyphens (turnout's subset)",
        "resource",
    ),
}

# Where each resource type carries its name, and the rule it follows.
NAME_INPUTS: dict[str, tuple[str, str]] = {
    "azure-native:resources:ResourceGroup": ("resourceGroupName", "resource_group"),
    "azure-native:network:VirtualNetwork": ("virtualNetworkName", "virtual_network"),
    "azure-native:network:Subnet": ("subnetName", "subnet"),
    "azure-native:managedidentity:UserAssignedIdentity": ("resourceName", "managed_identity"),
    "azure-native:operationalinsights:Workspace": ("workspaceName", "log_analytics_workspace"),
    "azure-native:keyvault:Vault": ("vaultName", "key_vault"),
    "azure-native:keyvault:Key": ("keyName", "key_vault_key"),
    "azure-native:containerservice:ManagedCluster": ("resourceName", "aks_cluster"),
    "azure-native:containerservice:AgentPool": ("agentPoolName", "aks_agent_pool"),
    "azure-native:redis:Redis": ("name", "redis"),
    "azure-native:redisenterprise:RedisEnterprise": ("clusterName", "redis_enterprise"),
    "azure-native:storage:StorageAccount": ("accountName", "storage_account"),
    "azure-native:network:PrivateEndpoint": ("privateEndpointName", "private_endpoint"),
    "azure-native:privatedns:VirtualNetworkLink": ("virtualNetworkLinkName", "private_dns_zone_link"),
    "azure-native:trafficmanager:Profile": ("profileName", "traffic_manager_profile"),
    "azure-native:trafficmanager:Endpoint": ("endpointName", "traffic_manager_endpoint"),
    "azure-native:authorization:RoleAssignment": ("roleAssignmentName", "role_assignment"),
    "azure-native:monitor:DiagnosticSetting": ("name", "diagnostic_setting"),
}
# Names inside another input: (type, path to the value, rule).
NESTED_NAMES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("azure-native:containerservice:ManagedCluster", ("dnsPrefix",), "aks_dns_prefix"),
    ("azure-native:trafficmanager:Profile", ("dnsConfig", "relativeName"), "traffic_manager_dns_name"),
)


def _allowed_part(rule: NameRule, name: str) -> str:
    """What `rule` allows of `name`: case folded if it must be, other characters replaced by hyphens (dropped
    where hyphens are not allowed), no doubled hyphens, and ends the rule accepts."""
    text = name.lower() if rule.lowercase else name
    text = re.sub(f"[^{rule.chars}]", "-" if rule.hyphens else "", text)
    if rule.hyphens:
        text = re.sub(r"-{2,}", "-", text)
    text = re.sub(f"^[^{rule.first}]+", "", text)
    return re.sub(f"[^{rule.last}]+$", "", text)


def _starts_right(rule: NameRule, text: str, prefix: str) -> str:
    return text if text and re.match(f"[{rule.first}]", text) else prefix + text


def azure_name(kind: str, name: str) -> str:
    """`name` as `kind`'s rule allows it: its allowed characters, and when that changed it or it is longer than
    the rule allows, a stable hash of the whole original (`turnout.naming.fit`), so distinct names stay distinct
    and the same name always gives the same result."""
    rule = RULES[kind]
    text = _starts_right(rule, _allowed_part(rule, name), "n" if not rule.lowercase else "p")
    separator = "-" if rule.hyphens else ""
    if text != name:  # any change keeps a hash of the original, so two names cannot fold into one
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        room = rule.lengths[1] - len(digest) - len(separator)
        text = f"{text[:room].rstrip('-_.')}{separator}{digest}"
    else:
        text = fit(text, rule.lengths[1], separator=separator)
    problem = rule.violation(text)
    if problem:  # the table and this function disagree: a turnout bug, not the user's
        raise ValueError(f"azure_name({kind!r}, {name!r}): {problem}")
    return text


def global_name(kind: str, name: str, subscription_id: str) -> str:
    """`name` for a resource whose name is unique across Azure: what the rule allows of it, cut to leave room
    for GLOBAL_DIGEST hex digits of sha256(subscription/name) (after a hyphen where hyphens are allowed), so the
    same stack in two subscriptions (or organisations) never claims the same name, and one stack always the same."""
    rule = RULES[kind]
    stem = _starts_right(rule, _allowed_part(rule, name), "kv" if kind == "key_vault" else "p")
    digest = hashlib.sha256(f"{subscription_id}/{name}".encode()).hexdigest()[:GLOBAL_DIGEST]
    separator = "-" if rule.hyphens else ""
    room = rule.lengths[1] - len(digest) - len(separator)
    result = f"{stem[:room].rstrip('-_.')}{separator}{digest}"
    problem = rule.violation(result)
    if problem:
        raise ValueError(f"global_name({kind!r}, {name!r}): {problem}")
    return result


def name_violations(type_: str, inputs: dict) -> list[str]:
    """Each way a planned resource's Azure names break the table (empty when they fit, or for other types)."""
    found = []
    if type_ in NAME_INPUTS:
        key, kind = NAME_INPUTS[type_]
        if key in inputs:
            problem = RULES[kind].violation(inputs[key])
            if problem:
                found.append(f"{type_} {key}: {problem}")
    for nested_type, path, kind in NESTED_NAMES:
        if nested_type != type_:
            continue
        value: object = inputs
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            problem = RULES[kind].violation(value)
            if problem:
                found.append(f"{type_} {'.'.join(path)}: {problem}")
    return found
