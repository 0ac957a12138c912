"""Checks on a model folder before anything is loaded, each failing with one clear message.

No weights, pytorch-only weights, a missing or incomplete config.json, a truncated
safetensors file or an index naming missing shards are all caught here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlx_grpo.converters.safetensors_io import check_complete, read_header

from mlx_grpo.errors import UserError

PYTORCH_PATTERNS = ("pytorch_model*.bin", "model*.bin", "*.pt", "*.pth")
NOT_WEIGHTS = {"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"}


def weight_files(folder: Path) -> list[Path]:
    """The model*.safetensors files of a folder (what mlx-lm loads)."""
    return sorted(folder.glob("model*.safetensors"))


def pytorch_files(folder: Path) -> list[Path]:
    """PyTorch pickles holding model weights (training state files are not counted)."""
    found = {p for pat in PYTORCH_PATTERNS for p in folder.glob(pat)}
    return sorted(p for p in found if p.name not in NOT_WEIGHTS and not p.name.startswith("rng_"))


def require_weights(folder: Path) -> list[Path]:
    """Return the safetensors files, or explain why there are none."""
    files = weight_files(folder)
    if files:
        return files
    if pytorch_files(folder):
        names = ", ".join(p.name for p in pytorch_files(folder)[:3])
        raise UserError(
            f"{folder}: only PyTorch weights found ({names}); convert does not unpickle .bin/.pt "
            "files. Save the model as safetensors (model.save_pretrained(path, "
            "safe_serialization=True), or TrainingArguments(save_safetensors=True)) and retry"
        )
    raise UserError(
        f"{folder}: no model weights found; expected model.safetensors, sharded "
        "model-0000i-of-0000n.safetensors, a .gguf file, or adapters.safetensors"
    )


def written_by_mlx(folder: Path, config: dict[str, Any]) -> bool:
    """MLX folders carry a `quantization` section or `format: mlx` safetensors metadata."""
    if "quantization" in config:
        return True
    files = weight_files(folder)
    return bool(files) and read_header(files[0]).get("__metadata__", {}).get("format") == "mlx"


def read_config(folder: Path) -> dict[str, Any]:
    """config.json as a dict; it must exist, parse, and name a model_type."""
    path = folder / "config.json"
    if not path.is_file():
        raise UserError(f"{folder}: no config.json; a model folder needs one next to its weights")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or not config.get("model_type"):
        raise UserError(
            f'{path}: no \'model_type\' key; it names the architecture (e.g. "qwen2", "llama")'
        )
    return config


def check_index(folder: Path) -> None:
    """Every shard named in model.safetensors.index.json must be present."""
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        return
    try:
        weight_map = json.loads(index.read_text()).get("weight_map", {})
    except json.JSONDecodeError as exc:
        raise UserError(f"{index}: not valid JSON ({exc})") from exc
    missing = sorted({f for f in weight_map.values() if not (folder / f).is_file()})
    if missing:
        raise UserError(f"{index}: names shard(s) that are missing: {', '.join(missing)}")


def validate_model_folder(folder: Path) -> dict[str, Any]:
    """Run every check on a model folder; return its config."""
    files = require_weights(folder)
    config = read_config(folder)
    check_index(folder)
    for file in files:
        check_complete(file)
    return config
