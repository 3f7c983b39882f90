"""Every Pulumi SDK internal the offline planner relies on, in one place, checked before use.

The mock runtime is public API (`pulumi.runtime.set_mocks`), but planning several stacks in one
process and recording what the program registers needs a few internals besides. They are pinned
in pyproject.toml; `check_sdk` fails with the reason when an upgrade moves any of them, and
tests/test_sdk_contract.py runs it, so an SDK bump that breaks planning fails CI loudly.

The internals, and what for:
- `mocks.MockMonitor` (RegisterResource, RegisterResourceOutputs), `MockSettings`, `MockEngine`,
  `settings.configure`, `settings.set_root_resource`, `config.set_all_config`, `stack.run_in_stack`,
  `sync_await._sync_await`: running a program on a fresh mock runtime per stack (runtime.py);
- the wire-format signatures of `rpc` (below): reading what the program registered;
- `settings.SETTINGS` (rpc_manager, outputs, lock, ...): the state reset per stack;
- `stack.wait_for_rpcs`, called by name from `stack.run_pulumi_func`, `settings._get_rpc_manager()`
  (`rpcs`, `unhandled_exception`, `exception_traceback`) and `SETTINGS.outputs` holding every pending
  output's task (`Output._track`): `one_wait_for_outputs`, the SDK's final wait with one wait for all
  the pending outputs instead of one per output;
- `resource._get_stack_trace`, called by name from `resource.register_resource`:
  `no_source_positions`, which skips the stack walk the mock monitor never reads;
- `pulumi._types` reading the provider classes' annotations only through `typing.get_type_hints`
  (`_raw_return_hints`, `_types_from_annotations`), which resolves a deferred annotation as it would an
  evaluated one: provider_imports.py compiles the providers' modules with deferred annotations for the
  console script. tests/test_provider_imports.py compares what the SDK derives both ways;
- `_types._raw_return_hints`, `_types._types_from_py_properties` and `_types.resource_types`, called by name
  (`input_type_types`, `output_type_types`, `_required_property_names`, `rpc.resolve_outputs`), with
  `_py_properties`, `_globals_for_cls` and `unwrap_type`: `hints_on_first_use`, which resolves a property's
  annotation when the SDK first looks that property up rather than every property of a class at once;
- `_types.unwrap_type`, called by name from `rpc.serialize_property`: `types_unwrapped_once`, which unwraps
  each declared type once per run rather than once per property value serialized;
- `Output._track`, called by name from `Output.__init__` and `Output._from_data`, with `Output._untrack` and
  `SETTINGS.outputs`: `outputs_tracked_without_callbacks`, which tracks each output's value in that set
  without a callback per output, `wait_for_rpcs` leaving out those that succeeded;
- `_utils.is_empty_function` (with the four empty functions it compares with), called by name from
  `_types.getter` and `_types.input_type`: `empty_functions_told_by_code`, which answers from the bytecode
  alone for a function that is not empty.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version

TESTED_SDK = {"pulumi": "3.272", "pulumi-policy": "1.21"}

# Property-value signatures of Pulumi's wire format (sdk/proto: "special signature" values).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_VALUE_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


class SdkIncompatibleError(RuntimeError):
    """The installed Pulumi SDK no longer provides an internal the offline planner needs."""


def check_sdk() -> None:
    """Raise `SdkIncompatibleError` naming the first internal that is missing or changed."""
    import pulumi
    from pulumi.runtime import config, mocks, resource, rpc, settings, stack, sync_await

    problems = []

    def need(condition: bool, what: str) -> None:
        if not condition:
            problems.append(what)

    monitor = getattr(mocks, "MockMonitor", None)
    need(
        inspect.isclass(monitor) and callable(getattr(monitor, "RegisterResource", None)),
        "pulumi.runtime.mocks.MockMonitor.RegisterResource (recording registrations)",
    )
    need(
        inspect.isclass(monitor) and callable(getattr(monitor, "RegisterResourceOutputs", None)),
        "pulumi.runtime.mocks.MockMonitor.RegisterResourceOutputs (stack outputs)",
    )
    mock_settings = getattr(mocks, "MockSettings", None)
    need(
        inspect.isclass(mock_settings) and issubclass(mock_settings, settings.Settings),
        "pulumi.runtime.mocks.MockSettings as a Settings subclass",
    )
    need(inspect.isclass(getattr(mocks, "MockEngine", None)), "pulumi.runtime.mocks.MockEngine")
    need(callable(getattr(settings, "configure", None)), "pulumi.runtime.settings.configure (fresh state per stack)")
    need(callable(getattr(settings, "set_root_resource", None)), "pulumi.runtime.settings.set_root_resource")
    need(inspect.iscoroutinefunction(getattr(stack, "run_in_stack", None)), "pulumi.runtime.stack.run_in_stack")
    need(callable(getattr(sync_await, "_sync_await", None)), "pulumi.runtime.sync_await._sync_await")
    need(callable(getattr(config, "set_all_config", None)), "pulumi.runtime.config.set_all_config")
    for name, expected in (
        ("_special_sig_key", SIG_KEY),
        ("_special_secret_sig", SECRET_SIG),
        ("_special_resource_sig", RESOURCE_SIG),
        ("_special_output_value_sig", OUTPUT_VALUE_SIG),
        ("_special_asset_sig", ASSET_SIG),
        ("_special_archive_sig", ARCHIVE_SIG),
        ("UNKNOWN", UNKNOWN),
    ):
        need(getattr(rpc, name, None) == expected, f"pulumi.runtime.rpc.{name} == {expected} (wire-format signature)")
    settings_attrs = ("rpc_manager", "outputs", "lock", "package_refs", "base_providers_by_ref", "monitor_features")
    for attr in settings_attrs:
        need(hasattr(settings.SETTINGS, attr), f"pulumi.runtime.settings.SETTINGS.{attr} (state reset per stack)")
    need(
        isinstance(getattr(settings.SETTINGS, "outputs", None), set),
        "pulumi.runtime.settings.SETTINGS.outputs as the set of pending outputs' tasks (settling outputs)",
    )
    need(
        inspect.iscoroutinefunction(getattr(stack, "wait_for_rpcs", None))
        and "await_all_outstanding_tasks" in inspect.signature(stack.wait_for_rpcs).parameters
        and "wait_for_rpcs" in stack.run_pulumi_func.__code__.co_names,
        "pulumi.runtime.stack.wait_for_rpcs(await_all_outstanding_tasks), called by name from run_pulumi_func "
        "(settling outputs)",
    )
    get_rpc_manager = getattr(settings, "_get_rpc_manager", None)
    need(callable(get_rpc_manager), "pulumi.runtime.settings._get_rpc_manager (settling outputs)")
    if callable(get_rpc_manager):
        manager = get_rpc_manager()
        for attr in ("rpcs", "unhandled_exception", "exception_traceback"):
            need(hasattr(manager, attr), f"pulumi.runtime.rpc_manager.RPCManager.{attr} (settling outputs)")
    walk = getattr(resource, "_get_stack_trace", None)
    need(
        inspect.isfunction(walk)
        and not inspect.signature(walk).parameters
        and "_get_stack_trace" in resource.register_resource.__code__.co_names,
        "pulumi.runtime.resource._get_stack_trace(), called by name from register_resource (source positions)",
    )
    output = getattr(pulumi, "Output", None)
    need(
        all("_track" in _names(getattr(output, caller, None)) for caller in ("__init__", "_from_data"))
        and callable(getattr(output, "_track", None))
        and callable(getattr(output, "_untrack", None)),
        "pulumi.Output._track, called by name from Output.__init__ and Output._from_data (outputs tracked)",
    )
    _check_type_hints(need)
    if problems:
        raise SdkIncompatibleError(
            f"the installed Pulumi SDK (pulumi {version('pulumi')}) changed internals that `turnout plan` uses: "
            + "; ".join(problems)
            + f". turnout is tested with pulumi {TESTED_SDK['pulumi']}.x: reinstall the pinned versions "
            "(pip install -e .) or update turnout/offline/sdk.py and runtime.py for the new SDK."
        )


def _names(function: object) -> tuple[str, ...]:
    """The global and attribute names a function's code refers to (none for what is not a function)."""
    return getattr(getattr(inspect.unwrap(function) if callable(function) else None, "__code__", None), "co_names", ())


