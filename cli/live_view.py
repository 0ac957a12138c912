"""The live view of a training run: a rich progress bar with the newest metrics, and a summary.

`LiveView` is a `train.loop.Callback`: the loop hands it each metrics line as it is written.
On a terminal, step N/M, elapsed time and ETA keep their width and the metrics are cut
first when the window is narrow; when stdout is a file or a pipe (nohup, `> log`), it
writes one plain line every few steps instead of a bar.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table

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
        f"reward {m['reward_mean']:.3f} ({per_fn})  kl {_num(m.get('kl'), '.4f')}  "
        f"len {m['completion_length/mean']:.0f}  {m['rollout_tokens_per_s']:.0f} tok/s"
    )
    if "eval/pass@1" in m:
        line += f"  eval {m['eval/pass@1']:.2f} think {m['eval/think_rate']:.2f}"
    return line


def _num(value: float | None, spec: str) -> str:
    """A metric formatted, or "-" where nothing was measured (e.g. kl on a step with no update)."""
    return "-" if value is None else format(value, spec)


def _fixed(column: TextColumn | BarColumn | MofNCompleteColumn | TimeElapsedColumn) -> Any:
    column.table_column = Column(no_wrap=True)  # never squeezed: the metrics give way first
    return column


class LiveView(Callback):
    """Progress over steps, refreshed after every step with reward, kl, length and tokens/s."""

    def __init__(
        self,
        console: Console,
        total: int,
        start: int = 0,
        line: Callable[[dict[str, Any]], str] = metrics_line,
        label: str = "train",
    ) -> None:
        metrics = Column(no_wrap=True, overflow="ellipsis", ratio=1)
        self.line = line  # the metrics shown beside the bar (`mlx-grpo sft` shows its own)
        self.progress = Progress(
            _fixed(TextColumn(f"[bold]{label}")),
            _fixed(BarColumn(bar_width=12)),
            _fixed(MofNCompleteColumn()),
            _fixed(TimeElapsedColumn()),
            _fixed(TextColumn("eta")),
            _fixed(TimeRemainingColumn()),
            TextColumn("{task.fields[metrics]}", markup=False, table_column=metrics),
            console=console,
            transient=False,
            expand=True,
            # rich estimates speed over its last 30 s only: steps slower than that left the
            # ETA at "?" for the whole run; average over the run instead
            speed_estimate_period=7 * 24 * 3600.0,
        )
        self.task = self.progress.add_task("train", total=total, completed=start, metrics="")
        self.console, self.total = console, total
        self.plain = not console.is_terminal
        self.every = max(1, total // 20)  # plain output: about 20 lines per run
        self.history: list[dict[str, Any]] = []

    def __enter__(self) -> LiveView:
        if not self.plain:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.plain:
            self.progress.stop()

    def on_log(self, trainer: Trainer, m: dict[str, Any]) -> None:
        self.history.append(m)
        self.progress.update(self.task, completed=m["step"], metrics=self.line(m))
        if self.plain and (m["step"] % self.every == 0 or m["step"] >= self.total):
            self._plain_line(m)

    def _plain_line(self, m: dict[str, Any]) -> None:
        task = self.progress.tasks[0]
        elapsed, left = task.elapsed or 0.0, task.time_remaining
        eta = "?" if left is None else f"{left:.0f}s"
        head = f"step {m['step']}/{self.total} elapsed {elapsed:.0f}s eta {eta}"
        self.console.print(escape(f"{head}  {self.line(m)}"), highlight=False, soft_wrap=True)


SUMMARY_KEYS = ("reward_mean", "kl", "completion_length/mean", "rollout_tokens_per_s")


def summary_table(
    history: list[dict[str, Any]], run_dir: str, keys: tuple[str, ...] = SUMMARY_KEYS
) -> Table:
    """First versus last steps of the run, side by side."""
    table = Table(title=f"run {run_dir}")
    table.add_column("metric")
    table.add_column("first steps", justify="right")
    table.add_column("last steps", justify="right")
    k = max(1, min(5, len(history) // 2))
    head, tail = history[:k], history[-k:]
    for key in keys:
        table.add_row(key, _num(_mean(head, key), ".4g"), _num(_mean(tail, key), ".4g"))
    return table


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    """Mean of a metric over the rows that measured it (None where none did)."""
    values = [m[key] for m in rows if m.get(key) is not None]
    return sum(values) / len(values) if values else None
