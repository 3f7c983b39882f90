"""cache-encryption-in-transit: clients reach a managed cache over TLS only.

- ElastiCache replication groups: `transitEncryptionEnabled` (AWS's default is off) and not
  `transitEncryptionMode: preferred`, which still accepts plaintext clients. A secondary of a global
  datastore (`globalReplicationGroupId`) inherits the primary's setting and is not read; the primary is.
- Memorystore for Redis: `transitEncryptionMode: SERVER_AUTHENTICATION` (GCP's default is DISABLED).
- Azure Cache for Redis: no `enableNonSslPort`, and `minimumTlsVersion` 1.2 or later, said explicitly
  (older API versions defaulted to TLS 1.0).
- Azure Managed Redis: databases without `clientProtocol: Plaintext` (the default is Encrypted), and
  clusters whose `minimumTlsVersion`, when set, is 1.2 or later.

The in-cluster Redis of kind stacks (the mesh's STRICT mTLS encrypts pod-to-pod traffic) and every other
resource: not applicable.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._cloud import (
    AZURE_MANAGED_REDIS,
    AZURE_MANAGED_REDIS_DATABASE,
    AZURE_REDIS,
    ELASTICACHE_GROUP,
    MEMORYSTORE,
    UNKNOWN,
    display_name,
    global_datastore_secondary,
    is_true,
    read,
    type_of,
)

MINIMUM_TLS = (1, 2)


def tls_problem(version) -> str | None:
    """What is wrong with a minimumTlsVersion ("1.2"), or None."""
    if version is UNKNOWN:
        return None
    if not version:
        return "no minimumTlsVersion (say 1.2: older API versions let clients use TLS 1.0)."
    parts = str(version).split(".")
    if all(p.isdigit() for p in parts) and tuple(int(p) for p in parts) >= MINIMUM_TLS:
        return None
    return f"minimumTlsVersion {version} admits TLS older than 1.2."


def problems(resource_type: str, props) -> list[str]:
    kind = type_of(resource_type)
    if kind == ELASTICACHE_GROUP and not global_datastore_secondary(props):
        enabled = read(props, "transitEncryptionEnabled")
        if enabled is not UNKNOWN and not is_true(enabled):
            return ["clients connect in plaintext (transitEncryptionEnabled is off)."]
        if str(read(props, "transitEncryptionMode")).lower() == "preferred":
            return ["plaintext clients are still accepted (transitEncryptionMode preferred, not required)."]
    elif kind == MEMORYSTORE:
        mode = read(props, "transitEncryptionMode")
        if mode not in ("SERVER_AUTHENTICATION", UNKNOWN):
            return [f"clients connect in plaintext (transitEncryptionMode {mode or 'DISABLED, the default'})."]
    elif kind == AZURE_REDIS:
        found = []
        if is_true(read(props, "enableNonSslPort")):
            found.append("the non-TLS port 6379 is open (enableNonSslPort).")
        tls = tls_problem(read(props, "minimumTlsVersion"))
        return found + ([tls] if tls else [])
    elif kind == AZURE_MANAGED_REDIS:
        version = read(props, "minimumTlsVersion")
        tls = tls_problem(version) if version is not None else None
        return [tls] if tls else []
    elif kind == AZURE_MANAGED_REDIS_DATABASE and str(read(props, "clientProtocol")).lower() == "plaintext":
        return ["clients connect in plaintext (clientProtocol Plaintext)."]
    return []


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for problem in problems(args.resource_type, args.props):
        report_violation(f"{display_name(args.resource_type, args.props, args.name)}: {problem}")


cache_encryption_in_transit = ResourceValidationPolicy(
    name="cache-encryption-in-transit",
    description="Clients reach managed caches over TLS only (ElastiCache, Memorystore, Azure Cache for Redis, "
    "Azure Managed Redis).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="ElastiCache: transit_encryption_enabled=True (mode required). Memorystore: "
    "transit_encryption_mode SERVER_AUTHENTICATION. Azure: enable_non_ssl_port False, minimum_tls_version 1.2; "
    "Azure Managed Redis: client_protocol Encrypted.",
)
