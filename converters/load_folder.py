"""Load a Hugging Face or MLX model folder (local, or a hub id) with mlx-lm, after validation."""

from __future__ import annotations

from pathlib import Path

from mlx_grpo.converters.loaded import LoadedModel, copy_tokenizer_files
from mlx_grpo.converters.validate import validate_model_folder, written_by_mlx

from mlx_grpo.errors import UserError
from mlx_grpo.models.resolve import is_hub_id

HUB_PATTERNS = ["*.json", "model*.safetensors", "tokenizer.model", "*.txt", "*.jinja"]


def load_folder(folder: Path, fmt: str | None = None) -> LoadedModel:
    """Validate then load a model folder lazily with `mlx_lm.utils.load_model`."""
    from mlx_lm.utils import load_model

    config = validate_model_folder(folder)
    try:
        model, config = load_model(folder, lazy=True)
    except (ValueError, KeyError) as exc:
        raise UserError(f"{folder}: mlx-lm cannot build this model ({exc})") from exc
    return LoadedModel(
        model=model,
        config=config,
        source_format=fmt or ("mlx" if written_by_mlx(folder, config) else "hf"),
        source=folder,
        write_tokenizer=copy_tokenizer_files(folder),
    )


def download(repo_id: str) -> Path:
    """Fetch a model from the Hugging Face hub (safetensors, config and tokenizer files only)."""
    if not is_hub_id(repo_id):
        raise UserError(f"{repo_id}: no such file or folder (and not a hub id like 'org/name')")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS))
    except Exception as exc:  # network, auth, missing repo: all user-fixable
        raise UserError(
            f"{repo_id}: not a local path, and downloading it from the Hugging Face hub failed "
            f"({type(exc).__name__}: {exc})"
        ) from exc
