"""Answer forms that math.py's plain-number and structure stages do not read on their own.

- mixed numbers: `1\\frac{1}{2}`, `-2\\frac{1}{3}`, `1 1/2` are whole + proper fraction;
- repeating decimals: `0.\\overline{3}`, `0.1\\bar{6}`, `0.\\dot{3}`, `0.\\dot{1}4285\\dot{7}`;
  both as exact Fractions (`exact_number_text` rewrites them to `p/q` for the later stages);
- number bases: `101_2`, `A3_{16}`, `1011_{(2)}`, `(1011)_2` (`bases_equal`);
- matrices: `pmatrix`, `bmatrix`, `Bmatrix`, `matrix`, rows split by `\\\\`, columns by `&`
  (`protect_rows` keeps the row breaks through normalization, `split_matrix` reads them);
- inequalities: `x > 2`, `2 < x \\leq 5`, `x \\in (2, \\infty)` as interval text.

The input is model output: no pattern has a quantified group holding another unbounded
quantifier, and each is used anchored (fullmatch, or match at the start) except the
inequality operators, which only split; so every call is linear in the input's length."""

from __future__ import annotations

import re
from fractions import Fraction

MAX_DIGITS = 200  # digits in one group of a mixed number or repeating decimal
ROW_MARK = "\ue000"  # stands for `\\` while normalize rewrites `\ ` and friends

_FRAC_GROUP = r"(?:\{\s*(\d+)\s*\}|(\d))"
_MIXED_TEX = re.compile(rf"([+-]?)(\d+)\s*\\frac{_FRAC_GROUP}{_FRAC_GROUP}")
_MIXED_SLASH = re.compile(r"([+-]?)(\d+) +(\d+)/(\d+)")
_OVERLINE = re.compile(r"([+-]?)(\d*)\.(\d*)\\(?:overline|bar)(?:\{(\d+)\}|(\d))")
_DOTS = re.compile(r"([+-]?)(\d*)\.(\d*)\\dot\{(\d)\}(?:(\d*)\\dot\{(\d)\})?")
_BASED = re.compile(
    r"(?:([0-9A-Za-z]+)|\(([0-9A-Za-z]+)\))"  # digits, or (digits)
    r"_(?:(\d{1,2})|\{\s*(\d{1,2})\s*\}|\{\s*\((\d{1,2})\)\s*\})"  # _2, _{2}, _{(2)}
)
_ALNUM = re.compile(r"[0-9A-Za-z]+")
_MATRIX_OPEN = re.compile(r"\\begin\{([pbB]?)matrix\}")
_INEQ_OP = re.compile(
    r"(\\geqslant|\\leqslant|\\geq|\\leq|\\ge|\\le|\\gt|\\lt)(?![a-zA-Z])|(>=|<=|≥|≤|>|<)"
)
_VARIABLE = re.compile(r"[a-zA-Z](?:_\{?\w+\}?)?")
_IN_PREFIX = re.compile(r"([a-zA-Z](?:_\{?\w+\}?)?)\s*\\in(?![a-zA-Z])\s*")
_LESS = {"<", "<=", "≤", "\\le", "\\leq", "\\leqslant", "\\lt"}
_STRICT = {"<", ">", "\\lt", "\\gt"}


# ---------------------------------------------------------------- exact numbers


def special_number(s: str) -> Fraction | None:
    """The exact value of a mixed number or a repeating decimal, else None."""
    s = s.strip()
    if len(s) > 4 * MAX_DIGITS:
        return None
    for reader in (_mixed, _overline, _dots):
        value = reader(s)
        if value is not None:
            return value
    return None


def exact_number_text(s: str) -> str:
    """`s` rewritten as `p/q` (a trailing % kept) when it is a special number, else `s`."""
    percent = s.endswith("%")
    value = special_number(s[:-1] if percent else s)
    if value is None:
        return s
    text = f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value)
    return text + ("%" if percent else "")


def _signed(sign: str, value: Fraction) -> Fraction:
    return -value if sign == "-" else value


def _mixed(s: str) -> Fraction | None:
    """1\\frac{1}{2}, 1\\frac12, 1 1/2: a whole number and a proper fraction, summed."""
    if m := _MIXED_TEX.fullmatch(s):
        whole, num, den = m.group(2), m.group(3) or m.group(4), m.group(5) or m.group(6)
    elif m := _MIXED_SLASH.fullmatch(s):
        whole, num, den = m.group(2), m.group(3), m.group(4)
    else:
        return None
    if max(len(whole), len(num), len(den)) > MAX_DIGITS or not 0 < int(num) < int(den):
        return None
    return _signed(m.group(1), int(whole) + Fraction(int(num), int(den)))


def _repeating(sign: str, whole: str, fixed: str, repeat: str) -> Fraction | None:
    """whole.fixed followed by `repeat` repeated forever, exactly."""
    if max(len(whole), len(fixed), len(repeat)) > MAX_DIGITS:
        return None
    value = Fraction(int(whole or "0")) + Fraction(int(fixed or "0"), 10 ** len(fixed))
    value += Fraction(int(repeat), 10 ** len(fixed) * (10 ** len(repeat) - 1))
    return _signed(sign, value)


def _overline(s: str) -> Fraction | None:
    m = _OVERLINE.fullmatch(s)
    return _repeating(m[1], m[2], m[3], m[4] or m[5]) if m else None


def _dots(s: str) -> Fraction | None:
    """0.\\dot{3} repeats one digit; 0.\\dot{1}4285\\dot{7} repeats from dot to dot."""
    m = _DOTS.fullmatch(s)
    if not m:
        return None
    repeat = m[4] + (m[5] or "") + (m[6] or "") if m[6] else m[4]
    return _repeating(m[1], m[2], m[3], repeat)


