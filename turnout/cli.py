"""`turnout plan`: plan stacks offline and say whether policy lets them through (CONTRACT §2).
`turnout failover`: the AWS runbook steps DNS cannot take (turnout/failover.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from turnout.errors import ConfigError

EXIT_OK, EXIT_VIOLATION, EXIT_INVALID, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_STEP_FAILED = 1  # turnout failover: a step failed or timed out


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors are status 2, with no traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"turnout: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="turnout", description="Plan turnout stacks offline and check them against policy.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plan = commands.add_parser(
        "plan",
        help="plan stacks offline (no Pulumi CLI, credentials or network)",
        description="Run the Pulumi program of each stack on the SDK's mock runtime, write what it would create "
        "and evaluate the policy pack. Exit 0: planned, no mandatory violation; 1: a mandatory violation; "
        "2: invalid configuration or usage.",
    )
    plan.add_argument("stacks", nargs="*", metavar="STACK", help="stacks in environments/ (default: local)")
    plan.add_argument("--all", action="store_true", help="plan every stack in environments/")
    plan.add_argument("--out", type=Path, default=Path("build/plan"), help="output folder (default: build/plan)")
    plan.add_argument("--project", type=Path, default=None, help="project folder (default: the nearest Pulumi.yaml)")
    commands.add_parser("config-reference", help="print the stack configuration reference (Markdown)")
    failover = commands.add_parser(
        "failover",
        help="AWS DR runbook: promote the cache's Global Datastore to REGION, scale up a pilot light",
        description="Move a DR stack's primary to REGION: check the regions' Route 53 health checks, promote the "
        "ElastiCache Global Datastore's member in REGION and wait for it, and print the kubectl commands that scale "
        "up a pilot light's model workloads. DNS fails over by itself; these steps do not. Exit 0: done; "
        "1: a step failed or timed out; 2: invalid usage or configuration (unknown region, missing outputs).",
    )
    failover.add_argument("stack", metavar="STACK", help="the deployed stack (as `pulumi stack` names it)")
    failover.add_argument("--to", dest="region", required=True, metavar="REGION", help="the region to make primary")
    failover.add_argument("--dry-run", action="store_true", help="make only read calls; print the others")
    failover.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="the stack's outputs as JSON (or turnout plan's inventory.json) instead of `pulumi stack output`",
    )
    failover.add_argument(
        "--timeout",
        type=_seconds,
        default=600,
        metavar="SECONDS",
        help="how long to wait for the cache promotion: seconds or 90s, 5m, 1h (default: 600)",
    )
    failover.add_argument(
        "--project", type=Path, default=None, help="project folder (default: the nearest Pulumi.yaml)"
    )
    return parser


def _seconds(value: str) -> int:
    from turnout.units import parse_duration

    try:
        return parse_duration(int(value) if value.isdigit() else value, "--timeout")
    except ConfigError as err:
        raise argparse.ArgumentTypeError(f"{err.found}; allowed: {err.allowed}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "config-reference":
        from turnout.reference import config_reference

        sys.stdout.write(config_reference())
        return EXIT_OK
    if args.command == "failover":
        return failover_command(args)
    return plan_command(args)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def plan_command(args: argparse.Namespace) -> int:
    from turnout.offline.stackfile import UsageError, find_project

    try:
        project = find_project((args.project or Path.cwd()).resolve())
        if args.all and args.stacks:
            raise UsageError("name stacks or give --all, not both")
        stacks = project.stacks() if args.all else (args.stacks or ["local"])
        if not stacks:
            raise UsageError(f"no stacks in {project.stack_dir}")
        missing = [s for s in stacks if not project.stack_file(s).is_file()]
        if missing:
            raise UsageError(
                f"no stack {', '.join(map(repr, missing))}; stacks: {', '.join(project.stacks()) or 'none'}"
            )
    except UsageError as err:
        _say(f"turnout: {err}")
        return EXIT_INVALID

    out_dir = args.out if args.out.is_absolute() else Path.cwd() / args.out
    logger = logging.getLogger("turnout.plan")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("turnout: warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    status = EXIT_OK
    planned: dict = {}  # plans by stack: a global stack's cells are planned once, and reused when listed
    for index, stack in enumerate(stacks, start=1):
        status = max(status, _plan_one(project, stack, out_dir, logger, f"[{index}/{len(stacks)}]", planned))
    return status


def _plan_one(project, stack: str, out_dir: Path, logger: logging.Logger, progress: str, planned: dict) -> int:
    from turnout.offline.planner import plan_stack
    from turnout.offline.report import write_plan
    from turnout.offline.sdk import SdkIncompatibleError

    stack_file = project.stack_file(stack).relative_to(project.root)
    _say(f"{progress} planning {stack} ({stack_file}) ...")
    started = time.perf_counter()
    try:
        plan = plan_stack(project, stack, logger, planned=planned)
    except ConfigError as err:
        _say(f"turnout: stack {stack!r} ({stack_file}): {err}")
        return EXIT_INVALID
    except SdkIncompatibleError as err:
        _say(f"turnout: {err}")
        return EXIT_INTERNAL
    except Exception:  # noqa: BLE001 — a bug in turnout or a component, not bad input: show everything
        _say(f"turnout: internal error while planning stack {stack!r}; please report it with this output:")
        traceback.print_exc()
        return EXIT_INTERNAL
    folder = write_plan(plan, out_dir)
    mandatory = plan.mandatory_violations
    advisory = len(plan.counted) - len(mandatory)
    waived = f" ({len(plan.waived)} waived)" if plan.waived else ""
    elapsed = time.perf_counter() - started
    _say(
        f"{progress} {stack}: {len(plan.records)} resources, {len(plan.manifests)} Kubernetes objects, "
        f"{len(mandatory)} mandatory / {advisory} advisory violations{waived} in {elapsed:.1f}s "
        f"-> {os.path.relpath(folder)}"
    )
    for violation in mandatory:
        _say(f"  MANDATORY {violation.policy}: {violation.message.splitlines()[-1]}")
    return EXIT_VIOLATION if mandatory else EXIT_OK


def failover_command(args: argparse.Namespace) -> int:
    from turnout import failover as runbook
    from turnout.offline.stackfile import UsageError, find_project

    try:
        project_dir = find_project((args.project or Path.cwd()).resolve()).root
    except UsageError:
        project_dir = args.project
    try:
        outputs = runbook.load_outputs(args.stack, args.outputs, project_dir)
        facts = runbook.read_facts(args.stack, outputs)
        endpoints, missing = runbook.configured_endpoints(project_dir, args.stack)
        runbook.Failover(
            facts,
            args.region,
            runbook.boto3_clients(),
            dry_run=args.dry_run,
            timeout=args.timeout,
            emit=lambda line: print(line, flush=True),
            endpoints=endpoints,
            endpoints_missing=missing,
        ).run()
    except runbook.FailoverUsageError as err:
        _say(f"turnout: {err}")
        return EXIT_INVALID
    except runbook.FailoverStepError as err:
        _say(f"turnout: failover of {args.stack!r} to {args.region} stopped: {err}")
        return EXIT_STEP_FAILED
    except Exception:  # noqa: BLE001 — a bug in turnout, not bad input or a failed call: show everything
        _say(f"turnout: internal error during failover of {args.stack!r}; please report it with this output:")
        traceback.print_exc()
        return EXIT_INTERNAL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
