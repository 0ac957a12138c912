"""Rollouts: G sampled completions for each of B prompts, decoded concurrently.

Each prompt is prefilled once into its own KV cache (mlx-lm's caches); its G siblings all start
from a copy of that cache, so the prompt is never recomputed per completion. Decoding is a lean
loop of our own: one model call (`decode_step`: a step compiled once on fixed-length KV buffers
on MLX's CPU, else the model on mlx-lm's batch cache) and one sampler call (mlx-lm's samplers;
`sampler.inverse_cdf_sampler` for plain temperature sampling on an x86-64 CPU) per step for the
whole batch, the next step queued before the current one is read, finished rows kept in the batch
until at most half of it is alive (then the cache is cut down to the live rows), stop sequences
matched on the host. It returns the token ids it sampled (completions are never decoded and
re-encoded) and marks completions cut off by the token limit.

While it decodes, LoRA layers over plain (unquantized) linears run merged (`merged_adapters`):
one matrix product W' = W + scale * (A B)^T per layer instead of three, the same function of
the input (the first step's adapters, B = 0, merge to W bit for bit). The layers are put back
afterwards; a quantized base keeps its adapters as they are (merging would re-quantize).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_unflatten

from mlx_grpo.config import RolloutConfig
from mlx_grpo.models.fastmath import fast_cpu_math
from mlx_grpo.train.decode_step import CompiledStep, EagerStep, decode_step
from mlx_grpo.train.sampler import inverse_cdf_sampler


@dataclass
class RolloutBatch:
    """B * G completions in group-major order: completion n belongs to prompt n // G."""

    prompt_ids: list[list[int]]  # one entry per prompt (B)
    completion_ids: list[list[int]]  # one entry per completion (B * G)
    truncated: list[bool]  # hit max tokens without a stop
    group_size: int
    seconds: float = 0.0
    logprobs: list[list[float]] | None = None  # sampler-side log-probs (Sampling)

    @property
    def num_tokens(self) -> int:
        return sum(len(c) for c in self.completion_ids)

    @property
    def tokens_per_second(self) -> float:
        return self.num_tokens / self.seconds if self.seconds > 0 else 0.0

    def prompt_of(self, n: int) -> list[int]:
        return self.prompt_ids[n // self.group_size]


def decode_completions(tokenizer: Any, batch: RolloutBatch) -> list[str]:
    """Completion texts for the rewards, without a final EOS token (stop strings stay)."""
    eos = tokenizer.eos_token_ids
    return [
        tokenizer.decode(ids[:-1] if ids and ids[-1] in eos else ids)
        for ids in batch.completion_ids
    ]


def make_rollout_sampler(cfg: RolloutConfig) -> Any:
    """mlx-lm's sampler for temperature / top-p / top-k / min-p; plain temperature sampling
    on an x86-64 CPU by the inverse CDF (`train.sampler`, the same distribution, faster)."""
    from mlx_lm.sample_utils import make_sampler

    plain = cfg.temperature > 0 and cfg.top_k <= 0 and shift_invariant(cfg)
    if plain and fast_cpu_math():
        return inverse_cdf_sampler(cfg.temperature)
    top_p = cfg.top_p if cfg.top_p < 1.0 else 0.0
    return make_sampler(cfg.temperature, top_p=top_p, min_p=cfg.min_p, top_k=cfg.top_k)


def stop_sequences(tokenizer: Any, stop: list[str]) -> list[list[int]]:
    """EOS ids plus the token sequences of the configured stop strings."""
    seqs = [[t] for t in sorted(tokenizer.eos_token_ids)]
    seqs += [list(tokenizer.encode(s, add_special_tokens=False)) for s in stop if s]
    return seqs


def prefill(model: nn.Module, prompt: list[int]) -> list[Any]:
    """Run all but the last prompt token through the model once; return the filled cache."""
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    if len(prompt) > 1:
        model(mx.array(prompt[:-1])[None], cache=cache)
        mx.eval([c.state for c in cache])
    return cache


@dataclass
class Sampling:
    """What a rollout needs besides the model: limits, sampler and stop sequences."""

    max_tokens: int
    sampler: Any
    stops: list[list[int]]
    return_logprobs: bool = False  # each sampled token's log-prob (RolloutBatch.logprobs)
    logprob_temperature: float = 1.0  # ... as log softmax(logits / this)[token]
    merge_adapters: bool = True  # decode LoRA layers merged into their base (`merged_adapters`)
    # The sampler draws the same for logits shifted per row (argmax, temperature, top-k), so
    # the loop may skip normalizing them to log-probs (log-sum-exp over the vocabulary).
    shift_invariant: bool = False
    compiled_decode: str = "auto"  # auto / always / never (`decode_step.decode_step`)


def shift_invariant(cfg: RolloutConfig) -> bool:
    """top-p and min-p read probabilities; temperature and top-k only compare logits."""
    return cfg.top_p >= 1.0 and cfg.min_p <= 0.0


def sampling_from_config(cfg: RolloutConfig, tokenizer: Any) -> Sampling:
    return Sampling(
        max_tokens=cfg.max_completion_length,
        sampler=make_rollout_sampler(cfg),
        stops=stop_sequences(tokenizer, cfg.stop),
        merge_adapters=cfg.merge_adapters,
        shift_invariant=shift_invariant(cfg),
        compiled_decode=cfg.compiled_decode,
    )


def _mergeable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """LoRA layers whose base is a plain Linear (DoRA and quantized bases are left alone)."""
    from mlx_lm.tuner.lora import LoRALinear

    return [
        (k, m)
        for k, m in model.named_modules()
        if type(m) is LoRALinear and type(m.linear) is nn.Linear
    ]


@contextlib.contextmanager
def merged_adapters(model: nn.Module) -> Iterator[None]:
    """Temporarily replace each mergeable LoRA layer by its base Linear with weight
    W' = W + scale * (A B)^T: x W'^T = x W^T + scale (x A) B, one product instead of three.
    (No new module is built: building one would draw random numbers and shift the sampler.)"""
    adapted = _mergeable(model)
    originals = [m.linear.weight for _, m in adapted]
    for (_, m), w in zip(adapted, originals):
        m.linear.weight = w + ((m.scale * m.lora_b.T) @ m.lora_a.T).astype(w.dtype)
    mx.eval([m.linear.weight for _, m in adapted])
    model.update_modules(tree_unflatten([(k, m.linear) for k, m in adapted]))
    try:
        yield
    finally:
        for (_, m), w in zip(adapted, originals):
            m.linear.weight = w
        model.update_modules(tree_unflatten(adapted))


def generate_groups(
    model: nn.Module, prompts: list[list[int]], group_size: int, sampling: Sampling
) -> RolloutBatch:
    """Sample `group_size` completions for every prompt, all decoding in one batch."""
    start = time.perf_counter()
    merge = merged_adapters(model) if sampling.merge_adapters else contextlib.nullcontext()
    with merge:
        batch = _generate(model, prompts, group_size, sampling)
    batch.seconds = time.perf_counter() - start
    return batch


def _generate(
    model: nn.Module, prompts: list[list[int]], group_size: int, sampling: Sampling
) -> RolloutBatch:
    rows = [c for c in (prefill(model, p) for p in prompts) for _ in range(group_size)]
    cache = [layer[0].merge(list(layer)) for layer in zip(*rows)]  # B * G rows, left-padded
    forward = decode_step(model, cache, sampling.max_tokens, sampling.compiled_decode)
    first = mx.array([p[-1] for p in prompts for _ in range(group_size)], dtype=mx.uint32)
    temperature = sampling.logprob_temperature if sampling.return_logprobs else None
    tokens, logps, truncated = _decode(forward, first, sampling, temperature)
    return RolloutBatch(
        prompt_ids=[list(p) for p in prompts],
        completion_ids=tokens,
        truncated=truncated,
        group_size=group_size,
        logprobs=logps,
    )


class _Rows:
    """Host-side state of the decoding rows: tokens so far, stop matchers, which are done.
    `alive` holds the batch positions of the rows still decoding after a compaction."""

    def __init__(self, n: int, stops: list[list[int]], max_tokens: int) -> None:
        from mlx_lm.generate import StopSequences

        self.tokens: list[list[int]] = [[] for _ in range(n)]
        trie = StopSequences(stops)
        self.matchers = [trie.matcher() for _ in range(n)]
        self.done = [False] * n
        self.truncated = [False] * n
        self.alive = list(range(n))  # row of each batch position
        self.max_tokens = max_tokens

    def take(self, step_tokens: list[int]) -> None:
        """Append one step's tokens (one per batch position) to the rows still decoding."""
        for row, t in zip(self.alive, step_tokens):
            if self.done[row]:
                continue  # finished earlier; it decodes on until the next compaction
            self.tokens[row].append(t)
            if self.matchers[row].advance(t):
                self.done[row] = True
            elif len(self.tokens[row]) >= self.max_tokens:
                self.done[row] = self.truncated[row] = True

    def compactable(self) -> list[int] | None:
        """Batch positions to keep when at most half of the batch still decodes, else None."""
        keep = [i for i, row in enumerate(self.alive) if not self.done[row]]
        return keep if 0 < len(keep) <= len(self.alive) // 2 else None


def _decode(
    forward: EagerStep | CompiledStep,
    first: mx.array,
    sampling: Sampling,
    temperature: float | None,
) -> tuple[list[list[int]], list[list[float]] | None, list[bool]]:
    """Decode every row until it stops or reaches max_tokens. The whole batch steps
    together: a row that finished decodes on (its tokens are dropped) until at most half
    the batch is alive, when the cache is cut down to the live rows. On a GPU step t + 1 is
    queued (async_eval) before step t's tokens are read (`pipelined`). With a `temperature`,
    each step also computes the sampled tokens' log-probs ([n] per step, read at the end)."""
    rows = _Rows(first.shape[0], sampling.stops, sampling.max_tokens)
    picked: list[tuple[list[int], mx.array]] = []  # (rows of the batch positions, [n] log-probs)

    ahead = pipelined()
    run = mx.async_eval if ahead else mx.eval
    normalize = temperature is not None or not sampling.shift_invariant

    def step(y: mx.array) -> mx.array:
        logits = forward(y)
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True) if normalize else logits
        token = sampling.sampler(logprobs)
        if temperature is None:
            run(token)
        else:
            # rows.alive is replaced, never mutated, by a compaction: no copy needed
            picked.append((rows.alive, batch_token_logprob(logprobs, token, temperature)))
            run(token, picked[-1][1])
        return token

    cur = step(first)
    for t in range(1, sampling.max_tokens + 1):  # every row is done after max_tokens steps
        if (keep := rows.compactable()) is not None:
            cur = _compact(forward, rows, keep, cur)
        nxt = step(cur) if ahead and t < sampling.max_tokens else None  # before `cur` is read
        rows.take(cur.tolist())
        if all(rows.done):
            break
        cur = step(cur) if nxt is None else nxt
    return (
        rows.tokens,
        _read_logprobs(rows, picked) if temperature is not None else None,
        rows.truncated,
    )


