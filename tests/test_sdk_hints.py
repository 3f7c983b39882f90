"""Offline, the SDK resolves a property's type annotation when it first looks that property up
(`turnout.offline.sdk.hints_on_first_use`) and unwraps each declared type once (`sdk.types_unwrapped_once`):
the same types as the SDK computes, and the same plan."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import typing

import pulumi
import pytest
from pulumi import _types, _utils
from pulumi.runtime import rpc

from tests.conftest import REPO
from turnout.offline import sdk
from turnout.offline.planner import plan_stack
from turnout.offline.stackfile import find_project


def _plan(stack: str) -> tuple[list, dict]:
    plan = plan_stack(find_project(REPO), stack)
    return [(r.urn, r.inputs, r.raw_inputs, r.raw_outputs, r.dependencies) for r in plan.records], plan.outputs


def test_a_plan_is_the_same_and_every_class_it_looked_up_has_the_sdks_types(monkeypatch):
    looked_up: list[type] = []
    on_demand = sdk._raw_return_hints
    on_demand.cache_clear()  # tables earlier plans of this process made: every class is looked up afresh
    sdk._types_from_py_properties.cache_clear()

    def recording(cls):
        looked_up.append(cls)
        return on_demand(cls)

    monkeypatch.setattr(sdk, "_raw_return_hints", recording)
    records, outputs = _plan("prod-aws")
    monkeypatch.setattr(sdk, "hints_on_first_use", contextlib.nullcontext)
    assert _plan("prod-aws") == (records, outputs)

    classes = set(looked_up)
    assert len(classes) > 100, "the plan did not go through the on-demand tables"
    resources = [cls for cls in classes if issubclass(cls, pulumi.Resource)]
    assert resources and len(resources) < len(classes)
    for cls in classes:  # every value, as iterating computes them all: what the SDK's own tables hold
        assert dict(on_demand(cls)) == _types._raw_return_hints(cls), cls
        assert dict(sdk._types_from_py_properties(cls)) == _types._types_from_py_properties(cls), cls
    for cls in resources:
        assert dict(sdk._resource_types(cls)) == _types.resource_types(cls), cls


def test_a_property_type_is_resolved_when_first_looked_up_and_once(monkeypatch):
    from pulumi_kubernetes.core.v1 import ContainerArgs

    calls: list[object] = []
    get_type_hints = typing.get_type_hints
    monkeypatch.setattr(typing, "get_type_hints", lambda *a, **k: calls.append(a[0]) or get_type_hints(*a, **k))
    types = sdk._raw_return_hints.__wrapped__(ContainerArgs)  # not the cached table other tests filled

    assert types.get("image") == _types._raw_return_hints(ContainerArgs)["image"]
    assert len(calls) == 1
    assert types.get("image") is not None and types.get("noSuchProperty") is None and "noSuchProperty" not in types
    assert len(calls) == 1
    assert len(types) == len(_types._raw_return_hints(ContainerArgs)) > 20
    assert len(calls) == len(types), "each property once"


_DEFERRED_PLAN = """
import json, pathlib, sys, typing
from turnout.offline import provider_imports
provider_imports.install()  # the provider modules' annotations deferred, as the console script has them
from pulumi import _types, _utils
from turnout.offline import sdk
from turnout.offline.planner import plan_stack
from turnout.offline.stackfile import find_project

on_demand, looked_up, getter_calls = sdk._raw_return_hints, [], []
sdk._raw_return_hints = lambda cls: looked_up.append(cls) or on_demand(cls)
get_type_hints = typing.get_type_hints
typing.get_type_hints = lambda *a, **k: getter_calls.append(a[0]) or get_type_hints(*a, **k)
plan_stack(find_project(pathlib.Path(sys.argv[1])), "prod-aws")
typing.get_type_hints = get_type_hints
classes = set(looked_up)
print(json.dumps({
    "deferred": sum(isinstance(getter.__annotations__.get("return"), str) for getter in getter_calls),
    "resolved": sum(len(on_demand(cls)._found) for cls in classes),
    "getter calls": sum("return" in getattr(getter, "__annotations__", {}) for getter in getter_calls),
    "classes": len(classes),
    "not the sdk's": [cls.__qualname__ for cls in classes if dict(on_demand(cls)) != _types._raw_return_hints(cls)],
}))
"""


def test_with_deferred_annotations_a_text_is_resolved_once_per_scope_to_the_sdks_types():
    """Under the console script's deferred annotations, getters of classes from the same modules annotated with
    the same text share one resolution (the plan resolves far fewer than it looks up), and every table a
    prod-aws plan used holds what the SDK's own resolution gives, class by class."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _DEFERRED_PLAN, str(REPO)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["classes"] > 100 and result["not the sdk's"] == []
    assert result["deferred"] > 300, "the child resolved annotations evaluated at import, not deferred texts"
    assert result["getter calls"] < 0.7 * result["resolved"], result


