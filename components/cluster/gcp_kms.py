"""A customer-managed Cloud KMS key for a Google service agent (GKE secrets, Memorystore).

Cloud KMS never deletes key rings or keys (destroying a key only schedules its versions' destruction),
so a stack destroyed and created again would ask for the same key ring id and fail with 409
ALREADY_EXISTS. The key ring's id therefore ends in a random suffix (pulumi-random's `RandomId`), made
once and kept in the stack's state: stable for the stack's life, new when the stack is recreated.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from components.cluster.gcp_limits import gcp_name
from turnout.naming import child

SECRETS_KEY_ROTATION = "7776000s"  # 90 days
KMS_ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
RING_SUFFIX_BYTES = 3  # six hex characters


def service_agent_key(
    name: str,
    *,
    key_ring_name: str,
    key_name: str,
    resources: tuple[str, str],
    region: str,
    project_number: pulumi.Input[str],
    agent: str,
    opts: pulumi.ResourceOptions,
) -> tuple[gcp.kms.CryptoKey, gcp.kms.CryptoKeyIAMMember]:
    """A customer-managed key (rotated every 90 days) in a key ring of its own, `<key_ring_name>-<random hex>`,
    and the grant that lets a Google service agent (`service-<number>@<agent>.iam.gserviceaccount.com`) encrypt
    with it. Whatever the agent encrypts must wait for the grant. `resources` names the key and the grant under
    `name`."""
    suffix = random.RandomId(
        child(name, "keyring-suffix"),
        byte_length=RING_SUFFIX_BYTES,
        opts=pulumi.ResourceOptions(parent=opts.parent),
    )
    prefix = gcp_name("kms_key_ring", key_ring_name, reserve=2 * RING_SUFFIX_BYTES + 1)
    key_ring = gcp.kms.KeyRing(
        child(name, "keyring"),
        name=suffix.hex.apply(lambda hex_: f"{prefix}-{hex_}"),
        location=region,
        opts=opts,
    )
    key = gcp.kms.CryptoKey(
        child(name, resources[0]),
        name=gcp_name("kms_crypto_key", key_name),
        key_ring=key_ring.id,
        purpose="ENCRYPT_DECRYPT",
        rotation_period=SECRETS_KEY_ROTATION,
        opts=opts,
    )
    grant = gcp.kms.CryptoKeyIAMMember(
        child(name, resources[1]),
        crypto_key_id=key.id,
        role=KMS_ENCRYPTER_DECRYPTER,
        member=pulumi.Output.from_input(project_number).apply(
            lambda number: f"serviceAccount:service-{number}@{agent}.iam.gserviceaccount.com"
        ),
        opts=opts,
    )
    return key, grant
