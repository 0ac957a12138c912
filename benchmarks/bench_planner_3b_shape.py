"""The memory planner at the Qwen2.5-3B target's real widths, measured on a CPU.

Builds a random-weight Qwen2 folder with Qwen2.5-3B's exact widths (hidden 2048, MLP 11008,
16 query / 2 key-value heads of 128, vocabulary 151936, tied embeddings, qkv bias, rope theta
1e6) but only `--layers` transformer blocks, loads the real `configs/qwen2.5-3b-h100.yaml`
with the few overrides a 2-core CPU forces (printed; see `overrides`), runs two real training
steps with `mlx_grpo.train.trainer.Trainer` in a fresh process (so no stray arrays count) and
compares the max `peak_memory_gb` with `planner.plan(cfg, read_architecture(path), prompt)`,
exactly as `tests/test_planner.py` does. It also notes the peak so far at the end of each
rollout and just before each optimizer step (no reset, so the step's peak is untouched): the
rollout phase, the scoring/backward phase, and whether the optimizer step set the peak.
Results and what they do not show: benchmarks/RESULTS.md.

    cd benchmarks && LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \
        ../.venv/bin/python bench_planner_3b_shape.py --layers 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "qwen2.5-3b-h100.yaml"
GB = 1e9
# Qwen2.5-3B's config.json values that `architecture.KNOWN` does not list.
QWEN25_3B_EXTRA = {"rope_theta": 1000000.0, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6}
# Every group of G = 12 gets rewards 0, 1, 0, 1, ...: all groups are informative, so every
# micro-batch is full (the worst case), whatever the random model writes. The config's
# math_correct / r1_format would score random text 0 everywhere, and a step with no
# informative group runs no update at all.
ALTERNATING_REWARD = """
def alternating(prompts, completions, answers, **extras):
    return [float(i % 2) for i in range(len(completions))]
"""


def qwen3b_shape(layers: int) -> dict[str, int]:
    """Qwen2.5-3B's widths from `architecture.KNOWN`, with `layers` transformer blocks."""
    from mlx_grpo.plan.architecture import FIELDS, KNOWN

    known = dict(zip(FIELDS, KNOWN["qwen2.5-3b"]))
    keys = ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads")
    assert known["hidden_size"] // known["num_attention_heads"] == known["head_dim"]
    assert known["tie_word_embeddings"] and known["attention_bias"]  # what tiny's Qwen2 has
    return {**{k: known[k] for k in keys}, "num_hidden_layers": layers}


def build_model(path: Path, layers: int) -> Path:
    """A random Qwen2 folder of Qwen2.5-3B's shape (the tokenizer only uses ids < 259), built
    like `tests/test_planner.py::build_model`, plus the 3B's vocabulary, rope theta, context."""
    import mlx.core as mx

    from mlx_grpo.models.tiny import build_tiny_model
    from mlx_grpo.plan.architecture import FIELDS, KNOWN

    vocab = dict(zip(FIELDS, KNOWN["qwen2.5-3b"]))["vocab_size"]
    overrides = {"vocab_size": vocab, **QWEN25_3B_EXTRA}
    shape = qwen3b_shape(layers)
    path = build_tiny_model(path, seed=0, chat_template=False, overrides=overrides, **shape)
    mx.clear_cache()
    return path


def write_inputs(tmp: Path) -> tuple[Path, Path]:
    """A synthetic JSONL dataset (questions with answers) and the reward file."""
    rows = [
        {"prompt": f"Add {a:03d} and {a + 7:03d}.", "answer": str(2 * a + 7)}
        for a in range(100, 132)
    ]
    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reward = tmp / "reward.py"
    reward.write_text(ALTERNATING_REWARD)
    return data, reward


def overrides(model: Path, data: Path, reward: Path, tmp: Path, args: Any) -> list[str]:
    """`--set` overrides of the real config: only what the CPU box and random weights force."""
    return [
        f"model.path={model}",
        f"model.dtype={args.dtype}",
        f"data.train={data}",
        "data.eval_size=0",
        f"rewards=[{{name: '{reward}:alternating'}}]",
        "steps=2",
        f"batch_size={args.batch_size}",
        f"rollout.max_completion_length={args.completion}",
        f"logging.output_dir={tmp}",
    ]


def record_peak(owner: Any, name: str, peaks: list[float], before: bool) -> None:
    """Wrap `owner.name` to note `mx.get_peak_memory()` just before or after each call (the
    peak is not reset, so the step's `peak_memory_gb` is untouched)."""
    import mlx.core as mx

    method = getattr(owner, name)

    def wrapped(*args: Any) -> Any:
        if before:
            peaks.append(mx.get_peak_memory() / GB)
        out = method(*args)
        if not before:
            peaks.append(mx.get_peak_memory() / GB)
        return out

    setattr(owner, name, wrapped)


