"""Acceptance tests on Knative endpoints (issue 19): a Job tests every revision the Route sends requests to or tags,
through the Service Knative makes for each revision, and the Route names those revisions and waits for the Job, so
a failing test leaves users where they were. The real runner, with the command and files the plan renders, runs
against a local stand-in for Knative's activator that finds the revision from the Host as the activator does."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from components.endpoint.acceptance import MOUNT, RUNNER_IMAGE, revision_url
from tests.admission import pod_security
from tests.conftest import CRDS, REPO, dependency_closure, write_stack
from tests.crd_schema import load_crds, validate_custom_resource
from tests.test_strategies_render import routes_from_knative
from turnout.cli import main
from turnout.offline.runtime import run_program
from turnout.offline.stackfile import find_project, read_stack

JOB = "kubernetes:batch/v1:Job"
ROUTE = "kubernetes:serving.knative.dev/v1:Route"
CONFIGURATION = "kubernetes:serving.knative.dev/v1:Configuration"
TESTS = [
    {
        "path": "/predict",
        "method": "POST",
        "body": {"amount": 5000},
        "expect": {"status": 200, "jsonPath": "$.score", "within": [0, 1]},
    }
]
VERSIONS = {"v1": {"image": "ghcr.io/acme/scores:1.0.0"}, "v2": {"image": "ghcr.io/acme/scores:2.0.0"}}


def stack(strategy: dict, tier: str = "prod", tests: list | None = TESTS, **v2) -> dict:
    """`scores` on Knative with `strategy` and `tests`, and `ranker`, a tested rolling endpoint, on one kind cluster."""
    versions = copy.deepcopy(VERSIONS)
    versions["v2"].update(v2)
    scores = {"backend": "knative", "versions": versions, "strategy": strategy}
    ranker = {
        "backend": "knative",
        "versions": {"v1": {"image": "ghcr.io/acme/ranker:1.0.0"}},
        "strategy": {"type": "rolling", "version": "v1"},
        "tests": TESTS,
    }
    return {
        "tier": tier,
        "platform": {"cloud": "kind", "regions": ["lab"]},
        "endpoints": {"scores": scores | ({"tests": tests} if tests else {}), "ranker": ranker},
    }


CANARY = {"type": "canary", "stable": "v1", "canary": "v2", "weight": 20}
STACKS = {
    "kt-canary": stack(CANARY),
    "kt-canary-env": stack(CANARY, env={"MODEL_URI": "s3://models/2b"}),
    "kt-bg": stack({"type": "blue-green", "active": "v1", "preview": "v2"}),
    "kt-dl-dev": stack({"type": "dark-launch", "live": "v1", "dark": "v2"}, tier="dev", replicas={"min": 0, "max": 2}),
    "kt-untested": stack(CANARY, tests=None),
}
WARM_STANDBY = {
    "tier": "prod",
    "platform": {
        "cloud": "aws",
        "regions": ["us-east-1", "us-west-2"],
        "serving": {"gateway": {"exposure": "external", "domain": "models.example.com"}},
    },
    "dr": {"rpo": "1m", "rto": "5m"},
    "endpoints": {"kn": {"backend": "knative", "versions": VERSIONS, "strategy": CANARY, "tests": TESTS}},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "Pulumi.yaml", root)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name, config in STACKS.items():
        write_stack(root, name, config)
    write_stack(root, "kt-warm", WARM_STANDBY)
    return root


@pytest.fixture(scope="module")
def plans(project, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    assert main(["plan", *STACKS, "--project", str(project), "--out", str(out)]) == 0
    return out


def documents(plans: Path, stack_name: str) -> list[dict]:
    (cluster,) = (plans / stack_name / "manifests").iterdir()
    return [d for p in sorted(cluster.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())]


def of_kind(objects: list[dict], kind: str, namespace: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace]


def revisions(objects: list[dict], namespace: str) -> dict[str, str]:
    """Version → the name of the revision its Configuration makes."""
    return {
        c["spec"]["template"]["metadata"]["labels"]["turnout.dev/version"]: c["spec"]["template"]["metadata"]["name"]
        for c in of_kind(objects, "Configuration", namespace)
    }


def job_urls(job: dict) -> list[str]:
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    return [arg.removeprefix("--url=") for arg in command if arg.startswith("--url=")]


def records(project: Path, stack_name: str) -> dict:
    found = find_project(project)
    settings = read_stack(found, stack_name)
    run = run_program(found.root, found.name, stack_name, settings.config, settings.secret_keys, found.main)
    return {r.urn: r for r in run.records}


# --- the plan -----------------------------------------------------------------------------------------------------


def test_tested_knative_stacks_plan_with_no_violation(plans):
    for name in STACKS:
        violations = json.loads((plans / name / "policy.json").read_text())["violations"]
        assert [v for v in violations if v["enforcement"] == "mandatory"] == [], name


@pytest.mark.parametrize("stack_name", ["kt-canary", "kt-bg", "kt-dl-dev"])
def test_the_job_calls_every_revision_the_route_sends_to_or_tags_and_the_route_names_them(plans, stack_name):
    objects = documents(plans, stack_name)
    for endpoint in ("scores", "ranker"):
        named = revisions(objects, endpoint)
        (job,) = of_kind(objects, "Job", endpoint)
        (route,) = of_kind(objects, "Route", endpoint)
        assert job_urls(job) == [f"http://{named[v]}.{endpoint}.svc.cluster.local" for v in sorted(named)]
        assert job_urls(job) == [revision_url(named[v], endpoint) for v in sorted(named)]
        traffic = route["spec"]["traffic"]
        assert {t["tag"]: t["revisionName"] for t in traffic} == named, "every version tagged, each by its revision"
        assert all(t["latestRevision"] is False and "configurationName" not in t for t in traffic)
        command = job["spec"]["template"]["spec"]["containers"][0]["command"]
        assert "--quit-sidecar" in command and "--retry-unavailable" in command


def test_the_route_still_splits_as_the_plan_says(plans):
    """traffic.json against what Knative does with the rendered Route (the independent reader of the Istio tests)."""
    for name in ("kt-canary", "kt-bg", "kt-dl-dev"):
        objects = documents(plans, name)
        planned = {e["name"]: e for e in json.loads((plans / name / "traffic.json").read_text())["endpoints"]}
        for endpoint in ("scores", "ranker"):
            mine = [o for o in objects if o["metadata"].get("namespace") == endpoint]
            assert (
                routes_from_knative([*mine, *of_kind(objects, "ConfigMap", "knative-serving")])
                == (planned[endpoint]["routes"])
            ), (name, endpoint)


def test_without_tests_the_route_follows_its_configurations(plans):
    objects = documents(plans, "kt-untested")
    assert of_kind(objects, "Job", "scores") == []
    (route,) = of_kind(objects, "Route", "scores")
    assert all(t["latestRevision"] is True and "revisionName" not in t for t in route["spec"]["traffic"])


def test_a_tested_rolling_route_carries_no_rollout_duration(plans):
    """Knative rolls out Configuration targets only; the tested Route names revisions, so the annotation is dropped."""
    (tested,) = of_kind(documents(plans, "kt-canary"), "Route", "ranker")
    assert "serving.knative.dev/rollout-duration" not in (tested["metadata"].get("annotations") or {})


def test_changing_a_versions_env_renames_its_revision_and_the_job(plans):
    before, after = documents(plans, "kt-canary"), documents(plans, "kt-canary-env")
    old, new = revisions(before, "scores"), revisions(after, "scores")
    assert old["v1"] == new["v1"] and old["v2"] != new["v2"]
    (old_job,), (new_job,) = of_kind(before, "Job", "scores"), of_kind(after, "Job", "scores")
    assert old_job["metadata"]["name"] != new_job["metadata"]["name"], "a new Job runs the tests again"
    assert revision_url(new["v2"], "scores") in job_urls(new_job)
    (ranker_before,), (ranker_after,) = of_kind(before, "Job", "ranker"), of_kind(after, "Job", "ranker")
    assert ranker_before == ranker_after, "the other endpoint's Job is left alone"


def test_the_route_waits_for_the_job_and_the_job_for_the_configurations(project):
    """Pulumi awaits a Job until it completes and fails the update when it fails: the Route, which depends on it,
    is then not changed, so users stay on the revisions it named."""
    found = records(project, "kt-canary")
    for endpoint in ("scores", "ranker"):
        (route,) = [r for r in found.values() if r.type == ROUTE and r.inputs["metadata"]["namespace"] == endpoint]
        (job,) = [r for r in found.values() if r.type == JOB and r.inputs["metadata"]["namespace"] == endpoint]
        configurations = {
            urn for urn, r in found.items() if r.type == CONFIGURATION and r.inputs["metadata"]["namespace"] == endpoint
        }
        assert job.urn in route.dependencies, "the Route is sent only once the Job completed"
        assert configurations <= dependency_closure(found, job.urn), "the Job runs once the revisions are asked for"
        assert route.urn not in dependency_closure(found, job.urn)


def test_a_standby_region_tests_and_routes_its_own_renamed_revisions(project, tmp_path):
    """The DR standby label renames the standby's revisions after KnativeRevisions built them: its Job and its Route
    name the revisions as they are sent, not the primary's names."""
    assert main(["plan", "kt-warm", "--project", str(project), "--out", str(tmp_path)]) in (0, 1)
    by_cluster: dict[str, list[dict]] = {}
    for path in (tmp_path / "kt-warm" / "manifests").glob("*/*.yaml"):
        by_cluster.setdefault(path.parent.name, []).extend(yaml.safe_load_all(path.read_text()))
    assert set(by_cluster) == {"kt-warm-us-east-1", "kt-warm-us-west-2"}
    named = {}
    for cluster, objects in by_cluster.items():
        named[cluster] = revisions(objects, "kn")
        (job,), (route,) = of_kind(objects, "Job", "kn"), of_kind(objects, "Route", "kn")
        assert job_urls(job) == [revision_url(named[cluster][v], "kn") for v in ("v1", "v2")], cluster
        assert {t["tag"]: t["revisionName"] for t in route["spec"]["traffic"]} == named[cluster], cluster
    assert named["kt-warm-us-east-1"]["v2"] != named["kt-warm-us-west-2"]["v2"]


