"""Generated Countdown puzzles: reach the target using each given number exactly once.

Every puzzle is solvable by construction: the generator draws the numbers, then combines
them pairwise with random operators (keeping every intermediate value a positive integer)
until one value is left; that value is the target and the expression is the gold answer.
The numbers are then shuffled so their order gives nothing away.

Difficulty: 1 = three numbers up to 10; 2 = four up to 20; 3 = four up to 100;
4 = five up to 100. Targets stay between 1 and 999.
"""

from __future__ import annotations

import random

LEVELS = {1: (3, 10), 2: (4, 20), 3: (4, 100), 4: (5, 100)}
MAX_TARGET = 999

PROMPT = (
    "Using the numbers {numbers}, write an equation that equals {target}. Use each number "
    "exactly once, and only + - * / and parentheses. Think it through, then give only the "
    "equation inside <answer> </answer> tags, for example <answer>(1 + 2) * 3</answer>."
)

Term = tuple[int, str]  # (value, expression)


def _combine(rng: random.Random, a: Term, b: Term) -> Term | None:
    """One random operation on two terms, or None if it leaves the positive integers."""
    (x, ex), (y, ey) = a, b
    op = rng.choice("+-*/")
    if op == "-" and x < y:
        (x, ex), (y, ey) = (y, ey), (x, ex)
    if (op == "-" and x == y) or (op == "/" and x % y != 0):
        return None
    value = {"+": x + y, "-": x - y, "*": x * y, "/": x // max(y, 1)}[op]
    wrap = [e if e.isdigit() else f"({e})" for e in (ex, ey)]
    return value, f"{wrap[0]} {op} {wrap[1]}"


def _puzzle(rng: random.Random, count: int, largest: int) -> dict[str, object]:
    while True:
        numbers = [rng.randint(1, largest) for _ in range(count)]
        terms: list[Term] = [(n, str(n)) for n in numbers]
        while len(terms) > 1:
            rng.shuffle(terms)
            combined = _combine(rng, terms[-1], terms[-2])
            if combined is None:
                continue
            terms[-2:] = [combined]
        target, expression = terms[0]
        if 1 <= target <= MAX_TARGET:
            rng.shuffle(numbers)
            prompt = PROMPT.format(numbers=numbers, target=target)
            return {"prompt": prompt, "answer": expression, "numbers": numbers, "target": target}


def generate(n: int, seed: int, difficulty: int = 1) -> list[dict[str, object]]:
    """`n` puzzles; rows are {"prompt", "answer" (one solution), "numbers", "target"}."""
    if difficulty not in LEVELS:
        raise ValueError(f"difficulty must be one of {sorted(LEVELS)}, not {difficulty}")
    rng = random.Random(f"countdown-{seed}-{difficulty}")
    count, largest = LEVELS[difficulty]
    return [_puzzle(rng, count, largest) for _ in range(n)]
