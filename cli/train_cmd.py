"""`mlx-grpo train`: run GRPO from a YAML config, live progress, checkpoints, resume."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from mlx_grpo.errors import UserError

if TYPE_CHECKING:  # the engine loads MLX and mlx-lm: only once the command runs
    from mlx_grpo.train.distributed import World
    from mlx_grpo.train.trainer import Trainer

EXAMPLES = """
Examples:

  mlx-grpo train --config configs/debug.yaml

  mlx-grpo train -c configs/debug.yaml --set steps=20 --set rollout.group_size=4

  mlx-grpo train --resume runs/debug        (continue where it stopped)

  mlx.launch -n 2 -- mlx-grpo train -c configs/debug.yaml   (data parallel: docs/distributed.md)

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
    from mlx_grpo.train.distributed import World, check_divides
    from mlx_grpo.train.loop import check_config_or_resume, new_run, resume_run
    from mlx_grpo.train.trainer import Trainer

    check_config_or_resume(config, resume)
    world = World.init()  # the ranks mlx.launch started, or a world of one
    setup = resume_run(resume, overrides) if resume else new_run(config, overrides, world=world)
    cfg = setup.cfg
    accumulation = cfg.optimizer.gradient_accumulation_steps
    check_divides(cfg.batch_size, cfg.rollout.group_size, accumulation, world.size)
    if not force:
        check_before_training(cfg, memory, ranks=world.size)
    console = Console(quiet=not world.is_main)  # rank 0 speaks for every rank
    with ranks_stop_together(world, setup.run_dir):
        with console.status("loading model and data"):
            trainer = Trainer(cfg, setup.run_dir, world)
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
    main = trainer.world.is_main  # the others neither show progress nor report
    with LiveView(console, trainer.cfg.steps, _step_of(resume_from)) as view:
        hooks = [view, *reporters(trainer.cfg, run_dir)] if main else []
        result = train(trainer, resume_from=resume_from, callbacks=hooks)
    if view.history:
        console.print(summary_table(view.history, str(run_dir)))
    if result.stopped and not trainer.world.is_main:
        return  # exit 0: mlx.launch stops every rank when one exits non-zero (rank 0 says it)
    if result.stopped:
        console.print(
            f"[yellow]stopped at step {result.step}; continue with[/] "
            f"mlx-grpo train --resume {escape(str(run_dir))}"
        )
        raise typer.Exit(130)
    console.print(f"[green]done:[/] checkpoints in {escape(str(run_dir / 'checkpoints'))}")


@contextlib.contextmanager
def ranks_stop_together(world: World, run_dir: Path) -> Iterator[None]:
    """With several ranks: a lost peer (a collective fails) or mlx.launch stopping this rank
    because another failed (SIGTERM) ends this rank with one line naming the run to resume.
    A checkpoint being written is never left half done (`rundir.atomic_folder`)."""
    if not world.distributed:
        yield
        return
    again = f"the last checkpoint is intact: continue with mlx-grpo train --resume {run_dir}"

    def stopped(signum: int, frame: object) -> None:
        raise UserError(f"rank {world.rank}: stopped by mlx.launch (another rank failed); {again}")

    previous = signal.signal(signal.SIGTERM, stopped)
    try:
        yield
    except typer.Exit:  # click's Exit is a RuntimeError too
        raise
    except RuntimeError as exc:  # the ring: "connection to a peer was lost"
        raise UserError(
            f"rank {world.rank}: lost contact with the other ranks ({exc}); {again}"
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


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