# --- what the API server and the scanners say about the Job ------------------------------------------------------


def test_the_job_and_the_route_pass_strict_validation_and_the_crd(plans):
    objects = documents(plans, "kt-canary")
    jobs = [o for o in objects if o["kind"] == "Job"]
    assert len(jobs) == 2
    for job in jobs:
        kubernetes_validate.validate(job, "1.34.0", strict=True)
    crds = load_crds(CRDS)
    for route in [o for o in objects if o["kind"] == "Route"]:
        assert validate_custom_resource(route, crds) == []


def test_the_job_pod_is_admitted_after_sidecar_injection(plans, project):
    """The model namespace enforces `restricted` and injects sidecars: the Job's pod, with what Istio's injector adds
    under the plan's own istiod values (native sidecar or not), is admitted; made weaker, it is not."""
    from tests.admission import istio_injection
    from tests.admission.plan_pods import mesh_settings

    objects = documents(plans, "kt-canary")
    (namespace,) = [o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == "scores"]
    labels = namespace["metadata"]["labels"]
    policy = pod_security.enforced_policy(labels)
    assert policy.level == "restricted"
    (settings,) = mesh_settings(list(records(project, "kt-canary").values())).values()
    (job,) = of_kind(objects, "Job", "scores")
    pod = {"metadata": job["spec"]["template"]["metadata"], "spec": job["spec"]["template"]["spec"]}
    assert istio_injection.is_injected("scores", labels, pod, settings), "the runner calls through the sidecar"
    for native in (False, True):
        injected = istio_injection.inject(pod, settings, native=native)
        names = [c["name"] for c in [*injected["spec"].get("initContainers", []), *injected["spec"]["containers"]]]
        assert "istio-proxy" in names
        assert pod_security.evaluate(policy.level, policy.version, injected["metadata"], injected["spec"]) == []
    weaker = copy.deepcopy(pod)
    weaker["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    assert pod_security.evaluate(policy.level, policy.version, weaker["metadata"], weaker["spec"])


CHECKOV = Path(os.environ.get("TURNOUT_CHECKOV", REPO / ".venv-checkov" / "bin" / "checkov"))


@pytest.mark.skipif(
    not CHECKOV.exists() and shutil.which("checkov") is None,
    reason="needs checkov: `make checkov` installs it into .venv-checkov (CI does)",
)
def test_checkov_passes_the_knative_jobs(plans):
    from tests.test_checkov import run_checkov

    (cluster,) = (plans / "kt-canary" / "manifests").iterdir()
    report = run_checkov(cluster)
    assert [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]] == []
    jobs = {c["resource"] for c in report["results"]["passed_checks"] if c["resource"].startswith("Job.")}
    assert {job.split(".")[1] for job in jobs} == {"scores", "ranker"}, "checkov scanned both Jobs"
    skipped = {c["check_id"] for c in report["results"].get("skipped_checks", []) if c["resource"] in jobs}
    assert skipped <= {"CKV_K8S_15"}, "the runner's image is digest-pinned: only kind's pull policy is skipped"


