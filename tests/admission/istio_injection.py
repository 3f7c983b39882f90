"""What Istio's sidecar injector adds to a pod, as far as Pod Security can see it.

A model, written from istio/istio at tag 1.30.3 (commit 56df41f63e513f834c9a3af33d8aed82d1d961f2, the newest 1.30
release in the mirror; turnout pins the 1.30.4 charts), of:

- who is injected: the webhook selectors in manifests/charts/istio-control/istio-discovery/templates/
  mutatingwebhook.yaml, then the injector's own policy, `injectRequired` in pkg/kube/inject/inject.go (host network
  and kube-system are never injected; the `sidecar.istio.io/inject` label, or annotation, decides before the
  never/always selectors and `global.proxy.autoInject`);
- what is added: manifests/charts/istio-control/istio-discovery/files/injection-template.yaml (the `sidecar` template;
  a pod annotated `inject.istio.io/templates: gateway`, as the gateway chart's are, gets gateway-injection-template.yaml
  instead: no init container, and istio-proxy filled in where the pod declares it). There is no separate
  CNI template: the same file switches on `pilot.cni.enabled`. Without the CNI plugin the pod gets `istio-init`,
  which writes the pod's iptables rules itself (NET_ADMIN and NET_RAW, uid 0, not runAsNonRoot); with it, the node's
  CNI plugin writes them and the pod gets `istio-validation` (no added capability, uid 1337, runAsNonRoot). The
  `istio-proxy` container runs as 1337 with ALL dropped unless TPROXY interception, NET_BIND_SERVICE
  (`capNetBindService`) or iptables trace logging make it root. Neither container sets a seccomp profile unless
  `global.proxy.seccompProfile` does: the pod-level profile then decides.

Only what the Pod Security checks read is modelled (containers' securityContext, ports, probes and lifecycle,
volumes, host namespaces); env, args, images and resources are not. The template's bare `- emptyDir:` volumes
decode with no source, which the API server's defaulting turns into emptyDir: they are emptyDir here.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

PROXY_UID = 1337  # `.ProxyUID` / `.ProxyGID`: 1337 unless OpenShift assigns a range
INJECT_LABEL = "sidecar.istio.io/inject"
REVISION_LABEL = "istio.io/rev"
INJECTION_NAMESPACE_LABEL = "istio-injection"
TEMPLATES_ANNOTATION = "inject.istio.io/templates"
TEMPLATES = ("sidecar", "gateway")  # the injection templates modelled here
IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "local-path-storage"})

# The istiod chart's values.yaml defaults for what the model reads.
DEFAULT_VALUES: dict = {
    "revision": "",
    "pilot": {"cni": {"enabled": False}, "env": {}},
    "sidecarInjectorWebhook": {
        "enableNamespacesByDefault": False,
        "neverInjectSelector": [],
        "alwaysInjectSelector": [],
    },
    "global": {
        "caName": "",
        "pilotCertProvider": "istiod",
        "mountMtlsCerts": False,
        "proxy": {
            "autoInject": "enabled",
            "privileged": False,
            "seccompProfile": {},
            "capNetBindService": False,
            "statusPort": 15020,
            "startupProbe": {"enabled": True},
        },
    },
    "meshConfig": {"defaultConfig": {"interceptionMode": "REDIRECT", "proxyMetadata": {}}},
}
# `profile` / `platform` values files that set anything the model reads (templates/zzz_profile.yaml merges them
# between the defaults and the user's values). Of the 1.30.3 files only platform-openshift does (CNI on); the
# compatibility-version 1.25/1.26 files turn native sidecars off, which moves istio-proxy but changes no verdict.
PROFILE_VALUES: dict[str, dict] = {"openshift": {"pilot": {"cni": {"enabled": True}}}}


def merge_values(base: dict, override: dict) -> dict:
    """Helm's coalescing of values: mappings merge key by key, anything else in `override` replaces."""
    result = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_values(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _text(value: object) -> str:
    """How the template's `annotation` function prints a value: Go's fmt.Sprint (booleans lower-case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class MeshSettings:
    """The injector's configuration, from the istiod release's Helm values."""

    cni: bool = False
    """`pilot.cni.enabled`: the CNI plugin, not the pod, writes the iptables rules."""
    revision: str = ""
    auto_inject: str = "enabled"
    """`global.proxy.autoInject`: the injector's policy when a pod says nothing."""
    namespaces_by_default: bool = False
    """`sidecarInjectorWebhook.enableNamespacesByDefault`: inject namespaces without any injection label."""
    never_inject: tuple[dict, ...] = ()
    always_inject: tuple[dict, ...] = ()
    privileged: bool = False
    """`global.proxy.privileged`."""
    seccomp_profile: dict = field(default_factory=dict)
    """`global.proxy.seccompProfile`, set on istio-init/istio-validation and istio-proxy when not empty."""
    cap_net_bind_service: bool = False
    interception_mode: str = "REDIRECT"
    """`meshConfig.defaultConfig.interceptionMode`."""
    iptables_trace_logging: bool = False
    """`meshConfig.defaultConfig.proxyMetadata.IPTABLES_TRACE_LOGGING`: a privileged, root istio-proxy."""
    native_sidecars: str = "auto"
    """`pilot.env.ENABLE_NATIVE_SIDECARS`: true, false, or auto (native where kubelets are 1.33 or newer)."""
    ca_name: str = ""
    pilot_cert_provider: str = "istiod"
    mount_mtls_certs: bool = False
    status_port: int = 15020
    startup_probe: bool = True
    gateway_security_context: dict = field(default_factory=dict)
    """`gateways.securityContext`: the gateway template's pod security context (else the unprivileged-port sysctl)."""

    @classmethod
    def from_istiod_values(cls, values: dict | None) -> MeshSettings:
        values = values or {}
        profile = {}
        for key in ("profile", "platform"):
            chosen = values.get(key) or (values.get("global") or {}).get(key)
            profile = merge_values(profile, PROFILE_VALUES.get(str(chosen), {}))
        merged = merge_values(merge_values(DEFAULT_VALUES, profile), values)
        proxy = merged["global"]["proxy"]
        default_config = merged["meshConfig"].get("defaultConfig") or {}
        webhook = merged["sidecarInjectorWebhook"]
        return cls(
            cni=bool(merged["pilot"]["cni"].get("enabled")),
            revision=str(merged.get("revision") or ""),
            auto_inject=str(proxy.get("autoInject", "enabled")),
            namespaces_by_default=bool(webhook.get("enableNamespacesByDefault")),
            never_inject=tuple(webhook.get("neverInjectSelector") or ()),
            always_inject=tuple(webhook.get("alwaysInjectSelector") or ()),
            privileged=bool(proxy.get("privileged")),
            seccomp_profile=dict(proxy.get("seccompProfile") or {}),
            cap_net_bind_service=_text(proxy.get("capNetBindService", False)) == "true",
            interception_mode=str(default_config.get("interceptionMode") or "REDIRECT"),
            iptables_trace_logging=_text((default_config.get("proxyMetadata") or {}).get("IPTABLES_TRACE_LOGGING"))
            == "true",
            native_sidecars=_text((merged["pilot"].get("env") or {}).get("ENABLE_NATIVE_SIDECARS", "auto")),
            ca_name=str(merged["global"].get("caName") or ""),
            pilot_cert_provider=str(merged["global"].get("pilotCertProvider") or "istiod"),
            mount_mtls_certs=bool(merged["global"].get("mountMtlsCerts")),
            status_port=int(proxy.get("statusPort", 15020)),
            startup_probe=bool((proxy.get("startupProbe") or {}).get("enabled", True)),
            gateway_security_context=dict((merged.get("gateways") or {}).get("securityContext") or {}),
        )

    def native_sidecar(self, kubelet_minor: int) -> bool:
        """DetectNativeSidecar (pkg/kube/inject/webhook.go): istio-proxy as a native sidecar (an init container
        with restartPolicy Always) when forced on, or on `auto` where the node's kubelet is 1.33 or newer."""
        if self.native_sidecars == "true":
            return True
        return self.native_sidecars == "auto" and kubelet_minor >= 33


# --- who is injected ------------------------------------------------------------------------------------------


def _selector_matches(selector: dict, labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels and matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _webhooks(settings: MeshSettings) -> list[tuple[dict, dict]]:
    """(namespaceSelector, objectSelector) of each webhook the istiod chart registers (mutatingwebhook.yaml)."""
    revision = settings.revision or "default"
    not_disabled = {"matchExpressions": [{"key": INJECT_LABEL, "operator": "NotIn", "values": ["false"]}]}
    hooks = [
        (  # rev.namespace.: the namespace selects this revision
            {
                "matchExpressions": [
                    {"key": REVISION_LABEL, "operator": "In", "values": [revision]},
                    {"key": INJECTION_NAMESPACE_LABEL, "operator": "DoesNotExist"},
                ]
            },
            not_disabled,
        ),
        (  # rev.object.: the pod selects this revision
            {
                "matchExpressions": [
                    {"key": REVISION_LABEL, "operator": "DoesNotExist"},
                    {"key": INJECTION_NAMESPACE_LABEL, "operator": "DoesNotExist"},
                ]
            },
            {
                "matchExpressions": [
                    {"key": INJECT_LABEL, "operator": "NotIn", "values": ["false"]},
                    {"key": REVISION_LABEL, "operator": "In", "values": [revision]},
                ]
            },
        ),
    ]
    if settings.revision:
        return hooks
    hooks += [
        (  # namespace.: istio-injection=enabled
            {"matchExpressions": [{"key": INJECTION_NAMESPACE_LABEL, "operator": "In", "values": ["enabled"]}]},
            not_disabled,
        ),
        (  # object.: the pod asks with sidecar.istio.io/inject=true in an unlabelled namespace
            {
                "matchExpressions": [
                    {"key": INJECTION_NAMESPACE_LABEL, "operator": "DoesNotExist"},
                    {"key": REVISION_LABEL, "operator": "DoesNotExist"},
                ]
            },
            {
                "matchExpressions": [
                    {"key": INJECT_LABEL, "operator": "In", "values": ["true"]},
                    {"key": REVISION_LABEL, "operator": "DoesNotExist"},
                ]
            },
        ),
    ]
    if settings.namespaces_by_default:
        hooks.append(
            (  # auto.: every unlabelled namespace but the system ones
                {
                    "matchExpressions": [
                        {"key": INJECTION_NAMESPACE_LABEL, "operator": "DoesNotExist"},
                        {"key": REVISION_LABEL, "operator": "DoesNotExist"},
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "NotIn",
                            "values": sorted(IGNORED_NAMESPACES),
                        },
                    ]
                },
                {
                    "matchExpressions": [
                        {"key": INJECT_LABEL, "operator": "DoesNotExist"},
                        {"key": REVISION_LABEL, "operator": "DoesNotExist"},
                    ]
                },
            )
        )
    return hooks


def _inject_required(namespace: str, metadata: dict, spec: dict, settings: MeshSettings) -> bool:
    """injectRequired (pkg/kube/inject/inject.go), once a webhook has sent the pod to the injector."""
    if spec.get("hostNetwork") or namespace in IGNORED_NAMESPACES:
        return False
    labels = metadata.get("labels") or {}
    choice = labels.get(INJECT_LABEL, (metadata.get("annotations") or {}).get(INJECT_LABEL, ""))
    if choice in ("true", "false"):
        return choice == "true"
    if any(selector and _selector_matches(selector, labels) for selector in settings.never_inject):
        return False
    if any(selector and _selector_matches(selector, labels) for selector in settings.always_inject):
        return True
    return settings.auto_inject == "enabled"


def is_injected(namespace: str, namespace_labels: dict[str, str], pod: dict, settings: MeshSettings | None) -> bool:
    """Whether the sidecar injector mutates this pod (no istiod on the cluster: never)."""
    if settings is None:
        return False
    metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    labels_of_namespace = {"kubernetes.io/metadata.name": namespace, **(namespace_labels or {})}
    pod_labels = metadata.get("labels") or {}
    sent = any(
        _selector_matches(ns_selector, labels_of_namespace) and _selector_matches(object_selector, pod_labels)
        for ns_selector, object_selector in _webhooks(settings)
    )
    return sent and _inject_required(namespace, metadata, spec, settings)


# --- what is added --------------------------------------------------------------------------------------------


def _annotation(metadata: dict, name: str, default: object) -> str:
    return _text((metadata.get("annotations") or {}).get(name, default))


def _interception_init(settings: MeshSettings) -> dict:
    """`istio-init` (no CNI: the pod writes its iptables rules) or `istio-validation` (CNI wrote them)."""
    context: dict = {
        "allowPrivilegeEscalation": settings.privileged,
        "privileged": settings.privileged,
        "capabilities": {"drop": ["ALL"]},
    }
    if settings.cni:
        context.update(readOnlyRootFilesystem=True, runAsGroup=PROXY_UID, runAsUser=PROXY_UID, runAsNonRoot=True)
    else:
        context["capabilities"] = {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}
        context.update(readOnlyRootFilesystem=False, runAsGroup=0, runAsNonRoot=False, runAsUser=0)
    if settings.seccomp_profile:
        context["seccompProfile"] = dict(settings.seccomp_profile)
    return {"name": "istio-validation" if settings.cni else "istio-init", "securityContext": context}


def _proxy(metadata: dict, settings: MeshSettings, tproxy: bool, native: bool) -> dict:
    cap_net_bind = _annotation(metadata, "sidecar.istio.io/capNetBindService", settings.cap_net_bind_service) == "true"
    if settings.iptables_trace_logging:
        context: dict = {
            "allowPrivilegeEscalation": True,
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
            "privileged": True,
            "readOnlyRootFilesystem": True,
            "runAsGroup": PROXY_UID,
            "runAsNonRoot": False,
            "runAsUser": 0,
        }
    else:
        added = (["NET_ADMIN"] if tproxy else []) + (["NET_BIND_SERVICE"] if cap_net_bind else [])
        context = {
            "allowPrivilegeEscalation": settings.privileged,
            "capabilities": {**({"add": added} if added else {}), "drop": ["ALL"]},
            "privileged": settings.privileged,
            "readOnlyRootFilesystem": True,
        }
        if added:
            context.update(runAsNonRoot=False, runAsUser=0, runAsGroup=PROXY_UID)
        else:
            context.update(runAsNonRoot=True, runAsUser=PROXY_UID, runAsGroup=PROXY_UID)
    if settings.seccomp_profile:
        context["seccompProfile"] = dict(settings.seccomp_profile)
    proxy: dict = {
        "name": "istio-proxy",
        "ports": [{"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"}],
        "securityContext": context,
    }
    if native:
        proxy["restartPolicy"] = "Always"
        proxy["lifecycle"] = {"preStop": {"exec": {"command": ["pilot-agent", "request", "POST", "drain"]}}}
    if _annotation(metadata, "status.sidecar.istio.io/port", settings.status_port) != "0":
        ready = {"httpGet": {"path": "/healthz/ready", "port": 15021}}
        proxy["readinessProbe"] = ready
        if settings.startup_probe:
            proxy["startupProbe"] = ready
    return proxy


def _volumes(metadata: dict, spec: dict, settings: MeshSettings) -> list[dict]:
    annotations = metadata.get("annotations") or {}
    volumes: list[dict] = [{"name": "workload-socket", "emptyDir": {}}, {"name": "credential-socket", "emptyDir": {}}]
    if settings.ca_name == "GkeWorkloadCertificate":
        volumes.append(
            {"name": "gke-workload-certificate", "csi": {"driver": "workloadcertificates.security.cloud.google.com"}}
        )
    else:
        volumes.append({"name": "workload-certs", "emptyDir": {}})
    if "sidecar.istio.io/bootstrapOverride" in annotations:
        volumes.append(
            {
                "name": "custom-bootstrap-volume",
                "configMap": {"name": annotations["sidecar.istio.io/bootstrapOverride"]},
            }
        )
    volumes += [
        {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
        {"name": "istio-data", "emptyDir": {}},
        {"name": "istio-podinfo", "downwardAPI": {"items": []}},
        {"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {"path": "istio-token"}}]}},
    ]
    if settings.pilot_cert_provider == "istiod":
        volumes.append({"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}})
    volumes.append({"name": "istio-ca-crl", "configMap": {"name": "istio-ca-crl", "optional": True}})
    if settings.mount_mtls_certs:
        account = spec.get("serviceAccountName") or "default"
        volumes.append({"name": "istio-certs", "secret": {"optional": True, "secretName": f"istio.{account}"}})
    # Volumes a pod asks the injector for: added as written, whatever their type.
    for name, volume in _json_mapping(annotations.get("sidecar.istio.io/userVolume")).items():
        volumes.append({"name": name, **volume})
    return volumes


def _json_mapping(text: str | None) -> dict:
    return json.loads(text) if text else {}


class UnknownTemplateError(Exception):
    """A pod selects an injection template this model does not know."""


def template(pod: dict) -> str:
    """The injection template a pod selects (`inject.istio.io/templates`, `sidecar` by default)."""
    chosen = _annotation(pod.get("metadata") or {}, TEMPLATES_ANNOTATION, "sidecar")
    if chosen not in TEMPLATES:
        raise UnknownTemplateError(f"{TEMPLATES_ANNOTATION}: {chosen!r} (modelled: {', '.join(TEMPLATES)})")
    return chosen


def _inject_gateway(metadata: dict, spec: dict, settings: MeshSettings) -> dict:
    """gateway-injection-template.yaml overlaid on the pod (the template's pod security context over the pod's, its
    volumes added), then the pod's own istio-proxy fields over the template's (the injector's reinsertOverrides):
    istio-proxy runs as the proxy's uid and gid unless the pod says otherwise. No init container."""
    template_context = settings.gateway_security_context or {
        "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    }
    spec["securityContext"] = {**(spec.get("securityContext") or {}), **copy.deepcopy(template_context)}
    proxy_context = {"runAsUser": PROXY_UID, "runAsGroup": PROXY_UID}
    containers = spec.get("containers") or []
    own = next((c for c in containers if c["name"] == "istio-proxy"), None)
    if own is None:
        containers.append({"name": "istio-proxy", "securityContext": proxy_context})
    else:
        own["securityContext"] = {**proxy_context, **(own.get("securityContext") or {})}
    spec["containers"] = containers
    volumes = [v for v in _volumes(metadata, spec, settings) if v["name"] in GATEWAY_TEMPLATE_VOLUMES]
    names = {v["name"] for v in volumes}
    spec["volumes"] = [*(v for v in spec.get("volumes") or () if v["name"] not in names), *volumes]
    metadata.setdefault("annotations", {})["istio.io/rev"] = settings.revision or "default"
    return {"metadata": metadata, "spec": spec}


# The gateway template's volumes: the sidecar template's but the CRL, the mTLS certificates and user volumes.
GATEWAY_TEMPLATE_VOLUMES = frozenset(
    {
        "workload-socket",
        "credential-socket",
        "workload-certs",
        "gke-workload-certificate",
        "custom-bootstrap-volume",
        "istio-envoy",
        "istio-data",
        "istio-podinfo",
        "istio-token",
        "istiod-ca-cert",
    }
)


def inject(pod: dict, settings: MeshSettings, *, native: bool) -> dict:
    """The pod after the injector's patch: `pod` is {"metadata": ..., "spec": ...}; returns a new one. `native` only
    matters to the sidecar template."""
    metadata, spec = copy.deepcopy(pod.get("metadata") or {}), copy.deepcopy(pod.get("spec") or {})
    if template(pod) == "gateway":
        return _inject_gateway(metadata, spec, settings)
    mode = _annotation(metadata, "sidecar.istio.io/interceptionMode", settings.interception_mode)
    tproxy = mode == "TPROXY"
    native = _annotation(metadata, "sidecar.istio.io/nativeSidecar", _text(native)) != "false"
    init: list[dict] = [] if mode == "NONE" else [_interception_init(settings)]
    proxy = _proxy(metadata, settings, tproxy, native)
    if native:
        init.append(proxy)
    else:
        spec["containers"] = [*(c for c in spec.get("containers") or () if c["name"] != "istio-proxy"), proxy]
    # Where the injected containers sit among the pod's own does not change a Pod Security verdict.
    spec["initContainers"] = [
        *init,
        *(c for c in spec.get("initContainers") or () if c["name"] not in {i["name"] for i in init}),
    ]
    template_volumes = _volumes(metadata, spec, settings)
    names = {v["name"] for v in template_volumes}
    spec["volumes"] = [*(v for v in spec.get("volumes") or () if v["name"] not in names), *template_volumes]
    labels = metadata.setdefault("labels", {})
    labels.setdefault("security.istio.io/tlsMode", "istio")
    metadata.setdefault("annotations", {})["istio.io/rev"] = settings.revision or "default"
    return {"metadata": metadata, "spec": spec}
