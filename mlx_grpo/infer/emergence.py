"""Emergence metrics: signs of the R1-Zero "aha moment" in a batch of completions.

- think_rate: share of completions with a `<think>...</think>` block
- think_tokens: mean length of the think block in tokens (over completions that have one)
- self_correction_rate: share with a self-correction phrase ("wait", "let me check", ...)
- answer_rate: share that commit to a final answer (`<answer>...</answer>` or `\\boxed{}`)
"""

from __future__ import annotations

import re
from collections.abc import Callable

SELF_CORRECTION = re.compile(
    r"\b(wait|let me (?:re-?)?check|let me verify|let me reconsider|let me re-?examine|actually"
    r"|on second thought|i made (?:a|an) (?:mistake|error)|that'?s (?:not right|wrong)|hmm)\b",
    re.IGNORECASE,
)


def emergence_metrics(
    completions: list[str], count_tokens: Callable[[str], int]
) -> dict[str, float]:
    """The four rates above for a list of completions."""
    n = max(len(completions), 1)
    thinks = [t for c in completions if (t := _between(c, "<think>", "</think>")) is not None]
    return {
        "think_rate": len(thinks) / n,
        "think_tokens": sum(count_tokens(t) for t in thinks) / len(thinks) if thinks else 0.0,
        "self_correction_rate": sum(bool(SELF_CORRECTION.search(c)) for c in completions) / n,
        "answer_rate": sum(_answers(c) for c in completions) / n,
    }


def _between(text: str, open_tag: str, close_tag: str) -> str | None:
    """Text between the first `open_tag` and the first `close_tag` after it (str.find: a lazy
    `.*?` regex would rescan the rest of the text from every unclosed tag)."""
    start = text.find(open_tag)
    end = text.find(close_tag, start + len(open_tag)) if start >= 0 else -1
    return text[start + len(open_tag) : end] if end >= 0 else None


def _answers(text: str) -> bool:
    return "\\boxed{" in text or _between(text, "<answer>", "</answer>") is not None
