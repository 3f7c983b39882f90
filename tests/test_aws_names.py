"""Every name turnout gives an AWS resource fits AWS's limits, whatever the stack name: a 50-character stack with a
DR target and a cache plans, and every name in its inventory passes the table in components/cluster/aws_limits.py
(the one the components fit their names with)."""

from __future__ import annotations

import importlib
import inspect
import json
import keyword
import shutil

import pytest

from components.cluster.aws_limits import NAMED_INPUTS, RULES, aws_name, name_problems
from tests.conftest import REPO, write_stack
from turnout.cli import main

STACK = "payments-fraud-scoring-production-blue-cell-0001xy"


def long_stack_config() -> dict:
    return {
        "tier": "prod",
        "platform": {
            "cloud": "aws",
            "regions": ["us-east-1", "us-west-2"],
            "apiAccess": "in-network",
            "admins": ["arn:aws:iam::123456789012:role/platform-admins"],
            "nodePools": [
                {"name": "general", "machineType": "m6i.xlarge", "min": 2, "max": 6},
                {"name": "gpu", "min": 0, "max": 2, "gpu": 1},
            ],
            "serving": {"gateway": {"exposure": "internal", "domain": "models.example.com"}},
        },
        "dr": {"rpo": "30s", "rto": "10m"},
        "cache": {"engine": "valkey"},
        "endpoints": {
            "scores": {
                "versions": {
                    "v1": {"image": "ghcr.io/acme/scores:1.0.0", "replicas": {"min": 2, "max": 4}},
                    "v2": {"image": "ghcr.io/acme/scores:1.1.0", "replicas": {"min": 2, "max": 4}},
                },
                "strategy": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10},
            }
        },
    }


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    root = tmp_path_factory.mktemp("names") / "project"
    root.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", root)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    write_stack(root, STACK, long_stack_config())
    out = root.parent / "plan"
    status = main(["plan", STACK, "--project", str(root), "--out", str(out)])
    assert status == 0, "a long stack name with DR and a cache plans"
    return json.loads((out / STACK / "inventory.json").read_text())


def test_the_stack_name_is_50_characters():
    assert len(STACK) == 50


def test_every_generated_name_fits_its_aws_limit(inventory):
    checked = 0
    problems = {}
    for resource in inventory["resources"]:
        if resource["type"] in NAMED_INPUTS:
            checked += 1
            found = name_problems(resource["type"], resource["inputs"])
            if found:
                problems[resource["name"]] = found
    assert not problems
    kinds = {r["type"] for r in inventory["resources"]}
    # The plan has every kind of named resource the table knows (so none of them is checked vacuously).
    assert set(NAMED_INPUTS) <= kinds, sorted(set(NAMED_INPUTS) - kinds)
    assert checked > 40


def test_the_long_names_were_fitted_not_refused(inventory):
    roles = [r["inputs"]["name"] for r in inventory["resources"] if r["type"] == "aws:iam/role:Role"]
    assert any(len(f"{STACK}-us-east-1-lb-controller") > 64 and role.endswith("-lb-controller") for role in roles)
    assert all(len(role) <= 64 for role in roles)
    groups = [
        r["inputs"]["replicationGroupId"]
        for r in inventory["resources"]
        if r["type"] == "aws:elasticache/replicationGroup:ReplicationGroup"
    ]
    assert sorted(g[-9:] for g in groups) == ["us-east-1", "us-west-2"] and all(len(g) <= 40 for g in groups)
    # The DR tier's failover routing is built (it used to fail, blaming turnout:globalTraffic.name, no such key).
    records = [r for r in inventory["resources"] if r["type"] == "aws:route53/record:Record"]
    clusters = {c["name"] for c in inventory["outputs"]["clusters"]}
    assert sorted(r["inputs"]["setIdentifier"] for r in records) == sorted(clusters)
    hostname = inventory["outputs"]["globalTraffic"]["hostname"]
    assert hostname == "*.models.example.com"
    # The Region switch plan (32 characters at most) and its Lambdas (64) say what they are, however long the stack.
    (plan,) = [r["inputs"]["name"] for r in inventory["resources"] if r["type"] == "aws:arcregionswitch/plan:Plan"]
    assert len(plan) <= 32 and plan.startswith("payments-fraud")
    functions = [r["inputs"]["name"] for r in inventory["resources"] if r["type"] == "aws:lambda/function:Function"]
    assert all(len(f) <= 64 for f in functions)
    assert sorted(f.rsplit("-", 1)[-1] for f in functions) == ["cache", "cache", "probe", "probe"]
    assert sum(f.endswith("-promote-cache") for f in functions) == 2  # and the internal gateway's in-VPC probes


def _resource_class(type_: str):
    package, module_and_kind = type_.split(":", 1)
    module, kind = module_and_kind.split(":")
    python_module = module.split("/")[0]
    if keyword.iskeyword(python_module):  # `lambda` is pulumi_aws.lambda_
        python_module += "_"
    if python_module == "index":
        return getattr(importlib.import_module("pulumi_aws"), kind)
    return getattr(importlib.import_module(f"pulumi_aws.{python_module}"), kind)


def test_every_aws_type_that_takes_a_name_is_in_the_table(inventory):
    """A new resource type with a `name` argument must say in aws_limits which limit its name has: otherwise the
    provider's autonaming (a random suffix) could push a long derived name over it unseen."""
    missing = []
    for type_ in sorted({r["type"] for r in inventory["resources"] if r["type"].startswith("aws:")}):
        parameters = inspect.signature(_resource_class(type_)._internal_init).parameters
        if ("name" in parameters or "name_prefix" in parameters) and type_ not in NAMED_INPUTS:
            missing.append(type_)
    assert not missing


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("iam-role", "x" * 70 + "-karpenter-node"),
        ("elasticache-id", "Prod.AWS_cache-us-east-1"),
        ("elasticache-id", "1st-cache"),
        ("eks-cluster", "prod.aws-us-east-1"),
        ("sqs-queue", "a.b" * 40),
        ("event-rule", "r" * 90),
        ("arc-plan", "payments-fraud-scoring-production-blue-cell-0001xy-failover"),
        ("arc-plan", "prod.aws_cell--failover"),
        ("lambda-function", "x" * 60 + "-us-west-2-promote-cache"),
    ],
)
def test_aws_name_always_gives_a_name_aws_accepts_and_keeps_distinct_names_distinct(kind, name):
    fitted = aws_name(kind, name)
    assert not RULES[kind].problems(fitted)
    assert aws_name(kind, name) == fitted
    assert aws_name(kind, name + "2") != fitted


def test_a_name_that_fits_is_never_changed():
    assert aws_name("iam-role", "prod-us-east-1-lb-controller") == "prod-us-east-1-lb-controller"
    assert aws_name("elasticache-id", "prod-cache-us-east-1") == "prod-cache-us-east-1"
