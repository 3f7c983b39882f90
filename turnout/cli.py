"""`turnout plan`: plan stacks offline and say whether policy lets them through (CONTRACT §2).
`turnout failover`: the AWS runbook steps DNS cannot take (turnout/failover.py)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

from turnout import __version__
from turnout.errors import ConfigError

EXIT_OK, EXIT_VIOLATION, EXIT_INVALID, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_STEP_FAILED = 1  # turnout failover: a step failed or timed out
DEFAULT_OUT = "build/plan"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors are status 2, with no traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"turnout: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False everywhere: `--al` must not silently mean `--all`.
    parser = _Parser(
        prog="turnout", description="Plan turnout stacks offline and check them against policy.", allow_abbrev=False
    )
    parser.add_argument("--version", action="version", version=f"turnout {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plan = commands.add_parser(
        "plan",
        allow_abbrev=False,
        help="plan stacks offline (no Pulumi CLI, credentials or network)",
        description="Run the Pulumi program of each stack on the SDK's mock runtime, write what it would create "
        "and evaluate the policy pack. Exit 0: planned, no mandatory violation; 1: a mandatory violation; "
        "2: invalid configuration or usage; 3: turnout itself failed (a bug: please report it).",
    )
    plan.add_argument("stacks", nargs="*", metavar="STACK", help="stacks in environments/ (default: local)")
    plan.add_argument("--all", action="store_true", help="plan every stack in environments/")
    plan.add_argument(
        "--out",
        type=Path,
        default=Path(DEFAULT_OUT),
        metavar="DIR",
        help=f"output folder, relative to the project folder (default: {DEFAULT_OUT}); "
        "DIR/STACK is replaced only if an earlier plan wrote it",
    )
    plan.add_argument("--project", type=Path, default=None, help="project folder (default: the nearest Pulumi.yaml)")
    commands.add_parser(
        "config-reference", allow_abbrev=False, help="print the stack configuration reference (Markdown)"
    )
    failover = commands.add_parser(
        "failover",
        allow_abbrev=False,
        help="AWS DR: start the stack's Region switch plan to REGION (or promote the cache and scale up by hand)",
        description="Move a DR stack's primary to REGION: check the regions' Route 53 health checks, then start the "
        "stack's ARC Region switch plan and follow it to the end (it promotes the cache, scales the standby and moves "
        "DNS); a stack without a plan gets the manual steps: promote the ElastiCache Global Datastore's member in "
        "REGION and wait for it, and print the kubectl commands that scale up a pilot light's model workloads. Exit "
        "0: done; 1: a step failed or timed out; 2: invalid usage or configuration (unknown region, missing outputs).",
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
        help="how long to wait for the plan's execution or the cache promotion: seconds or 90s, 5m, 1h (default: 600)",
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
        _check_stack_names(project, stacks)
        # Relative to the project, like the stack files: running from a subfolder must not write plans into it.
        out_dir = args.out if args.out.is_absolute() else project.root / args.out
        _check_out_dir(out_dir)
    except UsageError as err:
        _say(f"turnout: {err}")
        return EXIT_INVALID

    logger = logging.getLogger("turnout.plan")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("turnout: warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    from turnout.offline import workers

    # Several stacks: in workers forked once the SDKs are imported (workers.py); output and status as if in turn.
    return workers.plan_stacks(
        stacks,
        # One stack: its files are written by a helper while its policies are evaluated (report.WriteAhead);
        # several: the workers keep the processors busy.
        lambda stack, progress, planned: _plan_one(
            project, stack, out_dir, logger, progress, planned, write_ahead=len(stacks) == 1
        ),
        workers=workers.default_workers(),
        cells=lambda stack: workers.cells_of(project, stack),
        warm=lambda: workers.warm_imports(project.root),
    )


def _check_stack_names(project, stacks: list[str]) -> None:
    from turnout.offline.stackfile import STACK_NAME, UsageError

    for stack in stacks:
        file_name = re.fullmatch(r"(?:.*[/\\])?Pulumi\.(.+)\.ya?ml", stack)
        if file_name:
            raise UsageError(f"{stack!r} is a stack file; name its stack instead: turnout plan {file_name.group(1)}")
        if not STACK_NAME.fullmatch(stack):
            raise UsageError(
                f"{stack!r} is not a stack name (letters, digits, '-', '_' and '.'); "
                f"stacks: {', '.join(project.stacks()) or 'none'}"
            )
    missing = [s for s in stacks if not project.stack_file(s).is_file()]
    if missing:
        raise UsageError(f"no stack {', '.join(map(repr, missing))}; stacks: {', '.join(project.stacks()) or 'none'}")


def _check_out_dir(out_dir: Path) -> None:
    """--out must be a folder turnout can write: a usage error (2) now, not a traceback after planning."""
    from turnout.offline.stackfile import UsageError

    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file, not a folder; give a folder for the plans")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as err:
        raise UsageError(
            f"--out {out_dir}: cannot write there ({err.strerror or err}); give a writable folder"
        ) from None


def _plan_one(
    project, stack: str, out_dir: Path, logger: logging.Logger, progress: str, planned: dict, *, write_ahead: bool
) -> int:
    from turnout.offline.planner import plan_stack
    from turnout.offline.report import PlanFolderError, WriteAhead, check_replaceable, write_plan
    from turnout.offline.sdk import SdkIncompatibleError

    stack_file = project.stack_file(stack).relative_to(project.root)
    _say(f"{progress} planning {stack} ({stack_file}) ...")
    started = time.perf_counter()
    ahead = WriteAhead(out_dir) if write_ahead else None
    try:
        check_replaceable(out_dir / stack, stack)
        plan = plan_stack(project, stack, logger, planned=planned, before_policies=ahead and ahead.start)
        folder = write_plan(plan, out_dir, ahead)
    except PlanFolderError as err:
        _say(f"turnout: {err}")
        return EXIT_INVALID
    except ConfigError as err:
        if _names_no_key_of(err, project, stack):
            _say(f"turnout: internal error while planning stack {stack!r} ({stack_file}): {err}")
            _say(
                f"turnout: {err.path} is not a key of the stack file nor one turnout reads: turnout derived this "
                "value itself, so this is a turnout bug, not a mistake in the stack file; please report it with "
                "this output"
            )
            return EXIT_INTERNAL
        _say(f"turnout: stack {stack!r} ({stack_file}): {err}")
        return EXIT_INVALID
    except SdkIncompatibleError as err:
        _say(f"turnout: {err}")
        return EXIT_INTERNAL
    except OSError as err:  # the plan folder became unwritable (disk full, permissions): not a turnout bug
        _say(f"turnout: cannot write the plan of {stack!r} under {out_dir}: {err}")
        return EXIT_INVALID
    except Exception:  # noqa: BLE001 — a bug in turnout or a component, not bad input: show everything
        _say(f"turnout: internal error while planning stack {stack!r}; please report it with this output:")
        traceback.print_exc()
        return EXIT_INTERNAL
    finally:
        if ahead is not None:
            ahead.discard()  # the helper's folder, unless the plan became it
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


def _names_no_key_of(err: ConfigError, project, stack: str) -> bool:
    """A ConfigError about a `turnout:` key that the stack file does not hold and that turnout does not
    read names a value turnout derived: blaming the stack file for it would send the user nowhere.

    Missing required keys are keys turnout reads, and unknown keys are in the file: both stay exit 2."""
    from turnout.config import NAMESPACE, StackConfig
    from turnout.offline.stackfile import read_config_mapping

    if not err.path.startswith("turnout:") or _is_config_key(StackConfig, _path_segments(err.path)):
        return False
    try:
        written = read_config_mapping(project.stack_file(stack), project.name)
    except (ConfigError, OSError):
        return False  # the file itself is the problem: never second-guess that
    segments = _path_segments(err.path)
    top = f"{NAMESPACE}:{segments[0]}" if segments else ""
    return top not in written or not _holds(written[top], segments[1:])


def _path_segments(path: str) -> list[str | int]:
    """`turnout:endpoints.a.versions.v1` → ["endpoints", "a", "versions", "v1"]; `x[2]` → ["x", 2]."""
    rest = path.split(":", 1)[1]
    return [int(index) if index else name for name, index in re.findall(r"\.?([^.\[\]]+)|\[(\d+)\]", rest)]


def _holds(value, segments: list) -> bool:
    """Whether the user's value has the key path (keys may themselves contain dots)."""
    if not segments:
        return True
    head, rest = segments[0], segments[1:]
    if isinstance(head, int):
        return isinstance(value, list) and head < len(value) and _holds(value[head], rest)
    if not isinstance(value, dict):
        return False
    for take in range(1, len(segments) + 1):
        if all(isinstance(s, str) for s in segments[:take]):
            key = ".".join(segments[:take])
            if key in value and _holds(value[key], segments[take:]):
                return True
    return False