def measure(sets: list[str], run_dir: Path) -> dict[str, Any]:
    """Two real training steps (run in a fresh process): per-step metrics, the peak so far at
    the end of the rollout and before the optimizer step, and the memory held."""
    import mlx.core as mx

    from mlx_grpo.config import load_config
    from mlx_grpo.train.trainer import Trainer

    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(load_config(CONFIG, sets), run_dir)
    loaded = mx.get_active_memory() / GB
    after_rollout: list[float] = []
    before_optimizer: list[float] = []
    record_peak(trainer, "rollout", after_rollout, before=False)
    record_peak(trainer.optimizer, "update", before_optimizer, before=True)
    steps = [trainer.train_step().metrics for _ in range(2)]
    return {
        "steps": steps,
        "peak_after_rollout_gb": after_rollout,
        "peak_before_optimizer_gb": before_optimizer,
        "loaded_gb": loaded,
        "active_after_gb": mx.get_active_memory() / GB,
        "prompt": max(len(e.ids) for e in trainer.stream.examples),
    }


def measure_in_fresh_process(sets: list[str], tmp: Path) -> dict[str, Any]:
    """Run `measure` in a new interpreter (OpenBLAS preloaded when installed)."""
    from mlx_grpo.blas import find_openblas

    env = dict(os.environ)
    openblas = find_openblas()
    if openblas and "openblas" not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = " ".join(p for p in (openblas, env.get("LD_PRELOAD", "")) if p)
    (tmp / "sets.json").write_text(json.dumps(sets))
    cmd = [sys.executable, __file__, "--measure", str(tmp)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).parent)
    if out.returncode != 0:
        sys.exit(f"training steps failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def step_line(m: dict[str, Any]) -> str:
    return (
        f"  step {m['step']}: peak {m['peak_memory_gb']:.3f} GB, rollout {m['rollout_s']:.1f} s "
        f"({m['rollout_tokens_per_s']:.1f} tokens/s), rewards {m['reward_s']:.1f} s, "
        f"batch {m['batch_s']:.1f} s, "
        f"update {m['update_s']:.1f} s, updates {m['updates']}, "
        f"completion length {m['completion_length/mean']:.1f}"
    )


def report(plan: Any, result: dict[str, Any], sets: list[str], args: Any) -> str:
    """The plan's rows, predicted vs measured, and the per-step timing split."""
    from common import machine

    from mlx_grpo.plan.memory import render_text

    predicted = plan.total / GB
    measured = max(m["peak_memory_gb"] for m in result["steps"])
    always = plan.phase_total("always") / GB
    lines = [
        f"machine: {machine()}",
        f"config: {CONFIG.relative_to(ROOT)} --set " + " --set ".join(sets),
        f"layers {args.layers}, prompt {result['prompt']} tokens, shapes {plan.shapes}",
        render_text(plan),
        f"  predicted {predicted:.3f} GB, measured {measured:.3f} GB, "
        f"predicted / measured = {predicted / measured:.3f}",
        f"  rollout phase: predicted {always + plan.phase_total('rollout') / GB:.3f} GB, "
        f"measured {max(result['peak_after_rollout_gb']):.3f} GB (peak at the end of rollout)",
        f"  rollout + scoring/backward of all micro-batches: measured "
        f"{max(result['peak_before_optimizer_gb']):.3f} GB (peak before the optimizer step); "
        f"the optimizer step itself sets the peak when the step's peak is higher",
        f"  after loading {result['loaded_gb']:.3f} GB active; after 2 steps "
        f"{result['active_after_gb']:.3f} GB (predicted always {always:.3f} GB)",
        *(step_line(m) for m in result["steps"]),
    ]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--completion", type=int, default=64)
    parser.add_argument("--dtype", default="float32", help="float32: bf16 matmuls are slow here")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the fresh process
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.measure is not None:
        sets = json.loads((args.measure / "sets.json").read_text())
        print(json.dumps(measure(sets, args.measure / "run")))
        return
    from mlx_grpo.config import load_config
    from mlx_grpo.plan.architecture import read_architecture
    from mlx_grpo.plan.memory import plan

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="plan3b-") as name:
        tmp = Path(name)
        model = build_model(tmp / "model", args.layers)
        sets = overrides(model, *write_inputs(tmp), tmp, args)
        result = measure_in_fresh_process(sets, tmp)
        p = plan(load_config(CONFIG, sets), read_architecture(str(model)), result["prompt"])
        print(report(p, result, sets, args))
    print(f"  wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
