"""Shaping rewards: DAPO overlong punishment, cosine length scaling, n-gram repetition."""

from __future__ import annotations

import functools
import math

import pytest

from mlx_grpo.errors import UserError
from mlx_grpo.rewards.library import REGISTRY, bind_params, resolve_reward
from mlx_grpo.rewards.shaping import (
    cosine_fn,
    cosine_length,
    overlong_punishment,
    repetition_penalty,
)


def test_overlong_matches_dapo_formula() -> None:
    lengths = [10, 80, 90, 95, 100, 120]
    scores = overlong_punishment(
        [""] * 6,
        [""] * 6,
        [""] * 6,
        completion_lengths=lengths,
        max_completion_length=100,
        cache_length=20,
    )
    # safe up to 80 tokens, then linear down to -1 at 100, -1 beyond
    assert scores == pytest.approx([0.0, 0.0, -0.5, -0.75, -1.0, -1.0])


def test_overlong_default_cache_is_a_fifth_of_the_limit() -> None:
    scores = overlong_punishment(
        [""] * 2, [""] * 2, [""] * 2, completion_lengths=[800, 900], max_completion_length=1000
    )
    assert scores == pytest.approx([0.0, -0.5])


def test_overlong_needs_lengths() -> None:
    with pytest.raises(ValueError, match="completion_lengths"):
        overlong_punishment([""], ["x"], [""])


def test_cosine_fn_endpoints() -> None:
    assert cosine_fn(0, 100, 2.0, 1.0) == pytest.approx(2.0)
    assert cosine_fn(100, 100, 2.0, 1.0) == pytest.approx(1.0)
    assert cosine_fn(50, 100, 2.0, 1.0) == pytest.approx(1.5)


def test_cosine_length_rewards() -> None:
    completions = [
        "The answer is 4",
        "The answer is 4",
        "The answer is 5",
        "The answer is 5",
        "The answer is 4",
        "The answer is 4",
    ]
    answers = ["4", "4", "4", "4", "4", ""]
    scores = cosine_length(
        [""] * 6,
        completions,
        answers,
        completion_lengths=[0, 50, 0, 50, 100, 10],
        max_completion_length=100,
    )
    assert scores[0] == pytest.approx(1.0)  # correct and short: the most
    assert scores[1] == pytest.approx(0.75)  # correct, halfway: between 1.0 and 0.5
    assert scores[2] == pytest.approx(-1.0)  # wrong and short: the worst
    assert scores[3] == pytest.approx(-0.75)  # wrong but thought longer: less bad
    assert scores[4] == pytest.approx(-1.0)  # hit the length cap
    assert scores[5] is None  # no gold answer


def test_cosine_length_with_paper_values_and_countdown_checker() -> None:
    completion = "<answer>(1 + 2) * 3</answer>"
    score = cosine_length(
        [""],
        [completion],
        [""],
        completion_lengths=[25],
        max_completion_length=100,
        correct_short=2.0,
        correct_long=1.0,
        checker="countdown",
        numbers=[[1, 2, 3]],
        target=[9],
    )
    assert score == pytest.approx([1.0 + 0.5 * (1 + math.cos(math.pi / 4))])


def test_repetition_penalty() -> None:
    fresh = "the quick brown fox jumps over the lazy dog"
    loop = "I think so. " * 50
    scores = repetition_penalty([""] * 3, [fresh, loop, "too short"], [""] * 3)
    assert scores[0] == 0.0
    assert -1.0 < scores[1] < -0.9
    assert scores[2] == 0.0
    half = repetition_penalty([""], [loop], [""], max_penalty=-0.5)[0]
    assert half == pytest.approx(scores[1] / 2)


def test_params_reach_rewards_through_partial() -> None:
    fn = bind_params(REGISTRY["overlong"], {"cache_length": 50})
    assert isinstance(fn, functools.partial)
    assert fn([""], [""], [""], completion_lengths=[75], max_completion_length=100) == [-0.5]
    fn = resolve_reward("repetition", {"ngram_size": 1, "max_penalty": -2.0})
    assert fn([""], ["a a a a"], [""]) == [pytest.approx(-1.5)]


def test_unknown_param_is_a_user_error() -> None:
    with pytest.raises(UserError, match="cache_len.*accepts: cache_length"):
        resolve_reward("overlong", {"cache_len": 50})
    with pytest.raises(UserError, match="completion_lengths"):
        bind_params(REGISTRY["overlong"], {"completion_lengths": [1]}, name="overlong")
    with pytest.raises(UserError, match="unknown reward 'nope'.*math_correct"):
        resolve_reward("nope")


def test_registry_names() -> None:
    expected = {
        "math_correct",
        "r1_format",
        "r1_format_strict",
        "tag_count",
        "countdown",
        "overlong",
        "cosine_length",
        "repetition",
    }
    assert expected <= set(REGISTRY)
