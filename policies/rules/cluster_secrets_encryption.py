"""cluster-secrets-encryption: Kubernetes Secrets are envelope-encrypted with a key the stack's own
account controls (it can rotate, audit and revoke it).

- EKS: `encryptionConfig` covering `secrets` with `provider.keyArn` (a customer-managed KMS key).
- GKE: `databaseEncryption.state: ENCRYPTED` with `keyName` (application-layer secrets encryption, Cloud KMS).
- AKS: `securityProfile.azureKeyVaultKms.enabled` with `keyId` (KMS etcd encryption, Azure Key Vault).

What each cloud does with no opt-in is not enough here, so it is not accepted: all three encrypt etcd's
disks with provider-managed keys, and EKS (Kubernetes 1.28 and later) also envelope-encrypts API data
with an AWS-owned key, but none of those keys is the cluster owner's to rotate, audit or revoke.

Kind clusters (a local disk) and every other resource: not applicable.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._cloud import AKS_CLUSTER, EKS_CLUSTER, GKE_CLUSTER, UNKNOWN, display_name, is_true, items, read, type_of

MANDATORY_IN = ("prod",)  # advisory below prod


def _set(value) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and bool(value))


def problem(resource_type: str, props) -> str | None:
    kind = type_of(resource_type)
    if kind == EKS_CLUSTER:
        config = read(props, "encryptionConfig")
        covered = config is UNKNOWN or (
            any(r is UNKNOWN or r == "secrets" for r in items(config, "resources"))
            and _set(read(config, "provider", "keyArn"))
        )
        return (
            None if covered else "Secrets are not envelope-encrypted with a KMS key (no encryptionConfig for secrets)."
        )
    if kind == GKE_CLUSTER:
        state = read(props, "databaseEncryption", "state")
        if state is UNKNOWN or (state == "ENCRYPTED" and _set(read(props, "databaseEncryption", "keyName"))):
            return None
        return "Secrets are not encrypted with a Cloud KMS key (databaseEncryption is not ENCRYPTED with a keyName)."
    if kind == AKS_CLUSTER:
        kms = read(props, "securityProfile", "azureKeyVaultKms")
        enabled = read(kms, "enabled")
        if kms is UNKNOWN or enabled is UNKNOWN or (is_true(enabled) and _set(read(kms, "keyId"))):
            return None
        return "Secrets are not encrypted with a Key Vault key (securityProfile.azureKeyVaultKms is not enabled)."
    return None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    found = problem(args.resource_type, args.props)
    if found:
        report_violation(f"{display_name(args.resource_type, args.props, args.name)}: {found}")


cluster_secrets_encryption = ResourceValidationPolicy(
    name="cluster-secrets-encryption",
    description="Kubernetes Secrets are envelope-encrypted with a customer-managed key (KMS, Cloud KMS, Key Vault).",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="Give the cluster a key of its own: EKS encryptionConfig {resources: [secrets], "
    "provider.keyArn}, GKE databaseEncryption {state: ENCRYPTED, keyName}, AKS securityProfile.azureKeyVaultKms "
    "{enabled, keyId}.",
)
