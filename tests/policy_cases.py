"""Fixtures for policy rules, shared by every `tests/test_policies*.py` module.

Each module defines `CASES = {rule name: [Case, ...]}`. Every rule in the pack needs at least one
`passes`, one `fails` and one `missing` case (an object lacking the property the rule reads), and
each `fails` case must really fail: a rule that cannot fail is a hidden bug.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from turnout.offline.policy import Violation, evaluate
from turnout.offline.runtime import run_function

POLICIES = Path(__file__).resolve().parent.parent / "policies"


@dataclass(frozen=True)
class Case:
    kind: str  # "pass" | "fail" | "missing"
    program: Callable[[], object]
    expected: tuple[str, ...] = ()
    """The last line of each violation message the rule reports, in order."""
    tier: str = "prod"
    config: dict = field(default_factory=dict)

    def violations(self, rule: str) -> list[Violation]:
        found = evaluate(run_function(self.program).records, POLICIES, config=self.config, tier=self.tier)
        return [v for v in found if v.policy == rule]


def passes(program, *, tier: str = "prod", config: dict | None = None) -> Case:
    return Case("pass", program, (), tier, config or {})


def fails(program, *messages: str, tier: str = "prod", config: dict | None = None) -> Case:
    assert messages, "a failing case names the violations it expects"
    return Case("fail", program, messages, tier, config or {})


def missing(program, *messages: str, tier: str = "prod", config: dict | None = None) -> Case:
    """The object lacks the property the rule reads; `messages` says what the rule makes of that."""
    return Case("missing", program, messages, tier, config or {})


def all_cases() -> dict[str, list[Case]]:
    merged: dict[str, list[Case]] = {}
    for path in sorted(Path(__file__).parent.glob("test_policies*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        for rule, cases in getattr(module, "CASES", {}).items():
            merged.setdefault(rule, []).extend(cases)
    return merged
