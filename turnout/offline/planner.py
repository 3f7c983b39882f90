"""Plan one stack offline: run its program under mocks, render, evaluate the policy pack.

A global stack reads its colour cells through StackReferences; offline, those are answered with the
cells' planned outputs, so the cells are planned first (once per `turnout plan` invocation).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from turnout.config import NAMESPACE, StackConfig, key_path, load_stack_config
from turnout.errors import ConfigError
from turnout.network import overlapping
from turnout.offline.manifests import manifests
from turnout.offline.policy import apply_waivers, check_waivers, evaluate, load_rules, pack_policy_names
from turnout.offline.report import StackPlan
from turnout.offline.runtime import run_program
from turnout.offline.stackfile import Project, read_stack


def plan_stack(
    project: Project,
    stack: str,
    logger: logging.Logger | None = None,
    today: datetime.date | None = None,
    planned: dict[str, StackPlan] | None = None,
    _referenced_by: tuple[str, ...] = (),
    *,
    before_policies: Callable[[StackPlan], None] | None = None,
) -> StackPlan:
    """Raises ConfigError (status 2) for invalid configuration, UsageError for an unknown stack.

    `planned` holds this invocation's plans by stack: a cell a global stack reads is planned once.
    `before_policies` is handed this stack's plan, without its violations yet, before the policy pack
    evaluates it (report.WriteAhead writes what does not depend on them meanwhile)."""
    planned = {} if planned is None else planned
    if stack in planned:
        return planned[stack]
    settings = read_stack(project, stack)
    config = load_stack_config(
        {k.split(":", 1)[1]: v for k, v in settings.config.items() if k.startswith(f"{NAMESPACE}:")}
    )
    policies = load_rules(project.root / "policies")  # once per plan: the pack is imported afresh for each
    check_waivers(config.waivers, pack_policy_names(policies))
    _plan_cells(project, stack, config, logger, today, planned, _referenced_by)
    run = run_program(
        project.root,
        project.name,
        stack,
        settings.config,
        settings.secret_keys,
        project.main,
        logger,
        stack_outputs=lambda name: planned[name.rsplit("/", 1)[-1]].outputs,
    )
    plan = StackPlan(
        stack=stack,
        records=run.records,
        outputs=run.stack_outputs,
        manifests=manifests(run.records),
        violations=[],
        waivers=config.waivers,
    )
    if before_policies is not None:
        before_policies(plan)
    violations = evaluate(run.records, policies, tier=run.stack_outputs.get("tier"))
    plan.violations = apply_waivers(violations, config.waivers, today or datetime.date.today(), policies)
    planned[stack] = plan
    return plan


def _plan_cells(project, stack, config: StackConfig, logger, today, planned, referenced_by) -> None:
    """Plan the cells a global stack reads, and check they serve every region it routes from networks
    that do not overlap (so that cells can be peered)."""
    if config.global_traffic is None:
        return
    networks: dict[str, str] = {}
    for colour, cell in config.global_traffic.cells.items():
        path = key_path(f"globalTraffic.cells.{colour}")
        if cell == stack or cell in referenced_by:
            raise ConfigError(path, repr(cell), "a cell stack, not this global stack")
        if not project.stack_file(cell).is_file():
            raise ConfigError(path, repr(cell), "a stack in environments/: " + ", ".join(project.stacks()))
        cell_plan = plan_stack(project, cell, logger, today, planned, (*referenced_by, stack))
        if cell_plan.outputs.get("kind") == "global":
            raise ConfigError(path, f"{cell!r}, a global stack", "a cell stack (one with clusters and endpoints)")
        served = {ingress["region"] for ingress in cell_plan.outputs.get("ingresses") or []}
        for ingress in cell_plan.outputs.get("ingresses") or []:
            if ingress.get("network"):
                networks[f"cell {cell!r} in {ingress['region']}"] = ingress["network"]
        for first, second in overlapping(networks):
            raise ConfigError(
                key_path("platform.addressSpace"),
                f"{first} and {second} on overlapping networks ({networks[first]}, {networks[second]}), "
                f"in the cells' stack files",
                "a distinct turnout:platform.addressSpace in each cell's stack file, so cells can be peered",
            )
        missing = [region for region in config.platform.regions if region not in served]
        if missing:
            raise ConfigError(
                key_path("platform.regions"),
                f"{', '.join(missing)}, where cell {cell!r} has no cluster",
                "regions every cell serves: " + (", ".join(sorted(served)) or "none"),
            )
