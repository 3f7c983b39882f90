"""A self-signed TLS certificate for kind's gateway, made with openssl on `pulumi up`."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from turnout.naming import child

_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\n?", re.S)


def split_pems(text: str) -> dict[str, str]:
    """openssl prints the key and the certificate to one stream; tell them apart by their labels."""
    found = {}
    for match in _PEM.finditer(text or ""):
        label = "tls.crt" if match.group(1) == "CERTIFICATE" else "tls.key"
        found[label] = match.group(0)
    return found


@dataclass(frozen=True, kw_only=True)
class SelfSignedCertificateArgs:
    domain: str
    secret_name: str
    namespace: str
    after: tuple[pulumi.Resource, ...]
    """The namespace the secret goes in."""


class SelfSignedCertificate(pulumi.ComponentResource):
    secret: k8s.core.v1.Secret

    def __init__(self, name: str, args: SelfSignedCertificateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:SelfSignedCertificate", name, None, opts)
        subject = f"*.{args.domain}"
        generated = command.local.Command(
            child(name, "openssl"),
            create=(
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 "
                f'-subj "/CN={subject}" -addext "subjectAltName=DNS:{subject},DNS:{args.domain}" '
                "-keyout /dev/stdout -out /dev/stdout 2>/dev/null"
            ),
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout"]),
        )
        pems = pulumi.Output.secret(generated.stdout).apply(split_pems)
        self.secret = k8s.core.v1.Secret(
            child(name, "secret"),
            metadata={"name": args.secret_name, "namespace": args.namespace},
            type="kubernetes.io/tls",
            string_data=pems,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.register_outputs({"secret": args.secret_name})
