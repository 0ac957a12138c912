"""`mlx-grpo plan`: predict a training run's peak memory before loading anything."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlx_grpo.errors import UserError

if TYPE_CHECKING:
    from mlx_grpo.plan.memory import Plan

EXAMPLES = """
Reads only the model's config.json (or a table of known Qwen shapes), never the weights, and
prints what holds memory in a training step: weights, adapters, optimizer state, reference,
rollout KV cache, gradients, scoring activations, log-prob buffers. Exit code 0: it fits;
1: it does not (with what to change); 2: a bad config, model or device.

Examples:

  mlx-grpo plan -c configs/qwen2.5-3b-h100.yaml --device h100-80gb

  mlx-grpo plan -c configs/qwen2.5-1.5b-mac-qlora.yaml --device m2-pro-16gb

  mlx-grpo plan -c my.yaml --memory 24GB --set rollout.group_size=16

  mlx-grpo plan -c my.yaml --prompt-length 200   (your prompts are shorter than the limit)

  mlx-grpo plan -c configs/qwen2.5-3b-h100.yaml --device h100-80gb --ranks 8   (per device)

Devices: h100-80gb, h100-94gb, h200-141gb, a100-40gb, a100-80gb, l40s-48gb, l4-24gb,
rtx4090-24gb, ...; Macs as m1-16gb, m2-pro-32gb, m3-max-64gb, m4-max-128gb (macOS keeps
about a quarter of RAM). Without --memory/--device: this machine's memory.
"""


def register(app: typer.Typer) -> None:
    app.command(
        "plan",
        help="Predict peak training memory and whether it fits." + EXAMPLES,
        short_help="Predict peak training memory and whether it fits.",
    )(plan_command)


def plan_command(
    config: Path = typer.Option(..., "--config", "-c", help="YAML run config."),
    overrides: list[str] = typer.Option([], "--set", "-s", help="Override a config key."),
    memory: str | None = typer.Option(None, "--memory", help="Memory to fit in: 80GB, 24GiB."),
    device: str | None = typer.Option(None, "--device", help="A device: h100-80gb, m3-max-64gb."),
    prompt_length: int | None = typer.Option(
        None, "--prompt-length", min=1, help="Prompt tokens (default: rollout.max_prompt_length)."
    ),
    ranks: int = typer.Option(
        1, "--ranks", min=1, help="Data-parallel ranks (mlx.launch -n): memory per device."
    ),
) -> None:
    """Predict peak training memory and whether it fits."""
    from mlx_grpo.config import load_config
    from mlx_grpo.plan import memory as planner
    from mlx_grpo.plan.architecture import read_architecture

    if memory and device:
        raise UserError("give --memory or --device, not both")
    from mlx_grpo.train.distributed import check_divides

    cfg = load_config(config, overrides)
    accumulation = cfg.optimizer.gradient_accumulation_steps
    check_divides(cfg.batch_size, cfg.rollout.group_size, accumulation, ranks)
    arch = read_architecture(cfg.model.path)
    spec = memory or device
    budget = planner.device_memory(spec) if spec else planner.machine_memory()
    rank_cfg = planner.per_rank(cfg, ranks)
    plan = planner.plan(rank_cfg, arch, prompt_length, planner.device_pad_multiple(spec))
    console = Console()
    console.print(_table(plan, budget, planner.device_note(spec), cfg.model.path))
    if ranks > 1:
        console.print(planner.ranks_note(cfg, arch, ranks), highlight=False)
    if plan.total <= budget:
        console.print(f"[green]fits:[/] {plan.total / 1e9:.1f} GB of {budget / 1e9:.1f} GB")
        return
    console.print(f"[red]does not fit:[/] {plan.total / 1e9:.1f} GB > {budget / 1e9:.1f} GB")
    for tip in planner.advice(plan, budget, cfg, arch, prompt_length):
        console.print(f"  {escape(tip)}", highlight=False)
    raise typer.Exit(1)


def _table(plan: Plan, budget: int, note: str, model: str) -> Table:
    table = Table(title=f"peak memory of one training step: {model}", title_justify="left")
    for name, justify in (("memory", "left"), ("phase", "left"), ("GB", "right"), ("note", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in plan.rows:
        table.add_row(escape(row.name), row.phase, f"{row.bytes / 1e9:.2f}", escape(row.note))
    table.add_section()
    table.add_row(
        "predicted peak",
        plan.peak_phase,
        f"{plan.total / 1e9:.2f}",
        "always + " + plan.peak_phase + " (the phases never overlap)",
        style="bold",
    )
    table.add_row("available", "", f"{budget / 1e9:.2f}", note)
    table.caption = (
        f"shapes from {plan.arch.source}; lengths padded to multiples of {plan.shapes.multiple}"
    )
    return table