def _is_config_key(cls, segments: list) -> bool:
    """Whether the path is a key of the typed config (any name where a mapping takes names)."""
    import dataclasses
    import types
    import typing

    from turnout.schema import config_fields, yaml_key

    tp: object = cls
    meta: typing.Mapping = {}
    for segment in segments:
        if meta.get("parse"):
            return True  # a value with its own parser (a strategy): what it names below is its business
        while typing.get_origin(tp) in (typing.Union, types.UnionType):
            options = [arg for arg in typing.get_args(tp) if arg is not type(None)]
            if len(options) > 1:
                return True
            tp = options[0]
        origin = typing.get_origin(tp)
        if dataclasses.is_dataclass(tp) and isinstance(segment, str):
            fields = {yaml_key(f): f for f in config_fields(tp)}
            if segment not in fields:
                return False
            field = fields[segment]
            tp, meta = typing.get_type_hints(tp)[field.name], field.metadata
        elif origin is dict and isinstance(segment, str):
            tp, meta = typing.get_args(tp)[1], {"parse": meta.get("values")}
        elif origin is tuple and isinstance(segment, int):
            tp, meta = typing.get_args(tp)[0], {"parse": meta.get("values")}
        else:
            return False
    return True


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


def run() -> None:
    """The console script: main() without the cyclic garbage collector, with the provider packages imported as a
    plan needs them and the code compiled from annotation and dataclass texts kept for the next plans
    (turnout/offline/provider_imports.py), then exit without the interpreter's teardown (turnout/offline/fast.py)."""
    from turnout.offline import fast, provider_imports

    fast.collect_nothing()
    provider_imports.install()
    status = main()
    provider_imports.keep_compiled_code()
    fast.exit_now(status)


if __name__ == "__main__":
    run()
