"""Stack files fuzzed as YAML text, not as structures (issue 16): YAML 1.1 scalars (dates, booleans,
nulls, octal, sexagesimal), tags, anchors and merge keys, duplicate keys, encodings and byte-order
marks, deep nesting, names whose derived resource names collide, misspelt namespaces, tabs.

The property, for every generated file: `turnout plan` exits 0, 1 or 2, never with a traceback;
touches nothing outside its plan folder; and a plan it writes holds exactly what the text says (no
key dropped or renamed, no value changed), while a mistake that would drop or rename one exits 2.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO
from turnout.cli import main

# What a user types: mostly ordinary text, sometimes a YAML 1.1 trap, which is refused when written
# plain and kept as written when quoted. Names include ones whose derived names collide.
NAMES = ["m", "fraud", "fraud-score", "score-v1", "v1", "v2", "ranker", "a-b", "b"]
NAME_TRAPS = ["no", "on", "yes", "off", "y", "~", "null", "true", "1:30", "010", "0x1f", "2024-06-01", "1_000", "12"]
QUANTITIES = ["500m", "1Gi", "2", "1.23456789", "268435456", "0.5", "64Mi", "2.0"]
QUANTITY_TRAPS = ["1.2345678901234567891", "1e3", ".inf", "010", "1:30", "yes"]
ENV_VALUES = ["hello", "-7", "é", "true", "3.0", "s3://models/a"]
ENV_TRAPS = ["01234", "0x1F", "1:30", "yes", "on", "1_000", "2027-02-30", "~", "1.2345678901234567891"]
LOW, HIGH = ["1", "2"], ["3", "4"]
REPLICA_TRAPS = ["0", "010", "0x2", "1:30", "2.0", "~", "yes", "!!int 3"]


def usually(ordinary: list[str], traps: list[str]) -> st.SearchStrategy[str]:
    """Three times in four an ordinary value, else a trap."""
    return st.one_of(
        st.sampled_from(ordinary), st.sampled_from(ordinary), st.sampled_from(ordinary), st.sampled_from(traps)
    )


@dataclass
class Version:
    image: str
    cpu: str | None = None
    memory: str | None = None
    low: str | None = None
    high: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Intent:
    """What the user meant: every key and value as the text they typed."""

    endpoints: dict[str, dict[str, Version]]
    backends: dict[str, str]
    must_refuse: list[str] = field(default_factory=list)
    """Mutations that would drop or rename something if accepted: the plan must exit 2."""


def _scalar(draw, text: str) -> str:
    """The text written plain, quoted, or (sometimes) with an explicit !!str tag."""
    style = draw(st.sampled_from(["plain", "plain", "single", "double", "tagged"]))
    if style == "single":
        return "'" + text.replace("'", "''") + "'"
    if style == "double":
        return json.dumps(text, ensure_ascii=False)
    if style == "tagged":
        return f"!!str {json.dumps(text, ensure_ascii=False)}"
    return text


@st.composite
def stack_texts(draw) -> tuple[bytes, Intent]:
    names = usually(NAMES, NAME_TRAPS)
    endpoint_names = draw(st.lists(names, min_size=1, max_size=2, unique=True))
    intent = Intent(endpoints={}, backends={})
    lines = ["config:", "  turnout:platform: {cloud: kind, regions: [local]}"]
    if draw(st.booleans()):
        lines.append("  aws:region: us-east-1  # another namespace: passed through")
    lines.append("  turnout:endpoints:")
    for name in endpoint_names:
        backend = draw(st.sampled_from(["istio", "istio", "knative"]))
        intent.backends[name] = backend
        lines.append(f"    {_scalar(draw, name)}:")
        if backend == "knative":
            lines.append("      backend: knative")
        version_names = draw(st.lists(names, min_size=1, max_size=2, unique=True))
        versions: dict[str, Version] = {}
        keys = {v: _scalar(draw, v) for v in version_names}
        lines.append("      versions:")
        merged = len(version_names) == 2 and draw(st.booleans())
        for index, version_name in enumerate(version_names):
            version = Version(image=f"ghcr.io/acme/{name.replace('~', 'x')}:1.0.{index}".lower())
            body = [f"image: {json.dumps(version.image)}"]
            if draw(st.booleans()):
                quantities = usually(QUANTITIES, QUANTITY_TRAPS)
                version.cpu, version.memory = draw(quantities), draw(quantities)
                body.append(
                    f"resources: {{cpu: {_scalar(draw, version.cpu)}, memory: {_scalar(draw, version.memory)}}}"
                )
            if draw(st.booleans()):
                version.low, version.high = draw(usually(LOW, REPLICA_TRAPS)), draw(usually(HIGH, REPLICA_TRAPS))
                body.append(f"replicas: {{min: {version.low}, max: {version.high}}}")
            if draw(st.booleans()):
                env_value = draw(usually(ENV_VALUES, ENV_TRAPS))
                version.env = {"MODEL_FLAG": env_value}
                body.append(f"env: {{MODEL_FLAG: {_scalar(draw, env_value)}}}")
            if merged and index == 1:
                first = versions[version_names[0]]
                inherited = Version(version.image, first.cpu, first.memory, first.low, first.high, dict(first.env))
                versions[version_name] = inherited
                lines.append(f"        {keys[version_name]}:")
                lines.append("          <<: *base")
                lines.append(f"          image: {json.dumps(version.image)}")
                continue
            versions[version_name] = version
            anchor = " &base" if merged and index == 0 else ""
            lines.append(f"        {keys[version_name]}:{anchor}")
            lines += [f"          {item}" for item in body]
        if len(version_names) == 2:
            stable, canary = (keys[v] for v in version_names)
            lines.append(f"      strategy: {{type: canary, stable: {stable}, canary: {canary}, weight: 10}}")
        intent.endpoints[name] = versions
    text = "\n".join(lines) + "\n"

    count = draw(st.sampled_from([0, 0, 0, 1, 1, 2]))
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=count, max_size=count, unique=True)):
        text = mutation(draw, text, intent)
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "utf-16", "latin-1"]))
    if encoding == "utf-16":
        intent.must_refuse.append("UTF-16 file")
    if encoding == "latin-1":
        text = text.replace("config:\n", "# modèle\nconfig:\n", 1)  # a Latin-1 é is not UTF-8
        intent.must_refuse.append("Latin-1 file")
        return text.encode("latin-1", errors="replace"), intent
    return text.encode(encoding, errors="replace"), intent


def _duplicate_a_key(draw, text, intent):
    lines = text.splitlines()
    candidates = [i for i, line in enumerate(lines) if line.strip().endswith(":") and not line.startswith("config")]
    index = draw(st.sampled_from(candidates))
    block = [lines[index]]
    indent = len(lines[index]) - len(lines[index].lstrip())
    for line in lines[index + 1 :]:
        if len(line) - len(line.lstrip()) <= indent:
            break
        block.append(line)
    intent.must_refuse.append(f"duplicate key {lines[index].strip()}")
    return "\n".join(lines[: index + len(block)] + block + lines[index + len(block) :]) + "\n"


def _misspell_the_namespace(draw, text, intent):
    misspelt = draw(st.sampled_from(["Turnout", "turnot", "TURNOUT", "turnuot", "tunrout"]))
    intent.must_refuse.append(f"namespace {misspelt}")
    return text.replace("turnout:endpoints", f"{misspelt}:endpoints", 1)


def _indent_with_a_tab(draw, text, intent):
    intent.must_refuse.append("tab indentation")
    return text.replace("\n    ", "\n\t", 1)


def _a_tag_turnout_does_not_read(draw, text, intent):
    tag = draw(st.sampled_from(["!!binary aGVsbG8=", "!!set {a, b}", "!vault secret/x", "!!timestamp 2027-01-31"]))
    intent.must_refuse.append(f"tag {tag}")
    return text.replace("  turnout:endpoints:\n", f"  turnout:tier: {tag}\n  turnout:endpoints:\n", 1)


def _deep_nesting(draw, text, intent):
    depth = draw(st.sampled_from([8, 70, 3000]))
    if depth > 64:
        intent.must_refuse.append(f"nesting {depth} deep")
    return text + "  aws:deep: " + "[" * depth + "]" * depth + "\n"


def _a_comment_with_unicode(draw, text, intent):
    return text.replace("config:\n", "# überprüft ✓ — 模型\nconfig:\n", 1)


def _a_waiver_dated_plainly(draw, text, intent):
    date = draw(st.sampled_from(["2999-12-31", "2027-02-30", "2027-13-01"]))
    if date != "2999-12-31":
        intent.must_refuse.append(f"impossible date {date}")
    waiver = (
        "  turnout:waivers:\n"
        f"    - {{policy: image-pinned, resource: x, reason: 'the team accepted it', expires: {date}}}\n"
    )
    return text.replace("  turnout:endpoints:\n", waiver + "  turnout:endpoints:\n", 1)


MUTATIONS = [
    _duplicate_a_key,
    _misspell_the_namespace,
    _indent_with_a_tab,
    _a_tag_turnout_does_not_read,
    _deep_nesting,
    _a_comment_with_unicode,
    _a_waiver_dated_plainly,
]


# --- the property -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    project = root / "project"
    project.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", project)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "out" / "neighbour").mkdir(parents=True)
    (root / "out" / "neighbour" / "keep.txt").write_text("another stack's plan")
    return root


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file outside the plan folder, with its size and modification time (Python's bytecode
    caches aside: the interpreter writes those when the program's modules are imported)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.is_relative_to(root / "out" / "fuzz")
    }


def _as_quantity(text: str) -> Decimal | str:
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def _check_plan_matches_intent(folder: Path, intent: Intent) -> None:
    traffic = json.loads((folder / "traffic.json").read_text())
    assert sorted(e["name"] for e in traffic["endpoints"]) == sorted(intent.endpoints), "an endpoint renamed or lost"
    for endpoint in traffic["endpoints"]:
        named = {d["version"] for route in endpoint["routes"] for d in route["to"]}
        assert named <= set(intent.endpoints[endpoint["name"]]), "a version renamed"
    for path in (folder / "manifests").rglob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        labels = document["metadata"].get("labels") or {}
        endpoint, version = labels.get("turnout.dev/endpoint"), labels.get("turnout.dev/version")
        if endpoint is None:
            continue
        assert endpoint in intent.endpoints, f"{path.name}: endpoint {endpoint!r} not in the stack file"
        if version is None or document["kind"] not in ("Deployment", "Configuration"):
            continue
        assert version in intent.endpoints[endpoint], f"{path.name}: version {version!r} not in the stack file"
        wanted = intent.endpoints[endpoint][version]
        spec = document["spec"]["template"]["spec"]
        container = next(c for c in spec["containers"] if c["name"] in ("model", "user-container"))
        assert container["image"] == wanted.image
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        for key, value in wanted.env.items():
            assert env.get(key) == value, f"{path.name}: env {key} is {env.get(key)!r}, the file says {value!r}"
        limits = container.get("resources", {}).get("limits", {})
        for resource, text in (("cpu", wanted.cpu), ("memory", wanted.memory)):
            if text is not None:
                assert _as_quantity(limits[resource]) == _as_quantity(text), f"{path.name}: {resource}"


@settings(
    # About 30 s in `make test` (an accepted file is a whole plan); TURNOUT_FUZZ_EXAMPLES=1000 digs deeper.
    max_examples=int(os.environ.get("TURNOUT_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=stack_texts())
def test_stack_files_as_text_never_crash_lose_or_rename_anything(workspace, capsys, case):
    data, intent = case
    (workspace / "project" / "environments" / "Pulumi.fuzz.yaml").write_bytes(data)
    before = _snapshot(workspace)
    status = main(["plan", "fuzz", "--project", str(workspace / "project"), "--out", str(workspace / "out")])
    err = capsys.readouterr().err
    event(f"exit {status}")
    assert status in (0, 1, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    assert _snapshot(workspace) == before, "a file outside the plan folder changed"
    if status == 2:
        assert "stack 'fuzz' (environments/Pulumi.fuzz.yaml)" in err, err
        return
    assert not intent.must_refuse, f"planned despite {intent.must_refuse}: {err}"
    _check_plan_matches_intent(workspace / "out" / "fuzz", intent)
