"""Math correctness: extract the final answer from a completion and compare it with the gold.

`extract_answer` looks, in order, for the last `<answer>...</answer>`, the last `\\boxed{}`,
"the (final) answer is ...", "#### ...", and finally the last number in the text.

`math_equal(pred, gold)` decides equivalence in stages, cheapest first:
1. size limits (raw and normalized length, bracket depth, `^` count): too big is "not equal";
2. normalized string equality (LaTeX spacing, `\\left`, `$`, `\\text{}` and units stripped;
   `\\\\` row breaks kept), after mixed numbers (1\\frac{1}{2}) and repeating decimals
   (0.\\overline{3}) are rewritten as exact p/q; number bases (101_2) compared (`forms.py`);
3. plain numbers as exact Fractions (1,000 / 0.5 / 3/4 / \\frac{3}{4} / 50%), no sympy
   (a decimal of 4+ places also matches what it rounds: 0.3333 = 1/3);
4. structure: tuples and intervals (ordered, brackets must match; an inequality such as
   `2 < x \\leq 5` is read as its interval), bare lists and sets (unordered), matrices (same
   shape, entries in order), equations (sides compared as lhs - rhs);
5. sympy (see `latex.py`), in a worker process with a time limit (`sandbox.py`).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict, deque
from fractions import Fraction
from typing import NamedTuple

from mlx_grpo.rewards import forms
from mlx_grpo.rewards.custom import Unscored
from mlx_grpo.rewards.sandbox import WORKER

MAX_RAW_CHARS = 10_000
MAX_CHARS = 1_000
MAX_DEPTH = 30
MAX_POWERS = 12
MAX_ITEMS = 32
ROUNDED_PLACES = 4

_ANSWER_IS = re.compile(r"(?:final answer|the answer)\s*(?:is|:)\s*:?", re.IGNORECASE)
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_PLAIN = re.compile(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d{1,3}))?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_FRAC = re.compile(r"([+-]?)\\frac(?:\{([^{}]+)\}|(\d))(?:\{([^{}]+)\}|(\d))")
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_UNITS = [
    "cm",
    "mm",
    "km",
    "m",
    "kg",
    "mg",
    "g",
    "ml",
    "L",
    "s",
    "sec",
    "min",
    "h",
    "hr",
    "ft",
    "in",
]
# Linear-time by construction: no quantified group can match what its neighbour matches.
_NUM_PREFIX = re.compile(r"[+-]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)%?")
_UNIT_PIECE = re.compile(r"[a-zA-Z]+\.?(?:\^\d)?")  # a unit word is one or more pieces
_UNIT_JOINED = re.compile(rf"(?:{'|'.join(_UNITS)})(?:\^\d)?")
_VAR_PREFIX = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?\s*=\s*(?=[^=]*$)")
_WORD = re.compile(r"\(?[a-zA-Z][a-zA-Z ]*\)?")
_NOT_UNITS = {"pi", "i", "e", "sqrt", "infty", "inf"}
_REPLACEMENTS = [
    ("\\!", ""), ("\\,", ""), ("\\;", ""), ("\\:", ""), ("\\ ", " "), ("~", " "),
    ("\\displaystyle", ""), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("{,}", ","),
    ("^{\\circ}", ""), ("^\\circ", ""), ("\\circ", ""), ("°", ""), ("\\%", "%"),
    ("\\$", ""), ("$", ""), ("\\infinity", "\\infty"), ("\\le ", "\\leq "),
]  # fmt: skip


# ---------------------------------------------------------------- extraction


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} or \\fbox{...} (nested braces kept), or None."""
    boxed, fbox = text.rfind("\\boxed"), text.rfind("\\fbox")
    if boxed < 0 and fbox < 0:
        return None
    i = boxed + len("\\boxed") if boxed > fbox else fbox + len("\\fbox")
    if text.startswith(" ", i) and not text[i:].lstrip().startswith("{"):  # "\boxed 5"
        words = text[i:].split("$")[0].split()
        return words[0] if words else None
    while text.startswith(" ", i):
        i += 1
    if not text.startswith("{", i):
        return None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j].strip()
    return None  # unclosed (truncated) box


def _answer_tag(text: str) -> str | None:
    end = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, end) if end >= 0 else -1
    return text[start + len("<answer>") : end].strip() if start >= 0 else None


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = deque(pattern.finditer(text), maxlen=1)
    return found[0] if found else None


def _answer_is(text: str) -> str | None:
    last = _last_match(_ANSWER_IS, text)
    if last is None:
        return None
    tail = text[last.end() : last.end() + 300].strip().split("\n")[0]
    tail = re.split(r"\.(?:\s|$)", tail)[0].strip()
    return tail or None