# ---------------------------------------------------------------- number bases


def based_number(s: str) -> tuple[str, int, int] | None:
    """(digits, base, value) for `101_2`, `A3_{16}`, `1011_{(2)}`, `(1011)_2`, else None.

    Digits must be valid for the base (2 to 36). Letters alone count only as two or more
    capitals (`FF_{16}`): `a_{16}` and `F_{16}` are a sequence's terms, not numbers."""
    m = _BASED.fullmatch(s.strip())
    if not m:
        return None
    digits, base = m[1] or m[2], int(m[3] or m[4] or m[5])
    if not 2 <= base <= 36 or len(digits) > MAX_DIGITS:
        return None
    if not any(c.isdigit() for c in digits) and not (len(digits) > 1 and digits.isupper()):
        return None
    try:
        return digits, base, int(digits, base)
    except ValueError:  # a digit the base does not have
        return None


def bases_equal(a: str, b: str) -> bool | None:
    """None when neither side has a base. Two based numbers are equal when their values are;
    a based one and a plain one when the plain one has the same digits (the model dropped
    the subscript) or the base is 10 and the values agree. Anything else is not equal."""
    based_a, based_b = based_number(a), based_number(b)
    if based_a is None and based_b is None:
        return None
    if based_a is not None and based_b is not None:
        return based_a[2] == based_b[2]
    (digits, base, value), plain = (based_a, b) if based_a is not None else (based_b, a)
    plain = plain.strip()
    if _ALNUM.fullmatch(plain) and plain.lower() == digits.lower():
        return True
    return base == 10 and plain.isdigit() and int(plain) == value


# ---------------------------------------------------------------- matrices


def protect_rows(s: str) -> str:
    """Hide `\\\\` row breaks from normalize's `\\ ` (LaTeX space) replacement."""
    return s.replace("\\\\", ROW_MARK)


def restore_rows(s: str) -> str:
    return s.replace(ROW_MARK, "\\\\")


def split_matrix(s: str) -> tuple[str, list[str]] | None:
    """("matrix RxC", entries row by row) for a matrix environment with a full grid, else None.

    Only pmatrix, bmatrix, Bmatrix and matrix: vmatrix is a determinant, and a matrix never
    equals a tuple (`(1, 2)` is not the column vector, the shape would be a guess)."""
    opening = _MATRIX_OPEN.match(s)
    closing = f"\\end{{{opening[1]}matrix}}" if opening else ""
    if opening is None or not s.endswith(closing) or len(s) < opening.end() + len(closing):
        return None
    body = s[opening.end() : len(s) - len(closing)]
    if "\\begin" in body:
        return None
    rows = [row.strip() for row in body.split("\\\\")]
    if len(rows) > 1 and not rows[-1]:
        rows.pop()  # `1 \\ 2 \\`: a trailing row break
    grid = [[entry.strip() for entry in row.split("&")] for row in rows]
    width = len(grid[0])
    if any(len(row) != width or not all(row) for row in grid):
        return None
    return f"matrix {len(grid)}x{width}", [entry for row in grid for entry in row]


# ---------------------------------------------------------------- inequalities


def inequality_as_interval(s: str) -> str:
    """`x > 2` -> `(2, \\infty)`, `2 < x \\leq 5` -> `(2, 5]`, `x \\in (2, 3)` -> `(2, 3)`,
    `x < 1 or x > 2` -> `(-\\infty, 1) \\cup (2, \\infty)`; anything else (two variables, mixed
    directions, commas) comes back unchanged."""
    alternatives = [part.strip() for part in s.split(" or ")]
    if len(alternatives) == 1:
        return _one_inequality(s)
    intervals = [_one_inequality(part) for part in alternatives]
    if any(i == part for i, part in zip(intervals, alternatives)):
        return s  # an "or" between things that are not all inequalities
    return " \\cup ".join(intervals)


def _one_inequality(s: str) -> str:
    if (prefix := _IN_PREFIX.match(s)) and s[prefix.end() :].startswith(("(", "[", "\\{")):
        return s[prefix.end() :]
    pieces = _INEQ_OP.split(s)
    if len(pieces) not in (4, 7):  # 2 or 3 parts: each op adds its two capture groups
        return s
    parts = [piece.strip() for piece in pieces[::3]]
    ops = [pieces[i] or pieces[i + 1] for i in range(1, len(pieces), 3)]
    if any(not part or "," in part or "=" in part for part in parts):
        return s
    interval = _interval(parts, ops)
    return interval if interval is not None else s


def _interval(parts: list[str], ops: list[str]) -> str | None:
    is_var = [bool(_VARIABLE.fullmatch(part)) for part in parts]
    less = [op in _LESS for op in ops]
    if len(parts) == 2 and is_var[0] != is_var[1]:
        bound = parts[1] if is_var[0] else parts[0]
        upper = less[0] if is_var[0] else not less[0]  # x < b or b > x: b is an upper bound
        strict = ops[0] in _STRICT
        if upper:
            return f"(-\\infty, {bound}{')' if strict else ']'}"
        return f"{'(' if strict else '['}{bound}, \\infty)"
    if len(parts) == 3 and is_var == [False, True, False] and less[0] == less[1]:
        (low, low_op), (high, high_op) = (parts[0], ops[0]), (parts[2], ops[1])
        if not less[0]:
            (low, low_op), (high, high_op) = (high, high_op), (low, low_op)
        left, right = "(" if low_op in _STRICT else "[", ")" if high_op in _STRICT else "]"
        return f"{left}{low}, {high}{right}"
    return None