# --- the real runner against a stand-in for the revisions' Services ----------------------------------------------


class Activator(BaseHTTPRequestHandler):
    """Knative's activator as the Job meets it (an HTTP proxy stands in for the sidecar's routing): the revision
    read from the Host `<revision>.<namespace>.svc.cluster.local` (pkg/activator/handler/context_handler.go), 404
    for one it does not know, and 503 on a revision's first request, as the mesh answers before it routes a new
    Service. `revisions`: revision name → the status its model answers /predict with."""

    revisions: dict[str, int] = {}
    seen: list[str] = []
    quit: list[str] = []

    def _answer(self, status: int, document: object) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        host = self.headers["Host"]
        if urllib.parse.urlsplit(self.path).path == "/quitquitquit":
            self.quit.append(host)
            return self._answer(200, {})
        parts = host.split(".", 3)
        if not (len(parts) == 4 and parts[2] == "svc" and parts[3].split(":", 1)[0] == "cluster.local"):
            return self._answer(500, {"error": f"no revision in Host {host}"})
        name = parts[0]
        if name not in self.revisions:
            return self._answer(404, {"error": f"Error getting active endpoint: revision {name} not found"})
        first = name not in self.seen
        self.seen.append(name)
        if first:
            return self._answer(503, {"error": "no healthy upstream"})
        status = self.revisions[name]
        return self._answer(status, {"score": 0.9 if body["amount"] > 1000 else 0.1} if status == 200 else {})

    def log_message(self, *args):
        pass


