"""The Pod Security Standards (baseline, restricted) as Kubernetes' Pod Security admission evaluates a pod.

Written from the reference implementation, k8s.io/pod-security-admission/policy at v0.36.2 (Kubernetes 1.36;
kubernetes/pod-security-admission commit 39b45cd167e1bd665aaeefc6e1acc1cc753259f2), not copied: one function per
`check_*.go`, with the same check IDs, minimum versions, overrides and reasons, so that a failure here reads like
the API server's `violates PodSecurity "restricted:latest": ...`. The standard itself:
https://kubernetes.io/docs/concepts/security/pod-security-standards/.

A pod is `metadata` (ObjectMeta) and `spec` (PodSpec) as YAML holds them: camelCase keys, absent = unset. The
admission controller evaluates the pod after every mutating webhook (sidecar injection included), which is why
callers hand it the injected pod.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

Level = Literal["privileged", "baseline", "restricted"]
Version = tuple[int, int]
LEVELS: tuple[Level, ...] = ("privileged", "baseline", "restricted")

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"


@dataclass(frozen=True)
class Forbidden:
    """One failed check: its ID, and the reason and detail the API server would print."""

    check: str
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason} ({self.detail})" if self.detail else self.reason


Verdict = tuple[str, str] | None  # (reason, detail), or None when the check allows the pod
CheckFn = Callable[[dict, dict], Verdict]


# --- helpers.go, visitor.go ---------------------------------------------------------------------------------


def _quote(items) -> str:
    return ", ".join(f'"{item}"' for item in items)


def _plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _containers(spec: dict) -> Iterator[dict]:
    """Init containers, containers, then ephemeral containers: every check looks at all three."""
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field) or ()


def _context(container: dict) -> dict | None:
    return container.get("securityContext")


def _pod_context(spec: dict) -> dict | None:
    return spec.get("securityContext")


def _windows(spec: dict) -> bool:
    return ((spec.get("os") or {}).get("name")) == "windows"


def _user_namespace(spec: dict) -> bool:
    """relaxPolicyForUserNamespacePod: the pod runs in a user namespace (`hostUsers: false`)."""
    return spec.get("hostUsers") is False


def _setters(pod: bool, containers: list[str]) -> list[str]:
    setters = ["pod"] if pod else []
    if containers:
        setters.append(f"{_plural('container', 'containers', len(containers))} {_quote(containers)}")
    return setters


# --- baseline checks ----------------------------------------------------------------------------------------


def host_namespaces(metadata: dict, spec: dict) -> Verdict:
    """check_hostNamespaces.go: no hostNetwork, hostPID or hostIPC."""
    shared = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    return ("host namespaces", ", ".join(shared)) if shared else None


def privileged(metadata: dict, spec: dict) -> Verdict:
    """check_privileged.go: no container sets privileged=true."""
    bad = [c["name"] for c in _containers(spec) if (_context(c) or {}).get("privileged") is True]
    if bad:
        containers = f"{_plural('container', 'containers', len(bad))} {_quote(bad)}"
        return "privileged", f"{containers} must not set securityContext.privileged=true"
    return None


BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def capabilities_baseline(metadata: dict, spec: dict) -> Verdict:
    """check_capabilities_baseline.go: only the container runtime's default capabilities may be added."""
    bad, added = [], set()
    for container in _containers(spec):
        extra = {
            c
            for c in ((_context(container) or {}).get("capabilities") or {}).get("add") or ()
            if c not in BASELINE_CAPABILITIES
        }
        if extra:
            bad.append(container["name"])
            added |= extra
    if bad:
        return "non-default capabilities", (
            f"{_plural('container', 'containers', len(bad))} {_quote(bad)} must not include "
            f"{_quote(sorted(added))} in securityContext.capabilities.add"
        )
    return None


def host_path_volumes(metadata: dict, spec: dict) -> Verdict:
    """check_hostPathVolumes.go: no hostPath volume."""
    bad = [v["name"] for v in spec.get("volumes") or () if v.get("hostPath") is not None]
    return ("hostPath volumes", f"{_plural('volume', 'volumes', len(bad))} {_quote(bad)}") if bad else None


