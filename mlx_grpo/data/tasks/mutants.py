"""`builtin:c-tests` and `builtin:python-tests`: small functions to write tests for, with their
mutants (the rows `test_generation` scores).

Each row is one function from `FAMILIES` at the row's level, written from one template in C
and in Python, with random constants and names. Its mutants are the same template with one
site changed: an off-by-one, a wrong operator, or a missed edge case. The Python version of
the reference and of every mutant runs here, on 40 generated inputs (edge cases drawn on
purpose); a mutant that never differs from the reference on them is dropped, so every mutant
a row keeps can be caught. The gold answer (`answer`) is a doctest block of inputs that
catches every kept mutant. Levels: 1 integer one-liners, 2 loops over arrays, 3 strings and
bits, 4 searches and runs with edge cases. Same (n, seed, difficulty), same rows, in both
languages (the C and Python tasks are twins).

Rows: {"prompt", "answer", "language", "reference", "mutants", "mutant_kinds",
"entry_point", "difficulty"}.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from string import Template
from typing import Any

Args = tuple[Any, ...]
INPUTS_PER_ROW = 40


@dataclass(frozen=True)
class Mutant:
    kind: str  # off-by-one | wrong operator | missed edge case
    slots: dict[str, tuple[str, str]]  # slot -> (C text, Python text)


@dataclass(frozen=True)
class Family:
    """One function: C and Python templates (`$slot`, `$param`), its mutants, its inputs."""

    names: tuple[str, ...]
    c: str
    py: str
    slots: dict[str, tuple[str, str]]
    mutants: tuple[Mutant, ...]
    args: tuple[str, ...]  # int | ints (C: array and length) | str
    returns: str  # int | bool
    inputs: Callable[[random.Random, dict[str, int]], Args]
    params: Callable[[random.Random], dict[str, int]] = field(default=lambda rng: {})


def _ints(rng: random.Random, lo: int = -9, hi: int = 9, most: int = 7) -> list[int]:
    return [rng.randint(lo, hi) for _ in range(rng.randint(1, most))]


def _year(rng: random.Random, p: dict[str, int]) -> Args:
    years = [rng.randint(1800, 2100), 100 * rng.randint(17, 22), 4 * rng.randint(450, 520)]
    return (rng.choice(years),)


def _bits(rng: random.Random, p: dict[str, int]) -> Args:
    return (rng.choice([0, rng.randint(1, 255), rng.randint(1, 65535)]),)


def _powers(rng: random.Random, p: dict[str, int]) -> Args:
    return (rng.choice([0, 1, 2 ** rng.randint(1, 12), rng.randint(-8, 300)]),)


def _signed(rng: random.Random, p: dict[str, int]) -> Args:
    return (rng.choice([0, rng.randint(-999, -1), rng.randint(1, 99999)]),)


def _range_arg(rng: random.Random, p: dict[str, int]) -> Args:
    return (rng.choice([p["lo"], p["hi"], p["lo"] - 1, p["hi"] + 1, rng.randint(-20, 40)]),)


def _clamp_args(rng: random.Random, p: dict[str, int]) -> Args:
    lo = rng.randint(-10, 10)
    return (rng.randint(-20, 30), lo, lo + rng.randint(0, 10))


def _word(rng: random.Random, p: dict[str, int]) -> Args:
    return ("".join(rng.choice("abcdeiouxyz ") for _ in range(rng.randint(0, 10))),)


def _sorted_search(rng: random.Random, p: dict[str, int]) -> Args:
    xs = sorted(rng.sample(range(-20, 40), rng.randint(1, 8)))
    return xs, rng.choice([*xs, xs[0], xs[-1], rng.randint(-25, 45)])


def _runs(rng: random.Random, p: dict[str, int]) -> Args:
    return ([rng.choice([1, 1, 2, 3]) for _ in range(rng.randint(1, 8))],)


def _maxes(rng: random.Random, p: dict[str, int]) -> Args:
    xs = _ints(rng, 0, 5)
    return (xs if rng.random() < 0.5 else [*xs, max(xs)],)


M = Mutant
FAMILIES: dict[int, tuple[Family, ...]] = {
    1: (
        Family(
            ("clamp", "limit", "bound"),
            "int $name(int x, int lo, int hi) {\n    if (x $lt lo) return lo;\n"
            "    $upper\n    return x;\n}",
            "def $name(x, lo, hi):\n    if x $lt lo:\n        return lo\n    $upper\n    return x",
            {"lt": ("<", "<"),
             "upper": ("if (x > hi) return hi;", "if x > hi:\n        return hi")},
            (M("wrong operator", {"lt": (">", ">")}),
             M("missed edge case", {"upper": ("", "")})),
            ("int", "int", "int"), "int", _clamp_args,
        ),
        Family(
            ("is_leap", "leap_year", "is_leap_year"),
            "#include <stdbool.h>\nbool $name(int year) {\n"
            "    return (year % 4 == 0 && year % 100 $ne 0)$century;\n}",
            "def $name(year):\n    return (year % 4 == 0 and year % 100 $ne 0)$century",
            {"ne": ("!=", "!="), "century": (" || year % 400 == 0", " or year % 400 == 0")},
            (M("missed edge case", {"century": ("", "")}),
             M("wrong operator", {"ne": ("==", "==")})),
            ("int",), "bool", _year,
        ),
        Family(
            ("in_range", "within", "is_between"),
            "#include <stdbool.h>\nbool $name(int x) {\n    return $lo $le x && x <= $hi;\n}",
            "def $name(x):\n    return $lo $le x and x <= $hi",
            {"le": ("<=", "<=")},
            (M("off-by-one", {"le": ("<", "<")}), M("wrong operator", {"le": (">=", ">=")})),
            ("int",), "bool", _range_arg,
            lambda rng: {"lo": (lo := rng.randint(-5, 10)), "hi": lo + rng.randint(2, 20)},
        ),
    ),
    2: (
        Family(
            ("count_greater", "count_above", "num_over"),
            "int $name(const int *xs, int n, int t) {\n    int count = 0;\n"
            "    for (int i = $start; i < n; i++) {\n        if (xs[i] $gt t) count++;\n    }\n"
            "    return count;\n}",
            "def $name(xs, t):\n    count = 0\n    for i in range($start, len(xs)):\n"
            "        if xs[i] $gt t:\n            count += 1\n    return count",
            {"start": ("0", "0"), "gt": (">", ">")},
            (M("off-by-one", {"start": ("1", "1")}), M("wrong operator", {"gt": (">=", ">=")})),
            ("ints", "int"), "int", lambda rng, p: (_ints(rng), rng.randint(-5, 5)),
        ),
        Family(
            ("sum_even", "even_sum", "add_evens"),
            "int $name(const int *xs, int n) {\n    int total = 0;\n"
            "    for (int i = 0; i < n$end; i++) {\n"
            "        if (xs[i] % 2 $eq 0) total $acc xs[i];\n"
            "    }\n    return total;\n}",
            "def $name(xs):\n    total = 0\n    for i in range(0, len(xs)$end):\n"
            "        if xs[i] % 2 $eq 0:\n            total $acc xs[i]\n    return total",
            {"end": ("", ""), "eq": ("==", "=="), "acc": ("+=", "+=")},
            (
                M("off-by-one", {"end": (" - 1", " - 1")}),
                M("wrong operator", {"eq": ("!=", "!=")}),
                M("wrong operator", {"acc": ("=", "=")}),
            ),
            ("ints",), "int", lambda rng, p: (_ints(rng),),
        ),
        Family(
            ("index_of_max", "argmax", "max_index"),
            "int $name(const int *xs, int n) {\n    int best = 0;\n"
            "    for (int i = $start; i < n; i++) {\n        if (xs[i] $gt xs[best]) best = i;\n"
            "    }\n    return best;\n}",
            "def $name(xs):\n    best = 0\n    for i in range($start, len(xs)):\n"
            "        if xs[i] $gt xs[best]:\n            best = i\n    return best",
            {"start": ("1", "1"), "gt": (">", ">")},
            (
                M("missed edge case", {"gt": (">=", ">=")}),
                M("wrong operator", {"gt": ("<", "<")}),
                M("off-by-one", {"start": ("2", "2")}),
            ),
            ("ints",), "int", _maxes,
        ),
    ),
    3: (
        Family(
            ("count_vowels", "vowels", "num_vowels"),
            "#include <string.h>\nint $name(const char *s) {\n    int count = 0;\n"
            "    for (; *s; s++) {\n        if ($test strchr(\"$set\", *s)) count++;\n    }\n"
            "    return count;\n}",
            "def $name(s):\n    count = 0\n    for ch in s:\n        if $test ch in \"$set\":\n"
            "            count += 1\n    return count",
            {"test": ("", ""), "set": ("aeiou", "aeiou")},
            (
                M("missed edge case", {"set": ("aeio", "aeio")}),
                M("wrong operator", {"test": ("!", "not")}),
            ),
            ("str",), "int", _word,
        ),
        Family(
            ("popcount", "count_bits", "bit_count"),
            "int $name(unsigned int x) {\n    int count = 0;\n    while (x) {\n"
            "        count += x & $bit;\n        x >>= $shift;\n    }\n    return count;\n}",
            "def $name(x):\n    count = 0\n    while x:\n        count += x & $bit\n"
            "        x >>= $shift\n    return count",
            {"bit": ("1", "1"), "shift": ("1", "1")},
            (M("wrong operator", {"bit": ("2", "2")}), M("off-by-one", {"shift": ("2", "2")})),
            ("int",), "int", _bits,
        ),
        Family(
            ("is_power_of_two", "power_of_two", "is_pow2"),
            "#include <stdbool.h>\nbool $name(int x) {\n"
            "    return $guard(x & (x $minus 1)) == 0;\n}",
            "def $name(x):\n    return $guard(x & (x $minus 1)) == 0",
            {"guard": ("x > 0 && ", "x > 0 and "), "minus": ("-", "-")},
            (M("missed edge case", {"guard": ("", "")}),
             M("wrong operator", {"minus": ("+", "+")})),
            ("int",), "bool", _powers,
        ),
    ),
    4: (
        Family(
            ("binary_search", "find_sorted", "search"),
            "int $name(const int *xs, int n, int target) {\n    int lo = 0, hi = n - $top;\n"
            "    while (lo $le hi) {\n        int mid = (lo + hi) / 2;\n"
            "        if (xs[mid] == target) return mid;\n"
            "        if (xs[mid] < target) lo = mid + 1;\n        else hi = mid - 1;\n    }\n"
            "    return -1;\n}",
            "def $name(xs, target):\n    lo, hi = 0, len(xs) - $top\n    while lo $le hi:\n"
            "        mid = (lo + hi) // 2\n        if xs[mid] == target:\n            return mid\n"
            "        if xs[mid] < target:\n            lo = mid + 1\n        else:\n"
            "            hi = mid - 1\n    return -1",
            {"top": ("1", "1"), "le": ("<=", "<=")},
            (M("off-by-one", {"le": ("<", "<")}), M("off-by-one", {"top": ("2", "2")})),
            ("ints", "int"), "int", _sorted_search,
        ),
        Family(
            ("digit_sum", "sum_digits", "digits_total"),
            "int $name(int n) {\n    $guard\n    int total = 0;\n    while (n > 0) {\n"
            "        total += n % 10;\n        n $div 10;\n    }\n    return total;\n}",
            "def $name(n):\n    $guard\n    total = 0\n    while n > 0:\n        total += n % 10\n"
            "        n $div 10\n    return total",
            {"guard": ("if (n < 0) n = -n;", "if n < 0:\n        n = -n"), "div": ("/=", "//=")},
            (M("missed edge case", {"guard": ("", "")}),
             M("wrong operator", {"div": ("-=", "-=")})),
            ("int",), "int", _signed,
        ),
        Family(
            ("longest_run", "max_run", "longest_streak"),
            "int $name(const int *xs, int n) {\n    int best = $init, run = 1;\n"
            "    for (int i = 1; i < n; i++) {\n"
            "        run = xs[i] == xs[i - 1] ? run + 1 : $reset;\n"
            "        if (run $gt best) best = run;\n    }\n    return best;\n}",
            "def $name(xs):\n    best, run = $init, 1\n    for i in range(1, len(xs)):\n"
            "        run = run + 1 if xs[i] == xs[i - 1] else $reset\n        if run $gt best:\n"
            "            best = run\n    return best",
            {"init": ("1", "1"), "reset": ("1", "1"), "gt": (">", ">")},
            (
                M("missed edge case", {"init": ("0", "0")}),
                M("off-by-one", {"reset": ("0", "0")}),
                M("wrong operator", {"gt": ("<", "<")}),
            ),
            ("ints",), "int", _runs,
        ),
    ),
}  # fmt: skip


def _render(
    family: Family, lang: int, slots: dict[str, tuple[str, str]], values: dict[str, Any]
) -> str:
    text = Template(family.c if lang == 0 else family.py)
    filled = {k: v[lang] for k, v in {**family.slots, **slots}.items()}
    code = text.substitute({**values, **filled})
    lines = [line for line in code.split("\n") if line.strip()]  # an emptied slot
    return "\n".join(lines) + "\n"


CONVENTION = {
    "c": "Values print as C literals: integers in decimal, bool as true or false, strings in "
    "double quotes. Pass an array as a compound literal and its length, e.g. "
    "`f((int[]){3, 1, 2}, 3)`.",
    "python": "Values print as Python's repr, as in doctest: `3`, `True`, `'abc'`.",
}
PROMPT = (
    "Here is a {label} function:\n\n```{lang}\n{code}```\n\n"
    "Write tests for it that a buggy version of it would fail (an off-by-one, a wrong "
    "operator, a missed edge case). Give them as doctest lines in one fenced block: each test "
    "is a line `>>> expression` calling the function, followed by a line with the value it "
    "prints. {convention} Every test must pass on the code above."
)


def _literal(kind: str, value: Any, lang: int) -> str:
    if kind == "ints" and lang == 0:
        return f"(int[]){{{', '.join(map(str, value))}}}, {len(value)}"
    if kind == "str" and lang == 0:
        return f'"{value}"'  # letters and spaces only
    return repr(value)


def _shown(value: Any, returns: str, lang: int) -> str:
    if lang == 0 and returns == "bool":
        return "true" if value else "false"
    return repr(value)


def _python_function(code: str, name: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(compile(code, f"<{name}>", "exec"), namespace)  # our own template, not model output
    return namespace[name]


def _outputs(fn: Callable[..., Any], inputs: list[Args]) -> list[Any]:
    return [fn(*[list(a) if isinstance(a, list) else a for a in args]) for args in inputs]


def _row(rng: random.Random, level: int, lang: int) -> dict[str, object]:
    """One row; the random draws do not depend on `lang`, so C and Python rows are twins."""
    family = rng.choice(FAMILIES[level])
    values: dict[str, Any] = {"name": rng.choice(family.names), **family.params(rng)}
    name = values["name"]
    drawn = [family.inputs(rng, values) for _ in range(INPUTS_PER_ROW)]
    cases = list({repr(args): args for args in drawn}.values())  # distinct, in order
    want = _outputs(_python_function(_render(family, 1, {}, values), name), cases)
    kept, catch = [], {0}
    for mutant in family.mutants:
        got = _outputs(_python_function(_render(family, 1, mutant.slots, values), name), cases)
        differs = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
        if differs:
            kept.append(mutant)
            catch.add(differs[0])
    lines = []
    for i in sorted(catch):
        call = ", ".join(_literal(k, v, lang) for k, v in zip(family.args, cases[i], strict=True))
        lines += [f">>> {name}({call})", _shown(want[i], family.returns, lang)]
    reference = _render(family, lang, {}, values)
    language = ("c", "python")[lang]
    return {
        "prompt": PROMPT.format(
            label=("C", "Python")[lang], lang=language, code=reference,
            convention=CONVENTION[language],
        ),
        "answer": "```\n" + "\n".join(lines) + "\n```",
        "language": language,
        "reference": reference,
        "mutants": [_render(family, lang, m.slots, values) for m in kept],
        "mutant_kinds": [m.kind for m in kept],
        "entry_point": name,
        "difficulty": level,
    }  # fmt: skip


def _generate(lang: int, n: int, seed: int, difficulty: int) -> list[dict[str, object]]:
    if difficulty not in FAMILIES:
        raise ValueError(f"difficulty must be one of {sorted(FAMILIES)}, not {difficulty}")
    rng = random.Random(f"code-tests-{seed}-{difficulty}")
    return [_row(rng, difficulty, lang) for _ in range(n)]


def generate_c(n: int, seed: int, difficulty: int = 1) -> list[dict[str, object]]:
    """`n` C functions with their mutants (see the module doc)."""
    return _generate(0, n, seed, difficulty)


def generate_python(n: int, seed: int, difficulty: int = 1) -> list[dict[str, object]]:
    """The Python twins of `generate_c`'s rows."""
    return _generate(1, n, seed, difficulty)
