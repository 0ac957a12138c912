"""Math answer extraction and equivalence: a labelled corpus, rewards, adversarial inputs."""

from __future__ import annotations

import pytest

import mlx_grpo.rewards.math as m
from mlx_grpo.rewards.sandbox import WORKER

# (prediction, gold): mathematically the same answer.
EQUIVALENT = [
    # integers, commas, signs
    ("42", "42"),
    ("1,000", "1000"),
    ("1000", "1,000"),
    ("12,345,678", "12345678"),
    ("-7", "-7"),
    ("+5", "5"),
    ("007", "7"),
    ("42.0", "42"),
    ("42.00", "42"),
    ("3.", "3"),
    ("1{,}000", "1000"),
    ("-1,250", "-1250"),
    # decimals
    ("0.5", ".5"),
    ("0.25", "1/4"),
    ("2.50", "2.5"),
    ("1e3", "1000"),
    ("-0.75", "-3/4"),
    ("0.3333", "1/3"),
    ("0.6667", "\\frac{2}{3}"),
    ("2.5e-3", "0.0025"),
    ("1.5 \\times 10^{3}", "1500"),
    # fractions
    ("\\frac{1}{2}", "0.5"),
    ("\\dfrac{3}{4}", "3/4"),
    ("\\frac12", "1/2"),
    ("\\tfrac{5}{10}", "\\frac{1}{2}"),
    ("-\\frac{2}{3}", "\\frac{-2}{3}"),
    ("\\frac{-2}{3}", "-2/3"),
    ("6/8", "3/4"),
    ("\\frac{10}{4}", "2.5"),
    ("\\frac{1}{3}", "\\frac{2}{6}"),
    ("\\frac{7}{1}", "7"),
    # percentages
    ("50%", "50"),
    ("50\\%", "50"),
    ("0.5", "50%"),
    ("25%", "0.25"),
    ("12.5%", "12.5"),
    ("50 \\%", "50\\%"),
    # LaTeX
    ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"),
    ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt2}{2}"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("\\sqrt{12}", "2\\sqrt{3}"),
    ("\\pi", "\\pi"),
    ("2\\pi", "\\pi \\cdot 2"),
    ("\\frac{\\pi}{2}", "\\pi/2"),
    ("\\pi r^2", "r^2 \\pi"),
    ("x^2", "x \\cdot x"),
    ("2^{10}", "1024"),
    ("3^2", "9"),
    ("\\left(\\frac{1}{2}\\right)^2", "\\frac14"),
    ("10^{-2}", "0.01"),
    ("\\sqrt[3]{27}", "3"),
    ("4 \\times 5", "20"),
    ("6 \\div 3", "2"),
    ("\\sqrt{2}\\cdot\\sqrt{2}", "2"),
    ("\\frac{3\\sqrt{3}}{2}", "\\frac{3}{2}\\sqrt{3}"),
    ("5!", "120"),
    ("\\infty", "\\infty"),
    ("e^{i\\pi}", "-1"),
    ("2^{1/2}", "\\sqrt{2}"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}"),
    ("\\sqrt{\\frac{1}{4}}", "0.5"),
    ("3\\sqrt{2} + \\sqrt{2}", "4\\sqrt{2}"),
    ("\\pi/4", "\\frac{\\pi}{4}"),
    ("\\dfrac{\\pi}{6}", "\\frac{1}{6}\\pi"),
    ("10\\sqrt{5}", "\\sqrt{500}"),
    ("2^{-1}", "0.5"),
    ("\\sqrt{3}^2", "3"),
    ("\\sin(\\pi/6)", "1/2"),
    # expressions
    ("2x+1", "1+2x"),
    ("x^2+2x+1", "(x+1)^2"),
    ("(x-1)(x+1)", "x^2-1"),
    ("\\frac{x}{2}", "0.5x"),
    ("a+b", "b+a"),
    ("2(a+b)", "2a+2b"),
    ("x_1 + x_2", "x_2 + x_1"),
    ("\\sin^2 x + \\cos^2 x", "1"),
    ("\\log_2 8", "3"),
    ("\\ln(e^2)", "2"),
    ("3a", "a \\cdot 3"),
    ("\\frac{x^2-1}{x-1}", "x+1"),
    ("x**2", "x^2"),
    ("n(n+1)/2", "\\frac{n^2+n}{2}"),
    ("-x", "-1 \\cdot x"),
    ("2xy", "2yx"),
    ("4\\pi r^2", "4 r^2 \\pi"),
    ("\\frac{1}{x}+\\frac{1}{y}", "\\frac{x+y}{xy}"),
    # equations
    ("y = 2x + 1", "2x+1"),
    ("x = 5", "5"),
    ("x+y=3", "y+x=3"),
    ("2x + 3y = 6", "6 = 3y + 2x"),
    ("k = \\frac{1}{2}", "0.5"),
    ("x^2 - 1 = 0", "x^2 = 1"),
    # intervals, tuples, sets, lists
    ("(1, 2)", "(1,2)"),
    ("[0, 1]", "[0,1]"),
    ("(-\\infty, 3]", "(-inf, 3]"),
    ("[2, \\infty)", "[2,\\infty)"),
    ("(0.5, \\frac{3}{4})", "(\\frac12, 0.75)"),
    ("(3, -4)", "(3,-4)"),
    ("\\left( 1, 2 \\right)", "(1,2)"),
    ("(1, 2) \\cup (3, 4)", "(3,4)\\cup(1,2)"),
    ("\\{1, 2, 3\\}", "\\{3, 2, 1\\}"),
    ("1, 2", "2, 1"),
    ("-1, 3", "3, -1"),
    ("(\\sqrt{2}, 1)", "(\\frac{2}{\\sqrt2}, 1)"),
    ("(1\\,000, 2)", "(1000, 2)"),
    ("[-1, 1)", "[-1,1)"),
    ("(2, 3, 4)", "(2,3,4)"),
    ("x = 2, 3", "3, 2"),
    # units and text
    ("12 apples", "12"),
    ("5 cm", "5"),
    ("5cm", "5"),
    ("\\$18", "18"),
    ("18 dollars", "18"),
    ("90^\\circ", "90"),
    ("90^{\\circ}", "90"),
    ("90°", "90"),
    ("10\\text{ cm}^2", "10"),
    ("3 \\text{ meters}", "3"),
    ("\\text{5 hours}", "5"),
    ("7 \\mbox{ inches}", "7"),
    ("45 degrees", "45"),
    ("2.5 km", "2.5"),
    ("\\$1,200", "1200"),
    ("20 m^2", "20"),
    # wrappers
    ("$\\frac{1}{2}$", "\\frac12"),
    ("\\boxed{7}", "7"),
    ("\\(3\\)", "3"),
    ("\\[ 4 \\]", "4"),
    ("x=\\frac{1}{2}", "0.5"),
    ("42.", "42"),
    ("\\text{(B)}", "B"),
    ("Monday", "\\text{Monday}"),
    ("\\displaystyle \\frac{1}{2}", "0.5"),
    ("\\!1\\,000", "1000"),
]

