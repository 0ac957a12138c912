"""Format rewards for the DeepSeek-R1 layout `<think>reasoning</think>answer`.

- `r1_format_graded`: 0, 0.25, 0.5 or 1.0 as the structure gets more complete, so a model
  that has learnt half the format already sees a gradient.
- `r1_format_strict`: 1.0 only for exactly
  `<think>\\n...\\n</think>\\n<answer>\\n...\\n</answer>` (whitespace after the end allowed).
- `tag_count`: 0.25 for each of the four tags appearing exactly once, minus 0.001 per
  character written after `</answer>`.

Many chat templates for reasoning models end the prompt with `<think>`; when the prompt
does and the completion has no `<think>` of its own, the tag counts as written.
"""

from __future__ import annotations

import re

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TRAILING_PENALTY = 0.001

_ANGLE = re.compile(r"[<>]")
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
# The strict layout, in three fixed pieces: found with str.find, so linear in the text.
_STRICT_HEAD, _STRICT_MID, _STRICT_END = "<think>\n", "\n</think>\n<answer>\n", "\n</answer>"


def with_prompt_think(prompt: str, completion: str) -> str:
    """Prepend `<think>` when the prompt opened the thinking block for the model."""
    if prompt.rstrip().endswith(THINK_OPEN) and THINK_OPEN not in completion:
        return THINK_OPEN + completion
    return completion


def graded_score(text: str) -> float:
    """0: no think tag; 0.25: tags present but not one ordered pair; 0.5: one ordered pair
    but text before it, empty thinking or no answer after it; 1.0: complete."""
    opens, closes = text.count(THINK_OPEN), text.count(THINK_CLOSE)
    if opens == 0 and closes == 0:
        return 0.0
    if opens != 1 or closes != 1 or text.index(THINK_OPEN) > text.index(THINK_CLOSE):
        return 0.25
    before, rest = text.split(THINK_OPEN)
    thinking, answer = rest.split(THINK_CLOSE)
    if before.strip() or not thinking.strip() or not answer.strip():
        return 0.5
    return 1.0


def r1_format_graded(
    prompts: list[str], completions: list[str], answers: list[str], **extras: object
) -> list[float | None]:
    """Graded R1 format reward: 0 / 0.25 / 0.5 / 1.0 (see `graded_score`)."""
    return [graded_score(with_prompt_think(p, c)) for p, c in zip(prompts, completions)]


def r1_format_strict(
    prompts: list[str], completions: list[str], answers: list[str], **extras: object
) -> list[float | None]:
    """1.0 for exactly `<think>\\n...\\n</think>\\n<answer>\\n...\\n</answer>`, else 0.0."""
    return [strict_score(with_prompt_think(p, c)) for p, c in zip(prompts, completions)]


def strict_score(text: str) -> float:
    """1.0 for `<think>\\n...\\n</think>\\n<answer>\\n...\\n</answer>` with non-empty
    parts that hold no other tag and only whitespace after the end (no regex: str.find)."""
    text = text.lstrip()
    if not text.startswith(_STRICT_HEAD):
        return 0.0
    mid = text.find(_STRICT_MID, len(_STRICT_HEAD))
    end = text.find(_STRICT_END, mid + len(_STRICT_MID)) if mid >= 0 else -1
    if end < 0:
        return 0.0
    think, answer = text[len(_STRICT_HEAD) : mid], text[mid + len(_STRICT_MID) : end]
    parts_ok = all(part.strip() and not _has_tag(part) for part in (think, answer))
    return 1.0 if parts_ok and not text[end + len(_STRICT_END) :].strip() else 0.0


def _has_tag(text: str) -> bool:
    return any(tag in text for tag in TAGS)


def tag_score(text: str) -> float:
    """0.25 per tag present exactly once, minus TRAILING_PENALTY per char after </answer>."""
    score = sum(0.25 for tag in TAGS if text.count(tag) == 1)
    if ANSWER_CLOSE in text:
        trailing = text.rsplit(ANSWER_CLOSE, 1)[1].strip()
        score -= TRAILING_PENALTY * len(trailing)
    return max(score, 0.0)


def tag_count(
    prompts: list[str], completions: list[str], answers: list[str], **extras: object
) -> list[float | None]:
    """Tag-count reward in [0, 1] (see `tag_score`)."""
    return [tag_score(with_prompt_think(p, c)) for p, c in zip(prompts, completions)]


def filled_answer_tags(text: str) -> int:
    """How many `<answer>...</answer>` pairs hold a non-empty answer with no `<` or `>`.

    One left-to-right pass with str.find (linear: each character is looked at once)."""
    count, pos = 0, text.find(ANSWER_OPEN)
    while pos >= 0:
        start = pos + len(ANSWER_OPEN)
        stop = _next_angle(text, start)
        if stop < 0:
            break
        count += text.startswith(ANSWER_CLOSE, stop) and bool(text[start:stop].strip())
        pos = text.find(ANSWER_OPEN, stop)
    return count


def _next_angle(text: str, start: int) -> int:
    found = _ANGLE.search(text, start)
    return found.start() if found else -1


def answer_tag(
    prompts: list[str], completions: list[str], answers: list[str], **extras: object
) -> list[float | None]:
    """1.0 when the completion gives exactly one non-empty `<answer>...</answer>`, else 0.0.

    The format half of instruct-model tasks that ask for the final answer in tags (no
    `<think>` required)."""
    return [1.0 if filled_answer_tags(c) == 1 else 0.0 for c in completions]
