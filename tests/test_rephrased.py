"""The demo's rephrased held-out set: deterministic, right answers, unlike the training stories."""

from __future__ import annotations

import re

import pytest

from mlx_grpo.data.tasks import arithmetic, rephrased

STORY = re.compile(r"^[A-Z][a-z]+ has \d+ [a-z]+\.")


def test_same_seed_same_rows_and_a_longer_set_extends_a_shorter_one() -> None:
    assert rephrased.generate(40, seed=3) == rephrased.generate(40, seed=3)
    assert rephrased.generate(64, seed=3)[:40] == rephrased.generate(40, seed=3)
    assert rephrased.generate(16, seed=3) != rephrased.generate(16, seed=4)


def test_answers_are_right_and_every_form_meets_every_instruction() -> None:
    rows = rephrased.generate(64, seed=0)
    pairs = set()
    for row in rows:
        form, op = rephrased.FORMS[row["form"]]
        a, b = (int(x) for x in re.findall(r"\d+", row["prompt"])[:2])
        if form.index("{a}") > form.index("{b}"):  # "Subtract {b} from {a}."
            a, b = b, a
        assert int(row["answer"]) == (a + b if op == "+" else a - b) >= 1, row
        instruction = next(i for i in rephrased.INSTRUCTIONS if row["prompt"].endswith(i))
        pairs.add((row["form"], instruction))
    assert len(pairs) == len(rephrased.FORMS) * len(rephrased.INSTRUCTIONS)


def test_no_row_is_phrased_like_a_training_story() -> None:
    training = arithmetic.generate(2000, seed=0)
    assert all(STORY.match(str(row["prompt"])) for row in training[:50])  # the test's premise
    rows = rephrased.generate(256, seed=0)
    assert not any(STORY.match(str(row["prompt"])) for row in rows)
    assert not {r["prompt"] for r in rows} & {r["prompt"] for r in training}
    assert all("<answer>" in str(row["prompt"]) for row in rows)  # the instruction is asked


def test_only_difficulty_one() -> None:
    with pytest.raises(ValueError, match="difficulty 1 only"):
        rephrased.generate(4, seed=0, difficulty=2)
