"""Helpers for the convert tests: tiny GGUF files, fabricated training runs, logits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

LLAMA = {
    "model_type": "llama",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
}
PROMPTS = [[1, 5, 77, 100, 200, 3, 9, 42], [7, 7, 250, 31, 64, 128, 2, 11]]


def logits(model: Any, prompts: list[list[int]] = PROMPTS) -> np.ndarray:
    """Float32 logits of `model` on fixed prompts, as numpy."""
    out = model(mx.array(prompts))
    return np.array(out.astype(mx.float32))


def llama_weights(vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 weights of a tiny llama in Hugging Face names."""
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs.from_dict({**LLAMA, "vocab_size": vocab}))
    return {k: np.array(v) for k, v in tree_flatten(model.parameters())}


def llama_cpp_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """What llama.cpp's converter does to q/k rows (the interleaved-RoPE layout)."""
    return (
        w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


GGUF_NAMES = {
    "model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}  # fmt: skip


def gguf_name(hf: str) -> str:
    """Hugging Face tensor name -> llama.cpp name (the inverse of the converter's map)."""
    stem, _, suffix = hf.rpartition(".")
    if stem.startswith("model.layers."):
        _, _, idx, rest = stem.split(".", 3)
        return f"blk.{idx}.{GGUF_NAMES[rest]}.{suffix}"
    return f"{GGUF_NAMES[stem]}.{suffix}"


def byte_vocab() -> tuple[list[str], list[str], list[int]]:
    """A small byte-level BPE vocab: 256 byte symbols, 3 merges, 3 control tokens."""
    from tokenizers import pre_tokenizers

    tokens = sorted(pre_tokenizers.ByteLevel.alphabet())
    merges = ["Ġ t", "h e", "Ġt he"]
    tokens += ["Ġt", "he", "Ġthe", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [1] * (len(tokens) - 3) + [3, 3, 3]
    return tokens, merges, types


CHAT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
)


def write_gguf(
    path: Path,
    weights: dict[str, np.ndarray],
    types: dict[str, str] | None = None,
    arch: str = "llama",
    permute: bool = True,
) -> Path:
    """Write a GGUF the way llama.cpp would: permuted q/k, chosen block types, BPE vocab."""
    import gguf

    types = types or {}
    tokens, merges, token_types = byte_vocab()
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(LLAMA["num_hidden_layers"])
    writer.add_context_length(LLAMA["max_position_embeddings"])
    writer.add_embedding_length(LLAMA["hidden_size"])
    writer.add_feed_forward_length(LLAMA["intermediate_size"])
    writer.add_head_count(LLAMA["num_attention_heads"])
    writer.add_head_count_kv(LLAMA["num_key_value_heads"])
    writer.add_layer_norm_rms_eps(LLAMA["rms_norm_eps"])
    writer.add_rope_freq_base(LLAMA["rope_theta"])
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_merges(merges)
    writer.add_token_types(token_types)
    writer.add_bos_token_id(len(tokens) - 2)
    writer.add_eos_token_id(len(tokens) - 1)
    writer.add_chat_template(CHAT)
    for name, value in weights.items():
        _add_tensor(writer, name, value, types.get(name), permute)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add_tensor(
    writer: Any, name: str, value: np.ndarray, qtype: str | None, permute: bool
) -> None:
    import gguf
    from gguf.quants import quantize

    if permute and name.endswith("q_proj.weight"):
        value = llama_cpp_permute(value, LLAMA["num_attention_heads"])
    if permute and name.endswith("k_proj.weight"):
        value = llama_cpp_permute(value, LLAMA["num_key_value_heads"])
    if qtype is None:
        writer.add_tensor(gguf_name(name), value.astype(np.float32))
        return
    kind = gguf.GGMLQuantizationType[qtype]
    writer.add_tensor(gguf_name(name), quantize(value, kind), raw_dtype=kind)


def gguf_dequantized(value: np.ndarray, qtype: str) -> np.ndarray:
    """What llama.cpp itself would compute for a weight stored as `qtype`."""
    import gguf
    from gguf.quants import dequantize, quantize

    kind = gguf.GGMLQuantizationType[qtype]
    return dequantize(quantize(value, kind), kind)


def fabricate_run(root: Path, base: Path, steps: tuple[int, ...] = (10, 20)) -> Path:
    """A training run folder with LoRA adapter checkpoints (perturbed lora_b) per step."""
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.tuner.utils import linear_to_lora_layers

    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(f"model:\n  path: {base}\n")
    lora = {"rank": 4, "scale": 10.0, "dropout": 0.0}
    for step in steps:
        model, _ = load(str(base))
        model.freeze()
        linear_to_lora_layers(model, 2, lora)
        mx.random.seed(step)
        params = dict(tree_flatten(model.trainable_parameters()))
        params = {
            k: (mx.random.normal(v.shape) * 0.05 if k.endswith("lora_b") else v)
            for k, v in params.items()
        }
        ckpt = run / "checkpoints" / f"step_{step}"
        ckpt.mkdir()
        mx.save_safetensors(str(ckpt / "adapters.safetensors"), params)
        config = {"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": lora}
        (ckpt / "adapter_config.json").write_text(json.dumps(config))
        mx.save_safetensors(str(ckpt / "optimizer.safetensors"), {"m": mx.zeros((3,))})
        (ckpt / "trainer_state.json").write_text(json.dumps({"step": step}))
    return run
