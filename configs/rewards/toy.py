"""Toy rewards for the debug config: signals a tiny random model can pick up in seconds."""

from __future__ import annotations

from typing import Any


def starts_with_digit(
    prompts: list[str], completions: list[str], answers: list[str], **_: Any
) -> list[float]:
    """1.0 when the completion's first character is a digit."""
    return [1.0 if c[:1].isdigit() else 0.0 for c in completions]
