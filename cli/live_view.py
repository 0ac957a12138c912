"""The live view of a training run: a rich progress bar with the newest metrics, and a summary.

`LiveView` is a `train.loop.Callback`: the loop hands it each metrics line as it is written.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlx_grpo.train.loop import Callback
from mlx_grpo.train.trainer import Trainer


def metrics_line(m: dict[str, Any]) -> str:
    """reward (and per function), kl, length, tokens/s, and the latest eval if there is one."""
    per_fn = " ".join(
        f"{k.split('/')[1]} {v:.2f}"
        for k, v in m.items()
        if k.startswith("rewards/") and k.endswith("/mean")
    )
    line = (
        f"reward {m['reward_mean']:.3f} ({per_fn})  kl {m['kl']:.4f}  "
        f"len {m['completion_length/mean']:.0f}  {m['rollout_tokens_per_s']:.0f} tok/s"
    )
    if "eval/pass@1" in m:
        line += f"  eval {m['eval/pass@1']:.2f} think {m['eval/think_rate']:.2f}"
    return line


class LiveView(Callback):
    """Progress over steps, refreshed after every step with reward, kl, length and tokens/s."""

    def __init__(self, console: Console, total: int, start: int = 0) -> None:
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("train", total=total, completed=start, metrics="")
        self.history: list[dict[str, Any]] = []

    def __enter__(self) -> LiveView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_log(self, trainer: Trainer, m: dict[str, Any]) -> None:
        self.history.append(m)
        self.progress.update(self.task, completed=m["step"], metrics=metrics_line(m))


def summary_table(history: list[dict[str, Any]], run_dir: str) -> Table:
    """First versus last steps of the run, side by side."""
    table = Table(title=f"run {run_dir}")
    table.add_column("metric")
    table.add_column("first steps", justify="right")
    table.add_column("last steps", justify="right")
    k = max(1, min(5, len(history) // 2))
    head, tail = history[:k], history[-k:]
    for key in ("reward_mean", "kl", "completion_length/mean", "rollout_tokens_per_s"):
        first = sum(m[key] for m in head) / len(head)
        last = sum(m[key] for m in tail) / len(tail)
        table.add_row(key, f"{first:.4g}", f"{last:.4g}")
    return table