def _check_type_hints(need: Callable[[bool, str], None]) -> None:
    from pulumi import _types
    from pulumi.runtime import rpc

    for name in (
        "_raw_return_hints",
        "_types_from_py_properties",
        "resource_types",
        "_py_properties",
        "_globals_for_cls",
        "_types_from_annotations",
    ):
        need(callable(getattr(_types, name, None)), f"pulumi._types.{name} (property types on first use)")
    for caller, callee in (
        ("input_type_types", "_types_from_py_properties"),
        ("output_type_types", "_types_from_py_properties"),
        ("_types_from_py_properties", "_raw_return_hints"),
        ("_required_property_names", "_raw_return_hints"),
    ):
        need(
            callee in _names(getattr(_types, caller, None)),
            f"pulumi._types.{caller} calling {callee} by name (property types on first use)",
        )
    need(callable(getattr(_types, "unwrap_type", None)), "pulumi._types.unwrap_type (types unwrapped once)")
    _check_empty_functions(need)
    need(
        "unwrap_type" in _names(getattr(rpc, "serialize_property", None)),
        "pulumi.runtime.rpc.serialize_property calling _types.unwrap_type by name (types unwrapped once)",
    )
    need(
        "resource_types" in _names(getattr(rpc, "resolve_outputs", None)),
        "pulumi.runtime.rpc.resolve_outputs calling _types.resource_types by name (property types on first use)",
    )


