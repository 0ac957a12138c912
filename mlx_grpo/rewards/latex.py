"""A small parser from LaTeX or plain math text to sympy expressions, without eval().

It covers what final answers look like: numbers, single-letter variables (with subscripts),
+ - * / ^, implicit multiplication, \\frac, \\sqrt[n]{}, \\pi, \\infty, e, i, !, \\cdot,
\\times, \\div, functions (\\sin ... \\ln, \\log_b) and grouping with () {} []. Anything else
raises `ParseError`. Powers and factorials are bounded while the tree is built, so `9^9^9^9`
raises `TooLarge` instead of computing a number with hundreds of millions of digits.

`sympy_equal` is what the answer-checking worker process runs (see `sandbox.py`).
"""

from __future__ import annotations

import math
import re
from typing import Any

import sympy

MAX_TOKENS = 400
MAX_DIGITS = 400
MAX_EXPONENT = 1000  # |n| in base^n for a numeric n (unless the base is 0, 1 or -1)
MAX_BITS = 100_000  # size of a numeric power's result
MAX_FACTORIAL = 1000

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?|\.\d+)|(?P<cmd>\\[a-zA-Z]+)|(?P<word>[a-zA-Z]+)"
    r"|(?P<op>\*\*|[-+*/^(){}\[\]!_]))"
)
_UNICODE = {"π": "\\pi ", "√": "\\sqrt ", "·": "*", "×": "*", "−": "-", "÷": "/", "∞": "\\infty "}
_SKIP = {"\\left", "\\right", "\\displaystyle", "\\,", "\\!"}
_FUNCS: dict[str, Any] = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "cot": sympy.cot,
    "sec": sympy.sec, "csc": sympy.csc, "arcsin": sympy.asin, "arccos": sympy.acos,
    "arctan": sympy.atan, "ln": sympy.log, "log": sympy.log, "exp": sympy.exp,
}  # fmt: skip
_CONSTS: dict[str, Any] = {"pi": sympy.pi, "infty": sympy.oo, "inf": sympy.oo, "oo": sympy.oo}
_LETTER_CONSTS: dict[str, Any] = {"e": sympy.E, "i": sympy.I}


class ParseError(ValueError):
    """The text is not an expression this parser understands."""


class TooLarge(ParseError):
    """The expression would be too expensive to build or compare."""


Token = tuple[str, str]


def tokenize(text: str) -> list[Token]:
    """Split into (kind, text) tokens; unknown multi-letter words become single letters."""
    for char, repl in _UNICODE.items():
        text = text.replace(char, repl)
    tokens: list[Token] = []
    pos, text = 0, text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ParseError(f"unexpected character {text[pos]!r}")
        pos = m.end()
        kind, value = next((k, v) for k, v in m.groupdict().items() if v is not None)
        if kind == "cmd" and value in _SKIP:
            continue
        if kind == "word" and value not in _FUNCS and value not in _CONSTS and value != "sqrt":
            tokens.extend(("word", letter) for letter in value)
        else:
            tokens.append((kind, "^" if value == "**" else value))
        if len(tokens) > MAX_TOKENS:
            raise TooLarge("too many tokens")
    return tokens


def safe_pow(base: Any, exponent: Any) -> Any:
    """base ** exponent, refusing results too large to build."""
    if exponent.is_Number and base not in (0, 1, -1):
        if abs(exponent) > MAX_EXPONENT:
            raise TooLarge("exponent too large")
        if base.is_Number and abs(base) > 1 and abs(exponent) * math.log2(abs(base)) > MAX_BITS:
            raise TooLarge("power too large")
    return base**exponent


def safe_factorial(value: Any) -> Any:
    if value.is_Number and (not value.is_Integer or value < 0 or value > MAX_FACTORIAL):
        raise TooLarge("factorial argument out of range")
    return sympy.factorial(value)