# (prediction, gold): different answers.
NOT_EQUIVALENT = [
    ("42", "43"),
    ("1,000", "100"),
    ("1,001", "1000"),
    ("0.5", "0.05"),
    ("-7", "7"),
    ("1/2", "2"),
    ("\\frac{1}{2}", "\\frac{2}{1}"),
    ("0.33", "1/3"),
    ("0.3333", "0.3334"),
    ("50%", "5"),
    ("0.5", "50"),
    ("1000000", "1000001"),
    ("1e3", "100"),
    ("10^{-2}", "0.1"),
    ("0", "0.0001"),
    ("\\sqrt{2}", "1.41"),
    ("\\pi", "3.14"),
    ("2\\pi", "\\pi"),
    ("\\sqrt{8}", "3"),
    ("\\log_2 8", "2"),
    ("\\sqrt[3]{27}", "9"),
    ("5!", "25"),
    ("2^{10}", "1000"),
    ("x^2", "2x"),
    ("(x+1)^2", "x^2+1"),
    ("2x+1", "2x-1"),
    ("a+b", "a-b"),
    ("x", "y"),
    ("3a", "3b"),
    ("x_1", "x_2"),
    ("\\frac{x}{2}", "2x"),
    ("2x", "2"),
    ("x^3", "x^2"),
    ("(1, 2)", "(2, 1)"),
    ("(1, 2)", "[1, 2]"),
    ("(1, 2]", "(1, 2)"),
    ("[0, 1]", "[0, 2]"),
    ("(1,2,3)", "(1,2)"),
    ("1, 2", "1, 3"),
    ("1, 2", "1"),
    ("(3, -4)", "(-4, 3)"),
    ("\\{1,2\\}", "\\{1,3\\}"),
    ("(1, 2) \\cup (3, 4)", "(1, 2) \\cup (3, 5)"),
    ("12 apples", "13"),
    ("90^\\circ", "180"),
    ("5 cm", "50"),
    ("\\infty", "-\\infty"),
    ("\\infty", "1000000"),
    ("y = 2x+1", "y = 2x-1"),
    ("x + y = 3", "x - y = 3"),
    ("B", "C"),
    ("\\text{(A)}", "B"),
    ("Monday", "Tuesday"),
    ("yes", "no"),
    ("\\frac{1}{0}", "1"),
    ("\\sqrt{-4}", "2"),
    ("1/0", "0"),
    ("12", "1,2"),
    ("(1, 2)", "1, 2, 3"),
    ("3.14159", "\\pi"),
    ("\\frac{\\pi}{2}", "\\frac{\\pi}{3}"),
    ("x+1", "x+1+y"),
]


