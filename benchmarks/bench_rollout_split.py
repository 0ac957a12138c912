"""Where the rollout stands against the plain decode loop: full batch or stopping completions.

SmolLM2-135M-Instruct float32 with LoRA r8 (scale 20, B matrices 0.01 * N(0, 1)) on every
layer, 2 chat prompts x 4 completions, 64 new tokens, temperature 1. Per repeat, interleaved:
the plain argmax decode loop (batch 8, prefilled cache, LoRA merged as the rollout does);
`generate_groups` with no stop sequences (the batch stays 8 to the end); `generate_groups`
with EOS and "</answer>" as stops (the batch shrinks as completions end); mlx-lm's
`BatchGenerator` on the same work, with and without the stops (what `generate_groups` was
built on before its own decode loop). Also the time to merge the adapters and to prefill the
2 prompts.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \\
        nice .venv/bin/python benchmarks/bench_rollout_split.py
"""

from __future__ import annotations

import json
import time

import mlx.core as mx
from bench_step_vs_peers import SYSTEM, _decode_tok_s
from common import machine
from mlx.utils import tree_flatten, tree_unflatten
from mlx_lm import load
from mlx_lm.sample_utils import make_sampler
from mlx_lm.tuner.utils import linear_to_lora_layers

from mlx_grpo.models.resolve import resolve_model_path
from mlx_grpo.train.rollout import Sampling, generate_groups, merged_adapters, prefill

QUESTIONS = [
    "Emma has 7 eggs. Then Emma gets 18 more eggs. How many eggs does Emma have now?",
    "Liam has 12 cards. Liam gives 5 cards away. How many cards are left?",
]


REPEATS = 3


def lora_model():
    model, tok = load(str(resolve_model_path("builtin:smollm2-135m-instruct")))
    model.freeze()
    linear_to_lora_layers(model, -1, {"rank": 8, "scale": 20.0, "dropout": 0.0})
    for name, p in tree_flatten(model.trainable_parameters()):
        if name.endswith("lora_b"):
            model.update(tree_unflatten([(name, 0.01 * mx.random.normal(p.shape))]))
    mx.eval(model.parameters())
    model.eval()
    return model, tok


def batch_generator(model, prompts: list[list[int]], g: int, stops: list[list[int]]) -> tuple:
    """(tokens/s, tokens) of mlx-lm's BatchGenerator decoding the same G siblings from the
    same prefilled caches."""
    from mlx_lm.generate import BatchGenerator

    start = time.perf_counter()
    with merged_adapters(model):
        n = len(prompts) * g
        gen = BatchGenerator(
            model,
            max_tokens=64,
            stop_tokens=stops,
            sampler=make_sampler(1.0),
            completion_batch_size=n,
            prefill_batch_size=n,
        )
        caches = [prefill(model, p) for p in prompts]
        gen.insert(
            [[p[-1]] for p in prompts for _ in range(g)],
            caches=[c for c in caches for _ in range(g)],
            all_tokens=[list(p[:-1]) for p in prompts for _ in range(g)],
        )
        tokens = 0
        while responses := gen.next_generated():
            tokens += len(responses)
        gen.close()
    return tokens / (time.perf_counter() - start), tokens


def main() -> None:
    model, tok = lora_model()
    prompts = [
        tok.apply_chat_template(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
            add_generation_prompt=True,
        )
        for q in QUESTIONS
    ]
    stops = [[t] for t in tok.eos_token_ids] + [tok.encode("</answer>", add_special_tokens=False)]
    res: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        res.setdefault(key, []).append(round(value, 3))

    for _ in range(REPEATS):
        start = time.perf_counter()
        with merged_adapters(model):
            add("merge_s", time.perf_counter() - start)
            start = time.perf_counter()
            for p in prompts:
                prefill(model, p)
            add("prefill_2_prompts_s", time.perf_counter() - start)
            add("floor_tok_s", _decode_tok_s(model, mx.array([prompts[0]] * 8), 64))
        add("batch_generator_no_stops_tok_s", batch_generator(model, prompts, 4, [])[0])
        tok_s, tokens = batch_generator(model, prompts, 4, stops)
        add("batch_generator_with_stops_tok_s", tok_s)
        add("batch_generator_with_stops_tokens", tokens)
        lean = {"shift_invariant": True}  # temperature 1, no top-p / min-p: as in training
        full = generate_groups(model, prompts, 4, Sampling(64, make_sampler(1.0), [], **lean))
        add("rollout_no_stops_tok_s", full.tokens_per_second)
        stopped = generate_groups(model, prompts, 4, Sampling(64, make_sampler(1.0), stops, **lean))
        add("rollout_with_stops_tok_s", stopped.tokens_per_second)
        add("rollout_with_stops_tokens", stopped.num_tokens)
        print(res, flush=True)
    print(json.dumps({"machine": machine(), "results": res}, indent=1))


if __name__ == "__main__":
    main()
