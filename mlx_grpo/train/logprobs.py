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

from mlx_grpo.plan.architecture import LAYERWISE_MODELS

# Scored lengths are rounded up so compiled steps are reused from step to step. On CUDA,
# cuDNN's fused attention backward needs query lengths that are multiples of 128; otherwise MLX
# differentiates the unfused fallback, which keeps every [heads, S, S] probability matrix.
PAD_MULTIPLE, CUDA_PAD_MULTIPLE = 32, 128


def round_up(n: int, multiple: int) -> int:
    return max(multiple, -(-n // multiple) * multiple)


def pad_multiple(on_cuda: bool | None = None) -> int:
    """The multiple scored lengths are padded to on this backend."""
    if on_cuda is None:
        cuda = getattr(mx, "cuda", None)
        on_cuda = bool(cuda and cuda.is_available() and mx.default_device() == mx.gpu)
    return CUDA_PAD_MULTIPLE if on_cuda else PAD_MULTIPLE


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
    model: nn.Module, packed: Packed | PackedGroups, temperature: float = 1.0, chunk: int = 64
) -> tuple[mx.array, mx.array]:
    """[N, T] log-probs of the completion tokens and [N, T] entropies (masking is the caller's).

    Either packing: per-row prompt + completion (`pack`) or prompts shared by their
    completions (`pack_groups`); same numbers, the second computes each prompt once."""
    return score_from_arrays(model, score_arrays(packed), temperature, chunk)


def head_logprobs(
    model: nn.Module, hidden: mx.array, targets: mx.array, temperature: float, chunk: int
) -> tuple[mx.array, mx.array]:
    """Project [N, T, D] hidden states to log p(target) and entropy, `chunk` positions at a time."""
    head, tied = output_head(model)
    fn = nn.utils.checkpoint(head, _chunk_fn(head, tied, temperature))
    parts = [
        fn(hidden[:, s : s + chunk], targets[:, s : s + chunk])
        for s in range(0, targets.shape[1], chunk)
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


# ----------------------------------------------------------------------------- shared prompts
#
# The G completions of a prompt share it. Instead of running prompt + completion for every
# completion, each distinct prompt runs once (left-padded, into a BatchKVCache); its cache
# rows are gathered for the completions that continue it (a differentiable `keys[owner]`), and
# only the completion tokens run against them. The first completion token is predicted by the
# prompt's last hidden state. Same log-probs and gradients as `completion_logprobs` on packed
# rows, with the prompt computed once per group instead of G times.


@dataclass
class PackedGroups:
    """Distinct prompts (left-padded) and the completions that continue them (right-padded)."""

    prompts: mx.array  # [P, Sp] token ids, left-padded
    left_padding: mx.array  # [P] pad tokens before each prompt
    inputs: mx.array  # [N, T] completion token ids (right-padded); also the targets
    owner: mx.array  # [N] index of each completion's prompt
    mask: mx.array  # [N, T] 1.0 on real completion tokens


def pack_groups(
    prompts: list[list[int]], owner: list[int], completions: list[list[int]], multiple: int = 32
) -> PackedGroups:
    """Pack distinct prompts and their completions to shapes rounded up to `multiple`: the
    prompt width, and the completions' query length T - 1 (token t predicts token t + 1)."""
    width = round_up(max(len(p) for p in prompts), multiple)
    t = round_up(max(len(c) for c in completions) - 1, multiple) + 1
    padded = np.zeros((len(prompts), width), dtype=np.int32)
    for i, p in enumerate(prompts):
        padded[i, width - len(p) :] = p
    ids = np.zeros((len(completions), t), dtype=np.int32)
    mask = np.zeros((len(completions), t), dtype=np.float32)
    for i, c in enumerate(completions):
        ids[i, : len(c)] = c
        mask[i, : len(c)] = 1.0
    left = mx.array([width - len(p) for p in prompts], dtype=mx.int32)
    return PackedGroups(
        mx.array(padded), left, mx.array(ids), mx.array(owner, dtype=mx.int32), mx.array(mask)
    )


def _prompt_caches(n_layers: int, left_padding: mx.array) -> list:
    from mlx_lm.models.cache import BatchKVCache

    caches = []
    for _ in range(n_layers):
        cache = BatchKVCache([])
        cache.left_padding, cache.offset = left_padding, -left_padding
        caches.append(cache)
    return caches


def _expand_cache(cache: object, owner: mx.array) -> object:
    """A BatchKVCache whose row i is row owner[i] of `cache` (gathered, so gradients flow)."""
    from mlx_lm.models.cache import BatchKVCache

    rows = BatchKVCache([])
    rows.keys, rows.values = cache.keys[owner], cache.values[owner]
    rows.offset, rows.left_padding = cache.offset[owner], cache.left_padding[owner]
    rows._idx = cache._idx
    return rows


def embed_both(body: nn.Module, prompts: mx.array, inputs: mx.array) -> tuple[mx.array, mx.array]:
    """Embeddings of the prompts and of the completion inputs (token t predicts t + 1) in one
    lookup: each lookup's backward builds a dense [vocab, hidden] gradient, so one, not two."""
    rows = inputs[:, :-1]
    ids = mx.concatenate([prompts.reshape(-1), rows.reshape(-1)])
    h = body.embed_tokens(ids)
    split = prompts.size
    return h[:split].reshape(*prompts.shape, -1), h[split:].reshape(*rows.shape, -1)


def _body_passes(model: nn.Module, prompts: mx.array, inputs: mx.array) -> tuple:
    """(args, kwargs) of the body's prompt pass and of its completion pass (token t predicts
    t + 1); bodies known to take `input_embeddings` as they are get one embedding lookup."""
    if layerwise_supported(model):
        h_prompt, h_rows = embed_both(model.model, prompts, inputs)
        return ((None,), {"input_embeddings": h_prompt}), ((None,), {"input_embeddings": h_rows})
    return ((prompts,), {}), ((inputs[:, :-1],), {})


def shared_prefix_hidden(
    model: nn.Module, prompts: mx.array, left_padding: mx.array, inputs: mx.array, owner: mx.array
) -> mx.array:
    """[N, T, D] hidden states predicting each completion token, prompts computed once."""
    body = model.model
    (p_args, p_kwargs), (r_args, r_kwargs) = _body_passes(model, prompts, inputs)
    caches = _prompt_caches(len(body.layers), left_padding)
    prompt_hidden = body(*p_args, cache=caches, **p_kwargs)[:, -1:, :]  # predicts token 0
    rows = [_expand_cache(c, owner) for c in caches]
    completion_hidden = body(*r_args, cache=rows, **r_kwargs)
    return mx.concatenate([prompt_hidden[owner], completion_hidden], axis=1)


def layerwise_supported(model: nn.Module) -> bool:
    """Whether `shared_prefix_hidden_checkpointed` can run this model's body layer by layer."""
    body = getattr(model, "model", None)
    parts = ("embed_tokens", "layers", "norm")
    return getattr(model, "model_type", None) in LAYERWISE_MODELS and all(
        hasattr(body, part) for part in parts
    )


def _layer_pair(layer: nn.Module):
    """One decoder layer over the distinct prompts, then over their completions attending to
    them, with a fresh cache inside: the function is pure, so checkpointing can replay it.
    (The prompts' keys/values never leave it: gradients reach them through its outputs.)"""
    from mlx_lm.models.base import create_attention_mask

    def run(
        h_prompt: mx.array, h_rows: mx.array, left_padding: mx.array, owner: mx.array
    ) -> tuple[mx.array, mx.array]:
        left_padding, owner = mx.stop_gradient(left_padding), mx.stop_gradient(owner)
        cache = _prompt_caches(1, left_padding)[0]
        h_prompt = layer(h_prompt, create_attention_mask(h_prompt, cache), cache)
        rows = _expand_cache(cache, owner)
        return h_prompt, layer(h_rows, create_attention_mask(h_rows, rows), rows)

    return nn.utils.checkpoint(layer, run)


def shared_prefix_hidden_checkpointed(
    model: nn.Module, prompts: mx.array, left_padding: mx.array, inputs: mx.array, owner: mx.array
) -> mx.array:
    """`shared_prefix_hidden` under gradient checkpointing: the backward pass keeps only each
    layer's inputs (prompts once, completions once) and recomputes one layer at a time."""
    body = model.model
    h_prompt, h_rows = embed_both(body, prompts, inputs)
    for layer in body.layers:
        h_prompt, h_rows = _layer_pair(layer)(h_prompt, h_rows, left_padding, owner)
    prompt_hidden = body.norm(h_prompt[:, -1:, :])  # predicts completion token 0
    return mx.concatenate([prompt_hidden[owner], body.norm(h_rows)], axis=1)


# ----------------------------------------------------------------------------- one interface


def score_arrays(packed: Packed | PackedGroups) -> tuple[mx.array, ...]:
    """The arrays `score_from_arrays` needs (what a compiled training step takes as inputs)."""
    if isinstance(packed, PackedGroups):
        return packed.prompts, packed.left_padding, packed.inputs, packed.owner
    return packed.inputs, packed.positions, packed.targets


def score_from_arrays(
    model: nn.Module,
    arrays: tuple[mx.array, ...],
    temperature: float,
    chunk: int,
    checkpoint: bool = False,
) -> tuple[mx.array, mx.array]:
    """Log-probs and entropies from `score_arrays(...)` of either packing. `checkpoint`
    recomputes layers in the backward pass (shared prompts need `layerwise_supported`; per-row
    scoring relies on the layers being checkpointed already, as mlx-lm's grad_checkpoint does)."""
    if len(arrays) == 4:
        shared = shared_prefix_hidden_checkpointed if checkpoint else shared_prefix_hidden
        hidden = shared(model, *arrays)
        return head_logprobs(model, hidden, arrays[2], temperature, chunk)
    inputs, positions, targets = arrays
    hidden = model.model(inputs)  # [N, S, D]
    hidden = mx.take_along_axis(hidden, positions[..., None], axis=1)  # [N, T, D]
    return head_logprobs(model, hidden, targets, temperature, chunk)
