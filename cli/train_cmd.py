"""`mlx-grpo train`: run GRPO from a YAML config, live progress, checkpoints, resume."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from mlx_grpo.errors import UserError

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
    from mlx_grpo.train.loop import plan_new_run, plan_resume

    if config is None and resume is None:
        raise UserError("give a config with --config FILE, or a run to continue with --resume DIR")
    if config is not None and resume is not None:
        raise UserError("--config and --resume exclude each other (a run keeps its own config)")
    plan = plan_resume(resume, overrides) if resume else plan_new_run(config, overrides)
    if not force:
        from mlx_grpo.plan.memory import check_before_training

        check_before_training(plan.cfg, memory)
    run_training(plan, Console())


def run_training(plan, console: Console, trainer=None):  # noqa: ANN001, ANN201 - lazy imports
    """Build the trainer (unless given), train to the configured step count, checkpoint,
    summarize; returns the trainer."""
    from mlx_grpo.cli.live_view import LiveView, summary_table

    from mlx_grpo.train.loop import graceful_interrupt, set_aside_metrics_after
    from mlx_grpo.train.trainer import Trainer

    cfg, run_dir = plan.cfg, plan.run_dir
    if trainer is None:
        with console.status("loading model and data"):
            trainer = Trainer(cfg, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if plan.resume_from is not None:
        trainer.restore(plan.resume_from)
        set_aside_metrics_after(run_dir, trainer.step)
        console.print(f"resuming [bold]{run_dir}[/] from step {trainer.step}")
    trainer.write_config()
    _describe(console, trainer)
    with LiveView(console, cfg.steps, trainer.step) as view, graceful_interrupt() as stop:
        trainer.on_step = view.on_step
        last_saved = trainer.step
        while trainer.step < cfg.steps and not stop.requested:
            trainer.train_step()
            if trainer.step % cfg.checkpoint.every == 0 or trainer.step == cfg.steps:
                trainer.save()
                last_saved = trainer.step
        if trainer.step != last_saved:
            trainer.save()
    if view.history:
        console.print(summary_table(view.history, str(run_dir)))
    if stop.requested:
        console.print(
            f"[yellow]stopped at step {trainer.step}; continue with[/] "
            f"mlx-grpo train --resume {run_dir}"
        )
        raise typer.Exit(130)
    console.print(f"[green]done:[/] checkpoints in {run_dir / 'checkpoints'}")
    return trainer


def _describe(console: Console, trainer) -> None:  # noqa: ANN001
    from mlx_grpo.models.policy import trainable_count

    trainable, total = trainable_count(trainer.policy.model)
    cfg = trainer.cfg
    console.print(
        f"model [bold]{cfg.model.path}[/] ({cfg.lora.fine_tune_type}, "
        f"{trainable / 1e6:.3f}M of {total / 1e6:.1f}M params trainable); "
        f"{len(trainer.stream.examples)} prompts"
        + (f" ({trainer.dropped_prompts} too long, dropped)" if trainer.dropped_prompts else "")
        + f"; B={cfg.batch_size} x G={cfg.rollout.group_size}; run dir {trainer.run_dir}"
    )
