"""Countdown: reach a target with given numbers, each used exactly once, using + - * /.

The model's equation is checked without eval(): a character whitelist first (digits,
spaces, + - * / and parentheses only, so no names, calls, attributes or `**`), then
Python's `ast` parser, then a tree walk that accepts only integer literals and the four
binary operators and computes with exact Fractions (so 7/2*2 = 7 and nothing rounds).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from fractions import Fraction

from mlx_grpo.rewards.math import last_boxed

MAX_EXPRESSION_CHARS = 200
MAX_DEPTH = 40

_ALLOWED = re.compile(r"[\d\s+\-*/()]+")
_SYMBOLS = {"×": "*", "\\times": "*", "\\cdot": "*", "·": "*", "÷": "/", "\\div": "/", "−": "-"}


class InvalidExpression(ValueError):
    """The text is not an allowed Countdown expression."""


def _walk(node: ast.AST, used: list[int], depth: int) -> Fraction:
    if depth > MAX_DEPTH:
        raise InvalidExpression("expression nested too deeply")
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    if not isinstance(node, ast.BinOp):
        raise InvalidExpression(f"{type(node).__name__} is not allowed")
    left, right = _walk(node.left, used, depth + 1), _walk(node.right, used, depth + 1)
    if isinstance(node.op, ast.Add):
        return left + right
    if isinstance(node.op, ast.Sub):
        return left - right
    if isinstance(node.op, ast.Mult):
        return left * right
    if isinstance(node.op, ast.Div):
        if right == 0:
            raise InvalidExpression("division by zero")
        return left / right
    raise InvalidExpression(f"operator {type(node.op).__name__} is not allowed")


def evaluate(expression: str) -> tuple[Fraction, list[int]]:
    """Exact value of an expression and the numbers it uses; InvalidExpression otherwise."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise InvalidExpression("expression too long")
    if not _ALLOWED.fullmatch(expression) or "**" in expression or "//" in expression:
        raise InvalidExpression("only integers, + - * / and parentheses are allowed")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise InvalidExpression(f"not an expression: {exc}") from None
    used: list[int] = []
    return _walk(tree.body, used, 0), used


def check(expression: str, numbers: Sequence[int], target: int | float) -> bool:
    """True when the expression uses every number exactly once and equals the target."""
    try:
        value, used = evaluate(expression)
    except InvalidExpression:
        return False
    return sorted(used) == sorted(int(n) for n in numbers) and value == Fraction(target)


def extract_expression(completion: str) -> str | None:
    """The equation in the last <answer>...</answer> (or \\boxed{}, or the last line),
    with ×/÷-style symbols made ASCII and a side "= target" dropped."""
    end = completion.rfind("</answer>")
    start = completion.rfind("<answer>", 0, end) if end >= 0 else -1
    if start >= 0:
        text = completion[start + len("<answer>") : end]
    else:
        lines = completion.strip().splitlines()
        text = last_boxed(completion) or (lines[-1] if lines else "")
    text = text.replace("$", "").strip()
    for symbol, ascii_op in _SYMBOLS.items():
        text = text.replace(symbol, ascii_op)
    sides = [side.strip() for side in text.split("=") if side.strip()]
    return max(sides, key=lambda side: sum(not ch.isdigit() for ch in side)) if sides else None


def countdown_correct(
    prompts: list[str],
    completions: list[str],
    answers: list[str],
    *,
    numbers: Sequence[Sequence[int]] | None = None,
    target: Sequence[int] | None = None,
    **extras: object,
) -> list[float | None]:
    """1.0 when the completion's equation uses each of `numbers` once and hits `target`.

    Needs the per-row extras `numbers` and `target` (the built-in countdown task has them).
    """
    if numbers is None or target is None:
        raise ValueError("countdown needs the dataset columns `numbers` and `target`")
    scores: list[float | None] = []
    for completion, nums, goal in zip(completions, numbers, target, strict=True):
        expression = extract_expression(completion)
        scores.append(1.0 if expression and check(expression, nums, goal) else 0.0)
    return scores
