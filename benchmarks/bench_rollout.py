"""Rollout throughput: mlx-grpo's shared-prefill group decoding versus mlx-lm.

B = 4 prompts x G = 8 completions x 128 new tokens (sampled at temperature 1) on a random
model, compared with mlx-lm's `batch_generate` over the same 32 prompts and with a loop that
generates one completion at a time (`generate_step`). Tokens/s counts completion tokens.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \
        python benchmarks/bench_rollout.py
"""

from __future__ import annotations

import argparse
import json

import mlx.core as mx
from common import machine, random_model, timed
from mlx_lm.generate import batch_generate, generate_step
from mlx_lm.sample_utils import make_sampler

from mlx_grpo.train.rollout import Sampling, generate_groups

SHAPE = {
    "model_type": "qwen2", "hidden_size": 512, "num_hidden_layers": 8,
    "intermediate_size": 1536, "num_attention_heads": 8, "num_key_value_heads": 2,
    "vocab_size": 32000, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "tie_word_embeddings": True,
}  # fmt: skip


class NoStopTokenizer:
    """What batch_generate needs from a tokenizer; no EOS, so every completion is full length."""

    eos_token_ids: list[int] = []

    def decode(self, ids: list[int]) -> str:
        return ""


def ours(model, prompts, g, n_tokens):
    sampling = Sampling(max_tokens=n_tokens, sampler=make_sampler(1.0), stops=[])
    out = generate_groups(model, prompts, g, sampling)
    return out.num_tokens


def mlx_lm_batch(model, prompts, g, n_tokens):
    flat = [p for p in prompts for _ in range(g)]
    res = batch_generate(
        model,
        NoStopTokenizer(),
        flat,
        max_tokens=n_tokens,
        sampler=make_sampler(1.0),
        return_token_ids=True,
        completion_batch_size=len(flat),
        prefill_batch_size=len(flat),
    )
    return sum(len(t) for t in res.token_ids)


def one_at_a_time(model, prompts, g, n_tokens):
    total = 0
    for p in prompts:
        for _ in range(g):
            steps = generate_step(
                mx.array(p), model, max_tokens=n_tokens, sampler=make_sampler(1.0)
            )
            total += sum(1 for _ in steps)
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    model = random_model(SHAPE)
    mx.random.seed(0)
    prompts = [mx.random.randint(0, 32000, (args.prompt_len + 8 * i,)).tolist() for i in range(4)]
    results = {}
    for name, fn, repeats in [
        ("mlx-grpo generate_groups", ours, 3),
        ("mlx-lm batch_generate", mlx_lm_batch, 3),
        ("one completion at a time", one_at_a_time, 1),
    ]:
        seconds, tokens = timed(lambda fn=fn: fn(model, prompts, 8, args.tokens), repeats)
        results[name] = {
            "seconds": round(seconds, 3),
            "tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 1),
        }
        print(name, results[name], flush=True)
    base = results["mlx-grpo generate_groups"]["tokens_per_s"]
    print(
        json.dumps(
            {
                "machine": machine(),
                "shape": SHAPE,
                "B": 4,
                "G": 8,
                "new_tokens": args.tokens,
                "results": results,
                "ratio_vs_batch_generate": round(
                    base / results["mlx-lm batch_generate"]["tokens_per_s"], 2
                ),
                "ratio_vs_one_at_a_time": round(
                    base / results["one completion at a time"]["tokens_per_s"], 2
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
