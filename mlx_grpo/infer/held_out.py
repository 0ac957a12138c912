"""`eval --run RUN --data held-out`: the run's own held-out problems, scored as training did.

The held-out rows are rebuilt from the run's config exactly as the trainer split them
(`data.train`, `data.eval_size`, `seed`; each question with its `data.instruction`), and a
reward the run trained with keeps its params, so `mlx-grpo eval` reproduces the demo's table
for its held-out stories from the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlx_grpo import rundir
from mlx_grpo.config import TrainConfig, load_config
from mlx_grpo.data.examples import load_rows, split_rows, with_instruction
from mlx_grpo.errors import UserError
from mlx_grpo.sft.config import is_sft_config

HELD_OUT = "held-out"


def run_config(run: Path | None) -> TrainConfig | None:
    """The run's resolved config (None without --run, and for an SFT run: no rewards)."""
    if run is None or is_sft_config(rundir.read_run_config(run)):
        return None
    return load_config(rundir.config_file(run), [])


def held_out_rows(cfg: TrainConfig | None) -> list[dict]:
    """The rows the run's training held out (`data.eval_size` of them)."""
    if cfg is None:
        raise UserError(
            "--data held-out needs --run of a GRPO run (problems with gold answers)",
            where="--data",
        )
    if not cfg.data.eval_size:
        raise UserError("this run held no rows out (its data.eval_size is 0)", where="--data")
    rows = load_rows(cfg.data, cfg.seed)
    return split_rows(rows, cfg.data.eval_size, cfg.seed)[1]


def held_out_questions(cfg: TrainConfig | None) -> list[dict]:
    """The held-out rows with the run's `data.instruction` written into each question, as
    training asked them (the command renders the rest: template, system prompt, few-shot)."""
    instructions = cfg.data.instruction if cfg else []
    return [
        {**r, "prompt": with_instruction(r["prompt"], instructions)} for r in held_out_rows(cfg)
    ]


def reward_params(cfg: TrainConfig | None, name: str) -> dict[str, Any]:
    """The params the run gave reward `name` (none when it did not train with it)."""
    specs = cfg.rewards if cfg else []
    return next((dict(r.params) for r in specs if r.name == name), {})


def format_reward_name(cfg: TrainConfig | None, flag: str) -> str:
    """--format-reward, else answer_tag when the run trained with it, else R1's strict format."""
    if flag != "auto":
        return flag
    trained = {r.name for r in cfg.rewards} if cfg else set()
    return "answer_tag" if "answer_tag" in trained else "r1_format_strict"
