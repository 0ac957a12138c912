"""Peak memory of scoring + backward: chunked completion-only log-probs versus full logits.

B x G = 8 sequences, prompt 64 + completion 512 tokens, Qwen2.5-0.5B's shape (vocabulary
151936) with random weights and LoRA adapters (rank 8, all layers), float32, with layer
gradient checkpointing (`model.gradient_checkpointing: true`; without it the saved layer
activations alone need ~20 GB here). The naive version computes log_softmax over the whole
[8, 576, 151936] float32 logits tensor.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \
        python benchmarks/bench_memory.py --variant chunked   (then --variant full)
"""

from __future__ import annotations

import argparse
import json
import time

import mlx.core as mx
import mlx.nn as nn
from common import QWEN25_05B, machine, random_model
from mlx_lm.tuner.trainer import grad_checkpoint
from mlx_lm.tuner.utils import linear_to_lora_layers

from mlx_grpo.train.batch import pack
from mlx_grpo.train.logprobs import completion_logprobs, full_logits_logprobs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", choices=["chunked", "full"], required=True)
    parser.add_argument("--completion", type=int, default=512)
    parser.add_argument("--layers", type=int, default=QWEN25_05B["num_hidden_layers"])
    parser.add_argument("--no-grad-checkpoint", action="store_true")
    args = parser.parse_args()
    shape = dict(QWEN25_05B, num_hidden_layers=args.layers)
    model = random_model(shape)
    model.freeze()
    linear_to_lora_layers(model, args.layers, {"rank": 8, "scale": 20.0, "dropout": 0.0})
    if not args.no_grad_checkpoint:
        grad_checkpoint(model.layers[0])
    mx.random.seed(1)
    prompts = [mx.random.randint(0, 151936, (64,)).tolist() for _ in range(8)]
    comps = [mx.random.randint(0, 151936, (args.completion,)).tolist() for _ in range(8)]
    packed = pack(prompts, comps)
    if args.variant == "chunked":

        def score(m):
            return completion_logprobs(m, packed, 1.0, chunk=64)[0]
    else:

        def score(m):
            return full_logits_logprobs(m, packed, 1.0)

    loss_and_grad = nn.value_and_grad(model, lambda m: -(score(m) * packed.mask).sum())
    mx.eval(model.parameters())
    baseline = mx.get_active_memory()
    mx.reset_peak_memory()
    start = time.perf_counter()
    loss, grads = loss_and_grad(model)
    mx.eval(loss, grads)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "machine": machine(),
                "variant": args.variant,
                "layers": args.layers,
                "sequences": 8,
                "prompt": 64,
                "completion": args.completion,
                "vocab": 151936,
                "weights_gb": round(baseline / 1e9, 3),
                "peak_gb": round(mx.get_peak_memory() / 1e9, 3),
                "peak_above_weights_gb": round((mx.get_peak_memory() - baseline) / 1e9, 3),
                "seconds": round(seconds, 1),
                "loss": float(loss.item()),
            }
        )
    )


if __name__ == "__main__":
    main()
