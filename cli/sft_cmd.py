"""`mlx-grpo sft`: supervised warm start on prompt/completion rows, in a normal run folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:  # the engine loads MLX and mlx-lm: only once the command runs
    from mlx_grpo.sft.trainer import SftTrainer

EXAMPLES = """
Examples:

  mlx-grpo sft --config configs/sft-debug.yaml

  mlx-grpo sft -c my-sft.yaml --set steps=200 --set logging.eval_every=20

  mlx-grpo sft --resume runs/my-sft        (continue where it stopped)

Rows are {"prompt": ..., "completion": ...}, or chat {"messages": [...]}
whose last assistant message is the completion, in .jsonl/.json/.parquet
files or a hub dataset. Prompts are rendered by the templates of
`mlx-grpo train`; the loss is the NLL of the completion tokens (and EOS).
The run folder is a normal run: chat, eval, generate, convert take --run.
"""

SUMMARY_KEYS = ("loss", "val_loss", "tokens_per_s")


def register(app: typer.Typer) -> None:
    app.command(
        "sft",
        help="Supervised fine-tuning (a warm start before GRPO)." + EXAMPLES,
        short_help="Supervised fine-tuning (a warm start before GRPO).",
    )(sft)


def sft(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML SFT config (see configs/sft-debug.yaml)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", "-s", help="Override a config key, e.g. --set optimizer.learning_rate=1e-5."
    ),
    resume: Path | None = typer.Option(
        None, "--resume", help="Continue the run in this directory from its newest checkpoint."
    ),
) -> None:
    """Supervised fine-tuning (a warm start before GRPO)."""
    from mlx_grpo.sft.run import new_sft_run, resume_sft_run
    from mlx_grpo.sft.trainer import SftTrainer
    from mlx_grpo.train.loop import check_config_or_resume

    check_config_or_resume(config, resume)
    setup = resume_sft_run(resume, overrides) if resume else new_sft_run(config, overrides)
    console = Console()
    with console.status("loading model and data"):
        trainer = SftTrainer(setup.cfg, setup.run_dir)
    _describe(console, trainer)
    train_with_view(trainer, console, setup.resume_from)


def metrics_line(m: dict[str, Any]) -> str:
    """loss, the latest validation loss, lr and tokens/s."""
    line = f"loss {m['loss']:.4f}"
    if m.get("val_loss") is not None:
        line += f"  val {m['val_loss']:.4f}"
    return line + f"  lr {m['lr']:.2e}  {m['tokens_per_s']:.0f} tok/s"


def train_with_view(trainer: SftTrainer, console: Console, resume_from: Path | None) -> None:
    """`train.loop.train` with the live view, then the summary (exit 130 on Ctrl-C)."""
    from mlx_grpo.cli.live_view import LiveView, summary_table

    from mlx_grpo.report.callbacks import reporters
    from mlx_grpo.rundir import step_of
    from mlx_grpo.train.loop import train

    run_dir, cfg = trainer.run_dir, trainer.cfg
    start = (step_of(resume_from) or 0) if resume_from is not None else 0
    if resume_from is not None:
        console.print(f"resuming [bold]{escape(str(run_dir))}[/] from {escape(resume_from.name)}")
    with LiveView(console, cfg.steps, start, line=metrics_line, label="sft") as view:
        callbacks = [view, *reporters(cfg, run_dir)]  # type: ignore[arg-type]
        result = train(trainer, resume_from=resume_from, callbacks=callbacks)  # type: ignore[arg-type]
    if view.history:
        console.print(summary_table(view.history, str(run_dir), SUMMARY_KEYS))
    if result.stopped:
        console.print(
            f"[yellow]stopped at step {result.step}; continue with[/] "
            f"mlx-grpo sft --resume {escape(str(run_dir))}"
        )
        raise typer.Exit(130)
    console.print(f"[green]done:[/] checkpoints in {escape(str(run_dir / 'checkpoints'))}")


def _describe(console: Console, trainer: SftTrainer) -> None:
    from mlx_grpo.models.policy import trainable_count

    trainable, total = trainable_count(trainer.policy.model)
    cfg = trainer.cfg
    dropped = f" ({trainer.dropped} longer than sft.max_length, dropped)" if trainer.dropped else ""
    held = f", {len(trainer.canaries)} held out" if trainer.canaries else ""
    console.print(
        f"model [bold]{escape(cfg.model.path)}[/] ({cfg.lora.fine_tune_type}, "
        f"{trainable / 1e6:.3f}M of {total / 1e6:.1f}M params trainable); "
        f"{len(trainer.examples)} rows{dropped}{held}; batch {cfg.batch_size}; "
        f"run dir {escape(str(trainer.run_dir))}"
    )
