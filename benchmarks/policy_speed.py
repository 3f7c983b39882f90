"""How long the whole policy pack takes on the largest bundled stack (the issue's target: under 1 s).

Every stack in environments/ is planned offline, as `turnout plan` plans it (the program under the
SDK's mocks); the one with the most resources is kept. Its records then go through
`turnout.offline.policy.evaluate` at the stack's own tier, exactly as `turnout plan` calls it (rules
re-imported from policies/ each time), --repeat times after a warm-up: the median is the figure. Each
rule alone (every other rule disabled) is timed too, less the pack's fixed cost, to show where
the time goes.

    python benchmarks/policy_speed.py [--repeat 20] [--stack NAME]

Not a test: machines differ (tests/test_policy_speed.py holds the 1 s bound with a wide margin).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from turnout.offline.planner import plan_stack  # noqa: E402
from turnout.offline.policy import evaluate, pack_policy_names  # noqa: E402
from turnout.offline.report import StackPlan  # noqa: E402
from turnout.offline.stackfile import find_project  # noqa: E402

TARGET_S = 1.0


def bundled_plans(names: list[str] | None = None) -> list[StackPlan]:
    """Plans of the bundled stacks (all of environments/ unless `names`), in name order."""
    project = find_project(REPO)
    names = names or project.stacks()
    return [plan_stack(project, name) for name in names]


def largest(plans: list[StackPlan]) -> StackPlan:
    return max(plans, key=lambda plan: len(plan.records))


def time_pack(plan: StackPlan, repeat: int, config: dict | None = None) -> list[float]:
    """Seconds per `evaluate` of the pack on `plan`'s records at its tier, after one warm-up run."""
    policies, tier = REPO / "policies", plan.outputs.get("tier")
    evaluate(plan.records, policies, config=config, tier=tier)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        evaluate(plan.records, policies, config=config, tier=tier)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--stack", help="time this stack instead of the largest")
    args = parser.parse_args()

    plans = bundled_plans([args.stack] if args.stack else None)
    print("| bundled stack | tier | resources | custom resources |")
    print("| --- | --- | ---: | ---: |")
    for plan in plans:
        custom = sum(1 for r in plan.records if r.custom)
        print(f"| {plan.stack} | {plan.outputs.get('tier')} | {len(plan.records)} | {custom} |")

    plan = largest(plans)
    names = pack_policy_names(REPO / "policies")
    times = time_pack(plan, args.repeat)
    median = statistics.median(times)
    verdict = "meets" if median < TARGET_S else "MISSES"
    print(
        f"\nwhole pack ({len(names)} policies) on {plan.stack}, {len(plan.records)} resources: "
        f"median {median * 1000:.1f} ms, min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
        f"over {args.repeat} runs; {verdict} the {TARGET_S:.0f} s target"
    )

    # Each rule alone, less the pack's fixed cost (rules imported, tier levels merged, nothing checked).
    runs = max(5, args.repeat // 2)
    fixed = statistics.median(time_pack(plan, runs, config=dict.fromkeys(names, "disabled")))
    alone = {}
    for name in names:
        only = {other: "disabled" for other in names if other != name}
        alone[name] = statistics.median(time_pack(plan, runs, config=only)) - fixed
    print(f"\nfixed cost (every rule disabled): {fixed * 1000:.1f} ms")
    print("\n| policy | ms on its own, above the fixed cost |")
    print("| --- | ---: |")
    for name, seconds in sorted(alone.items(), key=lambda item: -item[1]):
        print(f"| `{name}` | {seconds * 1000:.1f} |")
    print(f"\npython {sys.version.split()[0]}, pulumi {version('pulumi')}, pulumi-policy {version('pulumi-policy')}")
    return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