async def wait_for_rpcs(await_all_outstanding_tasks: bool = True) -> None:
    """The SDK's `pulumi.runtime.stack.wait_for_rpcs`, but with one wait for all the pending outputs.

    The SDK waits, once the program has returned, until no registration RPC and no output is pending:
    in turn, for each RPC, then for the first of the pending outputs to complete, then again for the
    first of the rest, and so on: a callback on every pending output per completion (prod-aws: ~600
    outputs, ~130,000 callbacks). This waits in the same order, at the same points, but for all the
    outputs pending at once, then for those they scheduled, until none is left. A failed RPC or output
    raises as it does there."""
    from pulumi.runtime import settings

    rpc_manager = settings._get_rpc_manager()
    while True:
        while rpc_manager.rpcs:
            await asyncio.sleep(0)  # as the SDK does: let what was just scheduled start (and queue its RPC)
            try:
                await rpc_manager.rpcs.pop()
            except Exception as exn:
                if rpc_manager.unhandled_exception is not None:
                    raise exn from rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
                raise
        if rpc_manager.unhandled_exception is not None:
            raise rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
        while await_all_outstanding_tasks:
            with settings.SETTINGS.lock:
                # what the SDK's set holds: outputs not done yet, and failed ones (it drops each that succeeds)
                pending = [task for task in settings.SETTINGS.outputs if not _succeeded(task)]
                settings.SETTINGS.outputs.clear()
            if not pending:
                break
            await asyncio.wait(pending)
            _mark_failures_seen(pending)
            for task in pending:
                await task  # re-raises a failed output's exception, as the SDK's wait does
        if not rpc_manager.rpcs:
            return


def _succeeded(task: asyncio.Future) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _mark_failures_seen(tasks: typing.Iterable[asyncio.Future]) -> None:
    """Mark each failed task's exception as retrieved, as the SDK's completion callback on every output does:
    asyncio logs a failed task nobody asked about when it is freed (a second traceback after the run's error)."""
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()


@contextmanager
def outputs_tracked_without_callbacks() -> Iterator[None]:
    """While the block runs, an Output's value is tracked without a callback on its completion.

    The SDK adds every Output's value to `SETTINGS.outputs` (so that the program's end waits for it and a
    failure fails the run), under a lock, with a callback that removes it once it succeeds: one more event
    loop callback per Output (prod-aws: 11,400 of them, 4.6% of a plan's instructions). Here an Output is
    only added to that set (the one `_fresh_runtime` made for this run), and `wait_for_rpcs` above leaves
    out those that succeeded, so it waits for what the SDK's set would hold: outputs not done yet and failed
    ones. The callback also marked each failure as seen (`_mark_failures_seen`): `wait_for_rpcs` marks those
    it waited for, and the failures still tracked when the block ends (a run that ended early) are marked."""
    from pulumi import Output
    from pulumi.runtime import settings

    own = Output._track
    tracked = settings.SETTINGS.outputs

    def _track(self) -> None:
        tracked.add(self._data)

    Output._track = _track
    try:
        yield
    finally:
        Output._track = own
        _mark_failures_seen(list(tracked))


@contextmanager
def one_wait_for_outputs() -> Iterator[None]:
    """While the block runs, the SDK ends a program with `wait_for_rpcs` above instead of its own."""
    from pulumi.runtime import stack

    own = stack.wait_for_rpcs
    stack.wait_for_rpcs = wait_for_rpcs
    try:
        yield
    finally:
        stack.wait_for_rpcs = own


@contextmanager
def no_source_positions() -> Iterator[None]:
    """Register resources without the SDK's stack trace of each (the source position a real engine shows).

    The SDK walks the Python stack on every registration (`traceback.extract_stack`, a file URI per
    frame: ~6% of a plan) to tell the engine which line declared the resource; the mock monitor keeps
    neither, so offline every registration carries the empty trace the SDK sends when it finds no frame."""
    from pulumi.runtime import resource
    from pulumi.runtime.proto import source_pb2

    walk = resource._get_stack_trace
    resource._get_stack_trace = source_pb2.StackTrace  # called with no argument: an empty trace
    try:
        yield
    finally:
        resource._get_stack_trace = walk


