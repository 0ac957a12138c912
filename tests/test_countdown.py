"""Countdown checking: safe evaluation, every number once, allowed operators only."""

from __future__ import annotations

from fractions import Fraction

import pytest

from mlx_grpo.rewards.countdown import (
    InvalidExpression,
    check,
    countdown_correct,
    evaluate,
    extract_expression,
)


def test_evaluate_is_exact() -> None:
    assert evaluate("(3 + 5) * 2") == (Fraction(16), [3, 5, 2])
    assert evaluate("7 / 2 * 2") == (Fraction(7), [7, 2, 2])
    assert evaluate("100 - 4 * 25 + 1") == (Fraction(1), [100, 4, 25, 1])


@pytest.mark.parametrize(
    ("expression", "numbers", "target", "ok"),
    [
        ("(3 + 5) * 2", [2, 3, 5], 16, True),
        ("25 * 4 - 100 / 50", [100, 50, 25, 4], 98, True),
        ("7 / 2 * 2", [7, 2, 2], 7, True),
        ("(3 + 5) * 2", [2, 3, 5], 17, False),  # wrong value
        ("3 + 5", [2, 3, 5], 8, False),  # 2 not used
        ("3 + 3 + 2", [2, 3, 5], 8, False),  # 3 used twice, 5 unused
        ("3 + 5 * 2 + 1", [2, 3, 5], 14, False),  # 1 is not given
        ("6 / (3 - 3)", [6, 3, 3], 0, False),  # division by zero
        ("(-3) + 5 + 2", [2, 3, 5], 4, False),  # unary minus
        ("3.0 + 5 + 2", [2, 3, 5], 10, False),  # floats
        ("05 + 3 + 2", [2, 3, 5], 10, False),  # leading zero
    ],
)
def test_check(expression: str, numbers: list[int], target: int, ok: bool) -> None:
    assert check(expression, numbers, target) is ok


@pytest.mark.parametrize(
    "unsafe",
    [
        "__import__('os').system('echo hacked')",
        "2**999999",
        "2 ** 10",
        "(2).__class__",
        "x + 1",
        "abs(-3)",
        "open('/etc/passwd')",
        "[1, 2][0]",
        "7 // 2",
        "3 % 2",
        "lambda: 1",
        "1 if 1 else 2",
        "(" * 300 + "1" + ")" * 300,
        "1+" * 150 + "1",
        "9" * 5000,
    ],
)
def test_unsafe_or_disallowed_input_is_rejected(unsafe: str) -> None:
    with pytest.raises(InvalidExpression):
        evaluate(unsafe)
    assert check(unsafe, [1, 2], 3) is False


def test_deep_nesting_within_the_length_limit_is_rejected_cleanly() -> None:
    text = "(" * 95 + "1" + ")" * 95
    with pytest.raises(InvalidExpression):
        evaluate(text + "+" + text)  # 382 chars: over the length limit
    deep = "1" + "+1" * 60  # a left-leaning tree deeper than MAX_DEPTH
    with pytest.raises(InvalidExpression, match="nested"):
        evaluate(deep)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>try</think><answer>(3 + 5) * 2</answer>", "(3 + 5) * 2"),
        ("<answer>(3 + 5) * 2 = 16</answer>", "(3 + 5) * 2"),
        ("<answer>16 = (3 + 5) × 2</answer>", "(3 + 5) * 2"),
        ("<answer>$48 \\div 6 - 2$</answer>", "48 / 6 - 2"),
        ("so \\boxed{(3+5) \\cdot 2}", "(3+5) * 2"),
        ("lots of thinking\n(3 + 5) * 2", "(3 + 5) * 2"),
        ("", None),
    ],
)
def test_extract_expression(completion: str, expected: str | None) -> None:
    assert extract_expression(completion) == expected


def test_countdown_reward() -> None:
    completions = [
        "<answer>(3 + 5) * 2</answer>",
        "<answer>3 + 5 + 2</answer>",
        "<answer>__import__('os')</answer>",
        "I cannot do it",
    ]
    scores = countdown_correct(
        [""] * 4, completions, [""] * 4, numbers=[[2, 3, 5]] * 4, target=[16] * 4
    )
    assert scores == [1.0, 0.0, 0.0, 0.0]


def test_countdown_reward_needs_its_columns() -> None:
    with pytest.raises(ValueError, match="numbers"):
        countdown_correct([""], ["<answer>1</answer>"], [""])
