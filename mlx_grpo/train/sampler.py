"""Categorical sampling by the inverse CDF, for temperature sampling on an x86-64 CPU.

mlx-lm's categorical sampler draws argmax(z / T + Gumbel noise): one uniform number and two
logarithms for every entry of the vocabulary, 5 ms a step for 8 rows of 49,152 on this
project's benchmark box. Inverse transform sampling draws one uniform number per row instead:
with p = exp(z / T - max), the token is the first index whose cumulative mass exceeds
u * sum(p), u ~ U[0, 1) (Devroye, "Non-Uniform Random Variate Generation", 1986, II.2).
That needs one exp pass (`fastmath.exp`), a cumulative sum and two counts: 2.8 ms.

The cumulative sum runs in two levels, within blocks of `BLOCK` entries and over the blocks'
totals, so its float32 rounding stays ~5e-7 of the mass (measured against float64) instead of
~7e-5 for one running sum over the vocabulary. The targets are clamped just below the totals
they search, so a token of zero probability (a -inf logit, the padding of the last block) is
never drawn.

Used only where `fastmath.fast_cpu_math()` holds and the sampler is plain temperature sampling
(no top-p, top-k or min-p); everywhere else mlx-lm's samplers draw.
"""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx

from mlx_grpo.models import fastmath

BLOCK = 256  # entries per block of the two-level cumulative sum
BELOW = 1.0 - 2.0**-23  # x * BELOW is the float32 just under x (x > 0)


def inverse_cdf_sampler(temperature: float) -> Callable[[mx.array], mx.array]:
    """A sampler of [n] token ids from [n, vocab] logits (or log-probs) at `temperature`."""
    if temperature == 1.0:  # no pass over the vocabulary to multiply by one
        return lambda logits: draw(logits.astype(mx.float32))
    scale = 1.0 / temperature
    return lambda logits: draw(logits.astype(mx.float32) * scale)


def _blocks(z: mx.array) -> tuple[mx.array, mx.array]:
    """Unnormalized probabilities' cumulative sums within blocks [n, blocks, BLOCK] and over
    the blocks' totals [n, blocks]."""
    n, vocab = z.shape
    p = fastmath.exp(z - mx.max(z, axis=-1, keepdims=True))
    if pad := -vocab % BLOCK:
        p = mx.concatenate([p, mx.zeros((n, pad), dtype=p.dtype)], axis=-1)
    inner = mx.cumsum(p.reshape(n, -1, BLOCK), axis=-1)
    return inner, mx.cumsum(inner[..., -1], axis=-1)


def draw(z: mx.array) -> mx.array:
    """One categorical draw per row of softmax(z)."""
    inner, mass = _blocks(z)
    total = mass[:, -1:]
    target = mx.minimum(mx.random.uniform(shape=total.shape) * total, total * BELOW)
    block = mx.sum(mass <= target, axis=-1)  # the first block whose running mass exceeds it
    earlier = mx.take_along_axis(mass, mx.maximum(block - 1, 0)[:, None], axis=-1)[:, 0]
    rest = target[:, 0] - mx.where(block > 0, earlier, 0.0)
    row = mx.take_along_axis(inner, block[:, None, None], axis=1)[:, 0]
    rest = mx.minimum(rest, row[:, -1] * BELOW)
    token = block * BLOCK + mx.sum(row <= rest[:, None], axis=-1)
    return token.astype(mx.uint32)  # as mlx-lm's samplers: the next step's input keeps one dtype
