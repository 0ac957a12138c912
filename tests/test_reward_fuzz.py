"""Fuzz: a few hundred generated hostile completions through every built-in reward; each call
on one completion must stay within the answer-check budget and return a finite score."""

from __future__ import annotations

import math
import random
import time

import pytest

from mlx_grpo.rewards.custom import call_safely
from mlx_grpo.rewards.library import REGISTRY, resolve_reward
from mlx_grpo.rewards.sandbox import WORKER

BUDGET_S = 1.0  # math_correct's per-completion default
SLACK_S = 1.0  # scheduling on a loaded 2-core box; a stall would be many seconds
PIECES = [
    "72 clips in total for April and May combined (48 + 24)",
    "12 apples and 3 pears, so 15,",
    "\\frac{1}{" * 40,
    "(" * 200 + "x" + ")" * 150,
    "9^9^9^9^9",
    "(x+y+z+w+1)^{40}",
    "\\sqrt{" * 50 + "2",
    "١٢٣٤٥ ٦٧٨",  # Arabic-Indic digits
    "１２３",  # full-width digits
    "𝟏𝟐𝟑",  # mathematical bold digits
    "\\boxed{",
    "<answer>",
    "</answer>",
    "<think>",
    "the answer is ",
    "#### ",
    "10!!!!!",
    "1e999999",
    "0.\\overline{" + "3" * 50 + "}",
    "\\begin{pmatrix}" + "1 & " * 30 + "1 \\\\ " * 30 + "\\end{pmatrix}",
    "x > 2 or x < " * 20,
    "1010101_2 " * 30,
    "```python\nwhile True: pass\n```",
    "m.^2kg " * 200,
]


def hostile_completions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        parts = rng.choices(PIECES, k=rng.randint(1, 12))
        text = " ".join(parts)
        if i % 10 == 0:
            text = text * (100_000 // max(len(text), 1) + 1)  # about 100 KB
        if i % 3 == 0:
            text = f"<think>{text}</think><answer>{rng.choice(PIECES)} {text[:500]}</answer>"
        out.append(text)
    return out


COMPLETIONS = hostile_completions(300)


def _extras(completion: str) -> dict[str, list]:
    return {
        "numbers": [[1, 2, 3, 4]],
        "target": [10],
        "tests": [["assert True"]],
        "language": ["python"],
        "reference": ["def f(x):\n    return x\n"],  # test_generation
        "mutants": [["def f(x):\n    return x + 1\n"]],
        "completion_lengths": [len(completion) // 4],
        "max_completion_length": 256,
    }


def test_generated_inputs_are_hostile() -> None:
    assert len(COMPLETIONS) == 300
    assert max(len(c) for c in COMPLETIONS) >= 100_000
    assert sum("<answer>" in c for c in COMPLETIONS) >= 100


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_builtin_reward_stays_within_the_budget(name: str) -> None:
    # code_tests runs each fenced program (here endless loops) under its own limit: keep it short
    fn = resolve_reward(name, {"timeout": 0.5} if name == "code_tests" else None)
    slowest = 0.0
    for completion in COMPLETIONS:
        waited, start = WORKER.waited_s, time.monotonic()
        called = call_safely(fn, ["Solve it."], [completion], ["15"], _extras(completion))
        restart = WORKER.waited_s - waited  # a worker (re)start is outside the budget
        slowest = max(slowest, time.monotonic() - start - restart)
        assert len(called.scores) == 1 and math.isfinite(called.scores[0])
    limit = BUDGET_S + SLACK_S
    assert slowest <= limit, f"{name}: {slowest:.2f} s for one completion"
