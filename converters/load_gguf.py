"""Load a GGUF file (llama.cpp / Ollama / LM Studio) into an MLX model with its tokenizer.

Q4_0/Q4_1/Q8_0 blocks stay packed as MLX affine-quantized layers (group size 32, bits per
layer as stored); float tensors stay float. The tokenizer is rebuilt from the metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx_grpo.converters.gguf_header import read_gguf_header
from mlx_grpo.converters.gguf_model import (
    build_config,
    check_supported,
    map_weights,
    quantization_config,
)
from mlx_grpo.converters.gguf_tokenizer import build_tokenizer, write_tokenizer
from mlx_grpo.converters.loaded import LoadedModel

from mlx_grpo.errors import UserError


def build_model(config: dict[str, Any], weights: dict[str, mx.array]) -> nn.Module:
    """Instantiate the mlx-lm model class, quantize the layers stored packed, load weights."""
    from mlx_lm.utils import _get_classes

    model_class, args_class = _get_classes(config)
    model = model_class(args_class.from_dict(config))
    quant = config.get("quantization")
    if quant:

        def packed(path: str, module: nn.Module) -> bool | dict[str, Any]:
            if f"{path}.scales" not in weights:
                return False
            return quant.get(path, {k: quant[k] for k in ("group_size", "bits", "mode")})

        nn.quantize(model, class_predicate=packed)
    model.load_weights(list(weights.items()), strict=True)
    model.eval()
    return model


def _match_scales_dtype(weights: dict[str, mx.array]) -> dict[str, mx.array]:
    """Cast float32 tensors (norms) to the dtype of the packed layers' scales, if any."""
    dtype = next((v.dtype for k, v in weights.items() if k.endswith(".scales")), None)
    if dtype is None:
        return weights
    return {k: v.astype(dtype) if v.dtype == mx.float32 else v for k, v in weights.items()}


def load_gguf(path: Path) -> LoadedModel:
    """Read a GGUF file into a `LoadedModel` (config.json in Hugging Face terms)."""
    header = read_gguf_header(path)
    arch = check_supported(path, header)
    build_tokenizer(header.metadata, path)  # fail early on an unsupported tokenizer
    config = build_config(header, arch)
    try:
        raw = mx.load(str(path))
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"{path}: MLX could not read the tensors ({exc})") from exc
    weights = _match_scales_dtype(map_weights(path, raw, config))
    quant = quantization_config(weights)
    if quant:
        config["quantization"] = quant
    meta = header.metadata
    return LoadedModel(
        model=build_model(config, weights),
        config=config,
        source_format="gguf",
        source=path,
        write_tokenizer=lambda dst: write_tokenizer(meta, path, dst),
    )
