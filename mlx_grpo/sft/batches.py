"""Length-bucketed SFT batches from mlx-lm's `iterate_batches`, resumable from a cursor.

mlx-lm sorts the rows by length, cuts the sorted list into batches (so a batch holds rows of
similar length and little padding) and visits the batches in a seeded random order, each
padded to a multiple of 32 (plus one: inputs and targets are shifted by one). Two things are
added around it:

- every epoch is one `iterate_batches(..., seed=...)` pass with a seed of its own, so the
  cursor (epoch, batch index) is all a checkpoint needs: a resumed run replays the epoch's
  order and skips what it already trained;
- mlx-lm drops the rows that do not fill a last batch, and since rows are sorted that would
  always be the longest ones; here each epoch tops the rows up to a whole number of batches
  with a few seeded repeats instead, so every row is trained every epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import mlx.core as mx
import numpy as np

from mlx_grpo.sft.data import SftExample

Batch = tuple[mx.array, mx.array]  # ([B, S] token ids, [B, 2] (offset, length) per row)


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**31)


def topped_up(examples: list[SftExample], size: int, seed: int) -> list[SftExample]:
    """`examples` plus seeded repeats of some of them, to a multiple of `size` rows."""
    missing = -len(examples) % size
    extra = np.random.default_rng(seed).choice(len(examples), missing, replace=False)
    return examples + [examples[int(i)] for i in extra]


def epoch_batches(
    dataset: list[SftExample], size: int, max_length: int, seed: int
) -> Iterator[Batch]:
    """One epoch of mlx-lm's `iterate_batches` (rows are never longer than `max_length`)."""
    from mlx_lm.tuner.trainer import iterate_batches

    return iterate_batches(dataset, size, max_length, loop=False, seed=seed)


class BatchStream:
    """Endless SFT batches, epoch after epoch, resumable from `state()`."""

    def __init__(self, examples: list[SftExample], size: int, max_length: int, seed: int) -> None:
        if len(examples) < size:
            raise ValueError(f"{len(examples)} rows cannot fill a batch of {size}")
        self.examples, self.size, self.max_length = examples, size, max_length
        self.seed = seed
        self.epoch, self.index = 0, 0
        self._batches = self._epoch_batches()

    def _epoch_batches(self) -> Iterator[Batch]:
        seed = epoch_seed(self.seed, self.epoch)
        rows = topped_up(self.examples, self.size, seed)
        return epoch_batches(rows, self.size, self.max_length, seed)

    def next_batch(self) -> Batch:
        batch = next(self._batches, None)
        if batch is None:
            self.epoch, self.index = self.epoch + 1, 0
            self._batches = self._epoch_batches()
            batch = next(self._batches)
        self.index += 1
        return batch

    @property
    def batches_per_epoch(self) -> int:
        return -(-len(self.examples) // self.size)

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}

    def restore(self, state: dict[str, int]) -> None:
        """Continue at (epoch, index): replay that epoch's order, skipping what was trained."""
        self.epoch, self.index = int(state["epoch"]), 0
        self._batches = self._epoch_batches()
        for _ in range(int(state["index"])):
            next(self._batches)
            self.index += 1
