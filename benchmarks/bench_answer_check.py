"""Speed of the math answer checker (`mlx_grpo.rewards.math.score_completion`), budget 1 s.

1. GSM8K-style answers (numbers in tags, after "####" or "the answer is", with units, in
   words): the numeric fast path, no sympy.
2. MATH-style answers that reach sympy (radicals written two ways, polynomials, intervals,
   tuples, mixed numbers, matrices): with a cold worker (stopped first; the time includes
   starting it), a warm worker and an empty verdict cache, then the same answers again with a
   warm cache (GRPO groups repeat answers).
3. Hostile completions (long words-and-digits runs, deep nesting, huge exponents, polynomial
   blow-ups, 100 KB strings, unicode digits): the slowest seconds per completion and how many
   timed out. A worker restart after a timeout is waited for before the next completion's
   clock starts (as `score_completion` does), so it is reported apart.

Every input is generated here (no network, no data sets). Run from the repository root:
`nice .venv/bin/python benchmarks/bench_answer_check.py` (about a minute on 2 cores).
"""

from __future__ import annotations

import platform
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mlx_grpo.rewards.custom import Unscored
from mlx_grpo.rewards.math import VERDICTS, score_completion
from mlx_grpo.rewards.sandbox import WORKER

BUDGET = 1.0
Case = tuple[str, str]  # (completion, gold)


@dataclass
class Tally:
    """What one pass over a list of cases cost."""

    seconds: float = 0.0
    n: int = 0
    correct: int = 0
    timeouts: int = 0
    sympy_calls: int = 0
    slowest: float = 0.0
    slowest_case: str = ""
    restart_wait: float = 0.0
    per_kind: dict[str, list[float]] = field(default_factory=dict)  # n, slowest, 1s, timeouts
    timed_out: list[str] = field(default_factory=list)


SYMPY_CALLS = [0]


def _count_sympy_calls() -> None:
    """Wrap the worker's `equal` so each pass reports how many comparisons reached sympy."""
    original = WORKER.equal

    def counted(pred: str, gold: str, timeout: float) -> bool | None:
        SYMPY_CALLS[0] += 1
        return original(pred, gold, timeout)

    WORKER.equal = counted  # type: ignore[method-assign]


# ---------------------------------------------------------------- GSM8K-style


def gsm8k_cases(n: int, rng: random.Random) -> list[Case]:
    """Final answers as small models write them; about half right."""
    words = {3: "three", 7: "seven", 12: "twelve", 20: "twenty", 45: "forty-five"}
    units = ["apples", "dollars", "cm", "km", "minutes", "hours", "clips", "kg", "m^2"]
    cases = []
    for i in range(n):
        gold = rng.choice([rng.randint(0, 100), rng.randint(100, 99_999)])
        said = gold if rng.random() < 0.5 else gold + rng.choice([-1, 1, 10])
        big = f"{said:,}"
        word = words.get(said, str(said))
        templates = [
            f"Natalia sold 48 + 24 = 72 clips.\n<answer>{said}</answer>",
            f"So the total is {said - 1} + 1.\n#### {big}",
            f"She pays 3 x 6 = 18 each time.\nThe answer is ${said}.",
            f"<reasoning>48/2 = 24</reasoning>\n<answer>{said} {rng.choice(units)}</answer>",
            f"Adding them up gives \\boxed{{{big}}}.",
            f"The final answer is: {word}",
            f"In all, {said} {rng.choice(units)} are left.",
            f"<answer>${big}.00</answer>",
        ]
        cases.append((templates[i % len(templates)], str(gold)))
    return cases


# ---------------------------------------------------------------- MATH-style