def _after_hashes(text: str) -> str | None:
    pos = text.rfind("####")
    tail = text[pos + 4 :].strip().split("\n")[0].strip() if pos >= 0 else ""
    return tail or None


def _last_number(text: str) -> str | None:
    last = _last_match(_NUMBER, text)
    return last.group(0) if last else None


def extract_answer(completion: str) -> str | None:
    """The final answer in a completion, or None when there is none."""
    tagged = _answer_tag(completion)
    if tagged is not None:
        return last_boxed(tagged) or tagged or None
    for finder in (last_boxed, _answer_is, _after_hashes, _last_number):
        found = finder(completion)
        if found:
            return found
    return None


# ---------------------------------------------------------------- normalization


def _strip_wrappers(s: str) -> str:
    s = s.strip()
    for left, right in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(left) and s.endswith(right):
            s = s[2:-2].strip()
    return s


def normalize(answer: str) -> str:
    """Canonical text for an answer: LaTeX noise, wrappers, "x =", units and final '.' removed."""
    s = answer.strip()
    if "\\boxed" in s or "\\fbox" in s:
        s = last_boxed(s) or s
    s = forms.protect_rows(_strip_wrappers(s))
    for old, new in _REPLACEMENTS:
        s = s.replace(old, new)
    s = forms.restore_rows(s)
    s = re.sub(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])", "", s)
    for _ in range(3):  # \text{...} may nest once or twice
        s = _TEXT_CMD.sub(r"\1", s)
    s = _VAR_PREFIX.sub("", s.strip()).rstrip(".").strip()
    return re.sub(r"\s+", " ", _strip_units(s)).strip()


def _strip_units(s: str) -> str:
    """ "12 apples" -> "12", "5cm^2" -> "5": words after a plain number are units.

    The words are checked one at a time (`_UNIT_PIECE` has no nested repeat), so this is
    linear in the length of the answer whatever the model wrote after the number."""
    number = _NUM_PREFIX.match(s)
    rest = s[number.end() :] if number else ""
    if not number or not rest:
        return s
    if rest[0].isspace():
        words = rest.split()
        if not all(_is_unit_word(word) for word in words):
            return s
    elif _UNIT_JOINED.fullmatch(rest):
        words = [rest]
    else:
        return s
    letters = {w.lower() for word in words for w in re.findall(r"[a-zA-Z]+", word)}
    return number.group(0) if not letters & _NOT_UNITS else s


def _is_unit_word(word: str) -> bool:
    """ "kg", "m.", "m^2", "m.^2kg": pieces of letters, each with an optional "." and "^d"."""
    end = 0
    for piece in _UNIT_PIECE.finditer(word):
        if piece.start() != end:
            return False
        end = piece.end()
    return 0 < end == len(word)


# ---------------------------------------------------------------- plain numbers


class Number(NamedTuple):
    """A plain number: exact value, whether it had a % sign, and how far it is rounded
    (half a unit in the last decimal place, for decimals of ROUNDED_PLACES or more digits)."""

    value: Fraction
    percent: bool = False
    tolerance: Fraction = Fraction(0)


def parse_number(s: str) -> Number | None:
    """A plain number (1,000 / -0.5 / 3/4 / \\frac{3}{4} / 1e3 / 50%), or None. No sympy."""
    s = s.replace(" ", "")
    percent = s.endswith("%")
    s = s.rstrip("%")
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    if m := _FRAC.fullmatch(s):
        ratio = _ratio(m.group(2) or m.group(3), m.group(4) or m.group(5))
        return None if ratio is None else Number(-ratio if m.group(1) == "-" else ratio, percent)
    if s.count("/") == 1:
        ratio = _ratio(*s.split("/"))
        return None if ratio is None else Number(ratio, percent)
    number = _plain(s)
    return number._replace(percent=percent) if number else None


def _ratio(numerator: str, denominator: str) -> Fraction | None:
    num, den = _plain(numerator), _plain(denominator)
    return None if num is None or den is None or not den.value else num.value / den.value


def _plain(s: str) -> Number | None:
    m = _PLAIN.fullmatch(s.strip())
    if not m:
        return None
    digits, exponent = m.group(2), m.group(3)
    value = Fraction(digits) * (Fraction(10) ** int(exponent) if exponent else 1)
    places = len(digits.split(".")[1]) if "." in digits and not exponent else 0
    tolerance = Fraction(1, 2 * 10**places) if places >= ROUNDED_PLACES else Fraction(0)
    return Number(-value if m.group(1) == "-" else value, False, tolerance)


