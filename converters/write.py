"""Write a `LoadedModel` as an MLX folder or a Hugging Face folder.

MLX: weights as they are in memory (packed quantized layers included) + config.json with its
`quantization` section, loadable with `mlx_lm.load`. Hugging Face: float weights only, with a
config that transformers' `AutoModelForCausalLM.from_pretrained` accepts. Both copy or
rebuild the tokenizer files.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_grpo.converters.hf_config import check_exportable, hf_config
from mlx_grpo.converters.loaded import LoadedModel
from mlx_grpo.converters.quantize import DTYPES, cast, dequantize
from mlx_grpo.converters.safetensors_io import DEFAULT_SHARD_BYTES, save_weights
from mlx_grpo.converters.tokenizer_compat import make_portable


def weights_of(loaded: LoadedModel) -> dict[str, mx.array]:
    return dict(tree_flatten(loaded.model.parameters()))


def float_dtype_name(weights: dict[str, mx.array]) -> str:
    """The floating dtype holding the most elements (what `torch_dtype` should say)."""
    counts: Counter[str] = Counter()
    for value in weights.values():
        if mx.issubdtype(value.dtype, mx.floating):
            counts[str(value.dtype).rsplit(".", 1)[-1]] += value.size
    return counts.most_common(1)[0][0] if counts else "float32"


def write_mlx(dst: Path, loaded: LoadedModel, shard_bytes: int = DEFAULT_SHARD_BYTES) -> None:
    """An mlx-lm model folder: safetensors (sharded if large), config.json, tokenizer."""
    from mlx_lm.utils import save_config

    weights = weights_of(loaded)
    save_weights(dst, weights, max_shard_bytes=shard_bytes, fmt="mlx")
    config = dict(loaded.config)
    config["torch_dtype"] = float_dtype_name(weights)
    save_config(config, dst / "config.json")
    loaded.write_tokenizer(dst)
    make_portable(dst)


def write_hf(
    dst: Path, loaded: LoadedModel, dtype: str | None, shard_bytes: int = DEFAULT_SHARD_BYTES
) -> None:
    """A transformers model folder: float safetensors, HF config.json, tokenizer files."""
    check_exportable(loaded.config)
    if loaded.quantized:
        dequantize(loaded)
    if dtype is not None:
        cast(loaded, dtype)
    weights = weights_of(loaded)
    name = float_dtype_name(weights)
    assert name in DTYPES, name
    save_weights(dst, weights, max_shard_bytes=shard_bytes, fmt="pt")
    config = hf_config(loaded.config, "lm_head.weight" in weights, name)
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    loaded.write_tokenizer(dst)
    make_portable(dst)
