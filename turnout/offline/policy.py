"""Evaluate the project's CrossGuard pack in-process, the way the Pulumi engine's analyzer does."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import importlib.util
import sys
from dataclasses import dataclass
from inspect import isawaitable
from pathlib import Path
from types import ModuleType
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import _NotApplicableError  # raised by args.not_applicable()
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from turnout.config import Waiver, key_path
from turnout.errors import ConfigError
from turnout.offline.runtime import ResourceRecord

_RULES_MODULE = "turnout_policy_pack_rules"


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str  # "mandatory" | "advisory"
    urn: str
    message: str
    waiver: Waiver | None = None
    """The waiver in force that accepts this finding: it does not count, and summary.md shows it."""
    expired_waiver: Waiver | None = None
    """A waiver that covered this finding until it expired."""

    @property
    def resource(self) -> str:
        """The name a reader sees: the URN's last part, or "stack" for a stack rule's general finding."""
        return self.urn.rsplit("::", 1)[-1] if self.urn else "stack"

    def to_json(self) -> dict[str, str]:
        document = {"policy": self.policy, "level": self.level, "urn": self.urn, "message": self.message}
        if self.waiver is not None:
            document |= {"reason": self.waiver.reason, "expires": self.waiver.expires}
        return document


def apply_waivers(
    violations: list[Violation], waivers: tuple[Waiver, ...], today: datetime.date, policies: Path | ModuleType
) -> list[Violation]:
    """Mark each finding a waiver in force covers (and each one only an expired waiver covered), with the
    pack's own matching (policies/rules/_waivers.py), so `pulumi preview` waives exactly the same."""
    find = _rules(policies)._waivers.find  # the pack's own module, as the plan imported it
    marked = []
    for violation in violations:
        mine = [w for w in waivers if w.policy == violation.policy]
        in_force, expired = find([_as_mapping(w) for w in mine], violation.urn, today)
        marked.append(
            dataclasses.replace(
                violation,
                waiver=_from_mapping(mine, in_force),
                expired_waiver=_from_mapping(mine, expired),
            )
        )
    return marked


def _as_mapping(waiver: Waiver) -> dict[str, str]:
    return {"resource": waiver.resource, "reason": waiver.reason, "expires": waiver.expires}


def _from_mapping(waivers: list[Waiver], mapping) -> Waiver | None:
    return None if mapping is None else next(w for w in waivers if _as_mapping(w) == mapping)


def unused_waivers(violations: list[Violation], waivers: tuple[Waiver, ...]) -> list[Waiver]:
    used = {v.waiver for v in violations} | {v.expired_waiver for v in violations}
    return [w for w in waivers if w not in used]


def check_waivers(waivers: tuple[Waiver, ...], policy_names: list[str]) -> None:
    """A waiver for a policy the pack does not have is a typo that would silently waive nothing."""
    for index, waiver in enumerate(waivers):
        if waiver.policy not in policy_names:
            raise ConfigError(
                key_path(f"waivers[{index}].policy"), repr(waiver.policy), "one of " + ", ".join(sorted(policy_names))
            )


def load_rules(policies_dir: Path) -> ModuleType:
    """Import `<policies_dir>/rules` as a package, fresh, so a fork's edits always apply. A plan imports it once
    and hands the module to `pack_policy_names`, `evaluate` and `apply_waivers`, which take either."""
    init = policies_dir / "rules" / "__init__.py"
    for name in [m for m in sys.modules if m == _RULES_MODULE or m.startswith(_RULES_MODULE + ".")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location(_RULES_MODULE, init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[_RULES_MODULE] = module
    spec.loader.exec_module(module)
    return module


def _run(result) -> None:
    if isawaitable(result):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(result)
        finally:
            loop.close()


def _options(record: ResourceRecord) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], record.parent)


