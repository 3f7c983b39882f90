"""Who `pulumi up` is on AWS, once: the stack's `aws:` identity settings, handed to every explicit AWS provider
and to the EKS kubeconfig's `aws eks get-token`, so the Kubernetes provider signs in as the same principal that
created the cluster (the one EKS makes its admin).

An explicit `aws.Provider` does not read the stack's `aws:*` configuration (by design: pulumi/pulumi-aws#1307;
it reads only its own arguments and the environment). turnout creates one per region, so it passes them on:
`aws:profile` and `aws:assumeRoles`. The kubeconfig's exec block gets the same: `AWS_PROFILE` in its
environment and `--role-arn` for an assumed role. Settings the exec block cannot reproduce (static keys,
a web-identity role, a role chain, an external id or session policy) are refused, naming the `aws:` key and
how to express the same identity as a profile in `~/.aws/config`, which both the provider and the CLI read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from turnout.errors import ConfigError, describe

AWS_NAMESPACE = "aws"
# What `aws eks get-token` can take for an assumed role: the role itself (and a session name STS makes up).
ROLE_FIELDS = {"roleArn": "role_arn", "sessionName": "session_name"}
UNREPRODUCIBLE_ROLE_FIELDS = (
    "externalId",
    "policy",
    "policyArns",
    "tags",
    "transitiveTagKeys",
    "sourceIdentity",
    "duration",
)
# aws: keys that hold credentials or a way to get them that the kubeconfig's `aws` CLI would not see.
UNREPRODUCIBLE_KEYS = ("accessKey", "secretKey", "token", "assumeRoleWithWebIdentity")
AS_PROFILE = (
    "a named profile in ~/.aws/config (role_arn, source_profile, external_id, web_identity_token_file, "
    "credential_process or sso_session) given as aws:profile, which the AWS provider and the kubeconfig's "
    "`aws eks get-token` both read"
)
FILE_SETTINGS = {"sharedConfigFiles": "AWS_CONFIG_FILE", "sharedCredentialsFiles": "AWS_SHARED_CREDENTIALS_FILE"}


@dataclass(frozen=True)
class DeployerIdentity:
    """The deployer's AWS identity as the stack configures it; empty means the ambient credential chain."""

    profile: str | None = None
    role_arn: str | None = None
    session_name: str | None = None
    files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """aws:sharedConfigFiles / aws:sharedCredentialsFiles, by key."""

    def provider_args(self) -> dict:
        """Arguments for an explicit `aws.Provider`, so it signs in as the stack's default provider would."""
        args: dict = {}
        if self.profile:
            args["profile"] = self.profile
        if self.role_arn:
            args["assume_roles"] = [aws.ProviderAssumeRoleArgs(role_arn=self.role_arn, session_name=self.session_name)]
        if self.files.get("sharedConfigFiles"):
            args["shared_config_files"] = list(self.files["sharedConfigFiles"])
        if self.files.get("sharedCredentialsFiles"):
            args["shared_credentials_files"] = list(self.files["sharedCredentialsFiles"])
        return args

    def get_token_args(self) -> list[str]:
        """Extra arguments of `aws eks get-token`."""
        return ["--role-arn", self.role_arn] if self.role_arn else []

    def get_token_env(self) -> list[dict[str, str]]:
        """The exec block's environment: the profile and the files the provider reads."""
        env = [{"name": "AWS_PROFILE", "value": self.profile}] if self.profile else []
        for key, variable in FILE_SETTINGS.items():
            if self.files.get(key):
                # The CLI takes one file per variable; more than one is refused by `deployer_identity`.
                env.append({"name": variable, "value": self.files[key][0]})
        return env

    def describe(self) -> str:
        """How the plan names the identity."""
        base = f"AWS profile {self.profile!r}" if self.profile else "the deployer's ambient AWS credentials"
        if self.role_arn:
            return f"IAM role {self.role_arn} (assumed with {base})"
        return base


def deployer_identity(values: Mapping[str, str | None]) -> DeployerIdentity:
    """The identity from the raw `aws:` config values (strings; structured ones JSON-encoded, as Pulumi hands
    them to a program). Raises ConfigError naming the `aws:` key for what the kubeconfig could not reproduce."""
    for key in UNREPRODUCIBLE_KEYS:
        if values.get(key):
            raise ConfigError(
                f"{AWS_NAMESPACE}:{key}",
                "a value set (the kubeconfig's `aws eks get-token` would not use it)",
                f"no {key} on a turnout stack: use {AS_PROFILE}",
            )
    profile = values.get("profile") or None
    files: dict[str, tuple[str, ...]] = {}
    for key in FILE_SETTINGS:
        listed = _json(values.get(key), f"{AWS_NAMESPACE}:{key}")
        if listed is None:
            continue
        if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed) or len(listed) > 1:
            raise ConfigError(
                f"{AWS_NAMESPACE}:{key}",
                describe(listed),
                f"a list of one file (the AWS CLI, which the kubeconfig runs, reads one {FILE_SETTINGS[key]})",
            )
        if listed:
            files[key] = tuple(listed)
    roles = _json(values.get("assumeRoles"), f"{AWS_NAMESPACE}:assumeRoles")
    if roles in (None, []):
        return DeployerIdentity(profile=profile, files=files)
    path = f"{AWS_NAMESPACE}:assumeRoles"
    if not isinstance(roles, list):
        raise ConfigError(path, describe(roles), "a list of one role to assume ({roleArn, sessionName})")
    if len(roles) > 1:
        raise ConfigError(
            path,
            f"a chain of {len(roles)} roles",
            f"one role (`aws eks get-token --role-arn` assumes one), or {AS_PROFILE}",
        )
    role = roles[0]
    if not isinstance(role, dict) or not isinstance(role.get("roleArn"), str) or not role["roleArn"]:
        raise ConfigError(
            f"{path}[0].roleArn",
            describe(role.get("roleArn") if isinstance(role, dict) else role),
            "the ARN of the role to assume",
        )
    for key in UNREPRODUCIBLE_ROLE_FIELDS:
        if role.get(key) not in (None, "", [], {}):
            raise ConfigError(
                f"{path}[0].{key}",
                "a value set (`aws eks get-token --role-arn` cannot pass it)",
                f"only roleArn and sessionName, or {AS_PROFILE}",
            )
    unknown = sorted(set(role) - set(ROLE_FIELDS) - set(UNREPRODUCIBLE_ROLE_FIELDS))
    if unknown:
        raise ConfigError(f"{path}[0].{unknown[0]}", "an unknown key", "roleArn or sessionName")
    return DeployerIdentity(
        profile=profile, role_arn=role["roleArn"], session_name=role.get("sessionName") or None, files=files
    )


def _json(value: str | None, path: str):
    if value is None or value == "":
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise ConfigError(path, describe(value), "a YAML list") from None


def stack_identity() -> DeployerIdentity:
    """The running stack's identity (`aws:` config), checked."""
    config = pulumi.Config(AWS_NAMESPACE)
    keys = ("profile", "assumeRoles", *UNREPRODUCIBLE_KEYS, *FILE_SETTINGS)
    return deployer_identity({key: config.get(key) for key in keys})
