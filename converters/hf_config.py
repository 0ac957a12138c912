"""config.json for Hugging Face output: what transformers needs to rebuild the model.

Quantization keys go; `architectures`, `torch_dtype`, a top-level `rope_theta` and an explicit
`tie_word_embeddings` (true exactly when no separate lm_head is written) are always present.
"""

from __future__ import annotations

from typing import Any

from mlx_grpo.errors import UserError

HF_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
}
DROP_KEYS = ("quantization", "quantization_config", "dtype")


def check_exportable(config: dict[str, Any]) -> None:
    """MLX -> HF renames nothing, so only architectures whose names match are allowed."""
    if config.get("model_type") not in HF_ARCHITECTURES:
        raise UserError(
            f"--to hf: model_type {config.get('model_type')!r} is not supported; supported: "
            + ", ".join(sorted(HF_ARCHITECTURES))
        )


def hf_config(config: dict[str, Any], has_lm_head: bool, dtype: str) -> dict[str, Any]:
    """A transformers-loadable config.json dict for float weights of `dtype`."""
    out = {k: v for k, v in config.items() if k not in DROP_KEYS}
    rope = out.get("rope_parameters")
    if "rope_theta" not in out and isinstance(rope, dict) and "rope_theta" in rope:
        out["rope_theta"] = rope["rope_theta"]
    out.setdefault("rope_theta", 10000.0)
    out["architectures"] = out.get("architectures") or [HF_ARCHITECTURES[out["model_type"]]]
    out["tie_word_embeddings"] = not has_lm_head
    out["torch_dtype"] = dtype
    return dict(sorted(out.items()))