def evaluate(
    records: list[ResourceRecord], policies: Path | ModuleType, config: dict | None = None, tier: str | None = None
) -> list[Violation]:
    """Every violation the pack reports for `records`, in a stable order.

    `config` is policy-pack config as `--policy-pack-config` takes it (name → level, or name →
    {"enforcementLevel": ..., other settings}); `tier` adds the pack's levels for that tier.
    """
    rules = _rules(policies)
    default_level = getattr(rules, "DEFAULT_ENFORCEMENT", EnforcementLevel.ADVISORY)
    merged = {**(rules.tier_config(tier) if tier and hasattr(rules, "tier_config") else {}), **(config or {})}
    resources = [r for r in records if r.custom]
    # Deserialized and proxied once for every rule (the proxies are read-only): most of the pack's time otherwise;
    # likewise each resource's options, read-only to the rules.
    inputs = {r.urn: unknown_checking_proxy(deserialize_properties(r.raw_inputs)) for r in resources}
    options = {r.urn: _options(r) for r in resources}
    stack = _stack_resources(resources, options)
    violations: list[Violation] = []
    for policy in rules.POLICIES:
        level, settings = _configured(policy, merged.get(policy.name), default_level)
        if level == EnforcementLevel.DISABLED:
            continue
        if isinstance(policy, ResourceValidationPolicy):
            violations += _check_resources(policy, level, resources, inputs, options, settings)
        elif isinstance(policy, StackValidationPolicy):
            violations += _check_stack(policy, level, stack, settings)
    return sorted(violations, key=lambda v: (v.level != "mandatory", v.policy, v.urn, v.message))


def _configured(policy, entry, default_level: EnforcementLevel) -> tuple[EnforcementLevel, dict]:
    """The level and settings one policy runs with, from its config entry (as the engine reads it)."""
    settings: dict = {}
    level = policy.enforcement_level or default_level
    if isinstance(entry, str):
        level = EnforcementLevel(entry)
    elif isinstance(entry, dict):
        settings = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        if "enforcementLevel" in entry:
            level = EnforcementLevel(entry["enforcementLevel"])
    return (EnforcementLevel.MANDATORY if level == EnforcementLevel.REMEDIATE else level), settings


def _check_resources(
    policy,
    level: EnforcementLevel,
    resources: list[ResourceRecord],
    inputs: dict[str, Any],
    options: dict[str, PolicyResourceOptions],
    config: dict,
) -> list[Violation]:
    """One rule on each resource, with the resource's read-only proxy and options that every rule shares."""
    found: list[Violation] = []
    validate = _unwaived(policy)
    for record in resources:

        def report(message: str, urn: str | None = None, record: ResourceRecord = record) -> None:
            found.append(
                Violation(policy.name, level.value, urn or record.urn, policy_message(policy.description, message))
            )

        args = ResourceValidationArgs(
            record.type, inputs[record.urn], record.urn, record.name, options[record.urn], None, config
        )
        _guarded(validate, args, report)
    return found


def _stack_resources(
    resources: list[ResourceRecord], options: dict[str, PolicyResourceOptions]
) -> list[PolicyResource]:
    """The stack as AnalyzeStack hands it over: outputs, with each resource's provider."""
    providers = {
        r.urn: PolicyProviderResource(r.type, deserialize_properties(r.raw_outputs), r.urn, r.name)
        for r in resources
        if r.is_provider
    }
    stack = [
        PolicyResource(
            r.type,
            deserialize_properties(r.raw_outputs),
            r.urn,
            r.name,
            options[r.urn],
            providers.get(r.provider),
            None,
            [],
            {},
        )
        for r in resources
    ]
    # The engine hands stack rules each resource's dependencies as resources of the stack; so do we.
    by_urn = {resource.urn: resource for resource in stack}
    for record, resource in zip(resources, stack, strict=True):
        resource.dependencies = [by_urn[urn] for urn in record.dependencies if urn in by_urn]
    return stack


def _check_stack(policy, level: EnforcementLevel, stack: list[PolicyResource], config: dict) -> list[Violation]:
    found: list[Violation] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(Violation(policy.name, level.value, urn or "", policy_message(policy.description, message)))

    _guarded(_unwaived(policy), StackValidationArgs(stack, config), report)
    return found


def _unwaived(policy):
    """The rule itself, without the pack's waiver filter: `turnout plan` shows what waivers cover."""
    return getattr(policy, "unwaived_validate", policy.validate)


def policy_message(description: str, message: str) -> str:
    """The engine prefixes each violation with the policy's description; so do we."""
    return f"{description}\n{message}" if message else description


def _guarded(validate, args, report) -> None:
    # The engine records both as "not evaluated" rather than as violations. (A try, not contextlib.suppress: this
    # runs once per rule and resource, 9,000 times a plan of prod-aws.)
    try:  # noqa: SIM105
        _run(validate(args, report))
    except (UnknownValueError, _NotApplicableError):
        pass


def pack_policy_names(policies: Path | ModuleType) -> list[str]:
    return [p.name for p in _rules(policies).POLICIES]


def _rules(policies: Path | ModuleType) -> ModuleType:
    """The pack's rules: the module `load_rules` gave, or `<policies>/rules` imported afresh."""
    return policies if isinstance(policies, ModuleType) else load_rules(policies)
