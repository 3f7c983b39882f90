"""Image pull Secrets of an endpoint's namespace (`endpoints.NAME.pullSecrets`): Secrets you create there yourself
(External Secrets, Vault...), named only, and Secrets turnout creates (`kubernetes.io/dockerconfigjson`) from a
registry, a user and a password or token kept as a Pulumi secret.

The password is read with `pulumi.Config.get_secret` and stays a secret Output: Pulumi keeps it encrypted in
state, and `turnout plan` writes neither it nor the Docker config made from it (inventory inputs and Secret
manifests are redacted). A value set without `--secret` is refused: it would sit in the stack file in clear.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime.config import is_config_secret

from turnout.config import PullSecret, key_path
from turnout.errors import ConfigError
from turnout.naming import child, labels

DOCKER_CONFIG_KEY = ".dockerconfigjson"


def docker_config(registry: str, username: str, password: str) -> str:
    """The `.dockerconfigjson` a kubelet reads: one registry, its user and password, and both as `auth`."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"username": username, "password": password, "auth": auth}}})


def registry_password(secret: PullSecret, path: str) -> pulumi.Output[str]:
    """The password from the Pulumi config key the stack names, refusing a missing or plain-text one."""
    namespace, _, key = secret.password_config.partition(":")
    how = f"a secret: `pulumi config set --secret {secret.password_config} <password or token>`"
    value = pulumi.Config(namespace).get_secret(key)
    if value is None:
        raise ConfigError(path, f"no value at {secret.password_config}", how)
    if not is_config_secret(secret.password_config):
        found = f"a plain-text value at {secret.password_config}, kept in the stack file in clear"
        raise ConfigError(path, found, how)
    return value


@dataclass(frozen=True, kw_only=True)
class PullSecretsArgs:
    namespace: str
    endpoint: str
    tier: str
    secrets: tuple[PullSecret, ...]
    after: tuple[pulumi.Resource, ...]
    """The namespace the Secrets go in."""


class PullSecrets(pulumi.ComponentResource):
    names: tuple[str, ...]
    """Every pull Secret, for the pods' `imagePullSecrets`."""
    ready: list[pulumi.Resource]
    """The Secrets turnout creates: pods wait for them (a pull that fails backs off for minutes)."""

    def __init__(self, name: str, args: PullSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:PullSecrets", name, None, opts)
        self.names = tuple(secret.name for secret in args.secrets)
        self.ready = []
        for index, secret in enumerate(args.secrets):
            if secret.registry is None:
                continue  # the stack's own Secret: named only
            path = key_path(f"endpoints.{args.endpoint}.pullSecrets[{index}].passwordConfig")
            password = registry_password(secret, path)
            self.ready.append(
                k8s.core.v1.Secret(
                    child(name, secret.name),
                    metadata={
                        "name": secret.name,
                        "namespace": args.namespace,
                        "labels": labels(args.endpoint, None, args.tier),
                    },
                    type="kubernetes.io/dockerconfigjson",
                    string_data={
                        DOCKER_CONFIG_KEY: pulumi.Output.secret(
                            password.apply(lambda value, s=secret: docker_config(s.registry, s.username, value))
                        )
                    },
                    opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
                )
            )
        self.register_outputs({"secrets": list(self.names)})
