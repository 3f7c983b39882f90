"""Mocks that answer like the providers would, so program code that reads outputs runs offline.

Every answer is derived from the resource's type and name, never random, so two plans of the same
stack are identical and a pull request's plan diff shows only what the change did.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib
import importlib.util
import re

import pulumi

# A real self-signed certificate (EC P-256), generated once for offline plans: it parses like a
# cluster CA does and grants nothing.
OFFLINE_CA_PEM = """\
-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUI/QQcfM7r4NAFS7AulqUl//nxJ0wCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKa3ViZXJuZXRlczAeFw0yNjExMjExOTIxMTRaFw0zNjExMTgx
OTIxMTRaMBUxEzARBgNVBAMMCmt1YmVybmV0ZXMwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASpju/9jYOXZpbh+7tYyfTHAvnMzef1D+YR9aNL/gPHmrV1NNRdkqm+
bv+wbL+G9EbnyYUIENKdDOM0vxoDYt4mo1MwUTAdBgNVHQ4EFgQUjp8grGM6dE2n
nKtKpdDiuzCE7iswHwYDVR0jBBgwFoAUjp8grGM6dE2nnKtKpdDiuzCE7iswDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiAO7zpTbH0O6J5VcK7awEzP
skjtAAJYdcKsRkjAhEithwIhAKUaeMO88G3AS4k59Yo6ChEw83FArZN9vYh2PADl
CuIX
-----END CERTIFICATE-----
"""


def stable_hash(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def kind_kubeconfig(cluster: str) -> str:
    """A kubeconfig shaped exactly like `kind get kubeconfig` prints, for cluster `cluster`."""
    ca = base64.b64encode(OFFLINE_CA_PEM.encode()).decode()
    port = 30000 + int(stable_hash(cluster, length=4), 16) % 20000
    context = f"kind-{cluster}"
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        f"- cluster:\n    certificate-authority-data: {ca}\n    server: https://127.0.0.1:{port}\n  name: {context}\n"
        "contexts:\n"
        f"- context:\n    cluster: {context}\n    user: {context}\n  name: {context}\n"
        f"current-context: {context}\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        f"- name: {context}\n  user:\n    client-certificate-data: {ca}\n    client-key-data: T0ZGTElORQ==\n"
    )


# Shaped like a PKCS#8 key block; its content is a placeholder, not a key.
OFFLINE_KEY_PEM = "-----BEGIN PRIVATE KEY-----\nT0ZGTElORS1QTEFDRUhPTERFUi1OT1QtQS1LRVk=\n-----END PRIVATE KEY-----\n"


def _command_outputs(name: str, inputs: dict) -> dict:
    """What the commands turnout runs print: kind's kubeconfig, openssl's key and certificate."""
    create = inputs.get("create") or ""
    match = re.search(r"kind get kubeconfig --name (\S+)", create)
    if match:
        stdout = kind_kubeconfig(match.group(1))
    elif create.startswith("openssl req"):
        stdout = OFFLINE_KEY_PEM + OFFLINE_CA_PEM
    else:
        stdout = ""
    return {**inputs, "stdout": stdout, "stderr": ""}


def _kubernetes_outputs(type_: str, name: str, inputs: dict) -> dict:
    state = copy.deepcopy(inputs)
    metadata = state.setdefault("metadata", {})
    # Pulumi auto-names objects without a name by appending a suffix; the offline one is stable.
    metadata.setdefault("name", f"{name}-{stable_hash(type_, name)}")
    kind = state.get("kind")
    if kind not in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"):
        metadata.setdefault("namespace", "default")
    metadata["uid"] = "{}-{}-{}-{}-{}".format(
        *(stable_hash(type_, name, str(i), length=n) for i, n in enumerate((8, 4, 4, 4, 12)))
    )
    metadata["resourceVersion"] = "1"
    if kind == "Service":
        spec = state.setdefault("spec", {})
        digest = int(stable_hash(type_, name, length=4), 16)
        spec.setdefault("clusterIP", f"10.96.{digest // 256 % 256}.{digest % 254 + 1}")
        if spec.get("type") == "LoadBalancer":
            state["status"] = {"loadBalancer": {"ingress": [{"ip": f"203.0.113.{digest % 254 + 1}"}]}}
    return state


# Cloud providers' answers live in one module per cloud (turnout/offline/mocks_<cloud>.py), each with
# `resource_outputs(type_, name, inputs) -> dict | None` and `invoke(token, args) -> dict | None`, and
# optionally `read_outputs(type_, resource_id, provider_inputs) -> dict | None` for objects the program
# reads; None means "not mine". A module that is not there yet is skipped.
CLOUD_MOCK_MODULES = (
    "turnout.offline.mocks_cache",
    "turnout.offline.mocks_dns",
    "turnout.offline.mocks_aws",
    "turnout.offline.mocks_gcp",
    "turnout.offline.mocks_azure",
)


def _cloud_mocks() -> list:
    modules = []
    for name in CLOUD_MOCK_MODULES:
        if importlib.util.find_spec(name) is not None:
            modules.append(importlib.import_module(name))
    return modules


STACK_REFERENCE = "pulumi:pulumi:StackReference"


class OfflineMocks(pulumi.runtime.Mocks):
    """Provider answers for offline plans, per resource type; anything else echoes its inputs."""

    def __init__(self, stack_outputs=None) -> None:
        self._stack_outputs = stack_outputs
        """Answers StackReferences: org/project/stack → that stack's (planned) outputs."""
        self._clouds = _cloud_mocks()
        self._provider_inputs: dict[str, dict] = {}
        """Explicit providers' inputs by id: a read's answer may depend on the cluster its provider targets."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        type_ = args.typ
        resource_id = f"{args.name}-{stable_hash(type_, args.name)}"
        if type_ == STACK_REFERENCE:
            return self._stack_reference(inputs.get("name") or args.name)
        if args.resource_id:  # a read (`Resource.get`) of an existing object: modules with `read_outputs` answer
            provider_inputs = self._provider_inputs.get((args.provider or "").rsplit("::", 1)[-1], {})
            for cloud in self._clouds:
                read = getattr(cloud, "read_outputs", None)
                state = read(type_, args.resource_id, provider_inputs) if read else None
                if state is not None:
                    return args.resource_id, state
        for cloud in self._clouds:
            outputs = cloud.resource_outputs(type_, args.name, inputs)
            if outputs is not None:
                return resource_id, outputs
        if type_.startswith("pulumi:providers:"):
            provider_id = stable_hash("provider", type_, args.name, length=32)
            self._provider_inputs[provider_id] = inputs
            return provider_id, inputs
        if type_ == "command:local:Command":
            return resource_id, _command_outputs(args.name, inputs)
        if type_.startswith("kubernetes:"):
            state = _kubernetes_outputs(type_, args.name, inputs)
            metadata = state.get("metadata", {})
            namespace = metadata.get("namespace")
            return (f"{namespace}/{metadata['name']}" if namespace else metadata["name"]), state
        return resource_id, inputs

    def _stack_reference(self, name: str) -> tuple[str, dict]:
        if self._stack_outputs is None:
            raise ValueError(f"StackReference {name!r}: no planned stacks to read outputs from")
        return name, {"name": name, "outputs": self._stack_outputs(name), "secretOutputNames": []}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        # The mock monitor iterates the second element as check failures: an empty list, never None.
        for cloud in self._clouds:
            result = cloud.invoke(args.token, dict(args.args))
            if result is not None:
                return result, []
        return {}, []
