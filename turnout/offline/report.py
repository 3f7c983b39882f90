"""The six plan files of CONTRACT §2, written for one stack."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from turnout.config import Waiver
from turnout.offline.manifests import Manifest
from turnout.offline.policy import Violation, unused_waivers
from turnout.offline.runtime import ResourceRecord
from turnout.units import format_duration

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: same output, faster
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class StackPlan:
    stack: str
    records: list[ResourceRecord]
    outputs: dict[str, Any]
    manifests: list[Manifest]
    violations: list[Violation]
    """Every finding, waived ones included (their `waiver` is set)."""
    waivers: tuple[Waiver, ...] = ()

    @property
    def traffic(self) -> dict[str, Any]:
        return self.outputs.get("traffic") or {"endpoints": []}

    @property
    def dr(self) -> dict[str, Any]:
        return self.outputs.get("dr") or {}

    @property
    def counted(self) -> list[Violation]:
        """The findings no waiver in force covers."""
        return [v for v in self.violations if v.waiver is None]

    @property
    def waived(self) -> list[Violation]:
        return [v for v in self.violations if v.waiver is not None]

    @property
    def mandatory_violations(self) -> list[Violation]:
        return [v for v in self.counted if v.level == "mandatory"]


def inventory(plan: StackPlan) -> dict[str, Any]:
    return {
        "stack": plan.stack,
        "resources": [
            {"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "inputs": r.inputs} for r in plan.records
        ],
        "outputs": plan.outputs,
    }


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


class PlanFolderError(Exception):
    """DIR/STACK holds something turnout did not write: replacing it could destroy someone's work."""


SUMMARY_TITLE = "# turnout plan: `{stack}`"


# inventory.json is written with sorted keys and an indent of 2 (`_write_json`): "stack" is its last key, its last
# lines `  "stack": "NAME"` and `}`.
_INVENTORY_END = re.compile(r'\n  "stack": ("(?:[^"\\\n]|\\.)*")\n}\n\Z')


def _inventory_stack(path: Path) -> str | None:
    """The stack an inventory.json names, read from its end rather than parsing the whole file (600 KB for
    prod-aws, twice a plan); None unless it ends as `_write_json` ends one."""
    with path.open("rb") as inventory:
        size = inventory.seek(0, os.SEEK_END)
        inventory.seek(max(0, size - 4096))
        tail = inventory.read().decode("utf-8", errors="replace")  # a character cut at the start is not read
    found = _INVENTORY_END.search(tail)
    return json.loads(found.group(1)) if found else None


def written_by_turnout(target: Path, stack: str) -> bool:
    """A plan folder carries its own marker: summary.md's title and inventory.json's stack name."""
    try:
        with (target / "summary.md").open(encoding="utf-8") as summary_file:
            title = summary_file.readline()
        inventory_stack = _inventory_stack(target / "inventory.json")
    except (OSError, ValueError):
        return False
    return title.startswith(SUMMARY_TITLE.format(stack=stack)) and inventory_stack == stack


