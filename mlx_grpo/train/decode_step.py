"""One decode step of a rollout's batch: eager on mlx-lm's batch cache, or compiled.

`EagerStep` calls the model on mlx-lm's `BatchKVCache`, which grows by slices written at
Python-int offsets, so every token rebuilds the whole step op by op in Python and `mx.compile`
could not reuse a trace (each offset would be a new constant).

`CompiledStep` keeps each layer's keys and values in buffers of a fixed length instead: the
write position is an array, each row's position (for RoPE) is that position minus the row's
left padding, and a mask hides the padding and the positions not yet written. Every step then
has the same graph, traced once by `mx.compile` and replayed: the same function of the same
weights (the mask removes exactly the positions the batch cache does not hold), at float
rounding from fused kernels. The buffers grow by `CHUNK` positions, each growth or cut of the
batch (finished rows leaving) tracing the step once more, so attention never spans many more
positions than the rows hold.

It applies to the model families whose attention reads only `cache.offset`,
`cache.update_and_fetch` and `cache.make_mask` (llama, qwen2, qwen3); `rollout.compiled_decode`
chooses where (`auto`: on MLX's CPU device, where it was measured faster:
benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn

CHUNK = 128  # positions the fixed buffers grow by
COMPILABLE = ("llama", "qwen2", "qwen3")  # attention that needs nothing else of the cache


class EagerStep:
    """The model on mlx-lm's batch cache, one step built and run as it comes."""

    def __init__(self, model: nn.Module, cache: list[Any]) -> None:
        self.model, self.cache = model, cache

    def __call__(self, y: mx.array) -> mx.array:
        return self.model(y[:, None], cache=self.cache)[:, -1, :]

    def filter(self, index: mx.array) -> None:
        for c in self.cache:
            c.filter(index)


class _Where:
    """What every layer's cache shares in one step: the write position [1], each row's
    position (for RoPE: the row's first real token is position 0) and its left padding."""

    def __init__(self, pos: mx.array, left: mx.array) -> None:
        self.start, self.offset, self.left, self.pos = pos.reshape(1), pos - left, left, pos


class _FixedKV:
    """One layer's keys and values in fixed-length buffers, written at `where.start`."""

    def __init__(self, keys: mx.array, values: mx.array, where: _Where) -> None:
        self.keys, self.values, self.where = keys, values, where
        self.offset = where.offset

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        start = self.where.start
        self.keys = mx.slice_update(self.keys, keys, start, axes=(2,))
        self.values = mx.slice_update(self.values, values, start, axes=(2,))
        return self.keys, self.values

    def make_mask(self, n: int, return_array: bool = False, window_size: Any = None) -> mx.array:
        """[B, 1, 1, length]: the row's own positions written so far, this step's included."""
        j, w = mx.arange(self.keys.shape[2]), self.where
        return ((j >= w.left[:, None]) & (j <= w.pos))[:, None, None, :]


def _step(model: nn.Module, y: mx.array, pos: mx.array, left: mx.array, kv: list) -> tuple:
    where = _Where(pos, left)
    caches = [_FixedKV(k, v, where) for k, v in kv]
    logits = model(y[:, None], cache=caches)[:, -1, :]
    return logits, [(c.keys, c.values) for c in caches]


class CompiledStep:
    """The model on fixed-length buffers, the step compiled (see the module docstring)."""

    def __init__(self, model: nn.Module, cache: list[Any], max_tokens: int) -> None:
        self.pos = cache[0]._idx  # the next position written (the same in every layer)
        self.left = cache[0].left_padding
        self.kv = [(c.keys[..., : self.pos, :], c.values[..., : self.pos, :]) for c in cache]
        self.room = self.pos + max_tokens  # the most positions this rollout writes
        self.fn = mx.compile(lambda *a: _step(model, *a), inputs=model.state)

    @property
    def length(self) -> int:
        """The buffers' length: positions written plus room left before the next growth."""
        return self.kv[0][0].shape[2]

    def _grow(self) -> None:
        """Longer buffers (zeros after what is written): at most CHUNK more positions."""
        extra = min(CHUNK, self.room - self.length)

        def pad(a: mx.array) -> mx.array:
            zeros = mx.zeros((*a.shape[:2], extra, a.shape[3]), dtype=a.dtype)
            return mx.concatenate([a, zeros], axis=2)

        self.kv = [(pad(k), pad(v)) for k, v in self.kv]

    def __call__(self, y: mx.array) -> mx.array:
        if self.pos >= self.length:
            self._grow()
        logits, self.kv = self.fn(y, mx.array(self.pos, dtype=mx.int32), self.left, self.kv)
        self.pos += 1
        return logits

    def filter(self, index: mx.array) -> None:
        self.kv = [(k[index], v[index]) for k, v in self.kv]
        self.left = self.left[index]


def compilable(model: nn.Module, cache: list[Any]) -> bool:
    """A supported family with a filled batch cache in every layer."""
    from mlx_lm.models.cache import BatchKVCache

    family = getattr(model, "model_type", None)
    filled = all(type(c) is BatchKVCache and c.keys is not None for c in cache)
    return family in COMPILABLE and filled


def wanted(setting: str) -> bool:
    """`rollout.compiled_decode`: always, never, or auto (on MLX's CPU device)."""
    return setting == "always" or (setting == "auto" and mx.default_device() == mx.cpu)


def decode_step(
    model: nn.Module, cache: list[Any], max_tokens: int, setting: str
) -> EagerStep | CompiledStep:
    """The step object for this rollout: compiled where wanted and possible, else eager."""
    if wanted(setting) and compilable(model, cache):
        return CompiledStep(model, cache, max_tokens)
    return EagerStep(model, cache)