def host_ports(metadata: dict, spec: dict) -> Verdict:
    """check_hostPorts.go: no container port maps a host port."""
    bad, ports = [], set()
    for container in _containers(spec):
        used = {p["hostPort"] for p in container.get("ports") or () if p.get("hostPort")}
        if used:
            bad.append(container["name"])
            ports |= used
    if bad:
        listed = ", ".join(sorted(str(p) for p in ports))  # sets.String sorts the ports as text
        return "hostPort", (
            f"{_plural('container', 'containers', len(bad))} {_quote(bad)} {_plural('uses', 'use', len(bad))} "
            f"{_plural('hostPort', 'hostPorts', len(ports))} {listed}"
        )
    return None


def _probe_hosts(handler: dict | None) -> list[str]:
    handler = handler or {}
    return [h for h in ((handler.get("httpGet") or {}).get("host"), (handler.get("tcpSocket") or {}).get("host")) if h]


def host_probes_and_host_lifecycle(metadata: dict, spec: dict) -> Verdict:
    """check_hostProbesAndhostLifecycle.go (1.34+): probes and lifecycle handlers may not name a host."""
    bad, hosts = set(), set()
    for container in _containers(spec):
        lifecycle = container.get("lifecycle") or {}
        handlers = [container.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [lifecycle.get("postStart"), lifecycle.get("preStop")]
        named = [host for handler in handlers for host in _probe_hosts(handler)]
        if named:
            bad.add(container["name"])
            hosts |= set(named)
    if bad:
        return "probe or lifecycle host", (
            f"{_plural('container', 'containers', len(bad))} {_quote(sorted(bad))} {_plural('uses', 'use', len(bad))} "
            f"{_plural('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} {_quote(sorted(hosts))}"
        )
    return None


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def app_armor_profile(metadata: dict, spec: dict) -> Verdict:
    """check_appArmorProfile.go: AppArmor may be RuntimeDefault or Localhost, never Unconfined."""
    allowed = ("RuntimeDefault", "Localhost")
    values: set[str] = set()
    pod_profile = (_pod_context(spec) or {}).get("appArmorProfile")
    pod_bad = pod_profile is not None and pod_profile.get("type") not in allowed
    if pod_bad:
        values.add(str(pod_profile.get("type")))
    bad = []
    for container in _containers(spec):
        profile = (_context(container) or {}).get("appArmorProfile")
        if profile is not None and profile.get("type") not in allowed:
            bad.append(container["name"])
            values.add(str(profile.get("type")))
    setters = _setters(pod_bad, bad)
    annotations = sorted(
        f'{key}="{value}"'
        for key, value in (metadata.get("annotations") or {}).items()
        if key.startswith(APPARMOR_ANNOTATION_PREFIX)
        and not (not value or value == "runtime/default" or value.startswith("localhost/"))
    )
    listed = sorted(values) + annotations
    if annotations:
        setters.append(_plural("annotation", "annotations", len(annotations)))
    if setters:
        reason = _plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(listed))
        return reason, f"{' and '.join(setters)} must not set AppArmor profile type to {_quote(listed)}"
    return None


SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}


def _se_linux(allowed_types: frozenset[str]) -> CheckFn:
    def se_linux_options(metadata: dict, spec: dict) -> Verdict:
        """check_seLinuxOptions.go: a container SELinux type only; no user or role."""
        types: set[str] = set()
        user = role = False

        def valid(options: dict) -> bool:
            nonlocal user, role
            ok = True
            if options.get("type", "") not in allowed_types:
                ok = False
                types.add(options.get("type", ""))
            if options.get("user"):
                ok, user = False, True
            if options.get("role"):
                ok, role = False, True
            return ok

        pod_options = (_pod_context(spec) or {}).get("seLinuxOptions")
        pod_bad = pod_options is not None and not valid(pod_options)
        bad = []
        for container in _containers(spec):
            options = (_context(container) or {}).get("seLinuxOptions")
            if options is not None and not valid(options):
                bad.append(container["name"])
        setters = _setters(pod_bad, bad)
        if not setters:
            return None
        data = [f"{_plural('type', 'types', len(types))} {_quote(sorted(types))}"] if types else []
        data += ["user may not be set"] if user else []
        data += ["role may not be set"] if role else []
        return (
            "seLinuxOptions",
            f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}",
        )

    return se_linux_options


