"""Doctest-style tests out of a model's answer, and comparing what a test printed with its text.

A test is a `>>> source` line (with optional `... more` continuation lines) followed by the
lines of text it is expected to print, up to a blank line or the next `>>>`. A `>>>` line with
no expected text is setup: it runs before every later test of the answer, and what it prints
is ignored (the first 32 setup lines count). Where the tests are: the last fenced block of the
answer that has a `>>>` line, else the last `<answer>...</answer>`, else the whole answer.
Every scan here is one linear pass.

`matches(got, expected)` is doctest's rule, loosened twice: trailing whitespace and blank
lines at the end do not matter, two floating-point numbers match within a relative 1e-6, and
an expected `Traceback (most recent call last):` matches any traceback ending in the same
exception line.

`c_safe(source)` says whether a C/C++ test line stays inside the function it is pasted into:
brackets balanced and never closed early, strings and comments closed, no preprocessor line,
no line continuation, no `asm`, `__attribute__` or `_Pragma`. A test that passes it cannot
inject code around the harness.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

FENCE = "```"
PROMPT, MORE = ">>>", "..."
TRACEBACK = "Traceback (most recent call last):"
MAX_SOURCE_CHARS = 2000
MAX_SETUP_LINES = 32  # later setup lines are ignored (each test repeats them all)
FLOAT_RTOL, FLOAT_ATOL = 1e-6, 1e-9
OPEN, CLOSE = "([{", ")]}"
UNSAFE_WORDS = re.compile(r"\b(?:asm|__asm|__asm__|__attribute__|_Pragma)\b")


class Case(NamedTuple):
    """One test: the setup lines before it, its source, the text it should print."""

    setup: tuple[str, ...]
    source: str
    expected: str


def fenced_blocks(text: str) -> list[str]:
    """The closed ``` blocks of `text`, in order (a linear scan of lines)."""
    blocks, current = [], None
    for line in text.splitlines():
        if line.strip().startswith(FENCE):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_text(completion: str) -> str:
    """The part of the answer that holds its tests (see the module doc)."""
    with_tests = [b for b in fenced_blocks(completion) if PROMPT in b]
    if with_tests:
        return with_tests[-1]
    start = completion.rfind("<answer>")
    end = completion.find("</answer>", start + 1) if start >= 0 else -1
    return completion[start + 8 : end] if 0 <= start < end else completion


def parse(completion: str, max_tests: int = 16) -> list[Case]:
    """The answer's tests, in order, at most `max_tests` (later ones are ignored)."""
    cases: list[Case] = []
    setup: list[str] = []
    source: list[str] | None = None
    expected: list[str] = []

    def finish() -> None:
        if source is None:
            return
        text = "\n".join(source)
        if expected:
            cases.append(Case(tuple(setup), text, "\n".join(expected)))
        elif len(setup) < MAX_SETUP_LINES and len(text) <= MAX_SOURCE_CHARS:
            setup.append(text)

    for raw in test_text(completion).splitlines():
        line = raw.strip()
        if line.startswith(PROMPT):
            finish()
            source, expected = [line[3:].strip()], []
        elif source is not None and not expected and line.startswith(MORE):
            source.append(line[3:].strip())
        elif source is not None and line:
            expected.append(raw.rstrip().strip())
        else:
            finish()
            source, expected = None, []
        if len(cases) >= max_tests:
            break
    else:
        finish()
    return [c for c in cases[:max_tests] if len(c.source) <= MAX_SOURCE_CHARS]


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip()


def _as_float(text: str) -> float | None:
    if len(text) > 64 or not any(c.isdigit() or c in "ni" for c in text):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def matches(got: str, expected: str) -> bool:
    """Whether printed text `got` satisfies the test's `expected` text (module doc)."""
    g, e = _normal(got), _normal(expected)
    if g == e:
        return True
    if e.startswith(TRACEBACK) and g.startswith(TRACEBACK):
        return g.splitlines()[-1].strip() == e.splitlines()[-1].strip()
    a, b = _as_float(g), _as_float(e)
    if a is None or b is None or not any(c in g for c in ".eni"):
        return False  # integers compare exactly
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=FLOAT_RTOL, abs_tol=FLOAT_ATOL)


def c_safe(source: str) -> bool:
    """True when a C/C++ test line cannot reach outside the body it is pasted into."""
    if any(line.lstrip().startswith("#") or line.endswith("\\") for line in source.splitlines()):
        return False
    if UNSAFE_WORDS.search(source):  # inline assembly or attributes could add a constructor
        return False
    stack: list[str] = []
    state, i, n = "code", 0, len(source)
    while i < n:
        c, pair = source[i], source[i : i + 2]
        if state == "code":
            if pair in ("//", "/*"):
                state, i = ("line" if pair == "//" else "block"), i + 1
            elif c in "\"'":
                state = c
            elif c in OPEN:
                stack.append(CLOSE[OPEN.index(c)])
            elif c in CLOSE and (not stack or stack.pop() != c):
                return False
        elif state in "\"'":
            if c == "\\":
                i += 1
            elif c == state or c == "\n":
                state = "code" if c == state else "bad"
        elif state == "line" and c == "\n":
            state = "code"
        elif state == "block" and pair == "*/":
            state, i = "code", i + 1
        if state == "bad":
            return False
        i += 1
    return not stack and state in ("code", "line")
