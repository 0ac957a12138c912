"""One process against two data-parallel ranks at the same global batch: step time, rollout
tokens/s and the all-reduce time per step of the real trainer (`Trainer.train_step`).

`builtin:small-qwen2` (4 layers, width 256), full fine-tuning, B = 8 prompts x G = 8, 32 new
tokens, mu = 1, dapo; the first steps (compilation) are not counted. With two ranks each
takes 4 prompts; the all-reduce time is the wall time of `World.sum_grads` (evaluated) per
step, once both ranks are ready (a barrier first, so it is the transfer, not the wait). On
one 2-core machine the two ranks share the cores: this is a correctness and overhead check,
not a speed-up measurement.

    python benchmarks/bench_distributed.py [--steps 8] [--warmup 2]

(The driver starts the one-process run itself and the two-rank run with
`mlx.launch -n 2 --backend ring`.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
BIN = Path(sys.executable).parent


def config_file(folder: Path, steps: int) -> Path:
    import yaml

    data = folder / "train.jsonl"
    rows = [
        {"prompt": f"What is {a} + {b}?", "answer": str(a + b)} for a in range(8) for b in range(8)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reward = folder / "reward.py"
    reward.write_text(
        "def varied(prompts, completions, answers, **extras):\n"
        "    return [float(sum(map(ord, c)) % 5) for c in completions]\n"
    )
    cfg = {
        "model": {"path": "builtin:small-qwen2"},
        "lora": {"fine_tune_type": "full"},
        "rollout": {"group_size": 8, "max_completion_length": 32},
        "objective": {"loss_type": "dapo", "beta": 0.0, "num_iterations": 1},
        "data": {"train": str(data)},
        "rewards": [{"name": f"{reward}:varied"}],
        "logging": {"output_dir": str(folder / "runs")},
        "checkpoint": {"every": 10_000},
        "steps": steps,
        "batch_size": 8,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def worker(config: Path, warmup: int, out: Path) -> None:
    """Train `steps` steps with the real trainer; time each and its all-reduce."""
    import mlx.core as mx

    from mlx_grpo.config import load_config
    from mlx_grpo.train.distributed import World
    from mlx_grpo.train.trainer import Trainer

    world = World.init()
    cfg = load_config(config)
    reduce_s = [0.0]
    plain = World.sum_grads

    def timed_sum(self: World, grads):  # noqa: ANN001, ANN202
        mx.eval(grads)
        self.barrier()  # both ranks ready: time the transfer, not the wait for the slower one
        t0 = time.perf_counter()
        out = plain(self, grads)
        mx.eval(out)
        reduce_s[0] += time.perf_counter() - t0
        return out

    World.sum_grads = timed_sum  # type: ignore[method-assign]
    trainer = Trainer(cfg, config.parent / "runs" / f"n{world.size}", world)
    rows = []
    for step in range(1, cfg.steps + 1):
        reduce_s[0] = 0.0
        t0 = time.perf_counter()
        metrics = trainer.train_step().metrics
        wall = time.perf_counter() - t0
        if step > warmup:
            tokens = metrics["rollout_tokens_per_s"] * metrics["rollout_s"]
            rows.append({"step_s": wall, "reduce_s": reduce_s[0], "tokens": tokens})
    if world.is_main:
        from mlx.utils import tree_flatten

        grads = tree_flatten(trainer.policy.model.trainable_parameters())
        volume = sum(g.nbytes for _, g in grads)
        out.write_text(json.dumps({"ranks": world.size, "rows": rows, "bytes": volume}))


def summarize(result: dict) -> str:
    rows = result["rows"]
    step = sum(r["step_s"] for r in rows) / len(rows)
    tokens = sum(r["tokens"] for r in rows) / len(rows)
    reduce = sum(r["reduce_s"] for r in rows) / len(rows)
    return (
        f"| {result['ranks']} | {len(rows)} | {step:.2f} | {tokens / step:.0f} | "
        f"{reduce * 1000:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--port", type=int, default=32423, help="the ring's first port")
    parser.add_argument("--worker", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.warmup, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        config = config_file(Path(tmp), args.steps)
        lines = []
        for ranks in (1, 2):
            out = Path(tmp) / f"n{ranks}.json"
            cmd = [sys.executable, str(HERE), "--worker", str(config), "--out", str(out)]
            cmd += ["--warmup", str(args.warmup)]
            if ranks > 1:
                ring = ["-n", str(ranks), "--backend", "ring", "--starting-port", str(args.port)]
                cmd = [str(BIN / "mlx.launch"), *ring, "--", *cmd]
            log = subprocess.run(cmd, capture_output=True, text=True)
            if not out.is_file():
                raise SystemExit(f"{ranks} rank(s) wrote no result:\n{log.stdout}{log.stderr}")
            result = json.loads(out.read_text())
            lines.append(summarize(result))
            volume = result["bytes"]
    print(f"all-reduced per update: {volume / 1e6:.1f} MB")
    print(
        "| processes | steps timed | step s | rollout tokens/s (all ranks) | all-reduce ms/step |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