def proc_mount(metadata: dict, spec: dict) -> Verdict:
    """check_procMount_baseline.go (1.0): /proc keeps its default masks."""
    bad, types = [], set()
    for container in _containers(spec):
        mount = (_context(container) or {}).get("procMount")
        if mount is not None and mount != "Default":
            bad.append(container["name"])
            types.add(mount)
    if bad:
        return "procMount", (
            f"{_plural('container', 'containers', len(bad))} {_quote(bad)} must not set securityContext.procMount "
            f"to {_quote(sorted(types))}"
        )
    return None


def proc_mount_1_35(metadata: dict, spec: dict) -> Verdict:
    """check_procMount_baseline.go (1.35+): any procMount in a user namespace."""
    return None if _user_namespace(spec) else proc_mount(metadata, spec)


SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"


def _valid_seccomp(profile_type: object) -> bool:
    return profile_type in ("RuntimeDefault", "Localhost")


def seccomp_profile_baseline_1_0(metadata: dict, spec: dict) -> Verdict:
    """check_seccompProfile_baseline.go (1.0-1.18): the alpha annotations, if set, name a confined profile."""
    annotations = metadata.get("annotations") or {}

    def valid(value: str) -> bool:
        return value in ("runtime/default", "docker/default") or value.startswith("localhost/")

    keys = [SECCOMP_POD_ANNOTATION] + [SECCOMP_CONTAINER_ANNOTATION_PREFIX + c["name"] for c in _containers(spec)]
    bad = sorted({f'{key}="{annotations[key]}"' for key in keys if key in annotations and not valid(annotations[key])})
    if bad:
        return "seccompProfile", f"forbidden {_plural('annotation', 'annotations', len(bad))} {', '.join(bad)}"
    return None


def seccomp_profile_baseline(metadata: dict, spec: dict) -> Verdict:
    """check_seccompProfile_baseline.go (1.19+): a seccomp profile, if set, is RuntimeDefault or Localhost."""
    values: set[str] = set()
    pod_profile = (_pod_context(spec) or {}).get("seccompProfile")
    pod_bad = pod_profile is not None and not _valid_seccomp(pod_profile.get("type"))
    if pod_bad:
        values.add(str(pod_profile.get("type")))
    bad = []
    for container in _containers(spec):
        profile = (_context(container) or {}).get("seccompProfile")
        if profile is not None and not _valid_seccomp(profile.get("type")):
            bad.append(container["name"])
            values.add(str(profile.get("type")))
    setters = _setters(pod_bad, bad)
    if setters:
        return "seccompProfile", (
            f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {_quote(sorted(values))}"
        )
    return None


SYSCTLS_1_0 = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    }
)
SYSCTLS_1_27 = SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_1_29 = SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SYSCTLS_1_32 = SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}


def _sysctls(allowed: frozenset[str]) -> CheckFn:
    def sysctls(metadata: dict, spec: dict) -> Verdict:
        """check_sysctls.go: only the namespaced, isolated ("safe") sysctls."""
        names = [s.get("name") for s in (_pod_context(spec) or {}).get("sysctls") or ()]
        bad = [name for name in names if name not in allowed]
        return ("forbidden sysctls", ", ".join(bad)) if bad else None

    return sysctls


def windows_host_process(metadata: dict, spec: dict) -> Verdict:
    """check_windowsHostProcess.go: no Windows HostProcess pod or container."""

    def host_process(context: dict | None) -> bool:
        return ((context or {}).get("windowsOptions") or {}).get("hostProcess") is True

    bad = [c["name"] for c in _containers(spec) if host_process(_context(c))]
    setters = _setters(host_process(_pod_context(spec)), bad)
    if setters:
        return "hostProcess", f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true"
    return None


# --- restricted checks --------------------------------------------------------------------------------------

RESTRICTED_VOLUME_SOURCES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
# Every other inline source, in the order check_restrictedVolumes.go names them.
OTHER_VOLUME_SOURCES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


