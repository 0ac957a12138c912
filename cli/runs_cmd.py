"""`mlx-grpo runs [DIR]`: a table of the runs under a folder (see mlx_grpo/report/runs.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mlx_grpo.errors import UserError


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def runs(folder: Path = typer.Argument(Path("runs"), help="Folder holding run folders.")) -> None:
    """List the runs under FOLDER: model, steps, last reward, best eval accuracy, state."""
    from mlx_grpo.report.runs import scan

    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder")
    table = Table("name", "model", "steps", "last reward", "best eval", "state")
    for s in scan(folder):
        steps = f"{s.steps_done}/{s.steps_total}"
        table.add_row(s.name, s.model, steps, _num(s.last_reward), _num(s.best_eval), s.state)
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("runs", help="List the runs under a folder and their state.")(runs)