@pytest.fixture
def activator():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Activator)
    Activator.seen, Activator.quit = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def run_planned_job(objects: list[dict], endpoint: str, proxy: str, folder: Path) -> subprocess.CompletedProcess:
    """The Job's command as planned, with the ConfigMap's runner.py and tests.json where the Job mounts them."""
    (job,) = of_kind(objects, "Job", endpoint)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == RUNNER_IMAGE
    (volume,) = pod["volumes"]
    (config_map,) = [
        o for o in of_kind(objects, "ConfigMap", endpoint) if o["metadata"]["name"] == volume["configMap"]["name"]
    ]
    for name, text in config_map["data"].items():
        (folder / name).write_text(text)
    command = [sys.executable if arg == "python" else arg.replace(MOUNT, str(folder)) for arg in container["command"]]
    environment = {"PATH": os.environ["PATH"], "http_proxy": proxy, **{e["name"]: e["value"] for e in container["env"]}}
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("v2_status", "exit_code"), [(200, 0), (500, 1)])
def test_the_planned_job_passes_good_revisions_and_fails_a_bad_one_naming_it(
    plans, activator, tmp_path, v2_status, exit_code
):
    objects = documents(plans, "kt-canary")
    named = revisions(objects, "scores")
    Activator.revisions = {named["v1"]: 200, named["v2"]: v2_status}
    result = run_planned_job(objects, "scores", f"http://127.0.0.1:{activator.server_port}", tmp_path)
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert sorted(set(Activator.seen)) == sorted(named.values()), "each revision called through its own Service"
    assert Activator.quit == ["127.0.0.1:15020"], "the runner stops the sidecar, so the Job's pod completes"
    if exit_code:
        assert result.stdout.strip() == (
            "acceptance tests failed (1 of 2): test 1 (POST /predict) on "
            f"{revision_url(named['v2'], 'scores')}: expected status 200, got 500"
        )
    else:
        assert result.stdout.strip() == "acceptance tests passed (2 of 2)"


