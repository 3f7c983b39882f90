"""Run the real Pulumi program of a stack on the SDK's mock runtime and record what it registers."""

from __future__ import annotations

import logging
import math
import runpy
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import empty_pb2
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from turnout.offline import fast, sdk
from turnout.offline.mocks import OfflineMocks

REDACTED = "[secret]"
UNKNOWN_TEXT = "(unknown until apply)"


@dataclass
class ResourceRecord:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    provider: str | None
    """URN of the explicit provider, if any."""
    inputs: dict[str, Any]
    """Inputs with secrets redacted: what may be written to disk."""
    raw_inputs: dict[str, Any] = field(repr=False, default_factory=dict)
    """Inputs in Pulumi's wire format, as the engine hands them to a policy pack; never written."""
    raw_outputs: dict[str, Any] = field(repr=False, default_factory=dict)
    dependencies: list[str] = field(default_factory=list)

    @property
    def is_provider(self) -> bool:
        return self.type.startswith("pulumi:providers:")


def to_plain(value: Any, *, redact: bool) -> Any:
    """Wire-format property values as plain JSON: integral numbers as ints, secrets redacted."""
    if isinstance(value, dict):
        signature = value.get(sdk.SIG_KEY)
        if signature == sdk.SECRET_SIG:
            return REDACTED if redact else to_plain(value.get("value"), redact=redact)
        if signature == sdk.RESOURCE_SIG:
            return value.get("urn")
        if signature == sdk.OUTPUT_VALUE_SIG:
            if "value" not in value:
                return UNKNOWN_TEXT
            if value.get("secret") and redact:
                return REDACTED
            return to_plain(value["value"], redact=redact)
        if signature in (sdk.ASSET_SIG, sdk.ARCHIVE_SIG):
            return {k: v for k, v in value.items() if k in ("path", "uri", "text")}
        return {key: to_plain(item, redact=redact) for key, item in value.items()}
    if isinstance(value, list):
        return [to_plain(item, redact=redact) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == sdk.UNKNOWN:
        return UNKNOWN_TEXT
    return value


class DuplicateUrnError(RuntimeError):
    """Two registrations share a URN: the engine refuses the whole deployment, so the plan must too."""

    def __init__(self, urn: str) -> None:
        self.urn = urn
        # The engine's own words (pkg/engine: "Duplicate resource URN '...'; try giving it a unique name").
        super().__init__(
            f"Duplicate resource URN {urn!r}; try giving it a unique name. Two resources of the same type "
            "derive the same name: `pulumi up` would fail here, and one of them would be missing from this plan."
        )


def _struct(message) -> dict[str, Any]:
    """A `google.protobuf.Struct` (a registration's properties) as `json_format.MessageToDict` gives it, read
    directly, which costs half a percent of a plan less than the generic converter (tests/test_runtime_struct.py
    compares the two)."""
    if message is None:
        return {}
    return {key: _value(value) for key, value in message.fields.items()}


def _value(value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return _struct(value.struct_value)
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    if kind == "number_value" and not math.isfinite(value.number_value):
        raise ValueError(f"Fail to serialize {value.number_value} for Value.number_value")  # as MessageToDict
    return None if kind in (None, "null_value") else getattr(value, kind)


class RecordingMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, also keeping each registration's parent, provider and raw inputs."""

    def __init__(self, mocks_: mocks.Mocks) -> None:
        super().__init__(mocks_)
        self._lock = threading.Lock()  # the SDK registers resources from worker threads
        self.records: dict[str, ResourceRecord] = {}
        self.stack_outputs: dict[str, Any] = {}
        self.stack_urn: str | None = None

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        raw = _struct(request.object)
        record = ResourceRecord(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            custom=bool(request.custom),
            provider=request.provider.rsplit("::", 1)[0] if request.provider else None,
            inputs=to_plain(raw, redact=True),
            raw_inputs=raw,
            raw_outputs=_struct(response.object),
            dependencies=sorted(request.dependencies),
        )
        with self._lock:
            if response.urn in self.records:
                raise DuplicateUrnError(response.urn)
            self.records[response.urn] = record
            if request.type == "pulumi:pulumi:Stack":
                self.stack_urn = response.urn
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802
        if request.urn == self.stack_urn:
            self.stack_outputs = to_plain(_struct(request.outputs), redact=True)
        return super().RegisterResourceOutputs(request)


@dataclass
class ProgramRun:
    records: list[ResourceRecord]
    stack_outputs: dict[str, Any]


def _fresh_runtime(monitor: RecordingMonitor, project: str, stack: str, root: Path, logger: logging.Logger) -> None:
    """Point the SDK's global settings at a new monitor, with none of a previous stack's state."""
    features = set(monitor.GetDeploymentInfo(empty_pb2.Empty()).supportedFeatures)
    settings.configure(
        mocks.MockSettings(
            monitor=monitor,
            monitor_features=features,
            engine=mocks.MockEngine(logger),
            project=project,
            stack=stack,
            dry_run=False,
            organization="organization",
            root_directory=str(root),
            callbacks=None,
            outputs=set(),
            lock=threading.Lock(),
            package_refs={},
            base_providers_by_ref={},
        )
    )
    settings.set_root_resource(None)


def run_program(
    project_dir: Path,
    project: str,
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    main: str = "stacks",
    logger: logging.Logger | None = None,
    stack_outputs: Callable[[str], dict[str, Any]] | None = None,
) -> ProgramRun:
    """Run `<project_dir>/<main>/__main__.py` as stack `stack` with `config`; return what it registered.

    Exceptions raised by the program (a ConfigError, say) propagate unchanged.
    """
    program_dir = project_dir / main
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    # The program's folder first on the path, as the Pulumi CLI runs it (its modules import side by side),
    # and none of a previous run's modules: another project's program may have modules of the same names.
    for module in program_dir.glob("*.py"):
        if module.stem != "__main__":  # that one is the running process's own
            sys.modules.pop(module.stem, None)
    if str(program_dir) in sys.path:
        sys.path.remove(str(program_dir))
    sys.path.insert(0, str(program_dir))
    return run_function(
        lambda: runpy.run_path(str(program_dir / "__main__.py"), run_name="__main__"),
        project=project,
        stack=stack,
        config=config,
        secret_keys=secret_keys,
        root=project_dir,
        logger=logger,
        stack_outputs=stack_outputs,
    )


def run_function(
    program: Callable[[], Any],
    *,
    project: str = "turnout",
    stack: str = "test",
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    root: Path | None = None,
    logger: logging.Logger | None = None,
    stack_outputs: Callable[[str], dict[str, Any]] | None = None,
) -> ProgramRun:
    """Run `program` (any code that creates resources) as a Pulumi program on a fresh mock runtime.

    `stack_outputs` answers StackReferences: a stack's name (org/project/stack) → its outputs."""
    sdk.check_sdk()
    monitor = RecordingMonitor(OfflineMocks(stack_outputs))
    _fresh_runtime(monitor, project, stack, root or Path.cwd(), logger or logging.getLogger("turnout.plan"))
    runtime_config.set_all_config(dict(config or {}), list(secret_keys or []))
    # fast.py, sdk.py: what a plan need not spend time on (the collector, one wait per output, stack walks,
    # the types of properties it never looks up, unwrapping a type again)
    with (
        fast.no_cyclic_gc(),
        sdk.one_wait_for_outputs(),
        sdk.no_source_positions(),
        sdk.hints_on_first_use(),
        sdk.types_unwrapped_once(),
        sdk.empty_functions_told_by_code(),
        sdk.outputs_tracked_without_callbacks(),
    ):
        _sync_await(run_in_stack(program))
    records = sorted(monitor.records.values(), key=lambda r: r.urn)
    return ProgramRun(records=records, stack_outputs=monitor.stack_outputs)