def restricted_volumes(metadata: dict, spec: dict) -> Verdict:
    """check_restrictedVolumes.go: only configMap, csi, downwardAPI, emptyDir, ephemeral, image, PVC, projected
    and secret volumes (it replaces the baseline hostPath check)."""
    bad, types = [], set()
    for volume in spec.get("volumes") or ():
        if any(volume.get(source) is not None for source in RESTRICTED_VOLUME_SOURCES):
            continue
        bad.append(volume["name"])
        types.add(next((s for s in OTHER_VOLUME_SOURCES if volume.get(s) is not None), "unknown"))
    if bad:
        return "restricted volume types", (
            f"{_plural('volume', 'volumes', len(bad))} {_quote(bad)} {_plural('uses', 'use', len(bad))} "
            f"{_plural('restricted volume type', 'restricted volume types', len(types))} {_quote(sorted(types))}"
        )
    return None


def allow_privilege_escalation(metadata: dict, spec: dict) -> Verdict:
    """check_allowPrivilegeEscalation.go (1.8): every container sets allowPrivilegeEscalation=false."""
    bad = [c["name"] for c in _containers(spec) if (_context(c) or {}).get("allowPrivilegeEscalation") is not False]
    if bad:
        return "allowPrivilegeEscalation != false", (
            f"{_plural('container', 'containers', len(bad))} {_quote(bad)} must set "
            "securityContext.allowPrivilegeEscalation=false"
        )
    return None


def _unless_windows(check: CheckFn) -> CheckFn:
    """The 1.25 revision of a check: Windows pods (spec.os.name) are exempt, their API validation forbids the field."""

    def exempt_windows(metadata: dict, spec: dict) -> Verdict:
        return None if _windows(spec) else check(metadata, spec)

    exempt_windows.__doc__ = f"{check.__doc__} Windows pods are exempt (1.25+)."
    return exempt_windows


def _unless_user_namespace(check: CheckFn) -> CheckFn:
    """The 1.35 revision of a check: pods in a user namespace (`hostUsers: false`) are exempt."""

    def exempt_user_namespace(metadata: dict, spec: dict) -> Verdict:
        return None if _user_namespace(spec) else check(metadata, spec)

    exempt_user_namespace.__doc__ = f"{check.__doc__} Pods in a user namespace are exempt (1.35+)."
    return exempt_user_namespace


def run_as_non_root(metadata: dict, spec: dict) -> Verdict:
    """check_runAsNonRoot.go (1.0): runAsNonRoot=true on the pod, or on every container, and false nowhere."""
    pod_value = (_pod_context(spec) or {}).get("runAsNonRoot")
    pod_bad, pod_true = pod_value is False, pod_value is True
    explicit, implicit = [], []
    for container in _containers(spec):
        value = (_context(container) or {}).get("runAsNonRoot")
        if value is False:
            explicit.append(container["name"])
        elif value is None and not pod_true:
            implicit.append(container["name"])
    setters = _setters(pod_bad, explicit)
    if setters:
        return "runAsNonRoot != true", f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false"
    if implicit:
        return "runAsNonRoot != true", (
            f"pod or {_plural('container', 'containers', len(implicit))} {_quote(implicit)} must set "
            "securityContext.runAsNonRoot=true"
        )
    return None


def run_as_user(metadata: dict, spec: dict) -> Verdict:
    """check_runAsUser.go (1.23): no pod or container sets runAsUser=0."""
    pod_bad = (_pod_context(spec) or {}).get("runAsUser") == 0
    bad = [c["name"] for c in _containers(spec) if (_context(c) or {}).get("runAsUser") == 0]
    setters = _setters(pod_bad, bad)
    return ("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0") if setters else None


def seccomp_profile_restricted(metadata: dict, spec: dict) -> Verdict:
    """check_seccompProfile_restricted.go (1.19): RuntimeDefault or Localhost on the pod, or on every container
    (it replaces the baseline seccomp check)."""
    values: set[str] = set()
    pod_profile = (_pod_context(spec) or {}).get("seccompProfile")
    pod_bad = pod_profile is not None and not _valid_seccomp(pod_profile.get("type"))
    pod_set = pod_profile is not None and not pod_bad
    if pod_bad:
        values.add(str(pod_profile.get("type")))
    explicit, implicit = [], []
    for container in _containers(spec):
        profile = (_context(container) or {}).get("seccompProfile")
        if profile is not None:
            if not _valid_seccomp(profile.get("type")):
                explicit.append(container["name"])
                values.add(str(profile.get("type")))
        elif not pod_set:
            implicit.append(container["name"])
    setters = _setters(pod_bad, explicit)
    if setters:
        return "seccompProfile", (
            f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {_quote(sorted(values))}"
        )
    if implicit:
        return "seccompProfile", (
            f"pod or {_plural('container', 'containers', len(implicit))} {_quote(implicit)} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
        )
    return None