def test_corpus_is_large_enough() -> None:
    assert len(EQUIVALENT) + len(NOT_EQUIVALENT) >= 150


@pytest.mark.parametrize(("pred", "gold"), EQUIVALENT)
def test_equivalent(pred: str, gold: str) -> None:
    assert m.math_equal(pred, gold, timeout=10.0)


@pytest.mark.parametrize(("pred", "gold"), NOT_EQUIVALENT)
def test_not_equivalent(pred: str, gold: str) -> None:
    assert not m.math_equal(pred, gold, timeout=10.0)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>2+2</think><answer>4</answer>", "4"),
        ("<think>\\boxed{1}</think>\n<answer>\\boxed{\\frac{1}{2}}</answer>", "\\frac{1}{2}"),
        ("so the total is \\boxed{\\frac{\\sqrt{3}}{2}} units", "\\frac{\\sqrt{3}}{2}"),
        ("first \\boxed{3}, no wait, \\boxed{5}", "5"),
        ("The answer is $\\frac{1}{2}$.", "$\\frac{1}{2}$"),
        ("so the final answer is: 12 apples.\nThanks", "12 apples"),
        ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "72"),
        ("we get 3 then 1,234.5 at the end", "1,234.5"),
        ("half is 3/4 of it", "3/4"),
        ("\\boxed 7$ done", "7"),
        ("nothing numeric here", None),
        ("truncated \\boxed{12", "12"),
    ],
)
def test_extract_answer(completion: str, expected: str | None) -> None:
    assert m.extract_answer(completion) == expected


def test_math_correct_reward() -> None:
    completions = [
        "<think>48/2 = 24, 48 + 24 = 72</think><answer>72</answer>",
        "The answer is 71.",
        "I think it is \\boxed{72.0}",
        "no idea",
        "The answer is 5",
    ]
    answers = ["72", "72", "72", "72", ""]
    assert m.math_correct([""] * 5, completions, answers) == [1.0, 0.0, 1.0, 0.0, None]


