"""`mlx-grpo plot RUN [RUN ...]`: one PNG of the run curves, or sparklines without matplotlib."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from mlx_grpo.errors import UserError


def plot(
    runs: list[Path] = typer.Argument(..., help="Run folders (several are overlaid)."),
    out: Path = typer.Option(Path("curves.png"), help="Where the PNG goes."),
    smooth: int = typer.Option(1, help="Moving average over N steps."),
) -> None:
    """Reward, per-reward means, kl, completion length, eval and step time against step
    (loss, validation loss, lr, grad norm, tokens/s, step time for an SFT run)."""
    from mlx_grpo import rundir
    from mlx_grpo.report.plot import panel_keys, panels_for, series, sparkline, write_png

    if smooth < 1:
        raise UserError("--smooth must be >= 1")
    for run in runs:
        if not rundir.metrics_file(run).is_file():
            raise UserError(f"{run}: no metrics.jsonl (not a run folder)")
    data = {run.name: series(run, smooth) for run in runs}
    console = Console()
    if importlib.util.find_spec("matplotlib") is not None:
        write_png(data, out)
        console.print(f"wrote {escape(str(out))}")
        return
    console.print("matplotlib is missing (pip install 'mlx-grpo[plot]'): sparklines")
    for name, rows in data.items():
        for prefix, _ in panels_for(data):
            for key in panel_keys(rows, prefix):
                values = rows[key][1]
                console.print(
                    f"{escape(name)} {escape(key):<28} {sparkline(values)} {values[-1]:.4g}"
                )


def register(app: typer.Typer) -> None:
    app.command("plot", help="Plot run curves into one PNG (sparklines without matplotlib).")(plot)
