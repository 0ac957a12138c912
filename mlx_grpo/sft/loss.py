"""The SFT loss: mean negative log-likelihood of the completion tokens given the prompt.

    L = -(1 / N) * sum over rows r, completion positions t of log p(x[r, t] | x[r, <t])

N counts the completion tokens (EOS included); prompt tokens and padding carry no loss.

The batch is mlx-lm's (`iterate_batches`: rows right-padded, `lengths` [B, 2] = (offset,
length)), but it is scored by GRPO's own log-prob code (`train.logprobs.token_logprobs` on a
`RowTokens` packing): only completion positions are projected to the vocabulary, a chunk at
a time under checkpointing, never a [batch, sequence, vocab] tensor. mlx-lm's `default_loss`
is not used for a second reason: its mask reaches one position past each row (`steps <=
length`), so it also trains the pad id 0 after every EOS and counts one token too many per
row (mlx-lm 0.32; ml-explore/mlx-lm pull request 1697).
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlx_grpo.train.batch import RowTokens
from mlx_grpo.train.logprobs import token_logprobs

PAD_MULTIPLE = 32  # completion widths are rounded up to this: fewer shapes to compile


def completion_rows(batch: mx.array, lengths: mx.array) -> tuple[RowTokens, mx.array]:
    """mlx-lm's padded batch as GRPO's per-row packing, and the [B, T] completion mask.

    Target t of row r is token `offset_r + t`, predicted by the hidden state one before it."""
    offsets, ends = lengths[:, :1], lengths[:, 1:]
    longest = int((ends - offsets).max().item())
    width = PAD_MULTIPLE * -(-longest // PAD_MULTIPLE)
    steps = mx.arange(width)[None]
    mask = steps < ends - offsets
    at = mx.minimum(offsets + steps, batch.shape[1] - 1)
    targets = mx.where(mask, mx.take_along_axis(batch, at, axis=1), 0)
    return RowTokens(batch, mx.maximum(at - 1, 0), targets), mask


def rows_nll(
    model: nn.Module, rows: RowTokens, mask: mx.array, chunk: int = 64, checkpoint: bool = False
) -> tuple[mx.array, mx.array]:
    """Mean NLL over the masked completion tokens, and how many there were."""
    logp, _ = token_logprobs(model, rows, 1.0, chunk, checkpoint, entropy=False)
    tokens = mask.sum()
    return -mx.where(mask, logp, 0.0).sum() / tokens, tokens


def completion_nll(
    model: nn.Module, batch: mx.array, lengths: mx.array, chunk: int = 64
) -> tuple[mx.array, mx.array]:
    """`rows_nll` with mlx-lm's loss signature `(model, batch, lengths)`, for its `evaluate`."""
    return rows_nll(model, *completion_rows(batch, lengths), chunk)
