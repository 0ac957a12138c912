"""Decide what a source path is: a model folder, a GGUF file, adapters, a run, or a hub id.

Runs and trainer output folders are narrowed to one checkpoint (`--step` or latest); adapter
checkpoints are paired with their base model (`--base`, else the run's config.yaml, else
adapter_config.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlx_grpo.converters.gguf_header import is_gguf
from mlx_grpo.converters.load_folder import download

from mlx_grpo.errors import UserError
from mlx_grpo.models.resolve import resolve_model_path
from mlx_grpo.rundir import (
    ADAPTER_WEIGHTS,
    MissingStep,
    is_run_folder,
    pick_step,
    recorded_base_model,
    step_of,
)


@dataclass(frozen=True)
class Source:
    """A resolved source: `kind` is folder, gguf or adapters; `base` is set for adapters."""

    kind: str
    path: Path
    base: Path | None = None
    step: int | None = None


def resolve_base(spec: str, near: Path) -> Path:
    """A base-model spec -> a local folder, through the resolver every command uses
    (`builtin:NAME`, a folder, also relative to `near`; a hub id is downloaded)."""
    resolved = resolve_model_path(spec, "--base", near)
    return Path(resolved) if Path(resolved).exists() else download(resolved)


def _pick(folder: Path, step: int | None) -> tuple[int, Path]:
    try:
        return pick_step(folder, step)
    except MissingStep as exc:
        known = ", ".join(map(str, exc.available))
        raise UserError(
            f"{folder}: no checkpoint for --step {exc.step}; available steps: {known}"
        ) from None


def _adapters(path: Path, base: str | None, step: int | None) -> Source:
    spec = base or recorded_base_model(path)
    if spec is None:
        raise UserError(
            f"{path}: adapters without a known base model; pass --base PATH "
            "(or convert the whole run folder, whose config.yaml names it)"
        )
    return Source("adapters", path, resolve_base(spec, path.parent), step)


def _gguf_in(folder: Path) -> Path | None:
    found = sorted(folder.glob("*.gguf"))
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise UserError(f"{folder}: holds several GGUF files ({names}); name one of them")
    return found[0] if found else None


def _checkpoint(path: Path, base: str | None, step: int | None) -> Source:
    """Classify one folder that is not a run: adapters, PEFT adapters, model, or GGUF."""
    if (path / ADAPTER_WEIGHTS).is_file():
        return _adapters(path, base, step)
    if (path / "adapter_model.safetensors").is_file():
        raise UserError(
            f"{path}: PEFT adapters (adapter_model.safetensors) are not supported; merge them "
            "into the base with peft's merge_and_unload() and save_pretrained(), then convert"
        )
    gguf = None if any(path.glob("model*.safetensors")) else _gguf_in(path)
    if gguf is not None:
        return Source("gguf", gguf)
    return Source("folder", path, step=step)


def detect_adapter(base: str, adapter: str, step: int | None) -> Source:
    """`convert BASE OUT --adapter PATH`: adapters (a checkpoint, or a run's step) over BASE."""
    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise UserError(f"--adapter {adapter}: no such folder")
    number = step_of(path)
    if is_run_folder(path):
        number, path = _pick(path, step)
    if not (path / ADAPTER_WEIGHTS).is_file():
        raise UserError(f"--adapter {path}: no adapters.safetensors in this folder")
    base_path = resolve_base(base, Path.cwd())
    return Source("adapters", path, base_path, number)


def detect(
    src: str, *, step: int | None = None, base: str | None = None, adapter: str | None = None
) -> Source:
    """Resolve the SRC argument of `mlx-grpo convert`."""
    if adapter is not None:
        return detect_adapter(src, adapter, step)
    path = Path(src).expanduser()
    if not path.exists():
        if step is not None:
            raise UserError(f"{src}: --step needs a local run or trainer output folder")
        return Source("folder", download(src))
    if path.is_file():
        if not is_gguf(path):
            raise UserError(f"{path}: a file that is not GGUF; pass a model folder or a .gguf file")
        return Source("gguf", path)
    if is_run_folder(path):
        number, checkpoint = _pick(path, step)
        return _checkpoint(checkpoint, base, number)
    if step is not None and step_of(path) is None:
        raise UserError(f"{path}: --step only applies to a run or trainer output folder")
    return _checkpoint(path, base, step_of(path))
