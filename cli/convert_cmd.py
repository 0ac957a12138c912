"""`mlx-grpo convert`: move weights between Hugging Face, GGUF and MLX, or bring a run home.

A thin layer over `mlx_grpo.converters.pipeline.convert`: parse flags, show progress with a
spinner, print a summary table. `--info PATH` describes a folder or file without converting.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlx_grpo.errors import UserError

_SOURCES = (
    "SRC: a Hugging Face folder or hub id, an MLX folder, a .gguf file (llama or qwen2; Q4_0, "
    "Q4_1, Q8_0, F16, F32), a training run (runs/NAME: latest checkpoint, or --step N), one "
    "checkpoint (step_N or checkpoint-N; adapters are fused into their base), or a "
    "transformers/TRL output folder. OUT is a new folder, written atomically (--force "
    "replaces it)."
)
HELP = f"""Convert a model between Hugging Face, GGUF and MLX folders, or bring a run home.

{_SOURCES}

\b
Examples:
  mlx-grpo convert --info ./Qwen2.5-0.5B-Instruct
  mlx-grpo convert Qwen/Qwen2.5-0.5B-Instruct qwen-4bit -q
  mlx-grpo convert ./hf-model mlx-8bit -q --bits 8 --group-size 32
  mlx-grpo convert ./hf-model mlx-mixed -q --recipe mixed_3_6
  mlx-grpo convert smollm.Q4_1.gguf smollm-mlx
  mlx-grpo convert smollm.Q4_1.gguf smollm-f16 -d --dtype float16
  mlx-grpo convert runs/gsm8k-3b home-4bit -q
  mlx-grpo convert runs/gsm8k-3b home --step 400 -d
  mlx-grpo convert ./base fused --adapter runs/lora --step 200
  mlx-grpo convert mlx-model hf-model --to hf --dtype float32
"""

console = Console()
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?B)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def parse_size(text: str) -> int:
    """`5GB`, `500MB`, `2048` (bytes) -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise UserError(f"--shard-size {text}: expected a size like 5GB, 500MB or 1048576")
    unit = (match.group(2) or "B").upper()
    return max(1, int(float(match.group(1)) * _UNITS[unit]))


def print_rows(title: str, rows: dict[str, str]) -> None:
    """A two-column rich table."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold cyan")
    table.add_column()
    for key, value in rows.items():
        table.add_row(escape(key), escape(str(value)))
    console.print(table)


def show_info(path: str) -> None:
    """Print what PATH is (`--info`)."""
    from mlx_grpo.converters.info import describe

    print_rows(str(path), describe(Path(path).expanduser()))


def say(line: str) -> None:
    """Print one line from the converter (e.g. which dtype was chosen and why)."""
    console.print(escape(line))


def run_convert(src: str, out: Path, options: object) -> None:
    """Convert with a spinner that names the current step, then print the summary."""
    from mlx_grpo.converters.pipeline import convert

    with console.status("Starting", spinner="dots") as status:
        rows = convert(src, out, options, progress=status.update, say=say)  # type: ignore[arg-type]
    print_rows(f"Wrote {out}", rows)


def convert_command(
    src: str = typer.Argument(
        ..., metavar="SRC", help="Model folder, hub id, .gguf file, run or checkpoint."
    ),
    out: Path | None = typer.Argument(None, help="Output folder (must not exist unless --force)."),
    info: bool = typer.Option(False, "--info", help="Describe SRC (format, size, ...) and exit."),
    to: str = typer.Option("mlx", "--to", help="Output format: mlx or hf (float safetensors)."),
    quantize: bool = typer.Option(False, "--quantize", "-q", help="Quantize the output."),
    bits: int | None = typer.Option(None, "--bits", help="2, 3, 4, 5, 6 or 8 (default 4)."),
    group_size: int | None = typer.Option(None, "--group-size", help="32, 64 or 128 (default 64)."),
    mode: str = typer.Option("affine", "--mode", help="affine, mxfp4, nvfp4 or mxfp8."),
    recipe: str | None = typer.Option(
        None, "--recipe", help="Mixed precision: mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6."
    ),
    dequantize: bool = typer.Option(
        False, "--dequantize", "-d", help="Write float weights (GGUF / quantized / QLoRA)."
    ),
    dtype: str | None = typer.Option(
        None, "--dtype", help="float16, bfloat16 or float32 (default: float32 on CPU, else stored)."
    ),
    step: int | None = typer.Option(
        None, "--step", help="Checkpoint step of a run (default: latest)."
    ),
    base: str | None = typer.Option(None, "--base", help="Base model for an adapter checkpoint."),
    adapter: str | None = typer.Option(
        None, "--adapter", help="Adapters (checkpoint or run) to fuse into SRC."
    ),
    shard_size: str = typer.Option("5GB", "--shard-size", help="Largest weight file, e.g. 2GB."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    from mlx_grpo.converters.pipeline import ConvertOptions
    from mlx_grpo.converters.quantize import QuantSpec

    if info:
        show_info(src)
        return
    if out is None:
        raise UserError("missing OUT: name the output folder (or pass --info to only inspect SRC)")
    if not quantize and (bits or group_size or recipe or mode != "affine"):
        raise UserError("--bits/--group-size/--mode/--recipe need --quantize (-q)")
    options = ConvertOptions(
        to=to,
        quant=QuantSpec(bits, group_size, mode, recipe) if quantize else None,
        dequantize=dequantize,
        dtype=dtype,
        step=step,
        base=base,
        adapter=adapter,
        force=force,
        shard_bytes=parse_size(shard_size),
    )
    run_convert(src, out, options)


def register(app: typer.Typer) -> None:
    """Add the `convert` command to the `mlx-grpo` app."""
    app.command("convert", help=HELP, no_args_is_help=True)(convert_command)
