"""The simplest correctness reward: the last number of the completion equals the gold answer."""

from __future__ import annotations

import re
from typing import Any

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text: str) -> str | None:
    """The last number written in `text`, without thousands separators."""
    found = _NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a.strip() == b.strip()


def exact_number(
    prompts: list[str], completions: list[str], answers: list[str], **_: Any
) -> list[float]:
    """1.0 when the completion's last number equals the gold answer's last number."""
    scores = []
    for completion, answer in zip(completions, answers):
        got, gold = last_number(completion), last_number(answer) or answer.strip()
        scores.append(1.0 if got is not None and _same_number(got, gold) else 0.0)
    return scores