@contextmanager
def empty_functions_told_by_code() -> Iterator[None]:
    """While the block runs, the SDK tells an empty property getter or setter by its bytecode first.

    `@pulumi.getter` and `@pulumi.input_type` ask `_utils.is_empty_function` of every getter and setter a
    provider module defines as it is imported (prod-aws: 22,700 times), which collects the function's
    constants (comparing each with its docstring) before comparing its bytecode with that of four empty
    functions: 2.7% of a prod-aws plan's instructions. A function whose bytecode is none of theirs is not
    empty, whatever its constants; the others get the SDK's own answer."""
    from pulumi import _utils

    own = _utils.is_empty_function
    patterns = (_utils._empty, _utils._empty_doc, _utils._empty_lambda, _utils._empty_lambda_doc)
    empty = frozenset(pattern.__code__.co_code for pattern in patterns)

    def is_empty_function(fn: Callable) -> bool:
        return fn.__code__.co_code in empty and own(fn)

    _utils.is_empty_function = is_empty_function
    try:
        yield
    finally:
        _utils.is_empty_function = own


def _check_empty_functions(need: Callable[[bool, str], None]) -> None:
    from pulumi import _types, _utils

    need(callable(getattr(_utils, "is_empty_function", None)), "pulumi._utils.is_empty_function (empty functions)")
    for name in ("_empty", "_empty_doc", "_empty_lambda", "_empty_lambda_doc"):
        need(inspect.isfunction(getattr(_utils, name, None)), f"pulumi._utils.{name} (empty functions)")
    getter_code = getattr(getattr(_types, "getter", None), "__code__", None)
    decorators = [const for const in getattr(getter_code, "co_consts", ()) if inspect.iscode(const)]  # nested
    need(
        any("is_empty_function" in code.co_names for code in decorators),
        "pulumi._types.getter calling _utils.is_empty_function by name (empty functions)",
    )
    need(
        "is_empty_function" in _names(getattr(_types, "input_type", None)),
        "pulumi._types.input_type calling _utils.is_empty_function by name (empty functions)",
    )


_ABSENT = object()


class _OnDemand(Mapping):
    """A read-only mapping of known keys whose values are computed on first lookup; `resolve` returns _ABSENT
    for a key that is not there after all (the SDK leaves out a property without an annotation, and one typed
    as a bare Output). Iterating, `len` and `items()` compute every value, so they see what an eager dict has."""

    __slots__ = ("_keys", "_resolve", "_found")

    def __init__(self, keys: Callable[[], Iterator[str]], resolve: Callable[[str], typing.Any]) -> None:
        self._keys = keys
        self._resolve = resolve
        self._found: dict[str, typing.Any] = {}

    def __getitem__(self, key: str) -> typing.Any:
        try:
            value = self._found[key]
        except KeyError:
            value = self._found[key] = self._resolve(key)
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter([key for key in self._keys() if key in self])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))


# Where the SDK resolves a class's property annotations: a copy of the globals of the modules of the class and
# its bases (`_types._globals_for_cls`), so the same for every class with the same ones, and the hints resolved
# there by annotation text. Keyed by the module objects themselves: a module imported again is another scope.
_scopes: dict[tuple[object, ...], tuple[dict[str, typing.Any], dict[str, typing.Any], dict[str, typing.Any]]] = {}


def _scope(cls: type) -> tuple[dict[str, typing.Any], dict[str, typing.Any], dict[str, typing.Any]]:
    from pulumi import Output, _types

    modules = tuple(sys.modules.get(base.__module__) for base in reversed(cls.__mro__))
    scope = _scopes.get(modules)
    if scope is None:
        scope = _scopes[modules] = (_types._globals_for_cls(cls), {"Output": Output, "T": type(None)}, {})
    return scope


