"""Loading a resolved `ModelSource` for chat, eval and generate, and choosing its template.

`load_model_source` loads with mlx-lm (any model it reads: fused, 4-bit, ...) and applies the
adapters, turning every failure into a one-line `UserError` (a mismatched adapter names its
first layer that does not fit). What to load is decided by `models.resolve`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_grpo.errors import UserError
from mlx_grpo.models.fastmath import use_fast_swiglu
from mlx_grpo.models.resolve import ModelSource, check_model_folder

TEMPLATES = ("chat", "r1", "plain")


@dataclass
class InferenceModel:
    """A loaded model, its tokenizer wrapper, its config.json and where it came from."""

    model: Any
    tokenizer: Any
    config: dict[str, Any]
    source: ModelSource


def load_model_source(source: ModelSource) -> InferenceModel:
    """Load with mlx-lm (any model it reads: fused, 4-bit, ...) and apply the adapters."""
    from mlx_lm import load

    check_model_folder(source.model, key="--model")
    try:
        model, tokenizer, config = load(source.model, return_config=True)
    except Exception as exc:  # mlx-lm raises many kinds; all mean "cannot load this"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"could not load model {source.model}: {first}") from exc
    if source.adapter is not None:
        apply_adapter(model, source.adapter, source.model)
    use_fast_swiglu(model)
    return InferenceModel(model, tokenizer, config, source)


def apply_adapter(model: Any, adapter: Path, model_name: str) -> None:
    """Load LoRA/DoRA/full adapters into `model`, naming the first layer that does not fit."""
    from mlx_lm.tuner.utils import load_adapters

    try:
        load_adapters(model, str(adapter))
    except ValueError as exc:
        raise adapter_mismatch(exc, adapter, model_name) from exc
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise UserError(f"unreadable adapter config: {exc}", where=str(adapter)) from exc
    model.eval()


def adapter_mismatch(exc: ValueError, adapter: Path, model_name: str) -> UserError:
    """Turn mlx-lm's list of incompatible tensors into one line naming the first layer."""
    lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
    lines.sort(key=lambda line: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", line)])
    if not lines:
        return UserError(f"adapter {adapter} does not fit model {model_name}: {exc}")
    tensor, _, why = lines[0].partition(": ")
    layer = tensor.rsplit(".", 1)[0]
    more = f" (and {len(lines) - 1} more tensors)" if len(lines) > 1 else ""
    return UserError(
        f"adapter {adapter} does not match model {model_name}: layer {layer}: {why}{more}; "
        "was it trained on another model?"
    )


def context_limit(config: dict[str, Any], default: int = 4096) -> int:
    """The model's context length from its config.json."""
    for key in ("max_position_embeddings", "max_seq_len", "seq_length", "n_positions"):
        value = config.get(key) or (config.get("text_config") or {}).get(key)
        if isinstance(value, int) and value > 0:
            return value
    return default


def pick_template(tokenizer: Any, requested: str | None) -> str:
    """`chat` when the tokenizer has a chat template, else `r1`; an explicit choice wins."""
    if requested in (None, "auto"):
        return "chat" if tokenizer.has_chat_template else "r1"
    if requested not in TEMPLATES:
        raise UserError(f"unknown template {requested!r}; use auto, {', '.join(TEMPLATES)}")
    if requested == "chat" and not tokenizer.has_chat_template:
        raise UserError("this model's tokenizer has no chat template; use --template r1")
    return requested
