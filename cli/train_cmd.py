"""`mlx-grpo train`: run GRPO from a YAML config, live progress, checkpoints, resume."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:  # the engine loads MLX and mlx-lm: only once the command runs
    from mlx_grpo.train.trainer import Trainer

EXAMPLES = """
Examples:

  mlx-grpo train --config configs/debug.yaml

  mlx-grpo train -c configs/debug.yaml --set steps=20 --set rollout.group_size=4

  mlx-grpo train --resume runs/debug        (continue where it stopped)

Before loading anything, the memory planner (`mlx-grpo plan`) checks that the run fits in
this machine's memory (or --memory) and refuses, with its table, if it will not (--force).
"""


def register(app: typer.Typer) -> None:
    app.command(
        "train", help="Train a model with GRPO." + EXAMPLES, short_help="Train a model with GRPO."
    )(train)


def train(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML run config (see configs/)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", "-s", help="Override a config key, e.g. --set optimizer.learning_rate=1e-5."
    ),
    resume: Path | None = typer.Option(
        None, "--resume", help="Continue the run in this directory from its newest checkpoint."
    ),
    force: bool = typer.Option(
        False, "--force", help="Train even when `mlx-grpo plan` predicts it will not fit."
    ),
    memory: str | None = typer.Option(
        None, "--memory", help="Memory to plan for (80GB, h100-80gb); default: this machine's."
    ),
) -> None:
    """Train a model with GRPO."""
    from mlx_grpo.plan.memory import check_before_training
    from mlx_grpo.train.loop import check_config_or_resume, new_run, resume_run
    from mlx_grpo.train.trainer import Trainer

    check_config_or_resume(config, resume)
    setup = resume_run(resume, overrides) if resume else new_run(config, overrides)
    if not force:
        check_before_training(setup.cfg, memory)
    console = Console()
    with console.status("loading model and data"):
        trainer = Trainer(setup.cfg, setup.run_dir)
    train_with_view(trainer, console, setup.resume_from)


def train_with_view(trainer: Trainer, console: Console, resume_from: Path | None = None) -> None:
    """`train.loop.train` with the live progress view, then the summary (exit 130 on Ctrl-C)."""
    from mlx_grpo.cli.live_view import LiveView, summary_table

    from mlx_grpo.report.callbacks import reporters
    from mlx_grpo.train.loop import train

    run_dir = trainer.run_dir
    if resume_from is not None:
        console.print(f"resuming [bold]{escape(str(run_dir))}[/] from {escape(resume_from.name)}")
    _describe(console, trainer)
    with LiveView(console, trainer.cfg.steps, _step_of(resume_from)) as view:
        result = train(
            trainer, resume_from=resume_from, callbacks=[view, *reporters(trainer.cfg, run_dir)]
        )
    if view.history:
        console.print(summary_table(view.history, str(run_dir)))
    if result.stopped:
        console.print(
            f"[yellow]stopped at step {result.step}; continue with[/] "
            f"mlx-grpo train --resume {escape(str(run_dir))}"
        )
        raise typer.Exit(130)
    console.print(f"[green]done:[/] checkpoints in {escape(str(run_dir / 'checkpoints'))}")


def _step_of(checkpoint: Path | None) -> int:
    from mlx_grpo.rundir import step_of

    return (step_of(checkpoint) or 0) if checkpoint is not None else 0


def _describe(console: Console, trainer: Trainer) -> None:
    from mlx_grpo.models.policy import trainable_count

    trainable, total = trainable_count(trainer.policy.model)
    cfg = trainer.cfg
    dropped = trainer.dropped_prompts
    console.print(
        f"model [bold]{escape(cfg.model.path)}[/] ({cfg.lora.fine_tune_type}, "
        f"{trainable / 1e6:.3f}M of {total / 1e6:.1f}M params trainable); "
        f"{len(trainer.stream.examples)} prompts"
        + (f" ({dropped} too long, dropped)" if dropped else "")
        + f"; B={cfg.batch_size} x G={cfg.rollout.group_size}; "
        f"run dir {escape(str(trainer.run_dir))}"
    )
