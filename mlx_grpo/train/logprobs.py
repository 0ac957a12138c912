"""Token log-probabilities of completions under a model, in chunks over completion positions.

log p(token) = log softmax(logits / temperature)[token], in float32, at each sampled
completion token, conditioned on the prompt and the completion tokens before it (never a
decode and re-encode). Only completion positions are projected to the vocabulary, `chunk`
positions at a time, each chunk under gradient checkpointing: the backward pass recomputes one
chunk's logits instead of keeping a [batch, completion, vocab] float32 tensor alive.

`token_logprobs` scores either packing of `train.batch` (prompts shared by their completions,
or whole rows); `completion_logprobs` does the same for a `pack` / `pack_groups` result.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlx_grpo.models import fastmath
from mlx_grpo.models.families import LAYERWISE_MODELS
from mlx_grpo.train.batch import Packed, PackedGroups, RowTokens, SharedTokens, Tokens


def output_head(model: nn.Module) -> tuple[nn.Module, bool]:
    """The module projecting hidden states to logits, and whether it is a tied embedding."""
    if hasattr(model, "lm_head"):
        return model.lm_head, False
    return model.model.embed_tokens, True


def _chunk_fn(head: nn.Module, tied: bool, temperature: float, entropy: bool):
    """log p(target) (and the entropy when asked) for one chunk of hidden states, in float32.

    log p(t) = z_t - lse(z), lse(z) = m + log sum_v exp(z_v - m) with m = max z (held constant:
    it cancels). The exponentials are computed once: the entropy H = lse - sum_v p_v z_v with
    p = exp(z - m) / sum, and the gradient of lse (= p) reuses them, where `mx.logsumexp`
    would recompute exp over the vocabulary for its gradient and `mx.softmax` once more for
    the entropy (exp is the costliest part of the head on a CPU: benchmarks/RESULTS.md)."""

    def fn(h: mx.array, targets: mx.array) -> tuple[mx.array, ...]:
        targets = mx.stop_gradient(targets)  # integer ids: no gradient flows into them
        logits = head.as_linear(h) if tied else head(h)
        logits = logits.astype(mx.float32) / temperature
        top = mx.stop_gradient(logits.max(axis=-1, keepdims=True))
        exps = fastmath.exp(logits - top)
        total = exps.sum(axis=-1, keepdims=True)
        lse = (top + mx.log(total)).squeeze(-1)
        picked = mx.take_along_axis(logits, targets[..., None], axis=-1).squeeze(-1)
        if not entropy:
            return (picked - lse,)
        mean_logit = (mx.stop_gradient(exps) * mx.stop_gradient(logits)).sum(-1) / total[..., 0]
        return picked - lse, mx.stop_gradient(lse - mean_logit)

    return fn


def completion_logprobs(
    model: nn.Module, packed: Packed | PackedGroups, temperature: float = 1.0, chunk: int = 64
) -> tuple[mx.array, mx.array]:
    """[N, T] log-probs of the completion tokens and [N, T] entropies (masking is the caller's).

    Either packing: per-row prompt + completion (`pack`) or prompts shared by their
    completions (`pack_groups`); same numbers, the second computes each prompt once."""
    return token_logprobs(model, packed.tokens, temperature, chunk)


def head_logprobs(
    model: nn.Module,
    hidden: mx.array,
    targets: mx.array,
    temperature: float,
    chunk: int,
    entropy: bool = True,
) -> tuple[mx.array, mx.array | None]:
    """Project [N, T, D] hidden states to log p(target) and entropy (None unless `entropy`),
    `chunk` positions at a time."""
    head, tied = output_head(model)
    fn = nn.utils.checkpoint(head, _chunk_fn(head, tied, temperature, entropy))
    parts = [
        fn(hidden[:, s : s + chunk], targets[:, s : s + chunk])
        for s in range(0, targets.shape[1], chunk)
    ]
    logp = mx.concatenate([p[0] for p in parts], axis=1)
    if not entropy:
        return logp, None
    return logp, mx.concatenate([p[1] for p in parts], axis=1)


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


def _prompt_caches(n_layers: int, left_padding: mx.array) -> list:
    from mlx_lm.models.cache import BatchKVCache  # mlx-lm imports transformers: on first use

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


def token_logprobs(
    model: nn.Module,
    tokens: Tokens,
    temperature: float,
    chunk: int,
    checkpoint: bool = False,
    entropy: bool = True,
) -> tuple[mx.array, mx.array | None]:
    """[N, T] log-probs and entropies (None unless `entropy`) of the completion tokens of
    either packing (masking is the caller's). `checkpoint` recomputes layers in the backward
    pass: shared prompts run the body layer by layer (`layerwise_supported`); per-row scoring
    relies on the layers being checkpointed already, as mlx-lm's grad_checkpoint does."""
    if isinstance(tokens, SharedTokens):
        shared = shared_prefix_hidden_checkpointed if checkpoint else shared_prefix_hidden
        hidden = shared(model, *tokens)
        return head_logprobs(model, hidden, tokens.inputs, temperature, chunk, entropy)
    assert isinstance(tokens, RowTokens)
    hidden = model.model(tokens.inputs)  # [N, S, D]
    hidden = mx.take_along_axis(hidden, tokens.positions[..., None], axis=1)  # [N, T, D]
    return head_logprobs(model, hidden, tokens.targets, temperature, chunk, entropy)
