"""Score SmolLM2-135M (the base, or with a checkpoint's adapters) on the demo's held-out sets.

The demo's two sets (`cli.demo.eval_sets` of a config: its held-out stories rendered like its
training prompts, and the rephrased set with no system prompt or worked example), plus the
held-out stories with the old demo's scaffold (system prompt + one worked example), scored
as the demo scores them (`cli.demo.held_out_accuracy`: strict, loose, format). This is how
the attempts in RESULTS.md ("The demo teaches behaviour that transfers") were measured.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 nice \\
        .venv/bin/python benchmarks/bench_demo_sets.py --adapter runs/x/checkpoints/step_8 --n 32
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mlx_grpo.cli.demo import DEFAULT_CONFIG, eval_sets, held_out_accuracy
from mlx_lm import load

from mlx_grpo.config import FewShot, load_config
from mlx_grpo.data.examples import build_examples
from mlx_grpo.models.resolve import resolve_model_path

SCAFFOLD = {
    "system_prompt": "Put the final number in <answer></answer> tags.",
    "few_shot": [
        FewShot(
            user="Ana has 9 pens. Ana gives 5 pens to a friend. How many pens does Ana have now?",
            assistant="9 - 5 = 4\n<answer>4</answer>",
        )
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--adapter", help="a checkpoint folder with adapters (default: the base)")
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="the demo config")
    ap.add_argument("--n", type=int, default=32, help="problems per set")
    args = ap.parse_args()
    cfg = load_config(Path(args.config), [f"data.eval_size={max(args.n, 1)}"])
    model, tok = load(resolve_model_path(cfg.model.path), adapter_path=args.adapter)
    sets = eval_sets(cfg, tok)
    scaffold = cfg.data.__class__(**{**vars(cfg.data), "instruction": [], **SCAFFOLD})
    stories = [{"prompt": e.prompt, "answer": e.answer} for e in sets["like training"]]
    sets["stories + scaffold"] = build_examples(stories, tok, scaffold, 10**9)[0]
    out = {}
    for name, examples in sets.items():
        start = time.perf_counter()
        s = held_out_accuracy(model, tok, cfg.rollout, examples)
        out[name] = vars(s)
        took = time.perf_counter() - start
        print(f"{name}: n={s.problems} strict {s.strict:.1%} loose {s.loose:.1%} "
              f"format {s.format_rate:.1%} ({took:.0f} s)", flush=True)  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
