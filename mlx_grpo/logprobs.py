"""Token log-probabilities of completions under a model, in chunks over completion positions.

Only completion positions are projected to the vocabulary, `chunk` positions at a time, each
chunk under gradient checkpointing: the backward pass recomputes one chunk's logits instead of
keeping a [batch, completion, vocab] float32 tensor alive. The softmax runs in float32 on
logits / temperature (design.md: token log-probs).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn
import numpy as np


def round_up(n: int, multiple: int) -> int:
    return max(multiple, -(-n // multiple) * multiple)


@dataclass
class Packed:
    """Prompt+completion sequences right-padded to shared, rounded-up shapes."""

    inputs: mx.array  # [N, S] token ids
    positions: mx.array  # [N, T] index of the hidden state that predicts completion token t
    targets: mx.array  # [N, T] completion token ids (0 where padded)
    mask: mx.array  # [N, T] 1.0 on real completion tokens

    @property
    def num_tokens(self) -> int:
        return int(self.mask.sum().item())


def pack(prompts: list[list[int]], completions: list[list[int]], multiple: int = 32) -> Packed:
    """Right-pad prompt+completion pairs; shapes are rounded up so compiled steps are reused."""
    lengths = [len(p) + len(c) for p, c in zip(prompts, completions)]
    seq = round_up(max(lengths), multiple)
    width = round_up(max(len(c) for c in completions), multiple)
    n = len(completions)
    inputs = np.zeros((n, seq), dtype=np.int32)
    positions = np.zeros((n, width), dtype=np.int32)
    targets = np.zeros((n, width), dtype=np.int32)
    mask = np.zeros((n, width), dtype=np.float32)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        inputs[i, : len(p) + len(c)] = p + c
        t = len(c)
        positions[i, :t] = np.arange(len(p) - 1, len(p) - 1 + t)
        positions[i, t:] = len(p) - 1
        targets[i, :t] = c
        mask[i, :t] = 1.0
    return Packed(mx.array(inputs), mx.array(positions), mx.array(targets), mx.array(mask))


def output_head(model: nn.Module) -> tuple[nn.Module, bool]:
    """The module projecting hidden states to logits, and whether it is a tied embedding."""
    if hasattr(model, "lm_head"):
        return model.lm_head, False
    return model.model.embed_tokens, True


def _chunk_fn(head: nn.Module, tied: bool, temperature: float):
    """log p(target) and entropy for one chunk of hidden states, in float32."""

    def fn(h: mx.array, targets: mx.array) -> tuple[mx.array, mx.array]:
        targets = mx.stop_gradient(targets)  # integer ids: no gradient flows into them
        logits = head.as_linear(h) if tied else head(h)
        logits = logits.astype(mx.float32) / temperature
        lse = mx.logsumexp(logits, axis=-1)
        picked = mx.take_along_axis(logits, targets[..., None], axis=-1).squeeze(-1)
        probs = mx.softmax(mx.stop_gradient(logits), axis=-1)
        entropy = lse - (probs * mx.stop_gradient(logits)).sum(-1)
        return picked - lse, mx.stop_gradient(entropy)

    return fn


def completion_logprobs(
    model: nn.Module, packed: Packed, temperature: float = 1.0, chunk: int = 64
) -> tuple[mx.array, mx.array]:
    """[N, T] log-probs of the completion tokens and [N, T] entropies (masking is the caller's)."""
    hidden = model.model(packed.inputs)  # [N, S, D]
    hidden = mx.take_along_axis(hidden, packed.positions[..., None], axis=1)  # [N, T, D]
    head, tied = output_head(model)
    fn = nn.utils.checkpoint(head, _chunk_fn(head, tied, temperature))
    width = packed.targets.shape[1]
    parts = [
        fn(hidden[:, s : s + chunk], packed.targets[:, s : s + chunk])
        for s in range(0, width, chunk)
    ]
    logp = mx.concatenate([p[0] for p in parts], axis=1)
    entropy = mx.concatenate([p[1] for p in parts], axis=1)
    return logp, entropy


def full_logits_logprobs(model: nn.Module, packed: Packed, temperature: float = 1.0) -> mx.array:
    """The naive version (whole [N, S, V] float32 logits): a reference for tests and benchmarks."""
    logits = model(packed.inputs).astype(mx.float32) / temperature
    logp_all = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    at = mx.take_along_axis(logp_all, packed.positions[..., None], axis=1)
    return mx.take_along_axis(at, packed.targets[..., None], axis=-1).squeeze(-1)