def numbers_equal(a: Number, b: Number) -> bool:
    """Exactly equal, or equal up to the rounding of a long decimal (0.3333 = 1/3, 0.33 is
    not); a percentage also matches its value / 100 (50% = 0.5 = 50)."""

    def candidates(n: Number) -> list[tuple[Fraction, Fraction]]:
        scaled = [(n.value / 100, n.tolerance / 100)] if n.percent else []
        return [(n.value, n.tolerance), *scaled]

    return any(
        abs(x - y) <= max(tol_x, tol_y) for x, tol_x in candidates(a) for y, tol_y in candidates(b)
    )


# ---------------------------------------------------------------- structure


def split_top(s: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside any brackets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        if s.startswith(("\\{", "\\}"), i):
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        depth += 1 if s[i] in "([{" else -1 if s[i] in ")]}" else 0
        if depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i].strip())
            start = i + len(sep)
        i += 1
    return [*parts, s[start:].strip()]


def _wraps(s: str) -> bool:
    """True when the bracket opened at s[0] closes at s[-1] (either bracket kind)."""
    depth = 0
    for i, char in enumerate(s):
        depth += 1 if char in "([" else -1 if char in ")]" else 0
        if depth == 0:
            return i == len(s) - 1
    return False


def split_structure(s: str) -> tuple[str, list[str]] | None:
    """("()"|"[)"|...|"set"|"list"|"union"|"matrix RxC", items) for tuples, intervals (an
    inequality is read as one), sets, lists and matrices."""
    s = forms.inequality_as_interval(s)
    if (matrix := forms.split_matrix(s)) is not None:
        return matrix
    if len(union := split_top(s, "\\cup")) > 1:
        return "union", union
    if s.startswith("\\{") and s.endswith("\\}"):
        return "set", split_top(s[2:-2])
    if len(s) > 2 and s[0] in "([" and s[-1] in ")]" and _wraps(s):
        items = split_top(s[1:-1])
        return (s[0] + s[-1], items) if len(items) > 1 else None
    items = split_top(s)
    return ("list", items) if len(items) > 1 else None


def _unordered_equal(xs: list[str], ys: list[str], deadline: Deadline, depth: int) -> bool:
    unused, rest = list(ys), []
    for x in xs:  # identical items pair off first, without sympy
        same = next((y for y in unused if y.replace(" ", "") == x.replace(" ", "")), None)
        if same is None:
            rest.append(x)
        else:
            unused.remove(same)
    for x in rest:
        match = next((y for y in unused if _equal(x, y, deadline, depth)), None)
        if match is None:
            return False
        unused.remove(match)
    return True


def _structures_equal(a: str, b: str, deadline: Deadline, depth: int) -> bool | None:
    """None when neither side has structure; otherwise whether the structures match."""
    sa, sb = split_structure(a), split_structure(b)
    if sa is None and sb is None:
        return None
    if sa is None or sb is None or depth > 2 or len(sa[1]) > MAX_ITEMS:
        return False
    (kind_a, items_a), (kind_b, items_b) = sa, sb
    unordered = {"list", "set", "union"}
    if len(items_a) != len(items_b) or (kind_a != kind_b and {kind_a, kind_b} - unordered):
        return False
    if kind_a in unordered:
        return _unordered_equal(items_a, items_b, deadline, depth + 1)
    return all(_equal(x, y, deadline, depth + 1) for x, y in zip(items_a, items_b))


# ---------------------------------------------------------------- equality


def too_complex(s: str) -> bool:
    """Size pre-check before sympy: length, bracket nesting, power towers."""
    if len(s) > MAX_CHARS or s.count("^") + s.count("**") > MAX_POWERS or "!!" in s:
        return True
    depth = deepest = 0
    for char in s:
        depth += 1 if char in "([{" else -1 if char in ")]}" else 0
        deepest = max(deepest, depth)
    return deepest > MAX_DEPTH


def _is_word(s: str) -> bool:
    letters = re.sub(r"[^a-zA-Z]", "", s)
    return bool(_WORD.fullmatch(s)) and len(letters) >= 2 and letters.lower() not in ("pi", "inf")


class CheckTimeout(Exception):
    """The answer check ran past its time budget."""


class Deadline:
    """When a completion's check must end; moved back by any wait for the sympy worker to
    (re)start, which is never counted in the budget."""

    def __init__(self, budget: float) -> None:
        self.at = time.monotonic() + budget

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.remaining() <= 0


def _sympy_equal(a: str, b: str, deadline: Deadline) -> bool:
    if too_complex(a) or too_complex(b):
        return False
    deadline.at += WORKER.ready()  # a (re)start is waited for outside the budget
    remaining = deadline.remaining()
    verdict = WORKER.equal(a, b, remaining) if remaining > 0 else None
    if verdict is None:
        raise CheckTimeout
    return verdict


def _equation_equal(a: str, b: str, deadline: Deadline) -> bool:
    (la, ra), (lb, rb) = a.split("="), b.split("=")
    diff_a = f"({la})-({ra})"
    return _sympy_equal(diff_a, f"({lb})-({rb})", deadline) or _sympy_equal(
        diff_a, f"({rb})-({lb})", deadline
    )


