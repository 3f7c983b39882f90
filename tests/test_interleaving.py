"""interleaving.interleave and credit (CONTRACT §4): team-draft and balanced interleaving."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turnout.experiments import interleaving

RANKINGS = st.lists(st.integers(0, 30), max_size=15)


@settings(max_examples=300, deadline=None)
@given(RANKINGS, RANKINGS, st.sampled_from(interleaving.METHODS), st.integers(0, 2**32))
def test_every_item_shown_once_and_only_shown_items_count(a, b, method, seed):
    merged, teams = interleaving.interleave(a, b, method=method, rng=random.Random(seed))
    assert len(merged) == len(set(merged))
    assert set(merged) == set(a) | set(b)
    assert set(teams) <= set(merged)
    assert set(teams.values()) <= {"a", "b"}
    for item, team in teams.items():
        assert item in (a if team == "a" else b)


@settings(max_examples=300, deadline=None)
@given(RANKINGS, RANKINGS, st.integers(0, 2**32))
def test_team_draft_teams_differ_by_at_most_one(a, b, seed):
    _, teams = interleaving.interleave(a, b, method="team-draft", rng=random.Random(seed))
    sizes = Counter(teams.values())
    assert abs(sizes["a"] - sizes["b"]) <= 1


@settings(max_examples=100, deadline=None)
@given(RANKINGS, st.sampled_from(interleaving.METHODS), st.integers(0, 2**32))
def test_a_seeded_rng_gives_the_same_list(a, method, seed):
    b = list(reversed(a))
    first = interleaving.interleave(a, b, method=method, rng=random.Random(seed))
    assert interleaving.interleave(a, b, method=method, rng=random.Random(seed)) == first


def test_team_draft_rounds_follow_the_coin():
    a, b = ["a1", "a2", "a3"], ["b1", "b2", "b3"]
    merged, teams = interleaving.interleave(a, b, method="team-draft", rng=random.Random(0))
    # Each round adds one item of each team, in the order its coin chose.
    rounds = [merged[i : i + 2] for i in range(0, 6, 2)]
    assert all({teams[x] for x in pair} == {"a", "b"} for pair in rounds)
    assert [teams[x] for x in merged].count("a") == 3


def test_an_item_both_rankers_return_is_shown_and_counted_once():
    merged, teams = interleaving.interleave(["x", "a2"], ["x", "b2"], method="team-draft", rng=random.Random(4))
    assert merged.count("x") == 1
    assert teams["x"] in ("a", "b")
    assert interleaving.credit(teams, ["x", "x"]) == teams["x"]


def test_duplicates_within_a_ranking_are_read_at_their_first_place():
    merged, _ = interleaving.interleave(["a", "a", "b"], ["c"], method="team-draft", rng=random.Random(1))
    assert sorted(merged) == ["a", "b", "c"]


def test_unequal_lengths_keep_every_item_but_the_tail_counts_for_nobody():
    merged, teams = interleaving.interleave(["a1"], ["b1", "b2", "b3", "b4"], method="team-draft", rng=random.Random(2))
    assert set(merged) == {"a1", "b1", "b2", "b3", "b4"}
    assert merged[-2:] == ["b3", "b4"] or merged[-3:] == ["b2", "b3", "b4"]
    assert "b4" not in teams and "b3" not in teams
    assert interleaving.credit(teams, ["b4"]) == "tie"


def test_an_empty_ranker_gives_the_other_list_and_no_evidence():
    merged, teams = interleaving.interleave([], ["b1", "b2"], method="team-draft", rng=random.Random(0))
    assert merged == ["b1", "b2"] and teams == {}


def test_balanced_items_both_return_favour_neither():
    a, b = ["x", "a1", "y", "a2"], ["y", "x", "b1", "b2"]
    merged, teams = interleaving.interleave(a, b, method="balanced", rng=random.Random(3))
    assert "x" not in teams and "y" not in teams
    assert teams["a1"] == "a" and teams["b1"] == "b"
    assert set(merged) == {"x", "y", "a1", "a2", "b1", "b2"}


@pytest.mark.parametrize(
    ("clicked", "winner"),
    [([], "tie"), (["a1"], "a"), (["b1", "b2"], "b"), (["a1", "b1"], "tie"), (["unknown"], "tie"), (["a1", "a1"], "a")],
)
def test_credit(clicked, winner):
    teams = {"a1": "a", "a2": "a", "b1": "b", "b2": "b"}
    assert interleaving.credit(teams, clicked) == winner


@pytest.mark.parametrize("method", interleaving.METHODS)
def test_identical_rankers_give_no_preference_to_a_position_biased_clicker(method):
    """The fairness property: with a == b, whatever the clicks, neither side wins on average."""
    rng = random.Random(7)
    ranking = list(range(10))
    outcome = Counter()
    for _ in range(20_000):
        merged, teams = interleaving.interleave(ranking, ranking, method=method, rng=rng)
        clicked = [item for position, item in enumerate(merged) if rng.random() < 0.5 / (position + 1)]
        outcome[interleaving.credit(teams, clicked)] += 1
    share, p_value = interleaving.preference(outcome["a"], outcome["b"], outcome["tie"])
    assert abs(share - 0.5) < 0.01
    assert p_value > 0.001


def test_a_better_ranker_wins():
    """b puts the relevant items first; a clicker who clicks relevant items prefers b."""
    rng = random.Random(11)
    relevant = {"r1", "r2"}
    a, b = ["n1", "n2", "r1", "r2"], ["r1", "r2", "n1", "n2"]
    outcome = Counter()
    for _ in range(2_000):
        merged, teams = interleaving.interleave(a, b, method="team-draft", rng=rng)
        clicked = [item for item in merged[:2] if item in relevant]
        outcome[interleaving.credit(teams, clicked)] += 1
    share, p_value = interleaving.preference(outcome["a"], outcome["b"], outcome["tie"])
    assert share < 0.4 and p_value < 1e-6


@pytest.mark.parametrize(
    ("wins", "losses", "expected"),
    [(0, 0, 1.0), (5, 5, 1.0), (10, 0, 2 * 0.5**10), (0, 10, 2 * 0.5**10), (6, 4, 0.75390625)],
)
def test_sign_test_matches_the_exact_binomial(wins, losses, expected):
    assert interleaving.sign_test(wins, losses) == pytest.approx(expected)


def test_sign_test_normal_branch_agrees_with_the_exact_one_near_the_switch():
    exact = interleaving.sign_test(50_150, 49_850)
    approx = interleaving.sign_test(50_151, 49_850)
    assert exact == pytest.approx(0.3458, abs=2e-3) and approx == pytest.approx(exact, abs=3e-3)


def test_bad_arguments_say_what_is_allowed():
    with pytest.raises(ValueError, match="method 'probabilistic': allowed: team-draft, balanced"):
        interleaving.interleave([1], [2], method="probabilistic", rng=random.Random(0))
    with pytest.raises(ValueError, match="wins -1"):
        interleaving.preference(-1, 0, 0)
