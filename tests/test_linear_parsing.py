"""Every pattern that reads model output runs in linear time.

Two checks: a static one over the compiled patterns (no quantified group whose body can
match the empty string or holds another unbounded quantifier: the shapes that backtrack
exponentially), and the issue's adversarial answers plus pumped variants fed through the
parsing code, whose results are checked (they took 1 s to minutes, growing exponentially
with the word count, before the rewrite; `benchmarks/bench_parsing.py` times them).
"""

from __future__ import annotations

import re

import pytest

from mlx_grpo.infer import emergence
from mlx_grpo.rewards import basic, countdown, format, forms, latex, math

try:  # Python 3.11+
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

MODULES = [math, forms, format, countdown, basic, latex, emergence]
REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT}


def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    return [
        (f"{module.__name__}.{name}", value)
        for module in MODULES
        for name, value in vars(module).items()
        if isinstance(value, re.Pattern)
    ]


def _nested_unbounded(items: object, inside: bool = False) -> bool:
    """True when an unbounded repeat sits inside another unbounded repeat."""
    for op, arg in items:  # type: ignore[attr-defined]
        if op in REPEATS:
            low, high, body = arg
            unbounded = high == sre_parse.MAXREPEAT
            if unbounded and inside or _nested_unbounded(body, inside or unbounded):
                return True
        else:
            children = [arg[-1]] if op == sre_parse.SUBPATTERN else []
            children += arg[1] if op == sre_parse.BRANCH else []
            if any(_nested_unbounded(child, inside) for child in children):
                return True
    return False


def test_patterns_are_found() -> None:
    names = {name for name, _ in _patterns()}
    assert "mlx_grpo.rewards.math._UNIT_PIECE" in names and len(names) >= 10
    assert "mlx_grpo.rewards.forms._INEQ_OP" in names


@pytest.mark.parametrize("name,pattern", _patterns(), ids=lambda x: str(x)[-40:])
def test_no_nested_unbounded_repeats(name: str, pattern: re.Pattern[str]) -> None:
    assert not _nested_unbounded(sre_parse.parse(pattern.pattern, pattern.flags)), name


def test_the_checker_rejects_the_old_unit_pattern() -> None:
    old = r"(\d+)\s+((?:[a-zA-Z]+\.?(?:\^\d)?\s*)+)"  # the pattern that stalled training
    assert _nested_unbounded(sre_parse.parse(old))


WORDS = "clips in total for April and May combined"
ISSUE_ANSWERS = [
    f"72 {WORDS} (48 + 24)",
    "48 clips in April and 24 clips in May, so 72",
    "5 apples and oranges and pears and plums and figs and more [see above]",
    "12 dollars each for the first three days, 13",
]
PUMPED = [f"72 {' '.join([WORDS] * k)} (48 + 24)" for k in (4, 16, 64, 256)] + [
    "1 " + "a" * 20_000 + "1",
    "1 " + "ab " * 5_000 + ",",
    "1" * 20_000 + "x",
    "1 " + "m.^2" * 2_000 + "(",
]
HOSTILE_TEXT = [
    "<answer>" + " " * 5_000 + "x",
    "<answer>" * 20_000,
    "<think>\n" + "<think>" * 20_000,
    "<think>\n" + "a\n</think>\n<answer>\n" * 5_000,
    "<answer>" + "\n" * 20_000 + "</answer",
    "\\boxed{" * 20_000,
    "9" * 100_000 + "x",
]


@pytest.mark.parametrize("answer", ISSUE_ANSWERS + PUMPED, ids=range(len(ISSUE_ANSWERS + PUMPED)))
def test_normalize_and_parse_finish(answer: str) -> None:
    # none of these is a number with a unit: each comes back whole, none parses as a number
    assert math.normalize(answer) == answer
    assert math.parse_number(answer) is None
    assert math.extract_answer(f"<answer>{answer}</answer>") == answer


def test_unit_stripping_still_works() -> None:
    assert math.normalize("12 apples") == "12"
    assert math.normalize("5 m.^2 kg") == "5"
    assert math.normalize("5cm^2") == "5"
    assert math.normalize(ISSUE_ANSWERS[0]) == ISSUE_ANSWERS[0]
    assert math.normalize("3 pi") == "3 pi"


@pytest.mark.parametrize("text", HOSTILE_TEXT + PUMPED, ids=range(len(HOSTILE_TEXT + PUMPED)))
def test_format_countdown_and_emergence_finish(text: str) -> None:
    assert format.strict_score(text) == 0.0  # none is a well-formed <think>/<answer> reply
    assert format.filled_answer_tags(text) == 0
    digits = re.findall(r"\d+", text)
    assert basic.last_number(text) == (digits[-1] if digits else None)
    expression = countdown.extract_expression(text)
    assert expression is None or len(expression) <= len(text)
    metrics = emergence.emergence_metrics([text], len)
    assert metrics["answer_rate"] in (0.0, 1.0) and metrics["think_rate"] in (0.0, 1.0)


# Near misses for the answer-form patterns (rewards/forms.py): long runs that almost make a
# mixed number, repeating decimal, based number, matrix or inequality, and do not.
FORM_NEAR_MISSES = [
    "1" * 700 + " " * 50 + "1" * 40 + "/",
    "0." + "1" * 300 + "\\dot{2}" + "3" * 300 + "\\dot{",
    "0." + "1" * 50_000 + "\\overline{" + "2" * 50_000,
    "(" + "A1" * 25_000 + "_{(2",
    "1" * 50_000 + "_" + "{" * 1_000,
    "x < " * 20_000,
    "x" + " " * 50_000 + "\\in" + " " * 50_000 + "y",
    "\\begin{pmatrix}" + "1 & " * 20_000 + "\\\\" * 5_000 + "\\end{pmatrix}",
    "2 < x " + "\\le" * 10_000 + "q 5",
    "x < 1 or " * 10_000,
]


@pytest.mark.parametrize("text", FORM_NEAR_MISSES, ids=range(len(FORM_NEAR_MISSES)))
def test_answer_forms_finish(text: str) -> None:
    assert forms.exact_number_text(text) == text
    assert forms.based_number(text) is None
    assert forms.inequality_as_interval(text) == text
    assert forms.split_matrix(text) is None
    assert not math.math_equal(text[: math.MAX_CHARS], "1")
