"""Rendered manifests against an independent validator: kubernetes-validate --strict (1.33 and 1.34)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import CRDS, REPO
from tests.crd_schema import load_crds, validate_custom_resource
from turnout.cli import main


@pytest.fixture(scope="module")
def local_manifests(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("plan")
    assert main(["plan", "local", "--project", str(REPO), "--out", str(out)]) == 0
    files = sorted((out / "local" / "manifests").rglob("*.yaml"))
    assert files
    return files


def is_core(document: dict) -> bool:
    """Objects of Kubernetes' own API groups; custom resources are checked against their CRDs."""
    group = document["apiVersion"].rpartition("/")[0]
    return group == "" or group.endswith(".k8s.io") or "." not in group


def core_documents(paths: list[Path]) -> list[dict]:
    return [d for p in paths for d in yaml.safe_load_all(p.read_text()) if is_core(d)]


@pytest.mark.parametrize("kubernetes_version", ["1.33.0", "1.34.0"])
def test_core_objects_pass_strict_validation(local_manifests, kubernetes_version):
    documents = core_documents(local_manifests)
    assert {d["kind"] for d in documents} >= {"Namespace", "Deployment", "Service", "Secret", "ConfigMap"}
    for document in documents:
        kubernetes_validate.validate(document, kubernetes_version, strict=True)


def test_the_command_line_validator_agrees(local_manifests):
    core = [p for p in local_manifests if all(is_core(d) for d in yaml.safe_load_all(p.read_text()))]
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", "1.34.0", *map(str, core)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_validator_catches_what_an_api_server_would_prune(local_manifests):
    """The check can fail: an unknown field in a rendered Deployment is rejected."""
    document = yaml.safe_load(next(p for p in local_manifests if "deployment" in p.name).read_text())
    document["spec"]["template"]["spec"]["containers"][0]["gpuCount"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, "1.34.0", strict=True)


# --- custom resources against the upstream CRDs (tests/crds, vendored from shared/crds) -------------


def custom_documents(paths: list[Path]) -> list[dict]:
    return [d for p in paths for d in yaml.safe_load_all(p.read_text()) if not is_core(d)]


def test_custom_resources_match_their_crds_with_nothing_pruned(local_manifests):
    documents = custom_documents(local_manifests)
    assert {d["kind"] for d in documents} >= {
        "Gateway",
        "PeerAuthentication",
        "AuthorizationPolicy",
        "VirtualService",
        "DestinationRule",
        "Configuration",
        "Route",
    }
    crds = load_crds(CRDS)
    problems = {f"{d['kind']} {d['metadata']['name']}": validate_custom_resource(d, crds) for d in documents}
    assert all(not found for found in problems.values()), problems


def test_crd_check_can_fail_on_a_rendered_object(local_manifests):
    gateway = next(d for d in custom_documents(local_manifests) if d["kind"] == "Gateway")
    gateway["spec"]["servers"][1]["tls"]["minTlsVersion"] = "TLSV1_2"
    assert validate_custom_resource(gateway, load_crds(CRDS)) == [
        "spec.servers[1].tls.minTlsVersion: unknown field (would be pruned)"
    ]
