"""The bundled stacks' registrations, planned once per test process for the whole-plan guards
(test_helm_ownership, test_knative_fields): the program under mocks, without the policy pack."""

from __future__ import annotations

import functools

from tests.conftest import REPO
from turnout.config import NAMESPACE, load_stack_config
from turnout.offline.runtime import ResourceRecord, run_program
from turnout.offline.stackfile import find_project, read_stack


@functools.cache
def bundled_records() -> dict[str, tuple[ResourceRecord, ...]]:
    """Stack → its records, for every stack in environments/ that has clusters (global stacks have none)."""
    project = find_project(REPO)
    planned = {}
    for stack in project.stacks():
        settings = read_stack(project, stack)
        config = load_stack_config(
            {k.split(":", 1)[1]: v for k, v in settings.config.items() if k.startswith(f"{NAMESPACE}:")}
        )
        if config.global_traffic is not None:
            continue
        run = run_program(project.root, project.name, stack, settings.config, settings.secret_keys, project.main)
        planned[stack] = tuple(run.records)
    return planned
