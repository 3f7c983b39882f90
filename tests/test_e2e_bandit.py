"""scripts/e2e's bandit scenario against stand-ins (a gateway routing by a stand-in agent's weights, a fake
kubectl whose port-forward reaches it): it passes when the split moves toward the arm that earns more,
and fails, saying why, when the agent never learns, when answers lack their x-turnout headers, or when
the agent cannot be reached; without kubectl it is skipped with the reason."""

from __future__ import annotations

import pytest

from tests.test_e2e import e2e, gateway, plans, quick_run  # noqa: F401 (fixtures)


@pytest.fixture
def plan(plans):  # noqa: F811
    return e2e.load_plan(plans / "e2e")


def test_the_e2e_stack_has_a_bandit_whose_split_is_not_counted(plan):
    (learned,) = [e for e in plan.expectations if e.learned]
    assert learned.endpoint == "bandit" and learned.weights == {"v1": 50, "v2": 50}
    assert learned.agent["arms"] == ["v1", "v2"] and learned.agent["intervalSeconds"] == 10
    assert learned.agent["service"] == "bandit-agent.bandit.svc.cluster.local:8080"
    text = e2e.describe_endpoints(plan)
    assert "owns them afterwards" in text
    assert "-n bandit port-forward svc/bandit-agent 8081:8080" in text
    assert "curl http://127.0.0.1:8081/v1/endpoints/bandit/report" in text


def test_a_learning_agent_passes(plan, gateway):  # noqa: F811
    stand_in, kubectl = gateway()
    (outcome,) = e2e.check_bandit(quick_run(plan, stand_in, kubectl))
    assert outcome.status == "pass", outcome
    assert outcome.subject == "bandit: toward v2"
    assert "v2 50% ->" in outcome.detail
    agent = stand_in.agents["bandit"]
    assert agent.weights["v2"] >= 70 and agent.rewards["v2"] > agent.rewards["v1"]


def test_an_agent_that_never_learns_fails_with_its_weights(plan, gateway):  # noqa: F811
    stand_in, kubectl = gateway(frozen=True)
    (outcome,) = e2e.check_bandit(quick_run(plan, stand_in, kubectl, learn_wait=0.5))
    assert outcome.status == "fail" and "weights {'v1': 50, 'v2': 50} after" in outcome.detail


def test_answers_without_their_version_and_request_id_fail(plan, gateway):  # noqa: F811
    stand_in, kubectl = gateway(no_turnout_headers=True)
    (outcome,) = e2e.check_bandit(quick_run(plan, stand_in, kubectl))
    assert outcome.status == "fail" and "no x-turnout headers" in outcome.detail


def test_an_unreachable_agent_fails_naming_the_command(plan, gateway, tmp_path):  # noqa: F811
    stand_in, _ = gateway()
    broken = tmp_path / "broken-kubectl"
    broken.write_text("#!/bin/sh\necho 'error: services \"bandit-agent\" not found' >&2\nexit 1\n")
    broken.chmod(0o755)
    (outcome,) = e2e.check_bandit(quick_run(plan, stand_in, broken))
    assert outcome.status == "fail"
    assert "port-forward -n bandit svc/bandit-agent :8080" in outcome.detail and "not found" in outcome.detail


def test_without_kubectl_it_is_skipped_saying_why(plan, gateway, tmp_path):  # noqa: F811
    stand_in, _ = gateway()
    (outcome,) = e2e.check_bandit(quick_run(plan, stand_in, tmp_path / "no-kubectl"))
    assert outcome.status == "skip" and "rewards reach the agent through kubectl port-forward" in outcome.detail
