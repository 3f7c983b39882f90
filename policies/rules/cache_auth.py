"""cache-auth: a cache answers only clients that authenticate.

- ElastiCache replication groups: an `authToken` (`authTokenWoVersion` for a write-only token) or
  `userGroupIds` (RBAC users). A secondary of a global datastore (`globalReplicationGroupId`) inherits
  the primary's AUTH and is not read; the primary is.
- Memorystore for Redis: `authEnabled` (GCP's default is off).
- Azure Cache for Redis: not `redisConfiguration.authnotrequired: "true"`. Access keys or Entra ID
  (`redisConfiguration.aadEnabled`) otherwise always apply.
- Azure Managed Redis: not read; its databases always ask for an access key or an Entra ID token.
- In-cluster Redis (a StatefulSet or Deployment running a redis or valkey image, as on kind): each such
  container starts with `--requirepass $(VAR)` or gets `REDIS_PASSWORD` (or `REDIS_PASSWORD_FILE`,
  `VALKEY_PASSWORD`, `VALKEY_PASSWORD_FILE`) from a Secret; a password written into the manifest fails.
  A password set in a mounted redis.conf is not seen: disable the rule for that stack in the policy config.

Every other resource: not applicable.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._cloud import (
    AZURE_REDIS,
    ELASTICACHE_GROUP,
    MEMORYSTORE,
    UNKNOWN,
    display_name,
    global_datastore_secondary,
    is_true,
    items,
    read,
    type_of,
)
from ._kubernetes import object_name, pod_spec_of

REDIS_IMAGES = frozenset({"redis", "valkey", "redis-stack", "redis-stack-server"})
PASSWORD_VARIABLES = ("REDIS_PASSWORD", "REDIS_PASSWORD_FILE", "VALKEY_PASSWORD", "VALKEY_PASSWORD_FILE")
OPEN = "anyone who reaches it can read and write it"


def image_name(image) -> str:
    """`docker.io/bitnami/redis:7.4@sha256:...` → redis."""
    if not isinstance(image, str):
        return ""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def _env_sources(container) -> dict[str, str]:
    """Each environment variable's source: secret, literal or other (ConfigMap, field ref)."""
    sources = {}
    for variable in items(container, "env"):
        name = read(variable, "name")
        if read(variable, "valueFrom", "secretKeyRef") is not None:
            sources[name] = "secret"
        elif read(variable, "valueFrom") is not None:
            sources[name] = "other"
        else:
            sources[name] = "literal"
    return sources


def _requirepass(container) -> str | None:
    """The value --requirepass is given in the container's command or args; "" when there is none."""
    words = [
        word.strip("'\"")
        for part in (*items(container, "command"), *items(container, "args"))
        if isinstance(part, str)
        for word in part.split()
    ]
    if "--requirepass" not in words:
        return None
    index = words.index("--requirepass") + 1
    return words[index] if index < len(words) else ""


def redis_container_problem(container) -> str | None:
    sources = _env_sources(container)
    from_secret_files = any(read(source, "secretRef") is not None for source in items(container, "envFrom"))
    password = _requirepass(container)
    if password is not None:
        variable = password.lstrip("$").strip("(){}")
        if not password.startswith("$"):
            return "passes its --requirepass password in plain text in the manifest."
        if sources.get(variable) == "literal":
            return f"takes its --requirepass password from {variable}, written in plain text in the manifest."
        if sources.get(variable) == "secret" or from_secret_files:
            return None
        return f"takes its --requirepass password from {variable}, which no Secret provides."
    for variable in PASSWORD_VARIABLES:
        if sources.get(variable) == "secret":
            return None
        if sources.get(variable) == "literal":
            return f"has its {variable} written in plain text in the manifest."
    return f"starts without a password (no --requirepass, no REDIS_PASSWORD from a Secret): {OPEN}."


def problems(resource_type: str, props) -> list[str]:
    kind = type_of(resource_type)
    if kind == ELASTICACHE_GROUP and not global_datastore_secondary(props):
        token = read(props, "authToken")
        token_version = read(props, "authTokenWoVersion")
        users = items(props, "userGroupIds")
        if not (token or token_version or users):
            return [f"no AUTH token and no RBAC user group (authToken, userGroupIds): {OPEN}."]
    elif kind == MEMORYSTORE:
        enabled = read(props, "authEnabled")
        if enabled is None:
            return [f"AUTH is off (no authEnabled; GCP's default is off): {OPEN}."]
        if enabled is not UNKNOWN and not is_true(enabled):
            return [f"AUTH is off (authEnabled false): {OPEN}."]
    elif kind == AZURE_REDIS and is_true(read(props, "redisConfiguration", "authnotrequired")):
        return [f"authentication is disabled (redisConfiguration.authnotrequired): {OPEN}."]
    return []


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for problem in problems(args.resource_type, args.props):
        report_violation(f"{display_name(args.resource_type, args.props, args.name)}: {problem}")
    pod = pod_spec_of(args.resource_type, args.props)
    if pod is None:
        return
    for container in (*items(pod, "initContainers"), *items(pod, "containers")):
        if image_name(read(container, "image")) not in REDIS_IMAGES:
            continue
        problem = redis_container_problem(container)
        if problem:
            report_violation(f"{object_name(args.props)}: container {read(container, 'name')} {problem}")


cache_auth = ResourceValidationPolicy(
    name="cache-auth",
    description="Caches answer only authenticated clients (ElastiCache AUTH or RBAC, Memorystore AUTH, Azure keys "
    "or Entra ID, in-cluster Redis with a password from a Secret).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="ElastiCache: auth_token (a secret) or user_group_ids. Memorystore: auth_enabled=True. Azure: "
    "drop authnotrequired. In-cluster Redis: args ['--requirepass', '$(REDIS_PASSWORD)'] with REDIS_PASSWORD from a "
    "Secret (valueFrom.secretKeyRef).",
)
