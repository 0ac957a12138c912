"""Built-in generated tasks: reproducible per seed, graded difficulty, always solvable."""

from __future__ import annotations

import re

import pytest

from mlx_grpo.data.tasks import TASKS, arithmetic, countdown, generate_task
from mlx_grpo.errors import UserError
from mlx_grpo.rewards.countdown import check
from mlx_grpo.rewards.math import math_correct


@pytest.mark.parametrize("name", sorted(TASKS))
@pytest.mark.parametrize("difficulty", [1, 2, 3, 4])
def test_same_seed_same_rows(name: str, difficulty: int) -> None:
    rows = generate_task(name, 30, seed=7, difficulty=difficulty)
    assert rows == generate_task(name, 30, seed=7, difficulty=difficulty)
    assert rows[:10] == generate_task(name, 10, seed=7, difficulty=difficulty)
    assert rows != generate_task(name, 30, seed=8, difficulty=difficulty)
    assert all(row["prompt"] and row["answer"] for row in rows)


def _ops_in(prompt: str) -> int:
    return len(re.findall(r"gets|gives|buys|splits", prompt))


def test_arithmetic_levels_grow_harder() -> None:
    for level, steps in ((1, 1), (2, 1), (3, 2), (4, 4)):
        rows = arithmetic.generate(50, seed=0, difficulty=level)
        assert all(_ops_in(row["prompt"]) == steps for row in rows)
        assert all(int(row["answer"]) >= 0 and row["difficulty"] == level for row in rows)
    level1 = arithmetic.generate(200, seed=0, difficulty=1)
    assert all(re.search(r"gets|gives", row["prompt"]) for row in level1)
    assert all(int(n) <= 40 for row in level1 for n in re.findall(r"\d+", row["prompt"]))
    level2 = arithmetic.generate(200, seed=0, difficulty=2)
    assert all(re.search(r"buys \d+ boxes|splits", row["prompt"]) for row in level2)


def test_arithmetic_answers_are_right() -> None:
    # Recompute each level-1 answer from its text.
    for row in arithmetic.generate(100, seed=3, difficulty=1):
        a, b = map(int, re.findall(r"\d+", row["prompt"]))
        expected = a + b if "gets" in row["prompt"] else a - b
        assert row["answer"] == str(expected)
    rows = arithmetic.generate(20, seed=3, difficulty=4)
    completions = [f"The answer is {row['answer']}." for row in rows]
    assert (
        math_correct([r["prompt"] for r in rows], completions, [r["answer"] for r in rows])
        == [1.0] * 20
    )


@pytest.mark.parametrize("difficulty", [1, 2, 3, 4])
def test_every_countdown_puzzle_is_solvable(difficulty: int) -> None:
    count, largest = countdown.LEVELS[difficulty]
    for row in countdown.generate(300, seed=difficulty, difficulty=difficulty):
        numbers, target = row["numbers"], row["target"]
        assert len(numbers) == count and all(1 <= n <= largest for n in numbers)
        assert 1 <= target <= countdown.MAX_TARGET
        assert check(row["answer"], numbers, target), row
        assert str(numbers) in row["prompt"] and str(target) in row["prompt"]


def test_bad_task_arguments() -> None:
    with pytest.raises(UserError, match="unknown built-in task 'sudoku'"):
        generate_task("sudoku", 1, 0)
    with pytest.raises(UserError, match="difficulty"):
        generate_task("countdown", 1, 0, difficulty=9)


def test_worked_problems_are_training_stories_with_their_equation() -> None:
    import re

    from mlx_grpo.data.tasks import arithmetic

    rows = arithmetic.worked_problems(40, seed=0)
    assert rows == arithmetic.worked_problems(40, seed=0)
    story = re.compile(r"(\w+) has (\d+) (\w+)\. (?:Then \1 gets (\d+) more \3\.|\1 gives (\d+) "
                       r"\3 to a friend\.) How many \3 does \1 have now\?")  # fmt: skip
    for row in rows:
        _, start, _, gain, loss = story.fullmatch(str(row["prompt"])).groups()
        op, b = ("+", gain) if gain else ("-", loss)
        assert row["working"] == f"{start} {op} {b} = {row['answer']}"
        assert int(row["answer"]) == (int(start) + int(b) if gain else int(start) - int(b))
    assert all(story.fullmatch(str(r["prompt"])) for r in arithmetic.generate(40, 0, 1))
