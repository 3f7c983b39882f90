"""The stacks the admission test plans: every bundled stack, every README example, and option stacks that use every
strategy, backend, cache and GPU option. `scripts/render-charts` renders the Helm charts of all of them (not only the
bundled stacks'), so that the pods each of their releases runs can be admitted offline too."""

from __future__ import annotations

import dataclasses
import functools
import re
import shutil
import tempfile
from pathlib import Path

from tests.conftest import REPO, write_stack
from turnout.config import NAMESPACE, load_stack_config
from turnout.offline.manifests import Manifest
from turnout.offline.planner import plan_stack
from turnout.offline.runtime import ResourceRecord
from turnout.offline.stackfile import find_project, read_stack

VERSIONS = {v: {"image": f"ghcr.io/acme/model:1.{i}.0"} for i, v in enumerate(["v1", "v2", "v3"])}
GPU_VERSIONS = {v: {**spec, "resources": {"cpu": "2", "memory": "8Gi", "gpu": 1}} for v, spec in VERSIONS.items()}
STRATEGIES = {
    "recreate": {"type": "recreate", "version": "v2"},
    "rolling": {"type": "rolling", "version": "v1"},
    "blue-green": {"type": "blue-green", "active": "v1", "preview": "v2"},
    "canary": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10, "sticky": {"cookie": "model"}},
    "ab-test": {
        "type": "ab-test",
        "variants": {"v2": 60, "v3": 40},
        "segment": {"header": "x-cohort", "value": "beta"},
        "default": "v1",
    },
    "shadow": {"type": "shadow", "primary": "v1", "shadows": {"v2": 50, "v3": 5}},
    "dark-launch": {"type": "dark-launch", "live": "v1", "dark": "v3"},
    "feature-flag": {
        "type": "feature-flag",
        "flag": "ranker",
        "variants": {"on": "v2", "off": "v1"},
        "defaultVariant": "off",
    },
    "progressive": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 5, "progressive": {"maxWeight": 40}},
    "progressive-bg": {"type": "blue-green", "active": "v1", "preview": "v2", "progressive": {"iterations": 4}},
    "progressive-shadow": {"type": "shadow", "primary": "v1", "shadows": {"v3": 40}, "progressive": {"iterations": 4}},
}
KNATIVE = {
    "recreate": STRATEGIES["recreate"],
    "rolling": STRATEGIES["rolling"],
    "canary": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10},
    "ab-test": {"type": "ab-test", "variants": {"v1": 50, "v2": 30, "v3": 20}},
    "blue-green": STRATEGIES["blue-green"],
    "dark-launch": STRATEGIES["dark-launch"],
}


def every_strategy_on_kind() -> dict:
    """kind: every strategy on Istio (with Flagger and flagd), every Knative strategy, the in-cluster cache."""
    endpoints = {name: {"versions": VERSIONS, "strategy": strategy} for name, strategy in STRATEGIES.items()}
    endpoints |= {
        f"kn-{name}": {"backend": "knative", "versions": VERSIONS, "strategy": s} for name, s in KNATIVE.items()
    }
    for name in ("kn-canary", "kn-blue-green"):  # their acceptance Jobs' pods, in Knative's model namespaces
        endpoints[name]["tests"] = [{"path": "/predict", "method": "POST", "body": {"x": 1}}]
    return {"platform": {"cloud": "kind", "regions": ["lab"]}, "cache": {"engine": "valkey"}, "endpoints": endpoints}


def gpus_and_caches_on(cloud: str, region: str) -> dict:
    """A prod cloud stack: GPU versions on Istio, on Knative and under Flagger, flagd, the cloud's cache (the bundled
    stacks cover DR's standby regions)."""
    return {
        "tier": "prod",
        "platform": {
            "cloud": cloud,
            "regions": [region],
            "nodePools": [{"name": "general", "min": 2, "max": 6}, {"name": "gpu", "min": 0, "max": 4, "gpu": 1}],
            "serving": {"gateway": {"exposure": "external", "domain": "models.example.com"}},
        },
        "cache": {"engine": "redis"},
        "endpoints": {
            "gpu-canary": {"versions": GPU_VERSIONS, "strategy": KNATIVE["canary"]},
            "gpu-knative": {"backend": "knative", "versions": GPU_VERSIONS, "strategy": KNATIVE["ab-test"]},
            "gpu-progressive": {"versions": GPU_VERSIONS, "strategy": STRATEGIES["progressive"]},
            "flags": {"versions": VERSIONS, "strategy": STRATEGIES["feature-flag"]},
        },
    }


OPTION_STACKS = {
    "adm-kind": every_strategy_on_kind(),
    "adm-aws": gpus_and_caches_on("aws", "us-east-1"),
    "adm-gcp": gpus_and_caches_on("gcp", "europe-west4"),
    "adm-azure": gpus_and_caches_on("azure", "westeurope"),
}
BUNDLED = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (REPO / "environments").glob("Pulumi.*.yaml"))
README_EXAMPLES = {
    m["name"]: m["body"]
    for m in re.finditer(
        r"<!-- example: (?P<name>[a-z0-9-]+), resources: \d+ -->\s*```yaml\n(?P<body>.*?)```",
        (REPO / "README.md").read_text(),
        re.S,
    )
}
STACKS = [*BUNDLED, *(f"readme-{name}" for name in README_EXAMPLES), *OPTION_STACKS]
# Global stacks hold DNS only: their cells' pods are planned with the cells themselves.
GLOBAL_STACKS = {
    s for s in BUNDLED if "turnout:globalTraffic" in (REPO / "environments" / f"Pulumi.{s}.yaml").read_text()
}
CELL_STACKS = [s for s in STACKS if s not in GLOBAL_STACKS]


@dataclasses.dataclass(frozen=True)
class Planned:
    records: list[ResourceRecord]
    manifests: list[Manifest]
    kubelet_minor: int


def write_project(root: Path) -> Path:
    """A copy of the project at `root` with the README examples and the option stacks beside the bundled ones."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Pulumi.yaml", root)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name, body in README_EXAMPLES.items():
        (root / "environments" / f"Pulumi.readme-{name}.yaml").write_text(body)
    for name, config in OPTION_STACKS.items():
        write_stack(root, name, config)
    return root


@functools.cache
def corpus_plans() -> dict[str, Planned]:
    """Stack → its plan, for every stack of STACKS (planned once per test process)."""
    with tempfile.TemporaryDirectory(prefix="turnout-admission-") as scratch:
        project = find_project(write_project(Path(scratch)))
        planned, results = {}, {}
        for stack in STACKS:
            settings = read_stack(project, stack)
            config = load_stack_config(
                {k.split(":", 1)[1]: v for k, v in settings.config.items() if k.startswith(f"{NAMESPACE}:")}
            )
            plan = plan_stack(project, stack, planned=planned)
            minor = int(config.platform.kubernetes_version.split(".")[1])
            results[stack] = Planned(plan.records, plan.manifests, minor)
        return results
