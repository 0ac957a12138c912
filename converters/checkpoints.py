"""Find the checkpoint to convert inside a training run or a transformers/TRL output folder.

Layouts understood: `runs/<name>/checkpoints/step_N/` (this project's trainer, on a Mac or on
the CUDA path), and `<output>/checkpoint-N/` (transformers Trainer / TRL). `--step N` picks
one; without it the highest step ("latest") is used. Optimizer, scheduler, RNG and trainer
state files in a checkpoint are never read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mlx_grpo.errors import UserError

STEP_DIR = re.compile(r"^(?:step_|checkpoint-)(\d+)$")


def list_steps(folder: Path) -> dict[int, Path]:
    """Step number -> checkpoint folder, looking in `folder/checkpoints` and `folder` itself."""
    steps: dict[int, Path] = {}
    for parent in (folder / "checkpoints", folder):
        if not parent.is_dir():
            continue
        for child in parent.iterdir():
            match = STEP_DIR.match(child.name)
            if match and child.is_dir() and not child.name.startswith("."):
                steps.setdefault(int(match.group(1)), child)
    return steps


def is_run_folder(folder: Path) -> bool:
    """A run / trainer output folder: has step folders and no model weights of its own."""
    return bool(list_steps(folder)) and not any(folder.glob("model*.safetensors"))


def pick_step(folder: Path, step: int | None) -> tuple[int, Path]:
    """The checkpoint for `step`, or the latest one when `step` is None."""
    steps = list_steps(folder)
    if not steps:
        raise UserError(
            f"{folder}: no checkpoints found (expected checkpoints/step_N or checkpoint-N)"
        )
    if step is None:
        latest = max(steps)
        return latest, steps[latest]
    if step not in steps:
        known = ", ".join(str(s) for s in sorted(steps))
        raise UserError(f"{folder}: no checkpoint for --step {step}; available steps: {known}")
    return step, steps[step]


def step_of(folder: Path) -> int | None:
    """The step number in a checkpoint folder's name (None for other folders)."""
    match = STEP_DIR.match(folder.name)
    return int(match.group(1)) if match else None


def run_base_model(checkpoint: Path) -> str | None:
    """The base model a run trained from: `model.path` in the run's config.yaml, if any."""
    import yaml

    for candidate in (checkpoint.parent.parent / "config.yaml", checkpoint.parent / "config.yaml"):
        if candidate.is_file():
            try:
                data = yaml.safe_load(candidate.read_text()) or {}
            except yaml.YAMLError as exc:
                raise UserError(f"{candidate}: not valid YAML ({exc})") from exc
            model = data.get("model") if isinstance(data, dict) else None
            if isinstance(model, dict) and model.get("path"):
                return str(model["path"])
    return None


def adapter_base_model(adapters: Path) -> str | None:
    """The base model named in adapter_config.json (mlx-lm writes it as `model`)."""
    try:
        config = json.loads((adapters / "adapter_config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    value = config.get("model") or config.get("base_model_name_or_path")
    return str(value) if value else None
