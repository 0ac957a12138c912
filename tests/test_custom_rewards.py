"""Custom rewards from the config: loading by module or file, and calling them safely."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest

from mlx_grpo.errors import UserError
from mlx_grpo.rewards.custom import call_safely, load_reward

PROMPTS, COMPLETIONS, ANSWERS = ["p1", "p2", "p3"], ["4", "five", "6"], ["4", "5", "6"]

REWARD_FILE = """
import math


def exact(prompts, completions, answers, **extras):
    return [1.0 if c.strip() == a else 0.0 for c, a in zip(completions, answers)]


def uses_extras(prompts, completions, answers, *, bonus, **extras):
    return [float(b) for b in bonus]


async def slow_exact(prompts, completions, answers, **extras):
    await __import__("asyncio").sleep(0)
    return exact(prompts, completions, answers)


def raises(prompts, completions, answers, **extras):
    raise RuntimeError("grader crashed")


def nan_second(prompts, completions, answers, **extras):
    return [1.0, math.nan, None]


def wrong_length(prompts, completions, answers, **extras):
    return [1.0]


def strings(prompts, completions, answers, **extras):
    return ["1.0", 0.5, math.inf]


NOT_A_FUNCTION = 3
"""


@pytest.fixture
def reward_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_rewards.py"
    path.write_text(REWARD_FILE)
    return path


def test_load_from_file(reward_file: Path) -> None:
    fn = load_reward(f"{reward_file}:exact")
    assert fn(PROMPTS, COMPLETIONS, ANSWERS) == [1.0, 0.0, 1.0]


def test_load_from_relative_file(reward_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(reward_file.parent)
    assert load_reward("my_rewards.py:exact")(PROMPTS, COMPLETIONS, ANSWERS) == [1.0, 0.0, 1.0]


def test_load_from_module(reward_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(reward_file.parent))
    monkeypatch.delitem(sys.modules, "my_rewards", raising=False)
    fn = load_reward("my_rewards:exact")
    assert fn(PROMPTS, COMPLETIONS, ANSWERS) == [1.0, 0.0, 1.0]
    assert load_reward("mlx_grpo.rewards.format:tag_count").__name__ == "tag_count"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{dir}/missing.py:exact", "reward file not found: .*missing.py"),
        ("{dir}/my_rewards.py:nope", "has no function 'nope'.*defines: exact"),
        ("{dir}/my_rewards.py:NOT_A_FUNCTION", "names a int, not a function"),
        ("no_such_module_xyz:fn", "no module named 'no_such_module_xyz'"),
        ("mlx_grpo.rewards.format:nope", "has no function 'nope'"),
        ("just_a_name", "not `module.path:function`"),
        ("{dir}/my_rewards.py:", "not `module.path:function`"),
    ],
)
def test_load_errors_are_user_errors(reward_file: Path, spec: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_reward(spec.format(dir=reward_file.parent))


def test_file_that_fails_to_import(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import not_a_real_package_abc\n")
    with pytest.raises(UserError, match="loading reward file .*broken.py failed.*not_a_real"):
        load_reward(f"{path}:fn")


def test_call_safely_passes_extras(reward_file: Path) -> None:
    fn = load_reward(f"{reward_file}:uses_extras")
    assert call_safely(fn, PROMPTS, COMPLETIONS, ANSWERS, {"bonus": [1, 2, 3]})[:2] == (
        [1.0, 2.0, 3.0],
        0,
    )


def test_async_reward(reward_file: Path) -> None:
    fn = load_reward(f"{reward_file}:slow_exact")
    assert call_safely(fn, PROMPTS, COMPLETIONS, ANSWERS, {})[:2] == ([1.0, 0.0, 1.0], 0)


def test_async_reward_inside_a_running_loop(reward_file: Path) -> None:
    fn = load_reward(f"{reward_file}:slow_exact")

    async def caller() -> tuple[list[float], int]:
        return call_safely(fn, PROMPTS, COMPLETIONS, ANSWERS, {})

    assert asyncio.run(caller())[:2] == ([1.0, 0.0, 1.0], 0)


def test_raising_reward_scores_zero_and_is_counted(
    reward_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fn = load_reward(f"{reward_file}:raises")
    with caplog.at_level(logging.WARNING):
        assert call_safely(fn, PROMPTS, COMPLETIONS, ANSWERS, {})[:2] == ([0.0, 0.0, 0.0], 3)
    assert len(caplog.records) == 1
    assert "raises" in caplog.text and "grader crashed" in caplog.text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nan_second", ([1.0, 0.0, 0.0], 1)),  # NaN counted; None is "not applicable"
        ("wrong_length", ([0.0, 0.0, 0.0], 3)),
        ("strings", ([0.0, 0.5, 0.0], 2)),
    ],
)
def test_bad_values_score_zero(reward_file: Path, name: str, expected: object) -> None:
    fn = load_reward(f"{reward_file}:{name}")
    assert call_safely(fn, PROMPTS, COMPLETIONS, ANSWERS, {})[:2] == expected


def test_builtin_rewards_work_through_call_safely() -> None:
    from mlx_grpo.rewards.library import resolve_reward

    fn = resolve_reward("math_correct")
    completions = ["The answer is 4", "The answer is \\frac{10}{2}", "no"]
    assert call_safely(fn, PROMPTS, completions, ANSWERS, {"level": [1, 2, 3]})[:2] == (
        [1.0, 1.0, 0.0],
        0,
    )
    with pytest.raises(UserError, match="no parameter"):
        resolve_reward("mlx_grpo.rewards.format:tag_count", {"anything": 1})


def test_params_reach_a_custom_reward(reward_file: Path) -> None:
    from mlx_grpo.rewards.library import resolve_reward

    fn = resolve_reward(f"{reward_file}:uses_extras", {"bonus": [5, 5, 5]})
    assert call_safely(fn, PROMPTS, COMPLETIONS, ANSWERS, {})[:2] == ([5.0, 5.0, 5.0], 0)
