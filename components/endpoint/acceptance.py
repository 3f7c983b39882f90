"""Acceptance tests before traffic: `endpoints.NAME.tests`, run against a version before users reach it.

The runner is apps/acceptance-runner/runner.py (Python's standard library only), mounted from a ConfigMap into a
pinned stock Python image, so no image of turnout's has to be published anywhere:

- Static strategies (istio backend): a Job tests every version the routes send or mirror requests to, each
  through a Service of its own (`<endpoint>-<version>-acceptance`, outside the VirtualService, so the test
  reaches exactly that version), and the VirtualService waits for it: Pulumi awaits a Job until it completes
  and fails the update when it fails (pulumi-kubernetes' Job await), so a failing test leaves the routes, and
  users, where they were, and `pulumi up` prints why (the runner writes it to the pod's termination log). The
  Job is named after a hash of the tests and of the versions' settings: a changed version runs them again.
- Knative endpoints: the same Job tests every revision the Route sends requests to or tags, each through the
  Kubernetes Service Knative makes for it (named after the revision, port 80: the revision's pods, or the
  activator while it is scaled to zero, which finds the revision from the Host `<revision>.<ns>.svc.cluster.local`,
  pkg/activator/handler/context_handler.go), and the Route, which then names those revisions rather than following
  its Configurations, waits for it. The Job is named after a hash of the tests and of the revision names (each a
  hash of its template), so a changed version runs them again.
- Progressive strategies (Flagger): a `pre-rollout` webhook of the Canary; Flagger calls it before it sends the
  new version any traffic, and rolls back after `threshold` failures, keeping users on the primary, with the
  runner's answer (which test, what it got) in the Canary's events. The webhook is a small runner Deployment
  that only runs the endpoint's configured tests against `<endpoint>-canary`: Flagger's load tester would run
  any command POSTed to it, and Flagger (outside the mesh) can reach a model namespace only in plaintext, so
  the runner's one port is excluded from the sidecar (`traffic.sidecar.istio.io/excludeInboundPorts`) while
  its calls to the canary go through the sidecar with mTLS. The model namespace's NetworkPolicy still admits
  only the platform's namespaces and its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.endpoint.workload import checkov_skips, container_security, pod_security
from turnout.config import AcceptanceTest, ModelVersion
from turnout.naming import child, hashed_name, k8s_name, labels

RUNNER = Path(__file__).resolve().parent.parent.parent / "apps" / "acceptance-runner" / "runner.py"
# The tag says which Python and Debian; the digest pins the multi-platform image index (as Docker Hub served it on
# 2026-08-29), so what runs the tests never changes under a rebuilt tag, and checkov's CKV_K8S_43 holds.
RUNNER_IMAGE = "python:3.12.11-slim-bookworm@sha256:519591d6871b7bc437060736b9f7456b8731f1499a57e22e6c285135ae657bf7"
RUNNER_PORT = 8080
MOUNT = "/opt/turnout-acceptance"
SERVICE_PORT = 80
WEBHOOK_TIMEOUT = "60s"
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}


def tests_document(tests: tuple[AcceptanceTest, ...]) -> list[dict]:
    """The tests as runner.py reads them (the stack file's keys)."""
    found = []
    for test in tests:
        expect: dict = {"status": test.expect.status}
        if test.expect.json_path is not None:
            expect["jsonPath"] = test.expect.json_path
            if test.expect.within is not None:
                expect["within"] = list(test.expect.within)
            else:
                expect["equals"] = test.expect.equals
        entry: dict = {"path": test.path, "method": test.method, "expect": expect}
        if test.body is not None:
            entry["body"] = test.body
        found.append(entry)
    return found


def runner_labels(endpoint: str, tier: str) -> dict[str, str]:
    """Not the model's `app.kubernetes.io/name`: Flagger's and the endpoint's Services select pods by it."""
    return {
        "app.kubernetes.io/name": k8s_name(endpoint, "acceptance"),
        "app.kubernetes.io/part-of": "turnout",
        "app.kubernetes.io/managed-by": "pulumi",
        "turnout.dev/endpoint": endpoint,
        "turnout.dev/tier": tier,
    }


def runner_account(endpoint: str) -> str:
    return k8s_name(endpoint, "acceptance")


def runner_principal(namespace: str, endpoint: str) -> str:
    """The runner's SPIFFE identity, which the namespace's AuthorizationPolicy lets in."""
    return f"cluster.local/ns/{namespace}/sa/{runner_account(endpoint)}"


def version_service(endpoint: str, version: str) -> str:
    return k8s_name(endpoint, version, "acceptance")


def revision_url(revision: str, namespace: str) -> str:
    """The Service Knative's ServerlessService makes for a revision, under the revision's name, http on port 80. The
    full name matters: the activator, in front while the revision is at zero, reads the revision from this Host."""
    return f"http://{revision}.{namespace}.svc.cluster.local"


def revisions_job_name(endpoint: str, tests: list[dict], revisions: dict[str, str]) -> str:
    """Changes exactly when the tests or a tested revision (named after a hash of its template) do."""
    return hashed_name(endpoint, "acceptance", content={"tests": tests, "revisions": dict(sorted(revisions.items()))})


def job_name(endpoint: str, tests: list[dict], versions: dict[str, ModelVersion]) -> str:
    """Changes exactly when the tests or a tested version's settings do: a new Job runs them again."""
    content = {"tests": tests, "versions": {name: repr(version) for name, version in sorted(versions.items())}}
    return hashed_name(endpoint, "acceptance", content=content)


def runner_container(args: pulumi.Input[list[str]], pull_policy: str) -> dict:
    def command(found: list[str]) -> list[str]:
        return ["python", f"{MOUNT}/runner.py", *found]

    return {
        "name": "runner",
        "image": RUNNER_IMAGE,
        "imagePullPolicy": pull_policy,
        "command": args.apply(command) if isinstance(args, pulumi.Output) else command(args),
        "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}, {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "resources": RESOURCES,
        "securityContext": container_security(),
        "terminationMessagePolicy": "File",
        "volumeMounts": [{"name": "acceptance", "mountPath": MOUNT, "readOnly": True}],
    }


def runner_pod(account: str, container: dict, config_map: str, *, restart: str) -> dict:
    return {
        "serviceAccountName": account,
        "automountServiceAccountToken": False,
        "restartPolicy": restart,
        "securityContext": pod_security(),
        "containers": [container],
        "volumes": [{"name": "acceptance", "configMap": {"name": config_map}}],
    }


@dataclass(frozen=True, kw_only=True)
class AcceptanceArgs:
    endpoint: str
    namespace: str
    tier: str
    tests: tuple[AcceptanceTest, ...]
    pull_policy: str
    after: tuple[pulumi.Resource, ...]
    """The namespace, and the workloads under test (their Deployments, which Pulumi awaits until ready)."""


class _Acceptance(pulumi.ComponentResource):
    """What both modes share: the tests and the runner in a ConfigMap, the runner's account, and its way in."""

    def _common(self, name: str, args: AcceptanceArgs, suffix: str) -> tuple[str, list[pulumi.Resource]]:
        mine = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        meta = {"namespace": args.namespace, "labels": labels(args.endpoint, None, args.tier)}
        tests = tests_document(args.tests)
        config_map = k8s_name(args.endpoint, "acceptance", suffix)
        made = [
            k8s.core.v1.ConfigMap(
                child(name, "tests"),
                metadata={"name": config_map, **meta},
                data={"tests.json": json.dumps(tests, indent=1), "runner.py": RUNNER.read_text()},
                opts=mine,
            ),
            k8s.core.v1.ServiceAccount(
                child(name, "sa"),
                metadata={"name": runner_account(args.endpoint), **meta},
                automount_service_account_token=False,
                opts=mine,
            ),
            k8s.apiextensions.CustomResource(
                child(name, "allow"),
                api_version="security.istio.io/v1",
                kind="AuthorizationPolicy",
                metadata={"name": "allow-acceptance-runner", **meta},
                spec={
                    "action": "ALLOW",
                    "rules": [
                        {"from": [{"source": {"principals": [runner_principal(args.namespace, args.endpoint)]}}]}
                    ],
                },
                opts=mine,
            ),
        ]
        return config_map, made

    def _job(
        self,
        name: str,
        args: AcceptanceArgs,
        config_map: str,
        urls: pulumi.Input[list[str]],
        job: pulumi.Input[str],
        made: list[pulumi.Resource],
        *,
        retry_unavailable: bool = False,
    ) -> k8s.batch.v1.Job:
        """The Job that runs the tests once against each of `urls`: it completes when all pass, and fails with the
        reason otherwise (Pulumi awaits it, so whatever depends on it waits, and is not changed when it fails)."""
        meta = {"namespace": args.namespace, "labels": labels(args.endpoint, None, args.tier)}

        def arguments(found: list[str]) -> list[str]:
            retry = ["--retry-unavailable"] if retry_unavailable else []
            return [
                "check",
                "--tests",
                f"{MOUNT}/tests.json",
                *(f"--url={url}" for url in found),
                "--quit-sidecar",
                *retry,
            ]

        container = runner_container(
            arguments(urls) if isinstance(urls, list) else pulumi.Output.from_input(urls).apply(arguments),
            args.pull_policy,
        )
        annotations = {
            # Requests leave through the sidecar (mTLS); it must be up before the runner's first call.
            "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
            **checkov_skips(RUNNER_IMAGE, args.pull_policy),
        }
        return k8s.batch.v1.Job(
            child(name, "job"),
            metadata={"name": job, **meta},
            spec={
                "backoffLimit": 1,
                "activeDeadlineSeconds": 540,  # within Pulumi's 10-minute Job await
                "template": {
                    "metadata": {"labels": runner_labels(args.endpoint, args.tier), "annotations": annotations},
                    "spec": runner_pod(runner_account(args.endpoint), container, config_map, restart="Never"),
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, *made]),
        )


@dataclass(frozen=True, kw_only=True)
class AcceptanceJobArgs(AcceptanceArgs):
    versions: dict[str, ModelVersion]
    """The versions under test (every version the routes send or mirror requests to)."""


class AcceptanceJob(_Acceptance):
    job: k8s.batch.v1.Job
    """What the routes wait for."""

    def __init__(self, name: str, args: AcceptanceJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:AcceptanceJob", name, None, opts)
        config_map, made = self._common(name, args, "job")
        meta = {"namespace": args.namespace, "labels": labels(args.endpoint, None, args.tier)}
        urls = []
        for version in sorted(args.versions):
            service = version_service(args.endpoint, version)
            made.append(
                k8s.core.v1.Service(
                    child(name, version),
                    metadata={"name": service, **meta},
                    spec={
                        "type": "ClusterIP",
                        "selector": {"app.kubernetes.io/name": args.endpoint, "turnout.dev/version": version},
                        "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "appProtocol": "http"}],
                    },
                    opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
                )
            )
            urls.append(f"http://{service}.{args.namespace}.svc.cluster.local")
        tests = tests_document(args.tests)
        self.job = self._job(name, args, config_map, urls, job_name(args.endpoint, tests, args.versions), made)
        self.register_outputs({"job": self.job.metadata["name"]})


@dataclass(frozen=True, kw_only=True)
class RevisionsAcceptanceJobArgs(AcceptanceArgs):
    revisions: dict[str, pulumi.Input[str]]
    """Version → the name of its Knative revision under test (every one the Route sends requests to or tags)."""


class RevisionsAcceptanceJob(_Acceptance):
    job: k8s.batch.v1.Job
    """What the Knative Route waits for."""

    def __init__(self, name: str, args: RevisionsAcceptanceJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:RevisionsAcceptanceJob", name, None, opts)
        config_map, made = self._common(name, args, "job")
        versions = sorted(args.revisions)
        tests = tests_document(args.tests)
        names = pulumi.Output.all(*(args.revisions[version] for version in versions))
        urls = names.apply(lambda revisions: [revision_url(revision, args.namespace) for revision in revisions])
        job = names.apply(
            lambda revisions: revisions_job_name(args.endpoint, tests, dict(zip(versions, revisions, strict=True)))
        )
        # Knative makes the revision's Service only once the Configuration names it, and the mesh routes it a moment
        # later: 502/503/504 until then are waited out like no answer at all.
        self.job = self._job(name, args, config_map, urls, job, made, retry_unavailable=True)
        self.register_outputs({"job": self.job.metadata["name"]})


@dataclass(frozen=True, kw_only=True)
class AcceptanceWebhookArgs(AcceptanceArgs):
    canary_url: str
    """Flagger's `<endpoint>-canary` Service: the version under analysis only."""


class AcceptanceWebhook(_Acceptance):
    webhook: dict
    """The Canary's `pre-rollout` webhook."""
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: AcceptanceWebhookArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:AcceptanceWebhook", name, None, opts)
        config_map, made = self._common(name, args, "webhook")
        service = runner_account(args.endpoint)
        pod_labels = runner_labels(args.endpoint, args.tier)
        selector = {"app.kubernetes.io/name": pod_labels["app.kubernetes.io/name"]}
        meta = {"namespace": args.namespace, "labels": pod_labels}
        container = runner_container(
            ["serve", "--tests", f"{MOUNT}/tests.json", f"--url={args.canary_url}", f"--port={RUNNER_PORT}"],
            args.pull_policy,
        )
        probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
        container |= {
            "ports": [{"name": "http", "containerPort": RUNNER_PORT, "protocol": "TCP"}],
            "readinessProbe": probe,
            "livenessProbe": {**probe, "initialDelaySeconds": 5},
        }
        annotations = {
            # Flagger has no sidecar: its plaintext POST reaches the runner's port beside the sidecar, not through it.
            "traffic.sidecar.istio.io/excludeInboundPorts": str(RUNNER_PORT),
            **checkov_skips(RUNNER_IMAGE, args.pull_policy),
        }
        deployment = k8s.apps.v1.Deployment(
            child(name, "deployment"),
            metadata={"name": service, **meta, "annotations": checkov_skips(RUNNER_IMAGE, args.pull_policy)},
            spec={
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": pod_labels, "annotations": annotations},
                    "spec": runner_pod(service, container, config_map, restart="Always"),
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, *made]),
        )
        runner_service = k8s.core.v1.Service(
            child(name, "svc"),
            metadata={"name": service, **meta},
            spec={
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "appProtocol": "http"}],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.webhook = {
            "name": "acceptance-tests",
            "type": "pre-rollout",
            "url": f"http://{service}.{args.namespace}/",
            "timeout": WEBHOOK_TIMEOUT,
        }
        self.ready = [deployment, runner_service]
        self.register_outputs({"webhook": self.webhook["url"]})
