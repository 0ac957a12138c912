"""Programs per second of the rewards that run code, on 32 C completions per call.

1. `code_tests`: 32 distinct C answers (`int add(int, int)`, each with its own constant, 3
   hidden tests), one compile and one run each. Then the same batch with a quarter hostile:
   2 endless loops, 2 fork bombs, 2 10 GB allocations touched page by page, 2 endless
   printers (8 of 32).
2. `test_generation`: 32 distinct doctest answers (4 tests each) for one C row with 3 mutants:
   a program for the reference and one per mutant (4 programs per answer). Then a quarter
   hostile: tests with an endless loop, a fork bomb, a 10 GB allocation, endless printing
   (invalid on the reference, so their mutants never run).

Each batch is one reward call with `timeout` 2 s per program (test_generation: 0.5 s per
test); the answers are new each repeat (a salt), so no compile is a cache hit. Typical and
hostile batches alternate, 5 of each, so drifting load hits both; best and median reported.
The target: a hostile quarter slows the batch by no more than one time limit (2 s).
Run from the repository root: `nice .venv/bin/python benchmarks/bench_code_rewards.py`
(about 4 minutes on 2 busy cores; name `code_tests` or `test_generation` to run one).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from mlx_grpo.rewards import code, programs
from mlx_grpo.rewards import test_generation as tg

N, TIMEOUT, REPEATS = 32, 2.0, 5
HOSTILE_C = [
    "for (;;) {}",
    "for (;;) fork();",
    "char *p = malloc(10000000000UL); for (long i = 0; p && i < 10000000000L; i += 4096) p[i] = 1;",
    'for (;;) puts("spam spam spam spam spam spam spam spam");',
]
C_REF = "int add(int a, int b) { return a + b; }"
C_MUTANTS = [
    "int add(int a, int b) { return a - b; }",
    "int add(int a, int b) { return a + b + (a > 5); }",
    "int add(int a, int b) { return a * b; }",
]


def code_batch(salt: int, hostile: bool) -> tuple[list[str], dict[str, Any]]:
    answers = []
    for i in range(N):
        body = "return a + b;"
        if hostile and i % 4 == 3:
            body = HOSTILE_C[(i // 4) % 4] + " return a + b;"
        answers.append(
            "```c\n#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\n"
            f"int add(int a, int b) {{ int salt = {salt * N + i}; (void)salt; {body} }}\n```"
        )
    tests = ["add(2, 3) == 5", "add(-1, 1) == 0", "add(0, 0) == 0"]
    return answers, {"language": ["c"] * N, "tests": [tests] * N}


def testgen_batch(salt: int, hostile: bool) -> tuple[list[str], dict[str, Any]]:
    answers = []
    for i in range(N):
        k = salt * N + i
        lines = [f">>> add({k}, 3)", str(k + 3), ">>> add(7, 1)", "8", ">>> add(2, 2)", "4"]
        if hostile and i % 4 == 3:
            lines += [f">>> ({{ {HOSTILE_C[(i // 4) % 4]} 1; }})", "1"]
        else:
            lines += [f">>> add(-{k}, 0)", str(-k)]
        answers.append("```\n" + "\n".join(lines) + "\n```")
    extras = {"language": ["c"] * N, "reference": [C_REF] * N, "mutants": [C_MUTANTS] * N}
    return answers, extras


class Tally:
    """Wall seconds of each call of one kind of batch, programs per call, outcome counts."""

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.programs, self.counts = 0, {}

    def call(self, reward: Callable[..., list[float]], batch: Any, params: dict[str, Any]) -> None:
        completions, extras = batch
        blank = [""] * N
        before = programs.BINARIES.compiles
        start = time.perf_counter()
        reward(blank, completions, blank, **extras, **params)
        self.walls.append(time.perf_counter() - start)
        self.programs = (programs.BINARIES.compiles - before) or N  # code_tests: one per answer
        self.counts = dict(reward.outcome_counts)  # type: ignore[attr-defined]


def compare(name: str, reward: Callable[..., list[float]], make: Any, salt: int) -> None:
    """Typical and hostile batches in turn (so load drift hits both), best and median."""
    params = {"timeout": TIMEOUT}
    tallies = {False: Tally(), True: Tally()}
    for r in range(REPEATS):
        for hostile, tally in tallies.items():
            tally.call(reward, make(salt + 2 * r + hostile, hostile), params)
    for hostile, t in tallies.items():
        best, median = min(t.walls), statistics.median(t.walls)
        label = "a quarter hostile" if hostile else "typical"
        rate = t.programs / best
        print(f"{name:16s} {label:18s} {t.programs:4d} programs: best {best:6.2f} s = "
              f"{rate:5.1f} programs/s, median {median:6.2f} s   {t.counts}")  # fmt: skip
    for stat, fn in (("best", min), ("median", statistics.median)):
        extra = fn(tallies[True].walls) - fn(tallies[False].walls)
        verdict = "met" if extra <= TIMEOUT else "NOT met"
        print(f"{name:16s} hostile quarter adds {extra:+.2f} s ({stat}; limit {TIMEOUT:g} s): "
              f"{verdict}")  # fmt: skip


def main() -> None:
    print(f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, timeout {TIMEOUT:g} s per program")  # fmt: skip
    cases = [
        ("code_tests", code.code_tests, code_batch),
        ("test_generation", tg.test_generation, testgen_batch),
    ]
    chosen = sys.argv[1:] or [name for name, *_ in cases]
    for k, (name, reward, make) in enumerate(cases):
        if name in chosen:
            compare(name, reward, make, 1000 * k)


if __name__ == "__main__":
    main()