@functools.cache
def _raw_return_hints(cls: type) -> Mapping[str, typing.Any]:
    """`pulumi._types._raw_return_hints(cls)`, each property's return annotation resolved when first looked up,
    exactly as the SDK resolves it: `get_type_hints` of the getter, in the globals of the class and its bases,
    with `Output` and `T` as locals. A getter annotated only with a deferred annotation (a text) gets what that
    text resolved to in the same globals before: generated classes repeat a few texts (`pulumi.Output[str]`)
    on hundreds of properties: prod-aws looks 1,323 getters up and resolves 638 texts."""
    from pulumi import _types

    getters = {pulumi_name: prop.fget for _, pulumi_name, prop in _types._py_properties(cls)}
    scope: list[tuple[dict[str, typing.Any], dict[str, typing.Any], dict[str, typing.Any]]] = []

    def resolve(pulumi_name: str) -> typing.Any:
        getter = getters.get(pulumi_name)
        if getter is None:
            return _ABSENT
        if not scope:
            scope.append(_scope(cls))
        globalns, localns, by_text = scope[0]
        annotations = getattr(getter, "__annotations__", None) or {}
        text = annotations["return"] if annotations.keys() == {"return"} else None
        hint = by_text.get(text, _ABSENT) if isinstance(text, str) else _ABSENT
        if hint is _ABSENT:
            hint = typing.get_type_hints(getter, globalns=globalns, localns=localns).get("return")
            if isinstance(text, str):
                by_text[text] = hint
        return _ABSENT if hint is None else hint

    return _OnDemand(getters.__iter__, resolve)


@functools.cache
def _types_from_py_properties(cls: type) -> Mapping[str, typing.Any]:
    """`pulumi._types._types_from_py_properties(cls)`: each property's type with Output and Optional unwrapped,
    computed when first looked up; a property typed as a bare `Output` is left out, as the SDK leaves it out."""
    from pulumi import Output, _types

    hints = _types._raw_return_hints(cls)

    def resolve(pulumi_name: str) -> typing.Any:
        hint = hints.get(pulumi_name, _ABSENT)
        if hint is _ABSENT:
            return _ABSENT
        typ = _types.unwrap_type(hint)
        return _ABSENT if typ is Output else typ

    return _OnDemand(hints.__iter__, resolve)


def _resource_types(resource_cls: type) -> Mapping[str, typing.Any]:
    """`pulumi._types.resource_types`: the types from the class's annotations, overridden by those of its
    properties (`{**annotations, **properties}`), each looked up when asked for."""
    from pulumi import _types

    annotated = _types._types_from_annotations(resource_cls)
    properties = _types._types_from_py_properties(resource_cls)

    def resolve(pulumi_name: str) -> typing.Any:
        typ = properties.get(pulumi_name, _ABSENT)
        return annotated.get(pulumi_name, _ABSENT) if typ is _ABSENT else typ

    return _OnDemand(lambda: iter(dict.fromkeys([*annotated, *properties])), resolve)


@contextmanager
def hints_on_first_use() -> Iterator[None]:
    """While the block runs, the SDK resolves a property's type annotation when it first looks the property up.

    The SDK resolves the annotations of every property of a class the first time it serializes an input of
    that class or reads a resource's outputs: `typing.get_type_hints` per getter, 2,232 of them on prod-aws,
    where the plan looks 1,323 up (4% of its instructions); with the console script's deferred annotations, a
    text is resolved once per scope, 638 times (1.6% more). The values are the SDK's own, computed by the same
    calls (tests/test_sdk_hints.py compares every class a plan touched with the SDK's eager results, annotations
    evaluated and deferred)."""
    from pulumi import _types

    own = _types._raw_return_hints, _types._types_from_py_properties, _types.resource_types
    _types._raw_return_hints, _types._types_from_py_properties, _types.resource_types = (
        _raw_return_hints,
        _types_from_py_properties,
        _resource_types,
    )
    try:
        yield
    finally:
        _types._raw_return_hints, _types._types_from_py_properties, _types.resource_types = own


@contextmanager
def types_unwrapped_once() -> Iterator[None]:
    """While the block runs, the SDK unwraps each declared type (`Optional[Input[T]]` -> T) once.

    `rpc.serialize_property` unwraps the declared type of every property value it serializes (prod-aws: 7,465
    times, 2% of a plan's instructions), a pure function of the type object. Kept by identity, the object
    itself held so that its id is not reused: the SDK's own result, not that of an equal type (typing's
    unions compare equal in any order, and `unwrap_type` reads their order)."""
    from pulumi import _types

    own = _types.unwrap_type
    unwrapped: dict[int, tuple[typing.Any, typing.Any]] = {}

    def unwrap_type(val: typing.Any) -> typing.Any:
        known = unwrapped.get(id(val))
        if known is not None and known[0] is val:
            return known[1]
        found = own(val)
        unwrapped[id(val)] = (val, found)
        return found

    _types.unwrap_type = unwrap_type
    try:
        yield
    finally:
        _types.unwrap_type = own