class _Parser:
    """Recursive descent: expr := term (+|- term)*; term := unary ((*|/|implicit) unary)*;
    unary := (-|+) unary | power; power := postfix (^ unary)?; postfix := atom !*."""

    def __init__(self, tokens: list[Token]) -> None:
        self.toks, self.i = tokens, 0

    def peek(self) -> Token:
        return self.toks[self.i] if self.i < len(self.toks) else ("end", "")

    def take(self) -> Token:
        tok = self.peek()
        if tok[0] == "end":
            raise ParseError("unexpected end of input")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        if self.take()[1] != text:
            raise ParseError(f"expected {text!r}")

    def expr(self) -> Any:
        node = self.term()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            rhs = self.term()
            node = node + rhs if op == "+" else node - rhs
        return node

    def term(self) -> Any:
        node = self.unary()
        while True:
            kind, text = self.peek()
            if text in ("*", "\\cdot", "\\times"):
                self.take()
                node = node * self.unary()
            elif text in ("/", "\\div"):
                self.take()
                node = node / self.unary()
            elif kind in ("num", "word", "cmd") or text in ("(", "{", "["):
                node = node * self.power()  # implicit multiplication: 2x, 3\sqrt{2}
            else:
                return node

    def unary(self) -> Any:
        if self.peek()[1] == "-":
            self.take()
            return -self.unary()
        if self.peek()[1] == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Any:
        base = self.postfix()
        if self.peek()[1] == "^":
            self.take()
            return safe_pow(base, self.unary())  # right-associative: a^b^c = a^(b^c)
        return base

    def postfix(self) -> Any:
        node = self.atom()
        while self.peek()[1] == "!":
            self.take()
            node = safe_factorial(node)
        return node

    def atom(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            if len(text) > MAX_DIGITS:
                raise TooLarge("number too long")
            return sympy.Rational(text)
        if text in ("(", "{", "["):
            node = self.expr()
            self.expect({"(": ")", "{": "}", "[": "]"}[text])
            return node
        if kind == "cmd":
            return self.command(text[1:])
        if kind == "word":
            return self.word(text)
        raise ParseError(f"unexpected {text!r}")

    def word(self, text: str) -> Any:
        if text in _FUNCS:
            return self.function(text)
        if text == "sqrt":
            return sympy.sqrt(self.group())
        if text in _CONSTS:
            return _CONSTS[text]
        if self.peek()[1] == "_":
            self.take()
            return sympy.Symbol(f"{text}_{self.subscript()}")
        return _LETTER_CONSTS.get(text) or sympy.Symbol(text)

    def command(self, name: str) -> Any:
        if name in ("frac", "dfrac", "tfrac"):
            numerator = self.group()
            return numerator / self.group()
        if name == "sqrt":
            if self.peek()[1] == "[":
                self.take()
                index = self.expr()
                self.expect("]")
                return safe_pow(self.group(), 1 / index)
            return sympy.sqrt(self.group())
        if name in _FUNCS:
            return self.function(name)
        if name in _CONSTS:
            return _CONSTS[name]
        raise ParseError(f"unsupported command \\{name}")

    def group(self) -> Any:
        """A LaTeX argument: {...} or a single token (\\frac12 is 1/2)."""
        kind, text = self.peek()
        if kind == "num" and len(text) > 1 and text[0] != ".":
            self.toks[self.i] = ("num", text[1:])
            return sympy.Integer(int(text[0]))
        return self.postfix() if text != "{" else self.atom()

    def subscript(self) -> str:
        if self.peek()[1] != "{":
            return self.take()[1]
        self.take()
        parts: list[str] = []
        while self.peek()[1] != "}":
            parts.append(self.take()[1])
        self.take()
        return "".join(parts)

    def function(self, name: str) -> Any:
        base = power = None
        if name == "log" and self.peek()[1] == "_":
            self.take()
            base = self.group()
        if self.peek()[1] == "^":  # \sin^2 x
            self.take()
            power = self.group()
        arg = self.atom() if self.peek()[1] in ("(", "{") else self.power()
        value = sympy.log(arg, base) if base is not None else _FUNCS[name](arg)
        return value if power is None else safe_pow(value, power)


def parse_math(text: str) -> Any:
    """Parse LaTeX or plain math text into a sympy expression (ParseError if it cannot)."""
    parser = _Parser(tokenize(text))
    node = parser.expr()
    if parser.peek()[0] != "end":
        raise ParseError(f"unexpected {parser.peek()[1]!r}")
    return node


def _close(a: Any, b: Any) -> bool:
    """Numeric comparison at 30 digits, relative tolerance 1e-9."""
    va, vb = complex(sympy.N(a, 30)), complex(sympy.N(b, 30))
    scale = max(abs(va), abs(vb))
    return math.isfinite(scale) and abs(va - vb) <= 1e-9 * scale


def sympy_equal(pred: str, gold: str) -> bool:
    """True when both parse and are mathematically equal (exact, numeric, then simplify)."""
    a, b = parse_math(pred), parse_math(gold)
    if a == b:
        return True
    if a.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) or b.has(sympy.oo, -sympy.oo, sympy.zoo):
        return False
    diff = a - b
    if not diff.free_symbols:
        return _close(a, b)
    return sympy.expand(diff) == 0 or sympy.simplify(diff) == 0
