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
