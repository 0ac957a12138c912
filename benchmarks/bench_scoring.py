"""Scoring forward + backward: each prompt once for its G completions versus once per row,
with and without layer gradient checkpointing.

Qwen2.5-0.5B's widths (random weights, `--layers` of its 24 layers), LoRA rank 8 on every
layer, float32; B prompts of `--prompt` tokens with G completions of `--completion` tokens.
Per-row scoring under checkpointing uses mlx-lm's `grad_checkpoint` (what the trainer falls
back to for bodies it cannot run layer by layer); shared scoring under checkpointing is
`logprobs.shared_prefix_hidden_checkpointed`. Each variant runs in a fresh process.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \\
        python benchmarks/bench_scoring.py --layers 6 --prompt 256 --completion 128
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from common import QWEN25_05B, machine, random_model, timed
from mlx_lm.tuner.utils import linear_to_lora_layers

from mlx_grpo.train.batch import pack, pack_groups
from mlx_grpo.train.logprobs import token_logprobs

VARIANTS = ("rows", "rows+ckpt", "shared", "shared+ckpt")


def build(args: argparse.Namespace) -> nn.Module:
    model = random_model(dict(QWEN25_05B, num_hidden_layers=args.layers))
    model.freeze()
    linear_to_lora_layers(model, args.layers, {"rank": 8, "scale": 20.0, "dropout": 0.0})
    return model


def packed(args: argparse.Namespace, shared: bool):
    mx.random.seed(1)
    vocab = QWEN25_05B["vocab_size"]
    prompts = [mx.random.randint(0, vocab, (args.prompt,)).tolist() for _ in range(args.b)]
    rows = args.b * args.g
    comps = [mx.random.randint(0, vocab, (args.completion,)).tolist() for _ in range(rows)]
    owner = [n // args.g for n in range(rows)]
    if shared:
        return pack_groups(prompts, owner, comps)
    return pack([prompts[o] for o in owner], comps)


def run_variant(args: argparse.Namespace) -> dict:
    """Best-of-3 forward + backward time and the peak memory of one variant."""
    shared, checkpointing = args.variant.startswith("shared"), args.variant.endswith("+ckpt")
    model = build(args)
    if checkpointing and not shared:
        from mlx_lm.tuner.trainer import grad_checkpoint

        grad_checkpoint(model.layers[0])
    batch = packed(args, shared)
    tokens = batch.tokens

    def loss(m: nn.Module) -> mx.array:
        logp = token_logprobs(m, tokens, 1.0, 64, checkpoint=checkpointing and shared)[0]
        return (logp * batch.mask).sum()

    grad = nn.value_and_grad(model, loss)

    def step() -> mx.array:
        value, grads = grad(model)
        mx.eval(value, grads)
        return value

    mx.reset_peak_memory()
    seconds, value = timed(step, repeats=3)
    return {"seconds": seconds, "peak_gb": mx.get_peak_memory() / 1e9, "loss": value.item()}


def table(args: argparse.Namespace) -> None:
    """Run every variant in its own process and print one table."""
    results = {}
    for variant in VARIANTS:
        cmd = [sys.executable, __file__, "--variant", variant, *forwarded(args)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=Path.cwd())
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    print(machine())
    shape = f"prompt {args.prompt} completion {args.completion}, {args.layers} layers"
    print(f"B={args.b} G={args.g} {shape}")
    print("| variant | forward + backward | peak memory | loss |\n| --- | ---: | ---: | ---: |")
    for variant, r in results.items():
        print(f"| {variant} | {r['seconds']:.2f} s | {r['peak_gb']:.2f} GB | {r['loss']:.2f} |")


def forwarded(args: argparse.Namespace) -> list[str]:
    return [f"--{k}={getattr(args, k)}" for k in ("layers", "prompt", "completion", "b", "g")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--prompt", type=int, default=256)
    parser.add_argument("--completion", type=int, default=128)
    parser.add_argument("--b", type=int, default=2)
    parser.add_argument("--g", type=int, default=8)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
    else:
        table(args)


if __name__ == "__main__":
    main()
