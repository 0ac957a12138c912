"""Rollouts: G sampled completions for each of B prompts, decoded concurrently.

Built on mlx-lm's `BatchGenerator`. Each prompt is prefilled once into its own KV cache; its G
siblings all start from that cache, so the prompt is never recomputed per completion. The
engine returns the token ids it sampled (completions are never decoded and re-encoded) and
marks completions cut off by the token limit.

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
    """mlx-lm's sampler for temperature / top-p / top-k / min-p."""
    from mlx_lm.sample_utils import make_sampler

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


def sampling_from_config(cfg: RolloutConfig, tokenizer: Any) -> Sampling:
    return Sampling(
        max_tokens=cfg.max_completion_length,
        sampler=make_rollout_sampler(cfg),
        stops=stop_sequences(tokenizer, cfg.stop),
        merge_adapters=cfg.merge_adapters,
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
    from mlx_lm.generate import BatchGenerator

    n = len(prompts) * group_size
    gen = BatchGenerator(
        model,
        max_tokens=sampling.max_tokens,
        stop_tokens=sampling.stops,
        sampler=sampling.sampler,
        completion_batch_size=n,
        prefill_batch_size=n,
    )
    caches = [prefill(model, p) for p in prompts]
    uids = gen.insert(
        [[p[-1]] for p in prompts for _ in range(group_size)],
        caches=[c for c in caches for _ in range(group_size)],
        all_tokens=[list(p[:-1]) for p in prompts for _ in range(group_size)],
    )
    temperature = sampling.logprob_temperature if sampling.return_logprobs else None
    tokens, logps, finish = _drain(gen, uids, temperature)
    gen.close()
    return RolloutBatch(
        prompt_ids=[list(p) for p in prompts],
        completion_ids=[tokens[u] for u in uids],
        truncated=[finish[u] == "length" for u in uids],
        group_size=group_size,
        logprobs=[logps[u] for u in uids] if sampling.return_logprobs else None,
    )


def _drain(
    gen: Any, uids: list[int], temperature: float | None
) -> tuple[dict[int, list[int]], dict[int, list[float]], dict[int, str]]:
    """Collect generated tokens until every sequence finished; stop tokens are kept. With a
    `temperature`, also each sampled token's log-prob at it (`token_logprob`), queued with
    async_eval step by step and read once at the end: no host sync per token."""
    tokens: dict[int, list[int]] = {u: [] for u in uids}
    picked: dict[int, list[mx.array]] = {u: [] for u in uids}
    finish: dict[int, str] = {}
    while responses := gen.next_generated():
        step = []
        for r in responses:
            tokens[r.uid].append(r.token)
            if temperature is not None:
                step.append(token_logprob(r.logprobs, r.token, temperature))
                picked[r.uid].append(step[-1])
            if r.finish_reason is not None:
                finish[r.uid] = r.finish_reason
        mx.async_eval(step)  # the [vocab] rows are freed once their pick is computed
    logps = {u: mx.stack(v).tolist() if v else [] for u, v in picked.items()}
    return tokens, logps, finish


def token_logprob(logprobs: mx.array, token: int, temperature: float) -> mx.array:
    """log softmax(logits / T)[token] from the sampler's log softmax(logits): the same number
    the scoring pass computes (`train.logprobs`), as (logits - lse) / T renormalizes to it."""
    if temperature == 1.0:
        return logprobs[token]
    scaled = logprobs.astype(mx.float32) / temperature
    return scaled[token] - mx.logsumexp(scaled)