def _equal(a: str, b: str, deadline: Deadline, depth: int = 0) -> bool:
    a, b = forms.exact_number_text(a), forms.exact_number_text(b)  # 1\frac{1}{2} -> 3/2
    if (based := forms.bases_equal(a, b)) is not None:
        return based
    if a.replace(" ", "") == b.replace(" ", ""):
        return True
    na, nb = parse_number(a), parse_number(b)
    if na is not None and nb is not None:
        return numbers_equal(na, nb)
    structured = _structures_equal(a, b, deadline, depth)
    if structured is not None:
        return structured
    if _is_word(a) or _is_word(b):
        return a.lower().strip("() ") == b.lower().strip("() ")
    if a.count("=") == 1 and b.count("=") == 1:
        return _equation_equal(a, b, deadline)
    if "=" in a or "=" in b:
        return False
    return _sympy_equal(a, b, deadline)


def math_equal(pred: str | None, gold: str | None, timeout: float = 1.0) -> bool:
    """Whether a predicted answer equals the gold answer; False on anything too big or slow."""
    try:
        return _check(pred, gold, Deadline(timeout))
    except CheckTimeout:
        return False


def _check(pred: str | None, gold: str | None, deadline: Deadline) -> bool:
    """`math_equal` by a deadline; raises CheckTimeout once it has passed."""
    if not pred or not gold or len(pred) > MAX_RAW_CHARS or len(gold) > MAX_RAW_CHARS:
        return False
    a, b = normalize(pred), normalize(gold)
    if deadline.passed():
        raise CheckTimeout
    if not a or not b or len(a) > MAX_CHARS or len(b) > MAX_CHARS:
        return False
    return _equal(a, b, deadline)


class VerdictCache:
    """Verdicts per (answer, gold), timeouts included: an answer that ran out of time is not
    checked again under the same or a smaller budget (a group often repeats one answer)."""

    def __init__(self, size: int = 16_384) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], bool | float] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> bool | None:
        """The verdict when one is known, else None (see `timed_out` for timeouts)."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
        return found if isinstance(found, bool) else None

    def timed_out(self, key: tuple[str, str], budget: float) -> bool:
        """Whether this check already ran out of time under a budget of at least `budget`."""
        with self._lock:
            found = self._items.get(key)
        return not isinstance(found, bool) and found is not None and budget <= found

    def put(self, key: tuple[str, str], verdict: bool | float) -> None:
        with self._lock:
            self._items[key] = verdict
            self._items.move_to_end(key)
            if len(self._items) > self.size:
                self._items.popitem(last=False)


VERDICTS = VerdictCache()


def score_completion(
    completion: str, gold: str, budget: float = 1.0, tagged_only: bool = False
) -> float:
    """1.0 / 0.0 for one completion, or `Unscored("timeout")` when the whole check (finding
    the answer, normalizing, comparing) ran past `budget` seconds. Waiting for the sympy
    worker to start (or restart after an earlier timeout) is never counted in the budget."""
    deadline = Deadline(budget)
    pred = _answer_tag(completion) if tagged_only else extract_answer(completion)
    if not pred:
        return 0.0
    key = (pred, gold)
    late = Unscored("timeout", f"its answer check ran past the {budget:g} s params.timeout")
    if VERDICTS.timed_out(key, budget):
        return late
    known = VERDICTS.get(key)
    if known is not None:
        return 1.0 if known else 0.0
    try:
        verdict = _check(pred, gold, deadline)
    except CheckTimeout:
        VERDICTS.put(key, budget)
        return late
    VERDICTS.put(key, verdict)
    return 1.0 if verdict else 0.0


def math_correct(
    prompts: list[str],
    completions: list[str],
    answers: list[str],
    *,
    timeout: float = 1.0,
    tagged_only: bool = False,
    **extras: object,
) -> list[float | None]:
    """1.0 when the completion's final answer equals the gold answer, else 0.0.

    None (not applicable) for rows without a gold answer. `timeout` (seconds) is each
    completion's whole budget; past it the completion scores 0 and counts as an error (metric
    `rewards/math_correct/timeout`). With `tagged_only`, only an answer inside
    `<answer>...</answer>` counts (no fallback to `\\boxed`, "the answer is" or the last
    number): correctness and format at once.
    """
    scores: list[float | None] = []
    for completion, gold in zip(completions, answers, strict=True):
        if not gold or not str(gold).strip():
            scores.append(None)
            continue
        scores.append(score_completion(completion, str(gold), timeout, tagged_only))
    return scores


math_correct.warm_up = WORKER.start  # type: ignore[attr-defined]  # rewards.warm_up