def math_cases(rng: random.Random) -> list[Case]:
    """Answers whose equivalence needs sympy (plus the forms the checker reads itself)."""
    pairs: list[tuple[str, str]] = []
    for k, m in [(3, 2), (2, 2), (5, 3), (7, 4), (6, 5), (10, 7)]:
        pairs += [
            (f"\\frac{{1}}{{{m}}}\\sqrt{{{k}}}", f"\\frac{{\\sqrt{{{k}}}}}{{{m}}}"),
            (f"\\sqrt{{{k}}}/{m}", f"\\frac{{\\sqrt{{{k}}}}}{{{m}}}"),
            (f"\\frac{{{m}}}{{\\sqrt{{{k}}}}}", f"\\frac{{{m}\\sqrt{{{k}}}}}{{{k}}}"),
        ]
    for a, b in [(2, 2), (3, 3), (2, 5), (4, 2), (5, 6)]:
        pairs += [
            (f"\\sqrt{{{a * a * b}}}", f"{a}\\sqrt{{{b}}}"),
            (f"{a}\\sqrt{{{b}}}", f"{a + 1}"),
        ]
    for a, b in [(1, 2), (2, 3), (3, -1), (-4, 5), (6, 7)]:
        expanded = f"x^2 + {a + b}x + {a * b}".replace("+ -", "- ")
        pairs += [
            (expanded, f"(x + {a})(x + {b})".replace("+ -", "- ")),
            (f"(x+{a})^2", f"x^2+{2 * a}x+{a * a}"),
            (f"{a}x^3 - x", f"x({a}x^2 - 1)"),
            (f"(x+{a})^3", f"x^3+{3 * a}x^2+{3 * a * a}x+{a**3 + 1}"),  # wrong
        ]
    for lo, hi in [(2, 5), (-1, 3), (0, 9)]:
        pairs += [
            (f"[{lo}, {hi})", f"[{lo},{hi})"),
            (f"(-\\infty, \\sqrt{{{hi * hi}}}]", f"(-\\infty, {hi}]"),
            (f"{lo} < x \\leq {hi}", f"({lo}, {hi}]"),
            (f"x > {lo}", f"({lo}, \\infty)"),
            (f"[{lo}, {hi}]", f"({lo}, {hi})"),  # wrong
        ]
    for p, q in [(1, 2), (3, 4), (2, 3)]:
        pairs += [
            (f"(\\frac{{{p}}}{{{q}}}, \\sqrt{{{p * p}}})", f"({p / q:.4f}, {p})"),
            (f"(1+\\sqrt{{{q}}}, 1-\\sqrt{{{q}}})", f"(1 + \\sqrt{{{q}}}, 1 - \\sqrt{{{q}}})"),
            (f"{p}\\frac{{{p}}}{{{q + p}}}", f"\\frac{{{p * (q + p) + p}}}{{{q + p}}}"),
            (f"\\frac{{{p * q + 1}}}{{{q}}}", f"{p}\\frac{{1}}{{{q}}}"),
            (f"0.\\overline{{{p}}}", f"\\frac{{{p}}}{{9}}"),
        ]
    for a in (1, 2, 3):
        pairs += [
            (
                f"\\begin{{pmatrix}} {a} & \\sqrt{{4}} \\\\ 0 & {a}^2 \\end{{pmatrix}}",
                f"\\begin{{pmatrix}}{a}&2\\\\0&{a * a}\\end{{pmatrix}}",
            ),
            (
                f"\\begin{{pmatrix}} \\frac{{1}}{{{a + 1}}} \\\\ {a} \\end{{pmatrix}}",
                f"\\begin{{pmatrix}}{1 / (a + 1):.4f}\\\\{a}\\end{{pmatrix}}",
            ),
        ]
    pairs += [("\\sin^2 x + \\cos^2 x", "1"), ("e^{i\\pi}", "-1"), ("\\log_2 8", "3")]
    rng.shuffle(pairs)
    return [(f"Simplifying, we get\n<answer>{pred}</answer>", gold) for pred, gold in pairs]


# ---------------------------------------------------------------- hostile


WORDS = "clips in total for April and May combined"


