"""What Knative's webhook admits in a revision template, given the `config-features` ConfigMap.

Knative copies each part of a revision's pod spec through a field mask and refuses any field the mask
drops ("must not set the field(s)"); some masks keep a field only when a config-features flag enables
it. This module is that table, transcribed (not generated) from knative/serving at commit
98e5ef90aa7033797aa0a61ef97f3ff7e49a3944 (master, 2026-08-21):

- pkg/apis/serving/fieldmask.go: which fields each mask keeps, and behind which flag;
- pkg/apis/serving/k8s_validation.go: volume sources need their flag `Enabled` (not just "not Disabled"),
  env var names and port names Knative reserves;
- pkg/apis/config/features.go: each flag's key and default.

turnout pins knative-v1.23.0: re-read those three files when bumping Knative, and update the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

UPSTREAM = "knative/serving@98e5ef90aa7033797aa0a61ef97f3ff7e49a3944"

# features.go defaultFeaturesConfig(), for the flags the table uses.
DEFAULTS = {
    "kubernetes.containerspec-addcapabilities": "Disabled",
    "kubernetes.podspec-affinity": "Disabled",
    "kubernetes.podspec-dnsconfig": "Disabled",
    "kubernetes.podspec-dnspolicy": "Disabled",
    "kubernetes.podspec-fieldref": "Disabled",
    "kubernetes.podspec-hostaliases": "Disabled",
    "kubernetes.podspec-hostipc": "Disabled",
    "kubernetes.podspec-hostnetwork": "Disabled",
    "kubernetes.podspec-hostpid": "Disabled",
    "kubernetes.podspec-init-containers": "Disabled",
    "kubernetes.podspec-nodeselector": "Disabled",
    "kubernetes.podspec-persistent-volume-claim": "Disabled",
    "kubernetes.podspec-priorityclassname": "Disabled",
    "kubernetes.podspec-runtimeclassname": "Disabled",
    "kubernetes.podspec-schedulername": "Disabled",
    "kubernetes.podspec-securitycontext": "Disabled",
    "kubernetes.podspec-shareprocessnamespace": "Disabled",
    "kubernetes.podspec-tolerations": "Disabled",
    "kubernetes.podspec-topologyspreadconstraints": "Disabled",
    "kubernetes.podspec-volumes-csi": "Disabled",
    "kubernetes.podspec-volumes-emptydir": "Enabled",
    "kubernetes.podspec-volumes-ephemeral": "Disabled",
    "kubernetes.podspec-volumes-hostpath": "Disabled",
    "kubernetes.podspec-volumes-image": "Disabled",
    "kubernetes.podspec-volumes-mount-propagation": "Disabled",
    "secure-pod-defaults": "Disabled",
}
# k8s_validation.go: reservedEnvVars (the user container), validPortNames.
RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"})
PORT_NAMES = frozenset({"", "h2c", "http1"})


def flag(features: Mapping[str, str], key: str) -> str:
    """A flag as features.go parses it (asFlag, asSecurePodDefaultsFlag): case-insensitive; a value it does
    not know keeps the default."""
    known = (
        ("disabled", "allowrootbounded", "enabled")
        if key == "secure-pod-defaults"
        else ("enabled", "allowed", "disabled")
    )
    raw = str(features.get(key, "")).lower()
    return raw if raw in known else DEFAULTS[key].lower()


@dataclass(frozen=True)
class Gate:
    """A field a mask keeps only while config-features sets `key` to one of `values` (and, if given, the
    field's value satisfies `when`)."""

    key: str
    values: tuple[str, ...]
    when: Callable[[object], bool] | None = None

    def admits(self, features: Mapping[str, str], value: object) -> bool:
        return flag(features, self.key) in self.values and (self.when is None or self.when(value))

    def __str__(self) -> str:
        return f"{self.key}: {' or '.join(v.capitalize() for v in self.values)}"


def not_disabled(key: str, when: Callable[[object], bool] | None = None) -> Gate:
    """fieldmask.go's `cfg.Features.X != config.Disabled`."""
    return Gate(key, ("enabled", "allowed", "allowrootbounded"), when)


def enabled(key: str) -> Gate:
    """k8s_validation.go's `features.X != config.Enabled` → error (volume sources)."""
    return Gate(key, ("enabled",))


@dataclass(frozen=True)
class Field:
    type: str | None = None
    """The mask its value (or each item of a list) goes through; None: kept whole."""
    gates: tuple[Gate, ...] = ()
    """Any one admits the field; none: always kept."""
    only: tuple[object, ...] | None = None
    """The only values the mask keeps (AutomountServiceAccountToken and Privileged: false)."""


ALWAYS = Field()


def _seccomp_opt_out(value: object) -> bool:
    return isinstance(value, Mapping) and value.get("type") in ("RuntimeDefault", "Unconfined")


_PODSPEC: dict[str, Field] = {
    # PodSpecMask: always kept.
    "serviceAccountName": ALWAYS,
    "containers": Field("Container"),
    "volumes": Field("Volume"),
    "imagePullSecrets": Field("LocalObjectReference"),
    "enableServiceLinks": ALWAYS,
    "automountServiceAccountToken": Field(only=(False,)),
    # PodSpecMask: behind a flag.
    "affinity": Field(gates=(not_disabled("kubernetes.podspec-affinity"),)),
    "topologySpreadConstraints": Field(gates=(not_disabled("kubernetes.podspec-topologyspreadconstraints"),)),
    "hostAliases": Field(gates=(not_disabled("kubernetes.podspec-hostaliases"),)),
    "nodeSelector": Field(gates=(not_disabled("kubernetes.podspec-nodeselector"),)),
    "runtimeClassName": Field(gates=(not_disabled("kubernetes.podspec-runtimeclassname"),)),
    "tolerations": Field(gates=(not_disabled("kubernetes.podspec-tolerations"),)),
    "securityContext": Field(
        "PodSecurityContext",
        (not_disabled("kubernetes.podspec-securitycontext"), not_disabled("secure-pod-defaults")),
    ),
    "shareProcessNamespace": Field(gates=(not_disabled("kubernetes.podspec-shareprocessnamespace"),)),
    "priorityClassName": Field(gates=(not_disabled("kubernetes.podspec-priorityclassname"),)),
    "schedulerName": Field(gates=(not_disabled("kubernetes.podspec-schedulername"),)),
    "initContainers": Field("Container", (not_disabled("kubernetes.podspec-init-containers"),)),
    "dnsPolicy": Field(gates=(not_disabled("kubernetes.podspec-dnspolicy"),)),
    "dnsConfig": Field(gates=(not_disabled("kubernetes.podspec-dnsconfig"),)),
    "hostIPC": Field(gates=(not_disabled("kubernetes.podspec-hostipc"),)),
    "hostPID": Field(gates=(not_disabled("kubernetes.podspec-hostpid"),)),
    "hostNetwork": Field(gates=(not_disabled("kubernetes.podspec-hostnetwork"),)),
}

MASKS: dict[str, dict[str, Field]] = {
    # v1.RevisionSpec: the pod spec inline, plus Knative's own fields.
    "RevisionSpec": {
        **_PODSPEC,
        "containerConcurrency": ALWAYS,
        "timeoutSeconds": ALWAYS,
        "responseStartTimeoutSeconds": ALWAYS,
        "idleTimeoutSeconds": ALWAYS,
    },
    "Container": {
        name: ALWAYS
        for name in ("name", "args", "command", "workingDir", "image", "imagePullPolicy", "terminationMessagePath")
    }
    | {
        "terminationMessagePolicy": ALWAYS,
        "env": Field("EnvVar"),
        "envFrom": Field("EnvFromSource"),
        "livenessProbe": Field("Probe"),
        "readinessProbe": Field("Probe"),
        "startupProbe": Field("Probe"),
        "ports": Field("ContainerPort"),
        "resources": Field("ResourceRequirements"),
        "securityContext": Field("SecurityContext"),
        "volumeMounts": Field("VolumeMount"),
    },
    "EnvVar": {"name": ALWAYS, "value": ALWAYS, "valueFrom": Field("EnvVarSource")},
    "EnvVarSource": {
        "configMapKeyRef": Field("KeySelector"),
        "secretKeyRef": Field("KeySelector"),
        "fieldRef": Field(gates=(not_disabled("kubernetes.podspec-fieldref"),)),
        "resourceFieldRef": Field(gates=(not_disabled("kubernetes.podspec-fieldref"),)),
    },
    "KeySelector": {"name": ALWAYS, "key": ALWAYS, "optional": ALWAYS},
    "EnvFromSource": {"prefix": ALWAYS, "configMapRef": Field("EnvSource"), "secretRef": Field("EnvSource")},
    "EnvSource": {"name": ALWAYS, "optional": ALWAYS},
    "ContainerPort": {"containerPort": ALWAYS, "name": ALWAYS, "protocol": ALWAYS},
    "Probe": {
        "exec": Field("ExecAction"),
        "httpGet": Field("HTTPGetAction"),
        "tcpSocket": Field("TCPSocketAction"),
        "grpc": Field("GRPCAction"),
        **{
            name: ALWAYS
            for name in (
                "initialDelaySeconds",
                "timeoutSeconds",
                "periodSeconds",
                "successThreshold",
                "failureThreshold",
                "terminationGracePeriodSeconds",
            )
        },
    },
    "ExecAction": {"command": ALWAYS},
    "HTTPGetAction": {name: ALWAYS for name in ("host", "path", "scheme", "httpHeaders", "port")},
    "TCPSocketAction": {"host": ALWAYS, "port": ALWAYS},
    "GRPCAction": {"port": ALWAYS, "service": ALWAYS},
    "ResourceRequirements": {"limits": ALWAYS, "requests": ALWAYS},
    "SecurityContext": {
        **{
            name: ALWAYS
            for name in (
                "readOnlyRootFilesystem",
                "runAsUser",
                "runAsGroup",
                "runAsNonRoot",
                "allowPrivilegeEscalation",
                "seccompProfile",
            )
        },
        "capabilities": Field("Capabilities"),
        "privileged": Field(only=(False,)),
    },
    "Capabilities": {
        "drop": ALWAYS,
        "add": Field(
            gates=(
                Gate("kubernetes.containerspec-addcapabilities", ("enabled",)),
                Gate("secure-pod-defaults", ("enabled", "allowrootbounded"), lambda v: list(v) == ["NET_BIND_SERVICE"]),
            )
        ),
    },
    "PodSecurityContext": {
        **{
            name: Field(gates=(not_disabled("kubernetes.podspec-securitycontext"),))
            for name in ("runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups")
        },
        "seccompProfile": Field(
            gates=(
                not_disabled("kubernetes.podspec-securitycontext"),
                Gate("secure-pod-defaults", ("enabled", "allowrootbounded"), _seccomp_opt_out),
            )
        ),
    },
    "VolumeMount": {
        **{name: ALWAYS for name in ("name", "readOnly", "mountPath", "subPath")},
        "mountPropagation": Field(gates=(not_disabled("kubernetes.podspec-volumes-mount-propagation"),)),
    },
    "Volume": {
        "name": ALWAYS,
        "secret": Field("SecretVolumeSource"),
        "configMap": Field("ConfigMapVolumeSource"),
        "projected": Field("ProjectedVolumeSource"),
        "emptyDir": Field("EmptyDirVolumeSource", (enabled("kubernetes.podspec-volumes-emptydir"),)),
        "persistentVolumeClaim": Field(gates=(enabled("kubernetes.podspec-persistent-volume-claim"),)),
        "hostPath": Field(gates=(enabled("kubernetes.podspec-volumes-hostpath"),)),
        "csi": Field(gates=(enabled("kubernetes.podspec-volumes-csi"),)),
        "ephemeral": Field(gates=(enabled("kubernetes.podspec-volumes-ephemeral"),)),
        "image": Field(gates=(enabled("kubernetes.podspec-volumes-image"),)),
    },
    # Kubernetes' own fields of these sources; Knative masks only their items (KeyToPathMask).
    "SecretVolumeSource": {
        "secretName": ALWAYS,
        "items": Field("KeyToPath"),
        "defaultMode": ALWAYS,
        "optional": ALWAYS,
    },
    "ConfigMapVolumeSource": {"name": ALWAYS, "items": Field("KeyToPath"), "defaultMode": ALWAYS, "optional": ALWAYS},
    "KeyToPath": {"key": ALWAYS, "path": ALWAYS, "mode": ALWAYS},
    "EmptyDirVolumeSource": {"medium": ALWAYS, "sizeLimit": ALWAYS},
    "ProjectedVolumeSource": {"sources": Field("VolumeProjection"), "defaultMode": ALWAYS},
    "VolumeProjection": {
        "secret": Field("ObjectProjection"),
        "configMap": Field("ObjectProjection"),
        "serviceAccountToken": Field("ServiceAccountTokenProjection"),
        "downwardAPI": Field("DownwardAPIProjection"),
    },
    "ObjectProjection": {"name": ALWAYS, "items": Field("KeyToPath"), "optional": ALWAYS},
    "ServiceAccountTokenProjection": {"audience": ALWAYS, "expirationSeconds": ALWAYS, "path": ALWAYS},
    "DownwardAPIProjection": {"items": Field("DownwardAPIVolumeFile")},
    "DownwardAPIVolumeFile": {name: ALWAYS for name in ("fieldRef", "resourceFieldRef", "path", "mode")},
    "LocalObjectReference": {"name": ALWAYS},
}


def refused(template: Mapping, features: Mapping[str, str]) -> list[str]:
    """What Knative's webhook refuses in a revision template (a Configuration's or Service's
    `spec.template`), one line per field: its path and why."""
    problems: list[str] = []
    spec = template.get("spec") or {}
    _walk(spec, "RevisionSpec", "spec", features, problems)
    containers = spec.get("containers") or []
    for index, container in enumerate(containers):
        where = f"spec.containers[{index}]"
        # The user container (the only one, or the one with a port) may not set Knative's own variables.
        if len(containers) == 1 or container.get("ports"):
            for entry_index, entry in enumerate(container.get("env") or []):
                if entry.get("name") in RESERVED_ENV:
                    problems.append(f"{where}.env[{entry_index}]: {entry['name']} is reserved by Knative")
        for port_index, port in enumerate(container.get("ports") or []):
            if port.get("name", "") not in PORT_NAMES:
                problems.append(f"{where}.ports[{port_index}].name: {port['name']!r} is not one of h2c, http1")
    return problems


def _walk(value: object, mask: str, path: str, features: Mapping[str, str], problems: list[str]) -> None:
    if not isinstance(value, Mapping):
        return
    fields = MASKS[mask]
    for key, item in value.items():
        where = f"{path}.{key}"
        field = fields.get(key)
        if field is None:
            problems.append(f"{where}: Knative's {mask} mask drops it")
            continue
        if field.gates and not any(gate.admits(features, item) for gate in field.gates):
            problems.append(f"{where}: needs config-features {' or '.join(map(str, field.gates))}")
            continue
        if field.only is not None and item not in field.only:
            problems.append(f"{where}: Knative keeps it only as {', '.join(map(repr, field.only))}")
            continue
        if field.type is None:
            continue
        for index, element in enumerate(item) if isinstance(item, list) else [(None, item)]:
            _walk(element, field.type, where if index is None else f"{where}[{index}]", features, problems)