def test_a_revision_knative_does_not_know_fails_the_job(plans, activator, tmp_path):
    """A Job that called a name other than the revision's would meet the activator's 404, and fail."""
    objects = documents(plans, "kt-canary")
    Activator.revisions = {}
    result = run_planned_job(objects, "ranker", f"http://127.0.0.1:{activator.server_port}", tmp_path)
    assert result.returncode == 1 and "got 404" in result.stdout


def run_runner(proxy: str, folder: Path, *args: str) -> subprocess.CompletedProcess:
    """The runner's `check` in a process of its own: urllib keeps the proxy it first read for the whole process."""
    tests = folder / "tests.json"
    tests.write_text(json.dumps(TESTS))
    command = [sys.executable, str(REPO / "apps" / "acceptance-runner" / "runner.py"), "check", "--tests", str(tests)]
    environment = {"PATH": os.environ["PATH"], "http_proxy": proxy}
    return subprocess.run([*command, *args], env=environment, capture_output=True, text=True, timeout=60, check=False)


def test_unavailable_answers_are_waited_out_only_when_asked(activator, tmp_path):
    Activator.revisions = {"scores-v2-0000aaaa": 200}
    proxy, url = f"http://127.0.0.1:{activator.server_port}", "--url=http://scores-v2-0000aaaa.scores.svc.cluster.local"
    refused = run_runner(proxy, tmp_path, url, "--wait=30")
    assert refused.returncode == 1 and refused.stdout.strip().endswith("expected status 200, got 503")
    Activator.seen = []
    waited = run_runner(proxy, tmp_path, url, "--wait=30", "--retry-unavailable")
    assert waited.returncode == 0, waited.stdout
    assert Activator.seen == ["scores-v2-0000aaaa"] * 2, "the 503, then the answer"
    Activator.seen = []
    late = run_runner(proxy, tmp_path, url, "--wait=0", "--retry-unavailable")
    assert late.returncode == 1 and late.stdout.strip().endswith("got 503"), "past the wait, the last answer counts"


def test_the_summary_lists_the_job_against_the_revisions_and_the_route(plans):
    objects = documents(plans, "kt-canary")
    named = revisions(objects, "scores")
    (job,) = of_kind(objects, "Job", "scores")
    summary = (plans / "kt-canary" / "summary.md").read_text()
    (row,) = [line for line in summary.splitlines() if line.startswith("| `scores` |")]
    assert row.endswith(
        f"| Job `{job['metadata']['name']}`: 1 test(s) against revisions `{named['v1']}`, `{named['v2']}`; "
        "the Route, which names them, waits for it |"
    )


def test_the_runner_may_call_the_revisions_under_the_namespaces_policies(plans):
    """deny-all, then the runner's identity allowed in (its revision's pods answer it when they serve directly);
    the activator, in front while a revision is at zero, is let in from knative-serving; the NetworkPolicy admits
    the namespace's own pods (the runner) and knative-serving's (the activator)."""
    objects = documents(plans, "kt-canary")
    (job,) = of_kind(objects, "Job", "scores")
    account = job["spec"]["template"]["spec"]["serviceAccountName"]
    assert [o["metadata"]["name"] for o in of_kind(objects, "ServiceAccount", "scores")].count(account) == 1
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(objects, "AuthorizationPolicy", "scores")}
    assert not policies["deny-all"], "an empty policy: everything not allowed below is denied"
    sources = [s["source"] for rule in policies["allow-acceptance-runner"]["rules"] for s in rule["from"]]
    assert sources == [{"principals": [f"cluster.local/ns/scores/sa/{account}"]}]
    assert policies["allow-platform-controllers"]["rules"][0]["from"][0]["source"]["namespaces"] == ["knative-serving"]
    (network,) = of_kind(objects, "NetworkPolicy", "scores")
    peers = network["spec"]["ingress"][0]["from"]
    assert {"podSelector": {}} in peers
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "knative-serving"}}} in peers
