"""Arithmetic problems asked the way a person might, unlike the built-in training stories.

The demo's second held-out set: the same skill as `builtin:arithmetic` level 1 (one addition
or subtraction, numbers up to 20), but in phrasings the training stories never use ("What is
7 plus 5?", "A bus carries 14 people ..."), each with the format instruction written into the
question itself in one of several wordings. It is meant to be rendered with no system prompt
and no worked example, as a new user would ask in chat.

Same (n, seed), same rows; the first k rows do not depend on n. No question has the shape
of a training story (`"<Name> has <n> <items>. ..."`), so the set is disjoint from training.
"""

from __future__ import annotations

import random

ANSWER_TAGS = "<answer></answer>"
INSTRUCTIONS = (
    "Put the final number in <answer></answer> tags.",
    "Give the answer inside <answer></answer> tags.",
    "Write the result between <answer> and </answer>.",
    "End your reply with the number in <answer></answer>.",
)
# (question with {a} and {b}, operator); subtraction forms always get a > b
FORMS = (
    ("What is {a} plus {b}?", "+"),
    ("Compute {a} minus {b}.", "-"),
    ("If x = {a} + {b}, what is x?", "+"),
    ("Subtract {b} from {a}.", "-"),
    ("A shelf holds {a} jars and someone adds {b} more. How many jars are on the shelf?", "+"),
    ("A bus carries {a} people. At a stop, {b} people get off. How many are still on it?", "-"),
    ("Find the sum of {a} and {b}.", "+"),
    ("There were {a} birds on a wire, and {b} flew away. How many birds remain?", "-"),
)


def _operands(rng: random.Random, op: str) -> tuple[int, int]:
    a, b = rng.randint(2, 20), rng.randint(2, 20)
    if op == "-":
        a, b = max(a, b) + 1, min(a, b)  # a > b: the answer is at least 1
    return a, b


def generate(n: int, seed: int, difficulty: int = 1) -> list[dict[str, object]]:
    """`n` rephrased problems; rows are {"prompt", "answer", "form", "difficulty"}.

    Form i % len(FORMS) and instruction (i // len(FORMS)) % len(INSTRUCTIONS), so every
    question form meets every instruction wording once in 32 rows."""
    if difficulty != 1:
        raise ValueError(f"rephrased problems exist at difficulty 1 only, not {difficulty}")
    rng = random.Random(f"rephrased-{seed}")
    rows: list[dict[str, object]] = []
    for i in range(n):
        form, op = FORMS[i % len(FORMS)]
        a, b = _operands(rng, op)
        instruction = INSTRUCTIONS[(i // len(FORMS)) % len(INSTRUCTIONS)]
        answer = a + b if op == "+" else a - b
        prompt = f"{form.format(a=a, b=b)} {instruction}"
        rows.append({"prompt": prompt, "answer": str(answer), "form": i % len(FORMS),
                     "difficulty": 1})  # fmt: skip
    return rows
