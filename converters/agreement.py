"""How much a quantizing conversion changed the model: top-1 agreement with the source.

Before quantizing, the source model's most likely next token is recorded at every position
of a few built-in prompts; after, the quantized model's is compared with it. A small model
can be ruined by 4 bits without any error (SmolLM2-135M: 56% top-1 agreement at 4 bits,
97% at 8), so the number is printed after every quantizing conversion and a poor one warns.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx_grpo.converters.loaded import LoadedModel

PROMPTS = (
    "The capital of France is Paris. The capital of Italy is Rome. The capital of Spain is",
    "Question: Tom has 3 apples and buys 5 more. How many apples does he have?\nAnswer:",
    "def add(a, b):\n    return a + b\n\n\ndef multiply(a, b):\n",
)
POOR = 0.90  # below this share of positions the quantized model is a different model


@dataclass(frozen=True)
class Agreement:
    """Share of prompt positions where the quantized top-1 token equals the source's."""

    agree: int
    positions: int

    @property
    def rate(self) -> float:
        return self.agree / self.positions if self.positions else 1.0

    def poor(self, bits: int) -> bool:
        return self.rate < POOR and bits < 8

    def line(self, bits: int) -> str:
        measured = (
            f"top-1 agreement with the source: {self.rate:.1%} "
            f"({self.agree}/{self.positions} positions of {len(PROMPTS)} built-in prompts)"
        )
        if not self.poor(bits):
            return measured
        return f"warning: {measured} is poor at {bits} bits; --bits 8 keeps far more"


def prompt_ids(loaded: LoadedModel) -> list[list[int]]:
    """The built-in prompts in the model's own tokenizer (written out once, then read)."""
    from mlx_lm.utils import load_tokenizer

    with tempfile.TemporaryDirectory() as folder:
        loaded.write_tokenizer(Path(folder))
        tokenizer = load_tokenizer(Path(folder))
    return [list(tokenizer.encode(text)) for text in PROMPTS]


def top1(loaded: LoadedModel, prompts: list[list[int]]) -> list[np.ndarray]:
    """The most likely next token at every position of each prompt."""
    out = []
    for ids in prompts:
        logits = loaded.model(mx.array(ids)[None])
        out.append(np.array(mx.argmax(logits[0], axis=-1)))
    return out


def measure(loaded: LoadedModel, change: Callable[[], None]) -> Agreement:
    """Top-1 agreement of `loaded` before and after `change()` (which quantizes it)."""
    prompts = prompt_ids(loaded)
    before = top1(loaded, prompts)
    change()
    after = top1(loaded, prompts)
    agree = sum(int((a == b).sum()) for a, b in zip(before, after))
    return Agreement(agree, sum(len(ids) for ids in prompts))