def capabilities_restricted(metadata: dict, spec: dict) -> Verdict:
    """check_capabilities_restricted.go (1.22): every container drops ALL and adds at most NET_BIND_SERVICE
    (it replaces the baseline capabilities check)."""
    missing_drop, adding, added = [], [], set()
    for container in _containers(spec):
        capabilities = (_context(container) or {}).get("capabilities")
        if capabilities is None:
            missing_drop.append(container["name"])
            continue
        if "ALL" not in (capabilities.get("drop") or ()):
            missing_drop.append(container["name"])
        extra = {c for c in capabilities.get("add") or () if c != "NET_BIND_SERVICE"}
        if extra:
            adding.append(container["name"])
            added |= extra
    details = []
    if missing_drop:
        details.append(
            f"{_plural('container', 'containers', len(missing_drop))} {_quote(missing_drop)} must set "
            'securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_plural('container', 'containers', len(adding))} {_quote(adding)} must not include "
            f"{_quote(sorted(added))} in securityContext.capabilities.add"
        )
    return ("unrestricted capabilities", "; ".join(details)) if details else None


# --- the registry (checks.go, registry.go) ------------------------------------------------------------------


@dataclass(frozen=True)
class Versioned:
    minimum: Version
    evaluate: CheckFn
    overrides: tuple[str, ...] = ()
    """Baseline checks this restricted check replaces at its version."""


@dataclass(frozen=True)
class Check:
    id: str
    level: Level
    versions: tuple[Versioned, ...]


CHECKS: tuple[Check, ...] = (
    Check("hostNamespaces", "baseline", (Versioned((1, 0), host_namespaces),)),
    Check("privileged", "baseline", (Versioned((1, 0), privileged),)),
    Check("capabilities_baseline", "baseline", (Versioned((1, 0), capabilities_baseline),)),
    Check("hostPathVolumes", "baseline", (Versioned((1, 0), host_path_volumes),)),
    Check("hostPorts", "baseline", (Versioned((1, 0), host_ports),)),
    Check("hostProbesAndHostLifecycle", "baseline", (Versioned((1, 34), host_probes_and_host_lifecycle),)),
    Check("appArmorProfile", "baseline", (Versioned((1, 0), app_armor_profile),)),
    Check(
        "seLinuxOptions",
        "baseline",
        (Versioned((1, 0), _se_linux(SELINUX_TYPES_1_0)), Versioned((1, 31), _se_linux(SELINUX_TYPES_1_31))),
    ),
    Check("procMount", "baseline", (Versioned((1, 0), proc_mount), Versioned((1, 35), proc_mount_1_35))),
    Check(
        "seccompProfile_baseline",
        "baseline",
        (Versioned((1, 0), seccomp_profile_baseline_1_0), Versioned((1, 19), seccomp_profile_baseline)),
    ),
    Check(
        "sysctls",
        "baseline",
        (
            Versioned((1, 0), _sysctls(SYSCTLS_1_0)),
            Versioned((1, 27), _sysctls(SYSCTLS_1_27)),
            Versioned((1, 29), _sysctls(SYSCTLS_1_29)),
            Versioned((1, 32), _sysctls(SYSCTLS_1_32)),
        ),
    ),
    Check("windowsHostProcess", "baseline", (Versioned((1, 0), windows_host_process),)),
    Check("restrictedVolumes", "restricted", (Versioned((1, 0), restricted_volumes, ("hostPathVolumes",)),)),
    Check(
        "allowPrivilegeEscalation",
        "restricted",
        (
            Versioned((1, 8), allow_privilege_escalation),
            Versioned((1, 25), _unless_windows(allow_privilege_escalation)),
        ),
    ),
    Check(
        "runAsNonRoot",
        "restricted",
        (Versioned((1, 0), run_as_non_root), Versioned((1, 35), _unless_user_namespace(run_as_non_root))),
    ),
    Check(
        "runAsUser",
        "restricted",
        (Versioned((1, 23), run_as_user), Versioned((1, 35), _unless_user_namespace(run_as_user))),
    ),
    Check(
        "seccompProfile_restricted",
        "restricted",
        (
            Versioned((1, 19), seccomp_profile_restricted, ("seccompProfile_baseline",)),
            Versioned((1, 25), _unless_windows(seccomp_profile_restricted), ("seccompProfile_baseline",)),
        ),
    ),
    Check(
        "capabilities_restricted",
        "restricted",
        (
            Versioned((1, 22), capabilities_restricted, ("capabilities_baseline",)),
            Versioned((1, 25), _unless_windows(capabilities_restricted), ("capabilities_baseline",)),
        ),
    ),
    Check("procMount_restricted", "restricted", (Versioned((1, 35), proc_mount, ("procMount",)),)),
)

