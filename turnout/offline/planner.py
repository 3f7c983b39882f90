"""Plan one stack offline: run its program under mocks, render, evaluate the policy pack."""

from __future__ import annotations

import logging

from turnout.offline.manifests import manifests
from turnout.offline.policy import evaluate
from turnout.offline.report import StackPlan
from turnout.offline.runtime import run_program
from turnout.offline.stackfile import Project, read_stack


def plan_stack(project: Project, stack: str, logger: logging.Logger | None = None) -> StackPlan:
    """Raises ConfigError (status 2) for invalid configuration, UsageError for an unknown stack."""
    settings = read_stack(project, stack)
    run = run_program(project.root, project.name, stack, settings.config, settings.secret_keys, project.main, logger)
    return StackPlan(
        stack=stack,
        records=run.records,
        outputs=run.stack_outputs,
        manifests=manifests(run.records),
        violations=evaluate(run.records, project.root / "policies", tier=run.stack_outputs.get("tier")),
    )