def check_replaceable(target: Path, stack: str) -> None:
    """Raise PlanFolderError unless `target` is absent, an empty folder or an earlier plan of `stack`."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise PlanFolderError(f"{target} exists and is not a plan folder; move it away or choose another --out")
    if target.is_dir() and any(target.iterdir()) and not written_by_turnout(target, stack):
        raise PlanFolderError(
            f"{target} holds files that an earlier `turnout plan {stack}` did not write (no summary.md and "
            "inventory.json of that stack), and planning replaces the folder; remove it yourself or choose "
            "another --out"
        )


def write_plan(plan: StackPlan, out_dir: Path, ahead: WriteAhead | None = None) -> Path:
    """Write DIR/STACK/{inventory,traffic,dr,policy}.json, manifests/ and summary.md; return the folder.

    An earlier plan of the stack is replaced (a stale manifest must not survive); anything else there
    is left alone and refused (PlanFolderError). With `ahead`, the files that do not depend on the policy
    verdicts were written by a child process while the policies were evaluated: the rest is written next
    to them and the folder put in place of the earlier plan; if the child failed, everything is written here."""
    target = out_dir / plan.stack
    check_replaceable(target, plan.stack)
    written = ahead.finish() if ahead is not None else None
    if written is not None:
        _write_policy_files(plan, written)
        if target.exists():
            shutil.rmtree(target)
        written.rename(target)
        return target
    if target.exists():
        shutil.rmtree(target)
    _write_program_files(plan, target)
    _write_policy_files(plan, target)
    return target


def _write_program_files(plan: StackPlan, target: Path) -> None:
    """What the program registered: inventory.json, traffic.json, dr.json and manifests/."""
    (target / "manifests").mkdir(parents=True)
    _write_json(target / "inventory.json", inventory(plan))
    _write_json(target / "traffic.json", plan.traffic)
    _write_json(target / "dr.json", plan.dr)
    for manifest in plan.manifests:
        folder = target / "manifests" / manifest.cluster
        folder.mkdir(parents=True, exist_ok=True)
        (folder / manifest.filename).write_text(
            manifest.preamble + yaml.dump(manifest.body, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
        )


def _write_policy_files(plan: StackPlan, target: Path) -> None:
    """What the policies found: policy.json and summary.md (whose title marks the folder as a plan)."""
    _write_json(
        target / "policy.json",
        {"violations": [v.to_json() for v in plan.counted], "waived": [v.to_json() for v in plan.waived]},
    )
    (target / "summary.md").write_text(summary(plan))


class WriteAhead:
    """Writes a plan's program files (`_write_program_files`) in a forked child while this process evaluates
    the policies, into a hidden folder beside the plan's (`.STACK.PID.partial`), which `write_plan` completes
    and renames into place. The plan is a single-threaded process's work, so the second processor that this
    uses would otherwise idle. Nothing is forked where it is unsafe (not Linux, another thread running) or
    pointless (one processor); `finish` then returns None and `write_plan` writes everything itself, as it
    does when the child failed for any reason (its error then shows when this process writes the same files)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.folder: Path | None = None
        self.pid: int | None = None

    def start(self, plan: StackPlan) -> None:
        from turnout.offline import fast

        if not fast.may_fork_a_helper():
            return
        folder = self.out_dir / f".{plan.stack}.{os.getpid()}.partial"
        try:
            folder.mkdir()  # as the plan's folder is made: its mode from the umask
        except OSError:  # a killed run's leftover of the same process id, say: write it all later instead
            return
        self.folder = folder
        pid = os.fork()
        if pid == 0:  # the child: write, then leave at once (no atexit handlers, no flushing of inherited buffers)
            status = 1
            try:
                _write_program_files(plan, self.folder)
                status = 0
            finally:
                os._exit(status)
        self.pid = pid

    def finish(self) -> Path | None:
        """The folder with the program files, once the child has written them all; None if it did not."""
        if self.pid is None:
            return None
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if os.waitstatus_to_exitcode(status) == 0:
            return self.folder
        self.discard()
        return None

    def discard(self) -> None:
        """Wait for the child, if any, and remove its folder (planning failed, or the plan was written)."""
        if self.pid is not None:
            os.waitpid(self.pid, 0)
            self.pid = None
        if self.folder is not None and self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None


# ---------------------------------------------------------------------------------------------
# summary.md


def summary(plan: StackPlan) -> str:
    mandatory = len(plan.mandatory_violations)
    verdict = "❌ blocked" if mandatory else "✅ passes policy"
    lines = [
        f"{SUMMARY_TITLE.format(stack=plan.stack)} — {verdict}",
        "",
        f"{len(plan.records)} resources, {len(plan.manifests)} Kubernetes objects, "
        f"{mandatory} mandatory and {len(plan.counted) - mandatory} advisory policy violations"
        + (f", {len(plan.waived)} waived." if plan.waived else "."),
        "",
        *_diagram(plan),
        *_platform_table(plan),
        *_resources_table(plan),
        *_traffic_tables(plan),
        *_watch_and_test_section(plan),
        *_global_traffic_section(plan),
        *_dr_section(plan.dr),
        *_violations_section(plan.counted),
        *_waivers_section(plan),
    ]
    return "\n".join(lines).rstrip() + "\n"


# Strings from the stack file (header values, waiver reasons, resource names) reach summary.md:
# each is escaped for where it lands, so no value can break a table, a code span or the diagram.


def _code(value: object) -> str:
    """An inline code span showing `value` as written (pipes escaped: GFM splits table cells on them)."""
    text = str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _text(value: object) -> str:
    """Plain text on one line, with every Markdown and HTML character taken literally."""
    text = re.sub(r"\s*\n\s*", " — ", str(value).strip())
    return re.sub(r"([\\`*_\[\]<>|#!~&])", r"\\\1", text)


def _label(value: object) -> str:
    """Text inside a quoted Mermaid label: anything but plain characters as an entity code (#34;)."""
    return re.sub(r"[^A-Za-z0-9 .,:%/=+_@()*-]", lambda m: f"#{ord(m.group())};", str(value))


