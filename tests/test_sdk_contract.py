"""The offline runtime leans on Pulumi SDK internals: an SDK that moves them must fail loudly here."""

from __future__ import annotations

import tomllib
from importlib.metadata import version

import pulumi
import pytest
from packaging.requirements import Requirement
from pulumi.runtime import rpc, settings

from tests.conftest import REPO
from turnout.offline import sdk
from turnout.offline.runtime import REDACTED, run_function


def test_installed_sdk_provides_every_internal_we_use():
    sdk.check_sdk()


def test_installed_versions_are_within_the_pinned_ranges():
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for pin in map(Requirement, pins):
        installed = version(pin.name)
        assert pin.specifier.contains(installed), f"{pin.name} {installed} is outside the tested range {pin.specifier}"
    assert version("pulumi").startswith(sdk.TESTED_SDK["pulumi"] + ".")


@pytest.mark.parametrize(
    ("module", "name", "reason"),
    [
        (rpc, "_special_secret_sig", "wire-format signature"),
        (settings, "set_root_resource", "set_root_resource"),
        (pulumi.runtime.mocks, "MockSettings", "MockSettings"),
    ],
)
def test_a_moved_internal_is_named_in_the_error(monkeypatch, module, name, reason):
    monkeypatch.setattr(module, name, "changed-by-an-sdk-upgrade")
    with pytest.raises(sdk.SdkIncompatibleError) as caught:
        sdk.check_sdk()
    assert name in str(caught.value) and reason in str(caught.value)
    assert "reinstall the pinned versions" in str(caught.value)


def test_secrets_and_numbers_cross_the_wire_as_the_recorder_expects():
    """A behavioural canary for the signatures: a secret input is redacted, an integer stays one."""

    def program():
        pulumi.CustomResource("test:index:Thing", "thing", {"token": pulumi.Output.secret("s3cr3t"), "count": 3})

    (thing,) = [r for r in run_function(program).records if r.name == "thing"]
    assert thing.inputs == {"token": REDACTED, "count": 3}
    assert thing.raw_inputs["token"][sdk.SIG_KEY] == sdk.SECRET_SIG


def test_global_state_is_reset_between_runs():
    first = run_function(lambda: pulumi.export("n", 1), stack="one")
    second = run_function(lambda: pulumi.export("m", 2), stack="two")
    assert first.stack_outputs == {"n": 1} and second.stack_outputs == {"m": 2}
    assert all(r.urn.startswith("urn:pulumi:two::") for r in second.records)


def test_provider_invokes_run_under_the_offline_mocks():
    """Invokes go through OfflineMocks.call; the SDK iterates its failures, so they must be a list."""
    import pulumi_kubernetes as k8s

    def program():
        k8s.Provider("lab", kubeconfig="apiVersion: v1")  # a provider so the invoke has somewhere to go
        pulumi.export("answer", pulumi.runtime.invoke("test:index:lookup", {"name": "x"}).value)

    run = run_function(program)
    assert run.stack_outputs == {"answer": {}}


def _count_waits(monkeypatch) -> list[int]:
    """How many times asyncio.wait is called, by the SDK or by turnout."""
    import asyncio

    calls = [0]
    original = asyncio.wait

    async def counting_wait(*args, **kwargs):
        calls[0] += 1
        return await original(*args, **kwargs)

    monkeypatch.setattr(asyncio, "wait", counting_wait)
    return calls


def _many_outputs_program(count: int, chain: int = 0):
    """`count` resources whose inputs wait on a chain of `chain` resources, each declared in an apply on the
    previous one's output (as a Kubernetes provider waits on its cluster): many outputs pending at once,
    while the chain resolves one registration at a time."""

    def declare_chain(link: int, previous: pulumi.Output) -> pulumi.Output:
        thing = pulumi.CustomResource("test:index:Link", f"link-{link}", {"previous": previous})
        if link + 1 >= chain:
            return thing.urn
        return thing.urn.apply(lambda urn: declare_chain(link + 1, pulumi.Output.from_input(urn)))

    def program():
        end = declare_chain(0, pulumi.Output.from_input("start")) if chain else pulumi.Output.from_input("")
        for index in range(count):
            value = end.apply(lambda _, n=index: n + 1).apply(str)
            pulumi.CustomResource("test:index:Thing", f"thing-{index}", {"value": value})

    return program


def test_pending_outputs_are_awaited_together_not_one_wait_per_output(monkeypatch):
    """The SDK's wait_for_rpcs waits for the first of the pending outputs, then for the first of the rest...:
    one wait (a callback on every pending output) per output. sdk.wait_for_rpcs waits for them all at once."""
    calls = _count_waits(monkeypatch)
    run = run_function(_many_outputs_program(200, chain=30))
    assert sorted(r.inputs["value"] for r in run.records if r.type == "test:index:Thing") == sorted(
        str(n + 1) for n in range(200)
    )
    assert len([r for r in run.records if r.type == "test:index:Link"]) == 30
    assert calls[0] <= 5, f"{calls[0]} waits for a chain of 30 resources and 200 resources waiting on it"


def test_the_sdks_own_wait_is_back_after_a_run():
    from pulumi.runtime import stack

    own = stack.wait_for_rpcs
    run_function(_many_outputs_program(20, chain=5))
    assert stack.wait_for_rpcs is own and own is not sdk.wait_for_rpcs