def test_the_sdks_own_tables_are_back_after_a_run():
    from turnout.offline.runtime import run_function

    run_function(lambda: pulumi.export("n", 1))
    assert _types._raw_return_hints is not sdk._raw_return_hints
    assert _types.resource_types is not sdk._resource_types
    assert _types._types_from_py_properties is not sdk._types_from_py_properties


def test_a_plan_is_the_same_with_each_type_unwrapped_once_and_gets_the_sdks_own_results(monkeypatch):
    own = _types.unwrap_type
    unwrapped: list[object] = []
    once = sdk.types_unwrapped_once

    @contextlib.contextmanager
    def recording():
        with once():
            cached = _types.unwrap_type
            _types.unwrap_type = lambda val: unwrapped.append(val) or cached(val)
            try:
                yield
            finally:
                _types.unwrap_type = cached

    monkeypatch.setattr(sdk, "types_unwrapped_once", recording)
    records, outputs = _plan("prod-aws")
    assert len(unwrapped) > 1000 > len({id(val) for val in unwrapped}), (
        "the plan unwraps the same few types again and again"
    )
    monkeypatch.setattr(sdk, "types_unwrapped_once", contextlib.nullcontext)
    assert _plan("prod-aws") == (records, outputs)
    with once():
        cached = _types.unwrap_type
        assert cached is not own
        assert all(cached(val) is own(val) and cached(val) is own(val) for val in unwrapped)
    assert _types.unwrap_type is own


def test_equal_unions_in_another_order_are_unwrapped_each_as_the_sdk_does():
    first, second = typing.Union[int, dict], typing.Union[dict, int]  # noqa: UP007
    assert first == second and first is not second
    with sdk.types_unwrapped_once():
        assert _types.unwrap_type(first) is first and _types.unwrap_type(second) is second


def _empty():
    pass


def _empty_with_a_docstring():
    """Only a docstring."""


def _not_empty(self):
    """The getter of a property."""
    return pulumi.get(self, "name")


def _returns_its_docstring():
    """Same text."""
    return "Same text."


def test_a_function_is_told_empty_as_the_sdk_tells_it_for_every_getter_and_setter_of_the_providers():
    """`empty_functions_told_by_code` answers as the SDK's own `is_empty_function` for every property getter and
    setter of the provider modules a plan imports, and for empty and near-empty functions (a body returning its
    own docstring's text, a lambda); a callable without code raises the same error. The SDK's is back after."""
    import importlib

    from pulumi import _utils

    own = _utils.is_empty_function
    functions: list = [_empty, _empty_with_a_docstring, _not_empty, _returns_its_docstring, lambda: None, lambda x: x]
    functions += [_utils._empty, _utils._empty_doc, _utils._empty_lambda, _utils._empty_lambda_doc]
    for name in ("pulumi_aws.ec2._inputs", "pulumi_aws.ec2.outputs", "pulumi_kubernetes.core.v1._inputs"):
        for cls in vars(importlib.import_module(name)).values():
            for prop in vars(cls).values() if isinstance(cls, type) else ():
                if isinstance(prop, property):
                    functions += [fn for fn in (prop.fget, prop.fset) if fn is not None]
    expected = [own(fn) for fn in functions]
    assert len(functions) > 5000 and 0 < expected.count(True) < len(functions)
    with sdk.empty_functions_told_by_code():
        assert _utils.is_empty_function is not own
        assert [_utils.is_empty_function(fn) for fn in functions] == expected
        # the SDK's answers, its quirk included: a body returning its docstring's text is empty to it
        assert [_utils.is_empty_function(fn) for fn in functions[:4]] == [True, True, False, True]
        with pytest.raises(AttributeError):
            _utils.is_empty_function(len)
    assert _utils.is_empty_function is own


@pytest.mark.parametrize(
    ("module", "name", "value"),
    [
        (rpc, "resolve_outputs", lambda *a: None),
        (_types, "_raw_return_hints", None),
        (_types, "input_type_types", lambda cls: {}),
        (rpc, "serialize_property", lambda *a: None),
        (_utils, "is_empty_function", None),
        (_utils, "_empty_doc", None),
        (_types, "input_type", lambda cls: cls),
    ],
)
def test_a_moved_type_table_is_named_in_the_error(monkeypatch, module, name, value):
    monkeypatch.setattr(module, name, value)
    with pytest.raises(sdk.SdkIncompatibleError) as caught:
        sdk.check_sdk()
    assert name in str(caught.value)
    assert any(
        what in str(caught.value) for what in ("property types on first use", "unwrapped once", "empty functions")
    )