class _NodeIds:
    """Readable Mermaid node ids (`cluster_prod_us_east_1`), kept distinct for distinct names: names
    that read the same once punctuation becomes `_` (`a-b`/`c` and `a`/`b-c`) get a numbered suffix."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, ...], str] = {}

    def __call__(self, *parts: str) -> str:
        if parts not in self.ids:
            base = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(map(str, parts)))
            taken = set(self.ids.values())
            candidate, number = base, 2
            while candidate in taken:
                candidate, number = f"{base}_{number}", number + 1
            self.ids[parts] = candidate
        return self.ids[parts]


def _platform_table(plan: StackPlan) -> list[str]:
    platform = plan.outputs.get("platform") or {}
    if not platform:
        return []
    parts = ["istio", "knative", "flagger", "prometheus", "observability", "cert-manager", "tls"]
    lines = ["## Serving platform", "", "| cluster | " + " | ".join(parts) + " |", "| --- |" + " --- |" * len(parts)]
    for cluster, versions in sorted(platform.items()):
        lines.append(f"| {_code(cluster)} | " + " | ".join(_text(versions.get(p) or "—") for p in parts) + " |")
    return [*lines, ""]


def _resources_table(plan: StackPlan) -> list[str]:
    counts = Counter(r.type for r in plan.records)
    rows = [f"| {_code(t)} | {n} |" for t, n in sorted(counts.items())]
    return ["## Resources by type", "", "| type | count |", "| --- | ---: |", *rows, ""]


def describe_match(match: dict[str, str] | None, only_route: bool = False) -> str:
    if match is None:
        return "all requests" if only_route else "every other request"
    kind = "header" if "header" in match else "cookie"
    return f"{kind} {_code(_match_label(match).removeprefix(kind + ' '))}"


def _match_label(match: dict[str, str]) -> str:
    if "header" in match:
        return f"header {match['header']}: {match['value']}"
    return f"cookie {match['cookie']}={match['value']}"


def _traffic_tables(plan: StackPlan) -> list[str]:
    lines = ["## Traffic", ""]
    endpoints = plan.traffic.get("endpoints", [])
    if not endpoints:
        return [*lines, "No model endpoints.", ""]
    for endpoint in endpoints:
        lines += [
            f"### {_code(endpoint['name'])} on {_code(endpoint['cluster'])} — {_text(endpoint['strategy'])} "
            f"({_text(endpoint['backend'])})",
            "",
            "| # | requests | served by | mirrored to |",
            "| ---: | --- | --- | --- |",
        ]
        for index, route in enumerate(endpoint["routes"], start=1):
            served = ", ".join(
                f"{_code(d['version'])}"
                + (f" merged with {_code(d['interleavedWith'])} (experiment agent)" if d.get("interleavedWith") else "")
                + f" {d['weight']}%"
                for d in route["to"]
            )
            mirrored = ", ".join(f"{_code(m['version'])} {m['percent']}%" for m in route.get("mirror") or []) or "—"
            lines.append(
                f"| {index} | {describe_match(route['match'], len(endpoint['routes']) == 1)} | {served} | {mirrored} |"
            )
        lines.append("")
    return lines


ALERT_RULES_LABEL = "turnout.dev/alert-rules"


def _watch_and_test_section(plan: StackPlan) -> list[str]:
    """Per endpoint and cluster: the alerts its rule file defines, and the acceptance tests that run before a
    version gets traffic (a Job the routes wait for, or Flagger's pre-rollout webhook)."""
    alerts: dict[tuple[str, str], list[str]] = {}
    tests: dict[tuple[str, str], str] = {}
    counts: dict[tuple[str, str, str], int] = {}
    for manifest in plan.manifests:
        body, cluster = manifest.body, manifest.cluster
        metadata = body.get("metadata") or {}
        kind = body.get("kind")
        if kind == "ConfigMap" and (metadata.get("labels") or {}).get(ALERT_RULES_LABEL) == "true":
            for key, text in (body.get("data") or {}).items():
                groups = (yaml.load(text, Loader=_Loader) or {}).get("groups") or []  # noqa: S506 (safe)
                names = [rule["alert"] for group in groups for rule in group.get("rules") or [] if "alert" in rule]
                alerts[(cluster, key.removesuffix(".yml"))] = list(dict.fromkeys(names))
        elif kind == "ConfigMap" and "tests.json" in (body.get("data") or {}):
            endpoint = (metadata.get("labels") or {}).get("turnout.dev/endpoint", metadata.get("namespace", ""))
            counts[(cluster, endpoint, metadata.get("name", ""))] = len(json.loads(body["data"]["tests.json"]))
        elif kind == "Job" and metadata.get("name", "").startswith(f"{metadata.get('namespace')}-acceptance"):
            container = body["spec"]["template"]["spec"]["containers"][0]
            namespace = metadata["namespace"]
            hosts = [arg.split("://")[1].split(".")[0] for arg in container["command"] if arg.startswith("--url=")]
            count = next((n for (c, e, _), n in counts.items() if c == cluster and e == metadata["namespace"]), 0)
            if all(host.endswith("-acceptance") for host in hosts):  # istio: a Service per version
                versions = [host.removeprefix(f"{namespace}-").removesuffix("-acceptance") for host in hosts]
                against, waiting = ", ".join(f"`{v}`" for v in versions), "the VirtualService waits for it"
            else:  # Knative: each revision's own Service, named after the revision
                against = "revisions " + ", ".join(f"`{h}`" for h in hosts)
                waiting = "the Route, which names them, waits for it"
            tests[(cluster, metadata["namespace"])] = (
                f"Job `{metadata['name']}`: {count} test(s) against {against}; {waiting}"
            )
        elif kind == "Canary":
            for hook in ((body.get("spec") or {}).get("analysis") or {}).get("webhooks") or []:
                if hook.get("type") == "pre-rollout":
                    tests[(cluster, metadata.get("namespace", ""))] = (
                        f"Flagger pre-rollout webhook `{hook['name']}` ({hook['url']}): the version under analysis "
                        "gets no request until it passes"
                    )
    for (cluster, endpoint, _), count in counts.items():
        if (cluster, endpoint) in tests and tests[(cluster, endpoint)].startswith("Job `"):
            tests[(cluster, endpoint)] = tests[(cluster, endpoint)].replace(": 0 test(s)", f": {count} test(s)")
    if not alerts and not tests:
        return []
    lines = [
        "## Alerts and acceptance tests",
        "",
        "| endpoint | cluster | alerts | acceptance tests |",
        "| --- | --- | --- | --- |",
    ]
    for cluster, endpoint in sorted({*alerts, *tests}):
        names = ", ".join(f"`{n}`" for n in alerts.get((cluster, endpoint), [])) or "none (observability off)"
        lines.append(f"| `{endpoint}` | `{cluster}` | {names} | {tests.get((cluster, endpoint), 'none')} |")
    return [*lines, ""]


def _dr_section(dr: dict[str, Any]) -> list[str]:
    target = dr.get("target")
    wanted = (
        f"RPO {format_duration(target['rpoSeconds'])}, RTO {format_duration(target['rtoSeconds'])}"
        if target
        else "none declared"
    )

    def estimate(key: str) -> str:
        value = dr.get(key)
        return "unbounded" if value is None else format_duration(value)

    lines = [
        "## Disaster recovery",
        "",
        f"- target: {wanted}",
        f"- tier: **{_text(dr.get('tier', 'none'))}** over {_text(', '.join(dr.get('regions', [])) or 'no regions')}",
        f"- estimated RPO {estimate('estimatedRpoSeconds')}, RTO {estimate('estimatedRtoSeconds')}",
        f"- meets target: {'yes' if dr.get('meets') else '**no**'}",
    ]
    # turnout's own sentences (with code spans meant as such); only kept on one line each
    lines += [f"  - {' '.join(str(reason).split())}" for reason in dr.get("reasons", [])]
    return [*lines, ""]


def _global_traffic_section(plan: StackPlan) -> list[str]:
    """Health-checked DNS across regions (a DR tier's failover) or colours (a global stack's cells)."""
    routing = plan.outputs.get("globalTraffic")
    if not routing:
        return []
    lines = [f"## Global traffic: {_code(routing.get('hostname'))}", ""]
    if plan.outputs.get("liveColour"):
        weights = ", ".join(
            f"{_text(colour)} {weight}%" for colour, weight in (plan.outputs.get("weights") or {}).items()
        )
        cells = ", ".join(
            f"{_text(colour)}: {_code(cell)}" for colour, cell in (plan.outputs.get("cells") or {}).items()
        )
        lines += [f"Live colour **{_text(plan.outputs['liveColour'])}** ({weights}); cells {cells}.", ""]
    lines += [
        "| cluster | region | routing | role / weight | target | health check | TTL |",
        "| --- | --- | --- | --- | --- | --- | ---: |",
    ]
    for record in routing.get("records") or []:
        check = record.get("healthCheck") or {}
        share = record.get("weight") if record.get("routing") == "weighted" else record.get("role")
        probe = (
            f"{check.get('protocol', '?')} :{check.get('port', '?')}{check.get('path', '')} every "
            f"{check.get('intervalSeconds', '?')} s × {check.get('failureThreshold', '?')}"
        )
        lines.append(
            f"| {_code(record.get('cluster'))} | {_text(record.get('region'))} | {_text(record.get('routing'))} "
            f"| {_text(share)} | {_code(record.get('target'))} | {_text(probe)} | {_text(record.get('ttl'))} s |"
        )
    return [*lines, ""]


def _violations_section(violations: list[Violation]) -> list[str]:
    lines = ["## Policy", ""]
    if not violations:
        return [*lines, "No violations.", ""]
    lines += ["| policy | level | resource | finding |", "| --- | --- | --- | --- |"]
    for v in violations:
        resource = v.urn.rsplit("::", 1)[-1] if v.urn else "(stack)"
        lines.append(f"| {_code(v.policy)} | {_text(v.level)} | {_code(resource)} | {_text(v.message)} |")
    return [*lines, ""]


def _waivers_section(plan: StackPlan) -> list[str]:
    """Waived findings stay visible: what is accepted, why, and until when."""
    expired = [v for v in plan.counted if v.expired_waiver is not None]
    unused = unused_waivers(plan.violations, plan.waivers)
    if not (plan.waived or expired or unused):
        return []
    lines = ["## Waivers", ""]
    if plan.waived:
        lines += ["| policy | level | resource | finding | reason | expires |", "| --- | --- | --- | --- | --- | --- |"]
        for v in plan.waived:
            finding = _text(v.message.splitlines()[-1])
            lines.append(
                f"| {_code(v.policy)} | {_text(v.level)} | {_code(v.resource)} | {finding} | "
                f"{_text(v.waiver.reason)} | {_text(v.waiver.expires)} |"
            )
        lines.append("")
    lines += [
        f"- expired on {_text(v.expired_waiver.expires)}, counted again: {_code(v.policy)} on {_code(v.resource)}"
        for v in expired
    ]
    lines += [f"- covers no finding (remove it?): {_code(w.policy)} on {_code(w.resource)}" for w in unused]
    return [*lines, ""]


def _diagram(plan: StackPlan) -> list[str]:
    """Regions contain clusters; endpoints hang off their cluster; edges to versions carry the routes."""
    clusters = plan.outputs.get("clusters") or []
    _node_id = _NodeIds()
    lines = ["```mermaid", "flowchart LR"]
    for region in sorted({c["region"] for c in clusters}):
        lines.append(f'  subgraph {_node_id("region", region)}["region {_label(region)}"]')
        for c in (c for c in clusters if c["region"] == region):
            text = f"{_label(c['name'])}<br/>{_label(c['cloud'])} · k8s {_label(c['kubernetesVersion'])}"
            lines.append(f'    {_node_id("cluster", c["name"])}["{text}"]')
        lines.append("  end")
    for endpoint in plan.traffic.get("endpoints", []):
        ep = _node_id("endpoint", endpoint["cluster"], endpoint["name"])
        text = f"{_label(endpoint['name'])}<br/>{_label(endpoint['strategy'])}"
        lines.append(f'  {_node_id("cluster", endpoint["cluster"])} --> {ep}(["{text}"])')
        for route in endpoint["routes"]:
            when = "" if route["match"] is None else _label(_match_label(route["match"])) + ": "
            for d in route["to"]:
                version = _node_id("version", endpoint["cluster"], endpoint["name"], d["version"])
                lines.append(f'  {ep} -->|"{when}{d["weight"]}%"| {version}["{_label(d["version"])}"]')
            for m in route.get("mirror") or []:
                version = _node_id("version", endpoint["cluster"], endpoint["name"], m["version"])
                lines.append(f'  {ep} -.->|"mirror {m["percent"]}%"| {version}["{_label(m["version"])} (shadow)"]')
    routing = plan.outputs.get("globalTraffic") or {}
    if routing.get("records"):
        dns = _node_id("dns", routing.get("hostname") or "dns")
        lines.append(f'  {dns}{{{{"{_label(routing.get("hostname"))}"}}}}')
        for record in routing["records"]:
            share = f"weight {record.get('weight')}" if record.get("routing") == "weighted" else record.get("role")
            cluster = record.get("cluster", "?")
            lines.append(f'  {dns} -->|"{_label(share)}"| {_node_id("cluster", cluster)}["{_label(cluster)}"]')
    return [*lines, "```", ""]
