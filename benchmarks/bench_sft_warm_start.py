"""SFT warm start + GRPO versus GRPO alone, at the same wall time, on SmolLM2-135M offline.

Arm A trains configs/demo.yaml (GRPO + LoRA on builtin:arithmetic) for --steps steps. Arm B
first runs `mlx-grpo sft` on the demo's 48 cold-start rows (`cli.demo.cold_start_rows`:
completions "a op b = c" then "<answer>c</answer>" written from gold answers), then GRPO
from it (`model.init_from`) for as many steps as the training time left after SFT allows at
arm A's measured seconds per step. Training time is the sum of the runs' own per-step timings
in metrics.jsonl (SFT: `step_s`; GRPO: `rollout_s + reward_s + batch_s + update_s`): model
loading, conversion and the evaluations are outside it, in both arms alike. `--reuse TAG`
keeps runs of an earlier invocation (runs/ws-*-TAG) instead of training them again. The base
and both arms are evaluated greedily on the demo's rephrased set (`data.tasks.rephrased`:
phrasings unlike the built-in stories, the format instruction in the user message), rendered
with the run's prompt format (configs/demo.yaml has no system prompt or worked example since
the attempts in RESULTS.md).

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \
        nice python benchmarks/bench_sft_warm_start.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from common import machine
from mlx_grpo.cli.demo import cold_start_rows

from mlx_grpo.config import load_config
from mlx_grpo.data.tasks import rephrased

ROOT = Path(__file__).resolve().parent.parent
CLI = [str(ROOT / ".venv/bin/mlx-grpo")]


def eval_rows(n: int, seed: int) -> list[dict]:
    """Held-out questions in phrasings the training prompts never use (the demo's set)."""
    return [{"prompt": r["prompt"], "answer": r["answer"]} for r in rephrased.generate(n, seed)]


def sft_rows(n: int) -> list[dict]:
    """Training-style stories with completions written from the gold answer (the demo's)."""
    return cold_start_rows(load_config(ROOT / "configs/demo.yaml", []), n)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def grpo_config(demo: dict, steps: int, name: str, init_from: str | None) -> dict:
    cfg = json.loads(json.dumps(demo))
    cfg["steps"], cfg["logging"]["run_name"] = steps, name
    cfg["checkpoint"]["every"] = steps
    cfg["schedule"]["warmup_steps"] = min(2, steps - 1)
    if init_from:
        cfg["model"]["init_from"] = init_from
    return cfg


def sft_config(demo: dict, data: Path, steps: int, name: str) -> dict:
    d = demo["data"]
    return {
        "model": {"path": demo["model"]["path"]},
        "lora": demo["lora"],
        "optimizer": {"learning_rate": 1.0e-4, "max_grad_norm": 1.0},
        "schedule": {"name": "cosine", "warmup_steps": 2},
        "data": {
            "train": str(data),
            "eval_size": 8,
            "template": d["template"],
            "system_prompt": d.get("system_prompt"),
            "few_shot": d.get("few_shot", []),
            "instruction": d.get("instruction", []),
        },
        "sft": {"max_length": 256},
        "checkpoint": {"every": steps, "keep_last": 1},
        "logging": {"output_dir": "runs", "run_name": name, "eval_every": steps},
        "steps": steps,
        "batch_size": 8,
        "seed": 0,
    }


def run_cli(args: list[str]) -> float:
    """Run one CLI command from the repo root; return its wall time."""
    start = time.perf_counter()
    print("$ mlx-grpo " + " ".join(args), flush=True)
    subprocess.run(CLI + args, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def train(cfg: dict, tmp: Path, cmd: str, reuse: bool = False) -> float:
    if reuse and (ROOT / "runs" / cfg["logging"]["run_name"] / "metrics.jsonl").exists():
        return 0.0
    path = tmp / f"{cfg['logging']['run_name']}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return run_cli([cmd, "-c", str(path), "--force"] if cmd == "train" else [cmd, "-c", str(path)])


STEP_TIMES = ("step_s", "rollout_s", "reward_s", "batch_s", "update_s")


def train_seconds(run: str) -> list[float]:
    """Seconds of every step a run logged (its own timings): training time, load excluded."""
    lines = (ROOT / run / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line) for line in lines if '"step"' in line]
    return [sum(float(m.get(k, 0.0)) for k in STEP_TIMES) for m in steps if "loss" in m]


def evaluate(run: str, step: str, data: Path, out: Path) -> dict:
    run_cli(
        ["eval", "--run", run, "--step", step, "--data", str(data), "--temp", "0"]
        + ["--template", "chat", "--out", str(out)]
    )
    return json.loads(out.read_text())["summary"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=8, help="GRPO steps of arm A")
    ap.add_argument("--sft-steps", type=int, default=12)
    ap.add_argument("--n-eval", type=int, default=36)
    ap.add_argument("--reuse", metavar="TAG", help="keep the runs runs/ws-*-TAG already trained")
    args = ap.parse_args()
    demo = yaml.safe_load((ROOT / "configs/demo.yaml").read_text())
    tag = args.reuse or time.strftime("%H%M%S")
    a_name, s_name, b_name = f"ws-a-{tag}", f"ws-sft-{tag}", f"ws-b-{tag}"
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        write_jsonl(tmp / "sft.jsonl", sft_rows(48))
        write_jsonl(tmp / "eval.jsonl", eval_rows(args.n_eval, seed=2))
        train(grpo_config(demo, args.steps, a_name, None), tmp, "train", bool(args.reuse))
        sft = sft_config(demo, tmp / "sft.jsonl", args.sft_steps, s_name)
        train(sft, tmp, "sft", bool(args.reuse))
        a_steps, sft_steps = train_seconds(f"runs/{a_name}"), train_seconds(f"runs/{s_name}")
        t_a, t_sft = sum(a_steps), sum(sft_steps)
        b_steps = max(1, round((t_a - t_sft) / (t_a / len(a_steps))))
        train(grpo_config(demo, b_steps, b_name, f"runs/{s_name}"), tmp, "train", bool(args.reuse))
        t_b = sum(train_seconds(f"runs/{b_name}"))
        data = tmp / "eval.jsonl"
        rows = [
            ("base", "-", evaluate(f"runs/{a_name}", "base", data, tmp / "e0.json")),
            (
                f"A: GRPO {args.steps} steps",
                f"{t_a:.0f}",
                evaluate(f"runs/{a_name}", "latest", data, tmp / "e1.json"),
            ),
            (
                f"B: SFT {args.sft_steps} + GRPO {b_steps}",
                f"{t_sft:.0f} + {t_b:.0f}",
                evaluate(f"runs/{b_name}", "latest", data, tmp / "e2.json"),
            ),
        ]
    print(f"\n{machine()}; held-out n = {args.n_eval}, greedy\n")
    print("| model | training s (sum of step_s) | accuracy (pass@1) | format |")
    print("| --- | ---: | ---: | ---: |")
    for label, wall, s in rows:
        print(f"| {label} | {wall} | {s['pass@1']:.1%} | {s['format_rate']:.1%} |")


if __name__ == "__main__":
    main()
