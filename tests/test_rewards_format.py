"""Format rewards: graded R1 structure, the strict regex variant, and tag counting."""

from __future__ import annotations

import pytest

from mlx_grpo.rewards.format import r1_format_graded, r1_format_strict, tag_count


@pytest.mark.parametrize(
    ("completion", "score"),
    [
        ("The answer is 4.", 0.0),
        ("<think>reasoning without an end", 0.25),
        ("</think>4", 0.25),
        ("<think>a</think><think>b</think>4", 0.25),
        ("</think>x<think>", 0.25),
        ("<think></think>4", 0.5),
        ("<think>2+2 is 4</think>", 0.5),
        ("preamble <think>2+2</think>4", 0.5),
        ("<think>2+2 is 4</think>The answer is 4.", 1.0),
        ("\n<think>\n2+2\n</think>\n<answer>4</answer>\n", 1.0),
    ],
)
def test_graded_levels(completion: str, score: float) -> None:
    assert r1_format_graded(["q"], [completion], ["4"]) == [score]


def test_graded_counts_think_opened_by_the_prompt() -> None:
    prompt = "<|im_start|>assistant\n<think>\n"
    completion = "2+2 is 4</think>4"
    assert r1_format_graded([prompt], [completion], ["4"]) == [1.0]
    assert r1_format_graded(["plain prompt"], [completion], ["4"]) == [0.25]


@pytest.mark.parametrize(
    ("completion", "score"),
    [
        ("<think>\n2+2 is 4\n</think>\n<answer>\n4\n</answer>", 1.0),
        ("<think>\n2+2 is 4\n</think>\n<answer>\n4\n</answer>\n\n", 1.0),
        ("<think>2+2 is 4</think><answer>4</answer>", 0.0),
        ("<think>\n2+2\n</think>\n<answer>\n4\n</answer> and more", 0.0),
        ("<think>\n \n</think>\n<answer>\n4\n</answer>", 0.0),
        ("<think>\na\n</think>\n<think>\nb\n</think>\n<answer>\n4\n</answer>", 0.0),
        ("<think>\na <answer> b\n</think>\n<answer>\n4\n</answer>", 0.0),
        ("<think>\na\n</think>\n<answer>\n4\n</answer>" + "x" * 100_000, 0.0),
    ],
)
def test_strict(completion: str, score: float) -> None:
    assert r1_format_strict(["q"], [completion], ["4"]) == [score]


def test_tag_count() -> None:
    full = "<think>\nx\n</think>\n<answer>\n4\n</answer>"
    completions = [full, full + "\n12345", "<think>x</think>", "<think><think>x</think>", "none"]
    scores = tag_count([""] * 5, completions, [""] * 5)
    assert scores[0] == 1.0
    assert scores[1] == pytest.approx(1.0 - 5 * 0.001)
    assert scores[2:] == [0.5, 0.25, 0.0]


def test_answer_tag_wants_exactly_one_filled_tag() -> None:
    from mlx_grpo.rewards.format import answer_tag

    completions = [
        "So <answer>42</answer>",
        "<answer></answer>",
        "42",
        "<answer>1</answer> or <answer>2</answer>",
        "<answer>\n7\n</answer> done",
    ]
    assert answer_tag([""] * 5, completions, [""] * 5) == [1.0, 0.0, 0.0, 0.0, 1.0]
