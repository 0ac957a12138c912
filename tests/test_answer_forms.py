"""Answer forms the checker reads: mixed numbers, repeating decimals, number bases,
matrices and inequalities (`mlx_grpo/rewards/forms.py`).

Each group has the equivalences that were missed and the false positives that the old
readings gave (a mixed number read as a product, `1 1/2` read as `11/2`).
"""

from __future__ import annotations

import pytest

from mlx_grpo.rewards import forms
from mlx_grpo.rewards.math import math_correct, math_equal

PMATRIX_12 = "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"

EQUAL = [
    # mixed numbers: whole + proper fraction
    ("1\\frac{1}{2}", "3/2"),
    ("1\\frac{1}{2}", "1.5"),
    ("-2\\frac{1}{3}", "-\\frac{7}{3}"),
    ("3 \\frac{1}{4}", "3.25"),
    ("1 1/2", "\\frac{3}{2}"),
    ("2\\dfrac{3}{4}", "11/4"),
    ("1\\frac12", "1.5"),
    ("(1\\frac{1}{2}, 2)", "(3/2, 2)"),
    ("1\\frac{1}{2}", "\\frac{\\sqrt{9}}{2}"),  # through sympy
    # repeating decimals, exact
    ("0.\\overline{3}", "1/3"),
    ("0.1\\overline{6}", "\\frac{1}{6}"),
    ("1.\\overline{142857}", "8/7"),
    ("0.\\overline{9}", "1"),
    ("-0.\\overline{3}", "-1/3"),
    ("0.\\overline{3}", "0.3333"),  # a rounded decimal still matches
    ("0.\\dot{3}", "1/3"),
    ("0.1\\dot{6}", "1/6"),
    ("0.\\dot{1}4285\\dot{7}", "1/7"),
    ("0.\\bar{3}", "1/3"),
    ("0.\\overline{12}", "4/33"),
    ("33.\\overline{3}\\%", "1/3"),
    # number bases
    ("101_2", "101_{2}"),
    ("101_2", "5_{10}"),
    ("1011_2", "13_8"),
    ("A3_{16}", "243_{8}"),
    ("1011", "1011_2"),  # the model dropped the subscript
    ("1011_{(2)}", "1011_2"),
    ("(1011)_2", "11_{10}"),
    ("a3", "A3_{16}"),
    ("163", "163_{10}"),
    ("FF_{16}", "11111111_2"),
    ("\\text{1011}_2", "1011_2"),
    # matrices and column vectors
    (PMATRIX_12, "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    (PMATRIX_12, "\\begin{bmatrix} 1 \\\\ 2 \\end{bmatrix}"),
    (
        "\\begin{pmatrix} \\frac{1}{2} \\\\ \\sqrt{4} \\end{pmatrix}",
        "\\begin{pmatrix}0.5\\\\2\\end{pmatrix}",
    ),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{matrix}1&2\\\\3&4\\end{matrix}"),
    ("\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{Bmatrix}1 & 2\\end{Bmatrix}"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\\\ \\end{pmatrix}", PMATRIX_12),  # trailing row break
    (
        "\\mathbf{v} = \\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}",
        "\\begin{pmatrix}-1\\\\2\\end{pmatrix}",
    ),
    # inequalities against intervals, either side
    ("x > 2", "(2, \\infty)"),
    ("x \\geq 2", "[2, \\infty)"),
    ("x \\ge 2", "[2, \\infty)"),
    ("x >= 2", "[2,\\infty)"),
    ("x < 3", "(-\\infty, 3)"),
    ("x \\le 3", "(-\\infty, 3]"),
    ("2 < x \\leq 5", "(2, 5]"),
    ("5 \\geq x > 2", "(2, 5]"),
    ("x \\in (2, \\infty)", "(2, \\infty)"),
    ("(2, \\infty)", "x > 2"),
    ("2 < x", "x > 2"),
    ("x > \\frac{1}{2}", "(0.5, \\infty)"),
    ("t \\leqslant -1", "(-\\infty, -1]"),
    ("x\\geq2", "[2, \\infty)"),
    ("x ≥ 2", "[2, \\infty)"),
    ("-\\infty < x < 3", "(-\\infty, 3)"),
    ("x_1 > 0", "(0, \\infty)"),
    ("x \\in [1, 2) \\cup (3, 4]", "[1, 2) \\cup (3, 4]"),
    ("x < 1 \\text{ or } x \\geq 2", "(-\\infty, 1) \\cup [2, \\infty)"),
    ("x < 1 \\cup x > 2", "(2, \\infty) \\cup (-\\infty, 1)"),
]

NOT_EQUAL = [
    # mixed numbers were products: 1\frac{1}{2} = 1/2 and 1 1/2 = 11/2 were "equal"
    ("1\\frac{1}{2}", "\\frac{1}{2}"),
    ("1 1/2", "11/2"),
    ("1 1/2", "1/2"),
    ("2\\frac{1}{2}", "1"),
    ("-2\\frac{1}{3}", "-5/3"),
    ("1\\frac{1}{2}", "2\\frac{1}{2}"),
    # repeating decimals
    ("0.\\overline{3}", "0.3"),
    ("0.\\overline{3}", "0.33"),
    ("0.1\\overline{6}", "0.16"),
    ("0.\\overline{12}", "0.\\overline{21}"),
    ("0.\\overline{3}", "3"),
    # number bases: values must agree, a plain number must have the same digits
    ("101_2", "101_3"),
    ("11", "1011_2"),  # the decimal value is not the base-2 answer asked for
    ("5", "101_2"),
    ("1012_2", "1012"),  # 2 is not a base-2 digit: not a number
    ("a_{16}", "10"),  # a sequence term, not hex
    ("F_{16}", "15"),
    ("A3_{16}", "A4"),
    ("101_2", "\\sqrt{25}"),
    # matrices: shape and every entry
    (PMATRIX_12, "\\begin{pmatrix} 1 & 2 \\end{pmatrix}"),
    (PMATRIX_12, "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}"),
    (PMATRIX_12, "\\begin{pmatrix} 12 \\end{pmatrix}"),
    (PMATRIX_12, "\\begin{pmatrix} 1 \\ 2 \\end{pmatrix}"),
    (PMATRIX_12, "(1, 2)"),  # strict: a matrix only equals a matrix
    (PMATRIX_12, "\\begin{vmatrix} 1 \\\\ 2 \\end{vmatrix}"),
    (
        "\\begin{pmatrix} 1 & 2 \\\\ 3 \\end{pmatrix}",
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 0 \\end{pmatrix}",
    ),
    # inequalities: strictness and direction matter
    ("x > 2", "[2, \\infty)"),
    ("x \\geq 2", "(2, \\infty)"),
    ("x < 2", "(2, \\infty)"),
    ("2 < x < 5", "(2, 5]"),
    ("x > 2", "2"),
    ("a < b", "(-\\infty, b)"),  # two variables: not an interval
    ("2 < x > 5", "(2, 5)"),  # mixed directions
    ("x \\in (2, \\infty)", "[2, \\infty)"),
    ("x < 1 or x > 2", "(-\\infty, 1) \\cup [2, \\infty)"),
    ("x < 1 or 2", "(-\\infty, 1) \\cup 2"),
]


@pytest.mark.parametrize(("pred", "gold"), EQUAL)
def test_equal(pred: str, gold: str) -> None:
    assert math_equal(pred, gold, timeout=10.0)
    assert math_equal(gold, pred, timeout=10.0)


@pytest.mark.parametrize(("pred", "gold"), NOT_EQUAL)
def test_not_equal(pred: str, gold: str) -> None:
    assert not math_equal(pred, gold, timeout=10.0)
    assert not math_equal(gold, pred, timeout=10.0)


def test_exact_values() -> None:
    from fractions import Fraction

    assert forms.special_number("1\\frac{1}{2}") == Fraction(3, 2)
    assert forms.special_number("-2\\frac{1}{3}") == Fraction(-7, 3)
    assert forms.special_number("0.1\\overline{6}") == Fraction(1, 6)
    assert forms.special_number("1.\\overline{142857}") == Fraction(8, 7)
    assert forms.special_number("0.\\dot{1}4285\\dot{7}") == Fraction(1, 7)
    assert forms.special_number("1\\frac{3}{2}") is None  # improper: not a mixed number
    assert forms.special_number("1 3/2") is None
    assert forms.special_number("\\frac{1}{2}") is None  # plain forms are math.py's
    assert forms.based_number("A3_{16}") == ("A3", 16, 163)
    assert forms.based_number("1012_2") is None
    assert forms.based_number("x_1") is None


def test_matrix_rows_survive_normalize() -> None:
    from mlx_grpo.rewards.math import normalize, split_structure

    text = normalize("$\\begin{pmatrix} 1 & \\dfrac{1}{2} \\\\ 3 & 4 \\end{pmatrix}$")
    assert text == "\\begin{pmatrix} 1 & \\frac{1}{2} \\\\ 3 & 4 \\end{pmatrix}"
    assert split_structure(text) == ("matrix 2x2", ["1", "\\frac{1}{2}", "3", "4"])
    assert normalize("a\\ b") == "a b"  # the LaTeX space is still a space


def test_inequality_text() -> None:
    assert forms.inequality_as_interval("2 < x \\leq 5") == "(2, 5]"
    assert forms.inequality_as_interval("x \\geq -1") == "[-1, \\infty)"
    assert forms.inequality_as_interval("x = 2") == "x = 2"
    assert forms.inequality_as_interval("x > 1,000") == "x > 1,000"  # commas: left alone
    assert forms.inequality_as_interval("x < 0 or x > 1") == "(-\\infty, 0) \\cup (1, \\infty)"
    assert forms.inequality_as_interval("x < 0 or yes") == "x < 0 or yes"


def test_math_correct_reads_the_forms() -> None:
    completions = [
        "<answer>1\\frac{1}{2}</answer>",
        "so it is \\boxed{\\frac{1}{2}}",
        "The answer is $0.\\overline{3}$.",
        "<answer>1011</answer>",
        "<answer>11</answer>",
        "\\boxed{\\begin{pmatrix} 3 \\\\ -1 \\end{pmatrix}}",
        "<answer>x \\geq 4</answer>",
    ]
    gold = ["3/2", "1\\frac{1}{2}", "\\frac{1}{3}", "1011_2", "1011_2"]
    gold += ["\\begin{pmatrix}3\\\\-1\\end{pmatrix}", "[4, \\infty)"]
    scores = math_correct([""] * 7, completions, gold)
    assert scores == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
