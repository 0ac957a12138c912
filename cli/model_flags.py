"""The model-selection flags shared by chat, eval and generate, and loading from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mlx_grpo.errors import UserError

MODEL = typer.Option(
    None, "--model", "-m", help="Model folder, Hugging Face id or builtin:tiny-qwen2."
)
ADAPTER = typer.Option(None, "--adapter", help="LoRA/DoRA adapter folder.")
RUN = typer.Option(None, "--run", help="Training run folder: loads its model and a checkpoint.")
STEP = typer.Option(
    "latest",
    "--step",
    help="Checkpoint step of --run, latest, or base (the model it started from).",
)


def load_from_flags(model: str | None, adapter: Path | None, run: Path | None, step: str) -> Any:
    """Resolve the flags to a model (+ adapters) and load it; returns a `LoadedModel`."""
    from mlx_grpo.models import loading, resolve

    if step != "latest" and run is None:
        raise UserError("--step needs --run RUN_DIR")
    source = resolve.resolve_source(
        model, str(adapter) if adapter else None, str(run) if run else None, step
    )
    return loading.load_model_source(source)
