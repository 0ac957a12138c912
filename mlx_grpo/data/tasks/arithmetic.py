"""Generated arithmetic word problems with integer answers, at four difficulty levels.

Level 1: one addition or subtraction with numbers up to 20.
Level 2: one multiplication or exact division step ("3 boxes of 6", "split into 4 bags").
Level 3: two steps of any kind, numbers up to 50.
Level 4: four steps of any kind, numbers up to 100.

Each problem is a little story about a person and a pile of items whose count changes step
by step; the gold answer is the final count. Same (n, seed, difficulty), same rows; the
first k rows do not depend on n.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

NAMES = ["Ava", "Ben", "Chloe", "Diego", "Emma", "Farah", "Hugo", "Isla", "Jun", "Kofi",
         "Lena", "Mateo", "Nia", "Omar", "Priya", "Sam"]  # fmt: skip
ITEMS = ["apples", "marbles", "stickers", "pencils", "cookies", "stamps", "shells", "cards",
         "coins", "books", "beads", "eggs"]  # fmt: skip


@dataclass(frozen=True)
class Level:
    steps: int
    start_max: int
    number_max: int
    kinds: tuple[str, ...]


LEVELS = {
    1: Level(1, 20, 20, ("gain", "lose")),
    2: Level(1, 12, 12, ("groups", "split")),
    3: Level(2, 50, 50, ("gain", "lose", "groups", "split")),
    4: Level(4, 100, 100, ("gain", "lose", "groups", "split")),
}

Step = tuple[str, int]  # (sentence, new count)


def _gain(rng: random.Random, count: int, level: Level, item: str) -> Step | None:
    b = rng.randint(2, level.number_max)
    return f"Then {{who}} gets {b} more {item}.", count + b


def _lose(rng: random.Random, count: int, level: Level, item: str) -> Step | None:
    if count < 3:
        return None
    b = rng.randint(1, min(count - 1, level.number_max))
    return f"{{who}} gives {b} {item} to a friend.", count - b


def _groups(rng: random.Random, count: int, level: Level, item: str) -> Step | None:
    boxes, each = rng.randint(2, min(9, level.number_max)), rng.randint(2, level.number_max)
    return (
        f"{{who}} buys {boxes} boxes of {item} with {each} {item} in each box.",
        count + boxes * each,
    )


def _split(rng: random.Random, count: int, level: Level, item: str) -> Step | None:
    divisors = [k for k in range(2, 10) if count % k == 0 and count // k > 1]
    if not divisors:
        return None
    k = rng.choice(divisors)
    return f"{{who}} splits the {item} equally into {k} bags and keeps one bag.", count // k


STEPS: dict[str, Callable[[random.Random, int, Level, str], Step | None]] = {
    "gain": _gain, "lose": _lose, "groups": _groups, "split": _split,
}  # fmt: skip


def _start(rng: random.Random, level: Level) -> int:
    if level.kinds == ("groups", "split"):  # level 2: pick a start that can be split
        return rng.randint(2, level.start_max) * rng.randint(2, 9)
    return rng.randint(2, level.start_max)


def _problem(rng: random.Random, level: Level) -> dict[str, object]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    count = _start(rng, level)
    sentences = [f"{name} has {count} {item}."]
    while len(sentences) <= level.steps:
        step = STEPS[rng.choice(level.kinds)](rng, count, level, item)
        if step is not None:
            sentences.append(step[0].replace("{who}", name))
            count = step[1]
    sentences.append(f"How many {item} does {name} have now?")
    return {"prompt": " ".join(sentences), "answer": str(count)}


def generate(n: int, seed: int, difficulty: int = 1) -> list[dict[str, object]]:
    """`n` word problems; rows are {"prompt", "answer", "difficulty"}."""
    if difficulty not in LEVELS:
        raise ValueError(f"difficulty must be one of {sorted(LEVELS)}, not {difficulty}")
    rng = random.Random(f"arithmetic-{seed}-{difficulty}")
    return [{**_problem(rng, LEVELS[difficulty]), "difficulty": difficulty} for _ in range(n)]


def worked_problems(n: int, seed: int) -> list[dict[str, object]]:
    """`n` level-1 problems with their working: rows {"prompt", "answer", "working"}, where
    working is the one equation ("9 - 5 = 4"). Material for an SFT cold start (the demo
    writes its completions from these), drawn from its own seeded stream."""
    rng, level, rows = random.Random(f"arithmetic-worked-{seed}"), LEVELS[1], []
    while len(rows) < n:
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        count = _start(rng, level)
        step = STEPS[rng.choice(level.kinds)](rng, count, level, item)
        if step is None:
            continue
        sentence, new = step
        op = "+" if new > count else "-"
        prompt = (
            f"{name} has {count} {item}. {sentence.replace('{who}', name)} "
            f"How many {item} does {name} have now?"
        )
        rows.append({"prompt": prompt, "answer": str(new),
                     "working": f"{count} {op} {abs(new - count)} = {new}"})  # fmt: skip
    return rows