def test_plain_numbers_never_reach_sympy(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object) -> bool:
        raise AssertionError("the fast path must not call sympy")

    monkeypatch.setattr(WORKER, "equal", forbidden)
    pairs = [
        ("1,000", "1000"),
        ("\\frac{3}{4}", "0.75"),
        ("50%", "0.5"),
        ("7", "8"),
        ("2/3", "4/6"),
    ]
    assert [m.math_equal(a, b) for a, b in pairs] == [True, True, True, False, True]
    assert m.math_correct([""] * 2, ["#### 1,234", "The answer is 12 eggs."], ["1234", "13"]) == [
        1.0,
        0.0,
    ]


ADVERSARIAL = [
    "9^9^9^9",
    "9^{9^{9^{9}}}",
    "2^{2^{2^{2^{2^{2}}}}}",
    "(10^{999})^{999}",
    "x^{1000000}",
    "99999999999^99999999999",
    "1000000!",
    "(" * 5000 + "1" + ")" * 5000,
    "(" * 25 + "1" + ")" * 25 + "^" + "9^" * 20 + "9",
    "1" * 1_000_000,
    "x" * 5000,
    "\\frac{1}{" * 2000 + "2" + "}" * 2000,
    "\\sqrt{" * 3000,
    "+".join(["x"] * 3000),
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_answers_are_not_equal(text: str) -> None:
    assert not m.math_equal(text, "1")
    assert not m.math_equal("1", text)


def test_adversarial_completion_extraction_is_linear() -> None:
    # One megabyte of unclosed tags and boxes: extraction must finish and find nothing useful.
    text = "<answer>" * 50_000 + "\\boxed{" * 50_000 + "the answer is " * 10_000
    assert m.math_correct([""], [text], ["1"]) == [0.0]


def test_slow_sympy_comparison_times_out_and_worker_recovers() -> None:
    timeouts = WORKER.timeouts
    slow_a, slow_b = "(x+y+z+w+1)^{40}", "(x+y+z+w+2)^{40}"
    assert not m.math_equal(slow_a, slow_b, timeout=0.3)
    assert WORKER.timeouts == timeouts + 1
    # The killed worker is replaced: the next sympy comparison still works.
    assert m.math_equal("\\sqrt{8}", "2\\sqrt{2}", timeout=30.0)


def test_size_pre_check() -> None:
    assert m.too_complex("x" * (m.MAX_CHARS + 1))
    assert m.too_complex("(" * (m.MAX_DEPTH + 1) + ")" * (m.MAX_DEPTH + 1))
    assert m.too_complex("^".join("2" * (m.MAX_POWERS + 2)))
    assert not m.too_complex("\\frac{\\sqrt{2}}{2} + x^2")


def test_normalize() -> None:
    assert m.normalize("$\\boxed{\\dfrac{1}{2}}$") == "\\frac{1}{2}"
    assert m.normalize("x = 10\\text{ cm}.") == "10"
    assert m.normalize("\\left( 1, 2 \\right)") == "( 1, 2 )"


def test_dead_worker_is_replaced() -> None:
    assert m.math_equal("\\sqrt{18}", "3\\sqrt{2}", timeout=30.0)
    proc = WORKER._proc
    assert proc is not None
    proc.kill()
    proc.wait()
    assert m.math_equal("\\sqrt{27}", "3\\sqrt{3}", timeout=30.0)


def test_worker_that_cannot_start_degrades_to_not_equal(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlx_grpo.rewards import sandbox

    monkeypatch.setattr(sandbox, "_WORKER_CODE", "import sys; sys.exit(3)")
    worker = sandbox.SympyWorker()
    assert worker.equal("x", "x", timeout=5.0) is False  # not equal, and not a timeout
    assert worker.broken
    assert worker.equal("y", "y", timeout=5.0) is False  # no second start attempt
    assert worker.timeouts == 0


def test_tagged_only_ignores_untagged_answers() -> None:
    from mlx_grpo.rewards.math import math_correct

    completions = ["The answer is 12.", "<answer>12</answer>", "<answer>13</answer> 12"]
    assert math_correct([""] * 3, completions, ["12"] * 3) == [1.0, 1.0, 0.0]
    assert math_correct([""] * 3, completions, ["12"] * 3, tagged_only=True) == [0.0, 1.0, 0.0]