def test_stack_outputs_registered_after_the_program_are_waited_for():
    """The stack's outputs are registered once the program has returned: the final wait must not end first."""
    for index in range(20):
        run = run_function(lambda n=index: pulumi.export("n", n))
        assert run.stack_outputs == {"n": index}


def test_a_failed_output_still_fails_the_run():
    def program():
        pulumi.CustomResource(
            "test:index:Thing", "thing", {"value": pulumi.Output.from_input(1).apply(lambda n: n / 0)}
        )

    with pytest.raises(ZeroDivisionError):
        run_function(program)


def test_a_recovered_or_applied_failure_does_not_fail_the_run_and_the_sdks_tracking_is_back_after():
    """What the SDK untracks still does not fail the run: a failure recovered, and one whose derived output
    recovers it."""
    own = pulumi.Output._track

    def program():
        failed = pulumi.Output.from_input(1).apply(lambda n: n / 0)
        recovered = failed.recover(lambda err: type(err).__name__)
        derived = pulumi.Output.from_input(2).apply(lambda n: n / 0).apply(str).recover(lambda err: "again")
        pulumi.CustomResource("test:index:Thing", "thing", {"value": recovered, "other": derived})

    run = run_function(program)
    thing = next(r for r in run.records if r.type == "test:index:Thing")
    assert thing.inputs == {"value": "ZeroDivisionError", "other": "again"}
    assert pulumi.Output._track is own and own.__module__ == "pulumi.output"


def test_failures_the_run_did_not_raise_are_not_reported_again_by_asyncio(caplog):
    """The SDK's completion callback on every output marked a failure as seen; offline, the final wait marks
    the failures it waited for, so that asyncio does not log the ones it did not raise as never retrieved
    when they are freed (more tracebacks after the run's error)."""
    import gc

    def program():
        for n in range(5):
            pulumi.Output.from_input(n).apply(lambda n: n / 0)

    gc.collect()  # what earlier tests left, before looking
    with caplog.at_level("ERROR", logger="asyncio"), pytest.raises(ZeroDivisionError):
        run_function(program)
    run_function(lambda: pulumi.export("n", 1))  # a fresh runtime: the failed run's outputs are freed
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_an_offline_run_uses_each_shortcut_and_the_sdks_own_functions_are_back_after():
    """Each of sdk.py's shortcuts is in force while a program runs (the tests above compare each with the SDK's
    own result; this one fails if a run stops using one), and none is left behind."""
    from pulumi import _types, _utils
    from pulumi.runtime import resource, stack

    def current() -> dict[str, object]:
        return {
            "outputs tracked": pulumi.Output._track,
            "empty functions": _utils.is_empty_function,
            "types unwrapped": _types.unwrap_type,
            "hints on first use": _types._raw_return_hints,
            "source positions": resource._get_stack_trace,
            "final wait": stack.wait_for_rpcs,
        }

    own = current()
    during: dict[str, object] = {}
    run_function(lambda: during.update(current()))
    assert [name for name in own if during[name] is own[name]] == []
    assert current() == own


def test_a_plan_is_the_same_with_outputs_tracked_without_callbacks(monkeypatch):
    import contextlib

    from turnout.offline.planner import plan_stack
    from turnout.offline.stackfile import find_project

    def plan() -> tuple[list, dict]:
        planned = plan_stack(find_project(REPO), "prod-aws")
        return [
            (r.urn, r.inputs, r.raw_inputs, r.raw_outputs, r.dependencies) for r in planned.records
        ], planned.outputs

    tracked = plan()
    monkeypatch.setattr(sdk, "outputs_tracked_without_callbacks", contextlib.nullcontext)
    assert plan() == tracked


@pytest.mark.parametrize(
    ("module", "name", "reason"),
    [
        ("settings", "_get_rpc_manager", "settling outputs"),
        ("stack", "wait_for_rpcs", "settling outputs"),
        ("output", "_track", "outputs tracked"),
    ],
)
def test_a_moved_settling_internal_is_named_in_the_error(monkeypatch, module, name, reason):
    import pulumi.runtime.stack

    monkeypatch.delattr({"settings": settings, "stack": pulumi.runtime.stack, "output": pulumi.Output}[module], name)
    with pytest.raises(sdk.SdkIncompatibleError) as caught:
        sdk.check_sdk()
    assert name in str(caught.value) and reason in str(caught.value)


def test_an_offline_run_walks_no_stack_per_resource(monkeypatch):
    """The SDK's stack trace of each registration (for the engine's source positions) is skipped offline."""
    import traceback

    walks = []
    extract_stack = traceback.extract_stack
    monkeypatch.setattr(traceback, "extract_stack", lambda *a, **k: walks.append(1) or extract_stack(*a, **k))
    run = run_function(_many_outputs_program(50))
    assert len([r for r in run.records if r.type == "test:index:Thing"]) == 50
    assert walks == []
    from pulumi.runtime import resource

    assert resource._get_stack_trace().frames is not None  # outside a run: the SDK's own again
    assert walks == [1]


def test_a_moved_stack_walk_is_named_in_the_error(monkeypatch):
    from pulumi.runtime import resource

    monkeypatch.setattr(resource, "_get_stack_trace", lambda depth: None)
    with pytest.raises(sdk.SdkIncompatibleError) as caught:
        sdk.check_sdk()
    assert "_get_stack_trace" in str(caught.value) and "source positions" in str(caught.value)
