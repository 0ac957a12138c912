"""`mlx-grpo info`: the device, MLX version, BLAS in use, memory, and Metal/CUDA availability."""

from __future__ import annotations

import os
import platform

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlx_grpo import __version__
from mlx_grpo.backend import installed_backends
from mlx_grpo.blas import blas_in_use, find_openblas


def machine_facts() -> dict[str, str]:
    """What a bug report or a performance question needs to know about this machine."""
    import mlx.core as mx
    import mlx_lm

    metal = mx.metal.is_available()
    cuda = hasattr(mx, "cuda") and mx.cuda.is_available()
    return {
        "mlx-grpo": __version__,
        "platform": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "cpu cores": str(os.cpu_count()),
        "memory": f"{_total_memory() / 2**30:.1f} GiB",
        "mlx": mx.__version__,
        "mlx-lm": mlx_lm.__version__,
        "mlx backend": ", ".join(installed_backends()) or "none installed",
        "default device": str(mx.default_device()),
        "metal": "available" if metal else "not available",
        "cuda": "available" if cuda else "not available",
        "blas": blas_in_use(),
        "openblas found": find_openblas() or "no",
        **cached_models(),
    }


def cached_models() -> dict[str, str]:
    """Where built-in models live once made: ordinary MLX folders plain mlx_lm loads too."""
    from mlx_grpo.models.tiny import cache_dir

    models = cache_dir() / "models"
    found = sorted(p for p in models.iterdir() if p.is_dir()) if models.is_dir() else []
    rows = {"model cache": str(models)}
    for folder in found:
        rows[f"  {folder.name}"] = f"{folder}  (mlx_lm.generate --model {folder})"
    return rows


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def info() -> None:
    """Show the device, MLX version, BLAS, memory, and whether Metal or CUDA is available."""
    table = Table(title="mlx-grpo info", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in machine_facts().items():
        table.add_row(escape(key), escape(str(value)))
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("info", help="Show the device, MLX, BLAS, memory, Metal/CUDA.")(info)