def hostile_cases() -> list[tuple[str, str, str]]:
    """(kind, completion, gold): what a model under training may write."""
    cases = []
    for k in (1, 4, 16, 64, 256, 1024):
        for tail in ("(48 + 24)", "48, 24", "[48]", "7"):
            runs = " ".join([WORDS] * k)
            cases += [
                ("words + digits", f"<answer>72 {runs} {tail}</answer>", "72"),
                ("words + digits", f"The answer is 72 {runs} {tail}", "72"),
            ]
    cases += [("words + digits", "1 " + "ab " * 30_000 + ",", "1")]
    for depth in (10, 29, 31, 100, 1000, 20_000):
        cases += [
            ("deep nesting", f"<answer>{'(' * depth}1{')' * depth}</answer>", "1"),
            ("deep nesting", f"<answer>{'{' * depth}x{'}' * depth}</answer>", "x"),
            ("deep nesting", "\\boxed{" + "\\frac{1}{" * depth + "2" + "}" * (depth + 1), "1"),
            ("deep nesting", "<answer>" + "\\sqrt{" * depth + "2" + "}" * depth + "</answer>", "2"),
            ("deep nesting", f"<answer>{'[' * depth}1,2{']' * depth}</answer>", "(1, 2)"),
        ]
    towers = ["9^9^9^9", "2^{2^{2^{2^{2^{2}}}}}", "10^{10^{100}}", "(10^{100})!", "9!!!!!!"]
    towers += ["999999999^{999999999}", "2^{1000} - 2^{1000} + 1", "x^{10^{9}}", "e^{e^{e^{99}}}"]
    towers += ["\\frac{9^{9^{9}}}{9^{9^{9}}}", "((2^{64})!)!", "10^{999} \\cdot 10^{-999}"]
    cases += [("huge exponents", f"<answer>{t}</answer>", "1") for t in towers]
    cases += [("huge exponents", f"<answer>{t}</answer>", "x") for t in towers]
    for n in (30, 40, 60):
        slow = f"(x+y+z+w+1)^{{{n}}}"
        cases += [
            ("polynomial blow-ups", f"<answer>{slow}</answer>", f"(x+y+z+w+2)^{{{n}}}"),
            ("polynomial blow-ups", f"<answer>{slow} - (x+y+z+w+1)^{{{n}}}</answer>", "0"),
        ]
    cases += [("polynomial blow-ups", "<answer>(a+b+c+d+e+1)^{25}</answer>", "(a+b+c+d+e)^{25}")]
    cases += big_structures()
    big = 100_000
    cases += [
        ("100 KB strings", "7" * big, "7"),
        ("100 KB strings", f"<answer>{'7' * big}</answer>", "7"),
        ("100 KB strings", "<answer>" + "x+" * (big // 2) + "1</answer>", "1"),
        ("100 KB strings", "\\boxed{" + "{1}" * (big // 3), "1"),
        ("100 KB strings", "The answer is " + "1," * (big // 2), "1"),
        ("100 KB strings", "#### " + "9" * big, "9"),
        ("100 KB strings", "<answer>" * (big // 8) + "1" + "</answer>" * (big // 9), "1"),
        ("100 KB strings", "a " * (big // 2) + "42", "42"),
        ("100 KB strings", f"<answer>1 {'m.^2' * (big // 4)}(</answer>", "1"),
        ("100 KB strings", "<answer>" + "\\sqrt{2}+" * 100 + "1</answer>", "1"),
        ("100 KB strings", "<answer>" + "\\sqrt{2}\\cdot" * 80 + "1</answer>", "2^{40}"),
    ]
    digit_sets = ["٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９", "०१२३४५६७८९", "¹²³", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗"]
    for digits in digit_sets:
        seventy_two = digits[7 % len(digits)] + digits[2 % len(digits)]
        cases += [
            ("unicode digits", f"<answer>{seventy_two}</answer>", "72"),
            ("unicode digits", f"#### {seventy_two}", "72"),
            ("unicode digits", f"<answer>{digits * 900}</answer>", "1"),
            ("unicode digits", f"<answer>\\frac{{{digits}}}{{{digits[::-1]}}}</answer>", "1"),
            ("unicode digits", f"<answer>√{seventy_two} · π^{{{digits}}}</answer>", "x"),
        ]
    return cases


def big_structures() -> list[tuple[str, str, str]]:
    """Sets, lists, matrices and tuples near MAX_ITEMS: many sympy calls in one completion."""
    roots = [f"\\sqrt{{{k}}}+{k}x" for k in range(2, 34)]
    roots_gold = [f"{k}x+\\sqrt{{{k}}}" for k in reversed(range(2, 34))]
    squares = [f"(x+{k})^{{2}}" for k in range(32)]
    squares_gold = [f"x^2+{2 * k}x+{k * k}" for k in range(32)]
    entries = [[f"\\sqrt{{{i * j + 2}}}" for j in range(5)] for i in range(6)]
    entries_gold = [[f"({i * j + 2})^{{1/2}}" for j in range(5)] for i in range(6)]
    trig = [f"\\sin^2({k}x)+\\cos^2({k}x)" for k in range(20)]
    pairs = [
        ("\\{" + ", ".join(roots) + "\\}", "\\{" + ", ".join(roots_gold) + "\\}"),
        (", ".join(squares), ", ".join(squares_gold)),
        (_matrix(entries), _matrix(entries_gold)),
        ("(" + ", ".join(trig) + ")", "(" + ", ".join(["1"] * len(trig)) + ")"),
    ]
    return [("big structures", f"<answer>{a}</answer>", b) for a, b in pairs]


def _matrix(rows: list[list[str]]) -> str:
    body = "\\\\".join("&".join(row) for row in rows)
    return f"\\begin{{pmatrix}}{body}\\end{{pmatrix}}"


# ---------------------------------------------------------------- timing


def run_pass(cases: list[Case], kinds: list[str] | None = None) -> Tally:
    """Score every case under BUDGET; restarts are waited for outside each completion's clock."""
    tally, start_calls = Tally(), SYMPY_CALLS[0]
    for i, (completion, gold) in enumerate(cases):
        waited = WORKER.waited_s  # worker (re)starts: outside each completion's budget
        begin = time.perf_counter()
        score = score_completion(completion, gold, BUDGET)
        wait = WORKER.waited_s - waited
        took = time.perf_counter() - begin - wait
        tally.restart_wait += wait
        tally.seconds += took
        tally.n += 1
        tally.correct += score == 1.0
        tally.timeouts += isinstance(score, Unscored)
        shown = completion[:60].replace("\n", " ")
        if took > tally.slowest:
            tally.slowest, tally.slowest_case = took, shown
        if isinstance(score, Unscored):
            tally.timed_out.append(shown)
        if kinds:
            n, slowest, ones, late = tally.per_kind.get(kinds[i], [0, 0.0, 0, 0])
            late += isinstance(score, Unscored)
            tally.per_kind[kinds[i]] = [n + 1, max(slowest, took), ones + (score == 1.0), late]
    tally.sympy_calls = SYMPY_CALLS[0] - start_calls
    return tally


def timed_cold(cases: list[Case], warm_up: bool = True) -> tuple[float, Tally]:
    """Worker stopped, cache empty; the time includes starting the worker: in the background
    first, as a trainer does (`warm_up`), or at the first symbolic comparison otherwise."""
    WORKER.stop()
    VERDICTS._items.clear()
    begin = time.perf_counter()
    if warm_up:
        WORKER.start()
    tally = run_pass(cases)
    return time.perf_counter() - begin, tally


def row(name: str, seconds: float, tally: Tally) -> str:
    rate = tally.n / seconds if seconds else float("inf")
    return (
        f"| {name} | {tally.n} | {seconds:.3f} | {rate:,.0f} | {tally.sympy_calls} "
        f"| {tally.correct} | {tally.timeouts} | {tally.slowest:.3f} |"
    )


def throughput(rng: random.Random) -> None:
    gsm, maths = gsm8k_cases(2000, rng), math_cases(rng)
    print("| inputs | condition | completions | seconds | completions/s | sympy calls "
          "| scored 1 | timeouts | slowest (s) |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    lines: list[tuple[str, Callable[[], tuple[float, Tally]]]] = [
        ("GSM8K-style | empty cache", lambda: _best(gsm, clear=True)),
        ("GSM8K-style | warm cache", lambda: _best(gsm, clear=False)),
        ("MATH-style | cold worker, started in the background (`warm_up`)",
         lambda: timed_cold(maths)),
        ("MATH-style | cold worker, started by the first comparison",
         lambda: timed_cold(maths, warm_up=False)),
        ("MATH-style | warm worker, empty cache", lambda: _best(maths, clear=True)),
        ("MATH-style | warm worker, warm cache (same answers again)",
         lambda: _best(maths, clear=False)),
    ]  # fmt: skip
    for name, measure in lines:
        seconds, tally = measure()
        print(row(name, seconds, tally))


def _best(cases: list[Case], clear: bool, repeats: int = 3) -> tuple[float, Tally]:
    """The fastest of `repeats` passes (the verdict cache emptied before each when `clear`)."""
    best: Tally | None = None
    for _ in range(repeats):
        if clear:
            VERDICTS._items.clear()
        tally = run_pass(cases)
        best = tally if best is None or tally.seconds < best.seconds else best
    assert best is not None
    return best.seconds, best


def worst_case() -> None:
    hostile = hostile_cases()
    VERDICTS._items.clear()
    WORKER.start()
    tally = run_pass([(c, g) for _, c, g in hostile], [k for k, _, _ in hostile])
    print(f"\nHostile completions: {tally.n}, budget {BUDGET:g} s each")
    print("| kind | completions | slowest (s) | scored 1 | timeouts |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind, (n, slowest, ones, late) in tally.per_kind.items():
        print(f"| {kind} | {n:.0f} | {slowest:.3f} | {ones:.0f} | {late:.0f} |")
    print(f"slowest: {tally.slowest:.3f} s ({tally.slowest_case!r}...)")
    print(f"timed out: {tally.timeouts} (worker restarts so far: {WORKER.timeouts})")
    for shown in tally.timed_out:
        print(f"  timeout: {shown!r}")
    print(f"total {tally.seconds:.1f} s scoring + {tally.restart_wait:.1f} s waiting for restarts")
    repeat = [("<answer>(x+y+z+w+1)^{40}</answer>", "(x+y+z+w+2)^{40}")] * 8
    VERDICTS._items.clear()
    group = run_pass(repeat)
    print(
        f"a group of 8 identical slow answers: {group.seconds:.2f} s scoring, "
        f"{group.timeouts} timeouts, {group.restart_wait:.2f} s waiting for the restart"
    )


def main() -> None:
    print(f"{platform.system()} {platform.machine()}, Python {platform.python_version()}")
    _count_sympy_calls()
    throughput(random.Random(0))
    worst_case()
    WORKER.stop()


if __name__ == "__main__":
    main()
