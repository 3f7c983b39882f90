"""`endpoints.NAME.pullSecrets`: images from private registries. Every pod of the endpoint (Deployments, Flagger's
target, Knative revisions) names the pull Secrets; turnout makes a dockerconfigjson Secret from a Pulumi secret,
which never reaches the plan in clear, and refuses a password kept in the stack file in plain text."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from components.endpoint.pull_secrets import DOCKER_CONFIG_KEY, docker_config
from tests.conftest import CRDS, REPO, as_cli, dependency_closure, load
from tests.crd_schema import load_crds, validate_custom_resource
from turnout.cli import main
from turnout.errors import ConfigError
from turnout.offline.runtime import REDACTED, run_program, to_plain
from turnout.offline.stackfile import OFFLINE_SECRET

TOKEN_KEY = "registries:ghcr-token"
OURS = {"name": "ghcr", "registry": "ghcr.io", "username": "acme-bot", "passwordConfig": TOKEN_KEY}
YOURS = {"name": "acme-registry"}
POD_TYPES = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:serving.knative.dev/v1:Configuration",
)


def with_pull_secrets(config: dict, secrets: list, strategy: dict | None = None, backend: str = "istio") -> dict:
    endpoint = config["endpoints"]["fraud-score"]
    endpoint["pullSecrets"] = secrets
    endpoint["backend"] = backend
    if strategy is not None:
        endpoint["strategy"] = strategy
    return config


def plan(config: dict, token: str | None = "ghp_offline", secret: bool = True):
    """Records by name of the real program, with the token set as the CLI would (a secret, or plain text)."""
    raw = {f"turnout:{k}": v for k, v in as_cli(config).items()}
    if token is not None:
        raw[TOKEN_KEY] = token
    run = run_program(REPO, "turnout", "lab", raw, [TOKEN_KEY] if secret and token is not None else [])
    return {r.name: r for r in run.records}, run


def pod_specs(records: dict) -> dict[str, dict]:
    specs = {}
    for record in records.values():
        if record.type in POD_TYPES:
            specs[record.inputs["metadata"]["name"]] = record.inputs["spec"]["template"]["spec"]
    return specs


# --- configuration ----------------------------------------------------------------------------------------


def test_yours_by_name_and_ours_from_three_keys(config):
    endpoint = load(with_pull_secrets(config, [YOURS, OURS])).endpoints["fraud-score"]
    yours, ours = endpoint.pull_secrets
    assert (yours.name, yours.registry) == ("acme-registry", None)
    assert (ours.registry, ours.username, ours.password_config) == ("ghcr.io", "acme-bot", TOKEN_KEY)


@pytest.mark.parametrize(
    ("secrets", "path", "says"),
    [
        ([{"name": "ghcr", "registry": "ghcr.io"}], "pullSecrets[0].username", "all of registry"),
        ([{**OURS, "registry": None}], "pullSecrets[0].registry", "all of registry"),
        ([YOURS, YOURS], "pullSecrets[1].name", "listed twice"),
        ([{**OURS, "passwordConfig": "turnout:token"}], "pullSecrets[0].passwordConfig", "outside turnout:"),
        ([{**OURS, "passwordConfig": "token"}], "pullSecrets[0].passwordConfig", "NAMESPACE:KEY"),
        ([{"name": "Bad_Name"}], "pullSecrets[0].name", "secret name"),
        ([{"name": "x", "token": "ghp_"}], "pullSecrets[0].token", "unknown key"),
        ("acme-registry", "pullSecrets", "a list"),
    ],
)
def test_bad_pull_secrets_are_exit_2_by_key(config, secrets, path, says):
    with pytest.raises(ConfigError) as error:
        load(with_pull_secrets(config, secrets))
    assert error.value.path == f"turnout:endpoints.fraud-score.{path}"
    assert says in str(error.value)


# --- the Secret and the pods ------------------------------------------------------------------------------


def test_docker_config_is_what_a_kubelet_reads():
    document = json.loads(docker_config("ghcr.io", "acme-bot", "ghp_x"))
    entry = document["auths"]["ghcr.io"]
    assert (entry["username"], entry["password"]) == ("acme-bot", "ghp_x")
    assert base64.b64decode(entry["auth"]).decode() == "acme-bot:ghp_x"


def test_turnout_makes_the_secret_in_the_namespace_and_every_version_names_both(config):
    records, run = plan(with_pull_secrets(config, [YOURS, OURS]))
    (secret,) = [r for r in records.values() if r.type == "kubernetes:core/v1:Secret" and r.name.endswith("-ghcr")]
    assert secret.inputs["type"] == "kubernetes.io/dockerconfigjson"
    assert secret.inputs["metadata"]["namespace"] == "fraud-score"
    assert secret.inputs["stringData"] == REDACTED  # what may be written: all of it secret
    revealed = to_plain(secret.raw_inputs, redact=False)["stringData"]
    assert json.loads(revealed[DOCKER_CONFIG_KEY]) == json.loads(docker_config("ghcr.io", "acme-bot", "ghp_offline"))
    specs = pod_specs(records)
    assert sorted(specs) == ["fraud-score-v1", "fraud-score-v2"]
    by_urn = {r.urn: r for r in run.records}
    for name, spec in specs.items():
        assert spec["imagePullSecrets"] == [{"name": "acme-registry"}, {"name": "ghcr"}], name
        deployment = next(r for r in records.values() if r.type in POD_TYPES and r.inputs["metadata"]["name"] == name)
        assert secret.urn in dependency_closure(by_urn, deployment.urn)


@pytest.mark.parametrize(
    ("backend", "strategy"),
    [
        ("knative", {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10}),
        ("istio", {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10, "progressive": {}}),
    ],
)
def test_knative_revisions_and_flaggers_target_name_them_too(config, backend, strategy):
    records, _ = plan(with_pull_secrets(config, [YOURS], strategy, backend))
    specs = pod_specs(records)
    assert specs
    for spec in specs.values():
        assert spec["imagePullSecrets"] == [{"name": "acme-registry"}]
    crds = load_crds(CRDS)
    for record in records.values():
        if record.type == "kubernetes:serving.knative.dev/v1:Configuration":
            document = {key: record.inputs[key] for key in ("apiVersion", "kind", "metadata", "spec")}
            assert validate_custom_resource(document, crds) == []


def test_no_pull_secrets_no_field(config):
    records, _ = plan(config, token=None)
    assert all("imagePullSecrets" not in spec for spec in pod_specs(records).values())


def test_a_password_in_plain_text_or_missing_is_refused(config):
    with pytest.raises(ConfigError) as error:
        plan(with_pull_secrets(config, [OURS]), secret=False)
    assert error.value.path == "turnout:endpoints.fraud-score.pullSecrets[0].passwordConfig"
    assert "plain-text" in error.value.found and "--secret" in error.value.allowed
    with pytest.raises(ConfigError) as error:
        plan(with_pull_secrets(config, [OURS]), token=None)
    assert error.value.path == "turnout:endpoints.fraud-score.pullSecrets[0].passwordConfig"
    assert f"no value at {TOKEN_KEY}" in error.value.found


def test_the_password_never_reaches_the_plan_in_clear(project, config, tmp_path, capsys):
    document = {f"turnout:{k}": v for k, v in with_pull_secrets(config, [OURS]).items()}
    document[TOKEN_KEY] = {"secure": "AAABAOeNcRyPtEd"}
    (project / "environments" / "Pulumi.private.yaml").write_text(yaml.safe_dump({"config": document}))
    assert main(["plan", "private", "--project", str(project), "--out", str(tmp_path)]) == 0
    written = "\n".join(path.read_text() for path in (tmp_path / "private").rglob("*") if path.is_file())
    auth = base64.b64encode(f"acme-bot:{OFFLINE_SECRET}".encode()).decode()
    assert OFFLINE_SECRET not in written and auth not in written
    assert "kubernetes.io/dockerconfigjson" in written  # the Secret is planned, its value redacted


def test_plain_text_in_the_stack_file_is_exit_2(project, config, tmp_path, capsys):
    document = {f"turnout:{k}": v for k, v in with_pull_secrets(config, [OURS]).items()}
    document[TOKEN_KEY] = "ghp_in_clear"
    (project / "environments" / "Pulumi.private.yaml").write_text(yaml.safe_dump({"config": document}))
    assert main(["plan", "private", "--project", str(project), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "turnout:endpoints.fraud-score.pullSecrets[0].passwordConfig" in err and "Traceback" not in err