LATEST: Version = max(v.minimum for check in CHECKS for v in check.versions)
"""`latest` is the newest version any check was revised at; later versions evaluate like it."""


def _at(check: Check, version: Version) -> Versioned | None:
    applicable = [v for v in check.versions if v.minimum <= version]
    return applicable[-1] if applicable else None


def checks_for(level: Level, version: Version) -> list[tuple[str, CheckFn]]:
    """The checks a level runs at a version: baseline's, plus restricted's in place of those they override;
    baseline IDs first, then restricted, each sorted (the order of the API server's message)."""
    if level == "privileged":
        return []
    version = min(version, LATEST)
    chosen = {c.id: (c.level, _at(c, version)) for c in CHECKS}
    chosen = {
        i: (lvl, v) for i, (lvl, v) in chosen.items() if v is not None and (level == "restricted" or lvl == "baseline")
    }
    overridden = {o for lvl, v in chosen.values() if lvl == "restricted" for o in v.overrides}
    ordered = sorted(i for i, (lvl, _) in chosen.items() if lvl == "baseline" and i not in overridden)
    ordered += sorted(i for i, (lvl, _) in chosen.items() if lvl == "restricted")
    return [(i, chosen[i][1].evaluate) for i in ordered]


def evaluate(level: Level, version: Version, metadata: dict, spec: dict) -> list[Forbidden]:
    """Every check of `level` at `version` that forbids the pod (empty: admitted)."""
    found = []
    for check_id, check in checks_for(level, version):
        verdict = check(metadata, spec)
        if verdict is not None:
            found.append(Forbidden(check_id, *verdict))
    return found


# --- which level a namespace enforces (api/helpers.go PolicyToEvaluate, admission/api defaults) -------------------


@dataclass(frozen=True)
class Policy:
    level: Level
    version: Version
    version_label: str
    """The version as the namespace wrote it (`latest`, `v1.33`), for messages."""

    def __str__(self) -> str:
        return f"{self.level}:{self.version_label}"


DEFAULT_POLICY = Policy("privileged", LATEST, "latest")
"""The admission plugin's own defaults (enforce: privileged, enforce-version: latest): what a namespace without
labels gets on a cluster whose AdmissionConfiguration sets no `defaults`, as kind, EKS, GKE Standard and AKS run."""


def parse_version(text: str) -> Version | None:
    """`latest` or `v1.<minor>`; None for anything else (the API server then evaluates at latest)."""
    if text == "latest":
        return LATEST
    if text.startswith("v1.") and text[3:].isdigit():
        return (1, int(text[3:]))
    return None


def enforced_policy(labels: dict[str, str] | None, defaults: Policy = DEFAULT_POLICY) -> Policy:
    """The level and version a namespace's labels enforce. An invalid level fails closed (restricted), an invalid
    version evaluates at latest, as the API server does."""
    labels = labels or {}
    level, version, version_label = defaults.level, defaults.version, defaults.version_label
    if ENFORCE_LABEL in labels:
        value = labels[ENFORCE_LABEL]
        level = value if value in LEVELS else "restricted"
    if ENFORCE_VERSION_LABEL in labels:
        version_label = labels[ENFORCE_VERSION_LABEL]
        version = parse_version(version_label) or LATEST
    return Policy(level, version, version_label)  # type: ignore[arg-type]
