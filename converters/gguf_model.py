"""GGUF (llama.cpp) weights -> Hugging Face names, config and MLX quantized layers.

Supported: `llama` and `qwen2` architectures with F32/F16/BF16 tensors and the block formats
MLX reads natively (Q4_0, Q4_1, Q8_0; blocks of 32 become MLX affine groups of 32, and each
layer keeps its own bit width). llama.cpp permutes the rows of attn_q/attn_k of llama models
for its interleaved RoPE; `unpermute_rows` undoes that so the weights match Hugging Face's.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx_grpo.converters.gguf_header import GGUFHeader, TensorInfo

from mlx_grpo.errors import UserError

ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}
LOADABLE_TYPES = {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q8_0"}
GGUF_GROUP_SIZE = 32

_GLOBAL_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}  # fmt: skip
_SUFFIXES = ("weight", "bias", "scales", "biases")


def check_supported(path: Path, header: GGUFHeader) -> str:
    """Return the architecture, or raise a UserError naming what is unsupported and what is."""
    arch = header.metadata.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise UserError(
            f"{path}: GGUF architecture {arch!r} is not supported; supported: "
            + ", ".join(sorted(ARCHITECTURES))
        )
    bad = [t for t in header.tensors if t.type_name not in LOADABLE_TYPES]
    if bad:
        kinds = ", ".join(sorted({t.type_name for t in bad}))
        raise UserError(
            f"{path}: tensor {bad[0].name!r} uses GGUF type {bad[0].type_name} "
            f"({len(bad)} tensors of type {kinds}); supported types: "
            + ", ".join(sorted(LOADABLE_TYPES))
            + ". Re-export the model as Q4_0, Q4_1, Q8_0 or F16 with llama.cpp"
        )
    for t in header.tensors:
        _ = hf_name(path, t.name)
    return arch


def hf_name(path: Path, gguf_name: str) -> str:
    """`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight` (and scales/biases)."""
    stem, _, suffix = gguf_name.rpartition(".")
    match = re.fullmatch(r"blk\.(\d+)\.(\w+)", stem)
    if suffix in _SUFFIXES and match and match.group(2) in _LAYER_NAMES:
        return f"model.layers.{match.group(1)}.{_LAYER_NAMES[match.group(2)]}.{suffix}"
    if suffix in _SUFFIXES and stem in _GLOBAL_NAMES:
        return f"{_GLOBAL_NAMES[stem]}.{suffix}"
    raise UserError(f"{path}: GGUF tensor {gguf_name!r} has no known Hugging Face equivalent")


def _meta_float(value: Any) -> float:
    """GGUF stores floats as float32: print them back the way a config.json would."""
    return float(f"{float(value):.7g}")


def build_config(header: GGUFHeader, arch: str) -> dict[str, Any]:
    """A Hugging Face style config.json from the GGUF metadata."""
    meta = header.metadata

    def get(key: str, default: Any = None) -> Any:
        return meta.get(f"{arch}.{key}", default)

    heads = int(get("attention.head_count"))
    hidden = int(get("embedding_length"))
    tensors = {t.name: t for t in header.tensors}
    config: dict[str, Any] = {
        "architectures": [ARCHITECTURES[arch]],
        "model_type": arch,
        "hidden_size": hidden,
        "num_hidden_layers": int(get("block_count")),
        "intermediate_size": int(get("feed_forward_length")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(get("attention.head_count_kv", heads)),
        "rms_norm_eps": _meta_float(get("attention.layer_norm_rms_epsilon", 1e-6)),
        "rope_theta": _meta_float(get("rope.freq_base", 10000.0)),
        "max_position_embeddings": int(get("context_length", 2048)),
        "vocab_size": tensors["token_embd.weight"].shape[-1],
        "tie_word_embeddings": "output.weight" not in tensors,
    }
    head_dim = get("attention.key_length")
    if head_dim is not None and int(head_dim) != hidden // heads:
        config["head_dim"] = int(head_dim)
    for key in ("bos_token_id", "eos_token_id"):
        if f"tokenizer.ggml.{key}" in meta:
            config[key] = int(meta[f"tokenizer.ggml.{key}"])
    return config


def unpermute_rows(w: mx.array, n_heads: int) -> mx.array:
    """Undo llama.cpp's q/k permutation: per head, interleaved rotary pairs -> two halves."""
    rows = w.shape[0]
    shaped = w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:])
    return shaped.swapaxes(1, 2).reshape(w.shape)


def map_weights(
    path: Path, weights: dict[str, mx.array], config: dict[str, Any]
) -> dict[str, mx.array]:
    """Rename every GGUF tensor to its Hugging Face name; unpermute q/k rows for llama."""
    out = {hf_name(path, k): v for k, v in weights.items()}
    if config["model_type"] != "llama":
        return out
    heads = {"q_proj": config["num_attention_heads"], "k_proj": config["num_key_value_heads"]}
    for name, value in out.items():
        proj = name.split(".")[-2]
        if proj in heads:
            out[name] = unpermute_rows(value, heads[proj])
    return out


def quantization_config(weights: dict[str, mx.array]) -> dict[str, Any] | None:
    """Per-layer MLX quantization entries for the packed GGUF blocks (None if all float)."""
    layers: dict[str, dict[str, Any]] = {}
    for name, scales in weights.items():
        if name.endswith(".scales"):
            prefix = name.removesuffix(".scales")
            bits = weights[f"{prefix}.weight"].shape[-1] // scales.shape[-1]
            layers[prefix] = {"group_size": GGUF_GROUP_SIZE, "bits": bits, "mode": "affine"}
    if not layers:
        return None
    common = Counter(v["bits"] for v in layers.values()).most_common(1)[0][0]
    config: dict[str, Any] = {"group_size": GGUF_GROUP_SIZE, "bits": common, "mode": "affine"}
    config.update({k: v for k, v in sorted(layers.items()) if v["bits"] != common})
    return config


def type_summary(tensors: list[TensorInfo]) -> str:
    """`Q4_1 x210, F32 x61, Q8_0 x1`: how the file's tensors are stored."""
    counts = Counter(t.type_name for t in tensors)
    return ", ".join(f"{name} x{n}" for name, n in counts.most_common())
