"""Plan one stack offline: run its program under mocks, render, evaluate the policy pack."""

from __future__ import annotations

import datetime
import logging

from turnout.config import NAMESPACE, parse_waivers
from turnout.offline.manifests import manifests
from turnout.offline.policy import apply_waivers, check_waivers, evaluate, pack_policy_names
from turnout.offline.report import StackPlan
from turnout.offline.runtime import run_program
from turnout.offline.stackfile import Project, read_stack


def plan_stack(
    project: Project, stack: str, logger: logging.Logger | None = None, today: datetime.date | None = None
) -> StackPlan:
    """Raises ConfigError (status 2) for invalid configuration, UsageError for an unknown stack."""
    settings = read_stack(project, stack)
    policies = project.root / "policies"
    waivers = parse_waivers(settings.config.get(f"{NAMESPACE}:waivers"))
    check_waivers(waivers, pack_policy_names(policies))
    run = run_program(project.root, project.name, stack, settings.config, settings.secret_keys, project.main, logger)
    violations = evaluate(run.records, policies, tier=run.stack_outputs.get("tier"))
    return StackPlan(
        stack=stack,
        records=run.records,
        outputs=run.stack_outputs,
        manifests=manifests(run.records),
        violations=apply_waivers(violations, waivers, today or datetime.date.today(), policies),
        waivers=waivers,
    )
