"""`mlx-grpo runs [DIR]`: a table of the runs under a folder (see mlx_grpo/report/runs.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlx_grpo.errors import UserError


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def runs(
    folder: Path = typer.Argument(Path("runs"), help="Folder holding run folders."),
    compare: tuple[Path, Path] | None = typer.Option(None, help="Two run folders to compare."),
) -> None:
    """List the runs under FOLDER: model, steps, last reward, best eval accuracy, state."""
    from mlx_grpo.report.runs import scan

    if compare is not None:
        return _compare(*compare)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder")
    table = Table("name", "model", "steps", "last reward", "best eval", "state")
    for s in scan(folder):
        steps = f"{s.steps_done}/{s.steps_total}"
        table.add_row(
            escape(s.name), escape(s.model), steps, _num(s.last_reward), _num(s.best_eval), s.state
        )
    Console().print(table)


def _compare(a: Path, b: Path) -> None:
    """Config differences and final metrics of two runs, side by side."""
    from mlx_grpo.report.runs import config_diff, final_metrics, summarize

    for run in (a, b):
        if summarize(run) is None:
            raise UserError(f"{run}: not a run folder (no config.yaml and metrics.jsonl)")
    diff = Table("config key", a.name, b.name, title="config differences")
    for key, va, vb in config_diff(a, b):
        diff.add_row(key, str(va), str(vb))
    ma, mb = final_metrics(a), final_metrics(b)
    final = Table("metric", a.name, b.name, title="final metrics")
    for key in sorted(set(ma) | set(mb)):
        final.add_row(key, str(ma.get(key, "-")), str(mb.get(key, "-")))
    Console().print(diff, final)


def register(app: typer.Typer) -> None:
    app.command("runs", help="List the runs under a folder and their state.")(runs)
