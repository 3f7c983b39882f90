"""checkov, an independent scanner, over a prod stack's rendered manifests: no failed check, and every
skip is inline with its reason. checkov lives in its own virtualenv (`make checkov`): its pins
conflict with the project's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, write_stack
from turnout.cli import main

CHECKOV = Path(os.environ.get("TURNOUT_CHECKOV", REPO / ".venv-checkov" / "bin" / "checkov"))
pytestmark = pytest.mark.skipif(
    not CHECKOV.exists() and shutil.which("checkov") is None,
    reason="needs checkov: `make checkov` installs it into .venv-checkov (CI does)",
)

PROD = {
    "tier": "prod",
    "platform": {"cloud": "kind", "regions": ["lab"]},
    "endpoints": {
        "fraud-score": {
            "versions": {
                "v1": {"image": "ghcr.io/acme/fraud-score:1.4.2", "replicas": {"min": 2, "max": 10}},
                "v2": {"image": "ghcr.io/acme/fraud-score@sha256:" + "ab" * 32, "replicas": {"min": 2, "max": 10}},
            },
            "strategy": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10, "sticky": {"cookie": "m"}},
        },
        "ranker": {
            "versions": {"v1": {"image": "ghcr.io/acme/ranker:3.0.0"}, "v2": {"image": "ghcr.io/acme/ranker:4.0.0"}},
            "strategy": {
                "type": "feature-flag",
                "flag": "new-ranker",
                "variants": {"on": "v2", "off": "v1"},
                "defaultVariant": "off",
            },
        },
        "shadowed": {
            "versions": {"v1": {"image": "ghcr.io/acme/s:1.0.0"}, "v2": {"image": "ghcr.io/acme/s:2.0.0"}},
            "strategy": {"type": "shadow", "primary": "v1", "shadows": {"v2": 20}},
        },
        "scorer": {"backend": "knative", "versions": {"v1": {"image": "ghcr.io/acme/scorer:1.0.0"}}},
    },
}


def run_checkov(folder: Path) -> dict:
    """The full JSON report (passed, failed and skipped checks) for a folder of manifests."""
    binary = str(CHECKOV) if CHECKOV.exists() else "checkov"
    result = subprocess.run(
        [binary, "-d", str(folder), "--framework", "kubernetes", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "Pulumi.yaml", project)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    write_stack(project, "prodlab", PROD)
    out = tmp_path_factory.mktemp("out")
    assert main(["plan", "prodlab", "--project", str(project), "--out", str(out)]) == 0
    return out / "prodlab" / "manifests"


@pytest.fixture(scope="module")
def report(manifests) -> dict:
    return run_checkov(manifests)


def test_prod_model_workloads_pass_checkov(report):
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 300


def test_every_skip_is_inline_with_a_reason_and_only_where_it_applies(report):
    skipped = report["results"].get("skipped_checks", [])
    expected = {"CKV_K8S_15": "kind load", "CKV_K8S_43": "version tag"}  # the only two deliberate skips
    assert {c["check_id"] for c in skipped} == set(expected)
    for check in skipped:
        assert expected[check["check_id"]] in (check["check_result"].get("suppress_comment") or ""), check["resource"]
    by_resource = {}
    for check in skipped:
        by_resource.setdefault(check["resource"], set()).add(check["check_id"])
    # The digest-pinned canary keeps CKV_K8S_43 enforced; the tag-pinned stable version skips it.
    assert "CKV_K8S_43" not in by_resource.get("Deployment.fraud-score.fraud-score-v2", set())
    assert "CKV_K8S_43" in by_resource["Deployment.fraud-score.fraud-score-v1"]


def test_checkov_would_catch_a_weakened_workload(manifests, tmp_path):
    """The scanner can fail here: the same Deployment with privilege escalation allowed is reported."""
    source = next(manifests.rglob("*-deployment-fraud-score-fraud-score-v1.yaml"))
    deployment = yaml.safe_load(source.read_text())
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(deployment))
    failed = {c["check_id"] for c in run_checkov(tmp_path)["results"]["failed_checks"]}
    assert "CKV_K8S_20" in failed


@pytest.mark.parametrize("stack", ["prod-aws", "prod-gcp", "prod-azure"])
def test_bundled_prod_stacks_pass_checkov(stack, tmp_path):
    assert main(["plan", stack, "--project", str(REPO), "--out", str(tmp_path)]) == 0
    report = run_checkov(tmp_path / stack / "manifests")
    assert [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]] == []
    # Clouds pull images Always; the only deliberate skip left is tag-pinned images (not digests).
    assert {c["check_id"] for c in report["results"].get("skipped_checks", [])} <= {"CKV_K8S_43"}


def test_an_azure_dr_stack_with_a_managed_redis_cache_passes_checkov(project, tmp_path):
    """The cache's Kubernetes side on Azure (its Secret, the ServiceEntry to the region's Managed Redis member on
    10000, the models' cache settings) in both regions of a DR stack."""
    from tests.test_azure_stacks import azure_dr_stack

    write_stack(project, "azdr", azure_dr_stack("azdr"))
    assert main(["plan", "azdr", "--project", str(project), "--out", str(tmp_path)]) == 0
    rendered = "".join(path.read_text() for path in (tmp_path / "azdr" / "manifests").rglob("*.yaml"))
    assert "redis.azure.net" in rendered and "10000" in rendered
    report = run_checkov(tmp_path / "azdr" / "manifests")
    assert [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]] == []
    assert {c["check_id"] for c in report["results"].get("skipped_checks", [])} <= {"CKV_K8S_43"}