def pipelined() -> bool:
    """Queue step t + 1 before reading step t on a GPU, where the host would otherwise idle
    the device. Not on MLX's CPU backend: there the queued step competes with the host for
    the same cores, and a plain step-by-step loop is faster (benchmarks/RESULTS.md)."""
    return mx.default_device() != mx.cpu


def _compact(
    forward: EagerStep | CompiledStep, rows: _Rows, keep: list[int], cur: mx.array
) -> mx.array:
    """Drop the finished rows from the KV cache and from the next input."""
    index = mx.array(keep)
    forward.filter(index)
    rows.alive = [rows.alive[i] for i in keep]
    return cur[index]


def _read_logprobs(rows: _Rows, picked: list[tuple[list[int], mx.array]]) -> list[list[float]]:
    """Each row's sampled-token log-probs, step by step, as many as it kept tokens (all
    steps read from the device at once)."""
    out: list[list[float]] = [[] for _ in rows.tokens]
    if not picked:
        return out
    values = iter(mx.concatenate([v for _, v in picked]).tolist())
    for alive in (a for a, _ in picked):
        for row, v in zip(alive, values):
            if len(out[row]) < len(rows.tokens[row]):
                out[row].append(v)
    return out


def batch_token_logprob(logprobs: mx.array, token: mx.array, temperature: float) -> mx.array:
    """[n] log softmax(logits / T)[token] per row: the number the scoring pass computes
    (`train.logprobs`), as (logits - lse) / T renormalizes to it."""
    scaled = logprobs if temperature == 1.0 else logprobs.astype(mx.float32) / temperature
    chosen = mx.take_along_axis(scaled, token[:, None], axis=-1)[:, 0]
    return chosen if temperature == 1.0 else chosen - mx.logsumexp(scaled, axis=-1)
