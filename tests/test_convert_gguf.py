"""GGUF -> MLX on small GGUF files written by the test with the `gguf` package."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from converters_fixtures import (
    CHAT,
    LLAMA,
    byte_vocab,
    gguf_dequantized,
    llama_weights,
    logits,
    write_gguf,
)
from mlx_grpo.converters import ConvertOptions, convert
from mlx_grpo.converters.gguf_model import unpermute_rows
from mlx_lm import load

from mlx_grpo.errors import UserError

pytest.importorskip("gguf", reason="the gguf package writes the test files (dev extra)")
VOCAB = len(byte_vocab()[0])


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return llama_weights(VOCAB)


def reference_model(weights: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    from mlx_lm.models import llama

    model = llama.Model(llama.ModelArgs.from_dict({**LLAMA, "vocab_size": VOCAB}))
    model.load_weights([(k, mx.array(v)) for k, v in weights.items()])
    return model


def test_float_gguf_unpermutes_and_matches_hf_weights(weights, tmp_path: Path) -> None:
    gguf = write_gguf(tmp_path / "m.gguf", weights)
    convert(str(gguf), tmp_path / "out", ConvertOptions())
    loaded = mx.load(str(tmp_path / "out" / "model.safetensors"))
    assert loaded.keys() == weights.keys()
    for name, value in weights.items():
        assert np.array_equal(np.array(loaded[name]), value), name
    model, _ = load(str(tmp_path / "out"))
    assert np.allclose(logits(model), logits(reference_model(weights)), atol=1e-5)


def test_unpermute_inverts_llama_cpp_permutation() -> None:
    from converters_fixtures import llama_cpp_permute

    w = np.arange(32 * 3, dtype=np.float32).reshape(32, 3)
    assert np.array_equal(np.array(unpermute_rows(mx.array(llama_cpp_permute(w, 4)), 4)), w)


def test_quantized_gguf_stays_quantized_per_layer(weights, tmp_path: Path) -> None:
    types = {"model.embed_tokens.weight": "Q8_0", "lm_head.weight": "Q8_0"}
    for i in range(2):
        types[f"model.layers.{i}.self_attn.q_proj.weight"] = "Q4_0"
        types[f"model.layers.{i}.self_attn.k_proj.weight"] = "Q4_1"
        types[f"model.layers.{i}.mlp.up_proj.weight"] = "Q4_1"
    gguf = write_gguf(tmp_path / "q.gguf", weights, types)
    rows = convert(str(gguf), tmp_path / "out", ConvertOptions())
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["quantization"]["bits"] == 4 and config["quantization"]["group_size"] == 32
    assert config["quantization"]["model.embed_tokens"]["bits"] == 8
    assert "mixed" in rows["quantization"]
    model, _ = load(str(tmp_path / "out"))
    layer = model.model.layers[1].self_attn.k_proj
    assert (layer.bits, layer.group_size) == (4, 32) and layer.weight.shape == (32, 8)
    ours = mx.dequantize(layer.weight, layer.scales, layer.biases, group_size=32, bits=4)
    from converters_fixtures import llama_cpp_permute

    name = "model.layers.1.self_attn.k_proj.weight"
    theirs = gguf_dequantized(llama_cpp_permute(weights[name], 2), "Q4_1")
    theirs = np.array(unpermute_rows(mx.array(theirs), 2))
    assert np.abs(np.array(ours, dtype=np.float32) - theirs).max() < 2e-3


def test_dequantize_writes_float_weights(weights, tmp_path: Path) -> None:
    types = {"model.layers.0.mlp.down_proj.weight": "Q8_0"}
    gguf = write_gguf(tmp_path / "q.gguf", weights, types)
    convert(str(gguf), tmp_path / "out", ConvertOptions(dequantize=True, dtype="float32"))
    loaded = mx.load(str(tmp_path / "out" / "model.safetensors"))
    assert not any(k.endswith(".scales") for k in loaded)
    down = np.array(loaded["model.layers.0.mlp.down_proj.weight"])
    expected = gguf_dequantized(weights["model.layers.0.mlp.down_proj.weight"], "Q8_0")
    assert down.dtype == np.float32 and np.abs(down - expected).max() < 2e-3


def test_tokenizer_is_rebuilt_from_metadata(weights, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    gguf = write_gguf(tmp_path / "m.gguf", weights)
    convert(str(gguf), tmp_path / "out", ConvertOptions())
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    tokens = byte_vocab()[0]
    ids = tok("<|im_start|>the theme<|im_end|>")["input_ids"]
    assert [tokens[i] for i in ids] == ["<|im_start|>", "t", "he", "Ġthe", "m", "e", "<|im_end|>"]
    assert tok.eos_token == "<|im_end|>" and tok.bos_token == "<|im_start|>"
    assert tok.chat_template == CHAT
    _, mlx_tok = load(str(tmp_path / "out"))
    assert mlx_tok.encode("the theme") == tok("the theme")["input_ids"]


def test_unsupported_architecture_and_type_are_refused(weights, tmp_path: Path) -> None:
    bad_arch = write_gguf(tmp_path / "gpt2.gguf", weights, arch="gpt2", permute=False)
    with pytest.raises(
        UserError, match="architecture 'gpt2' is not supported; supported: llama, qwen2"
    ):
        convert(str(bad_arch), tmp_path / "a", ConvertOptions())
    bad_type = write_gguf(tmp_path / "q5.gguf", weights, {"lm_head.weight": "Q5_0"})
    with pytest.raises(UserError, match="'output.weight' uses GGUF type Q5_0"):
        convert(str(bad_type), tmp_path / "b", ConvertOptions())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpt2.gguf", "q5.gguf"]


def test_qwen2_gguf_keeps_biases_and_row_order(tmp_path: Path) -> None:
    from mlx.utils import tree_flatten
    from mlx_lm.models import qwen2

    mx.random.seed(3)
    args = {**LLAMA, "model_type": "qwen2", "vocab_size": VOCAB, "tie_word_embeddings": True}
    model = qwen2.Model(qwen2.ModelArgs.from_dict(args))
    weights = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
    assert "model.layers.0.self_attn.q_proj.bias" in weights and "lm_head.weight" not in weights
    gguf = write_gguf(tmp_path / "qwen.gguf", weights, arch="qwen2", permute=False)
    convert(str(gguf), tmp_path / "out", ConvertOptions())
    loaded = mx.load(str(tmp_path / "out" / "model.safetensors"))
    assert all(np.array_equal(np.array(loaded[k]), v) for k, v in weights.items())
    converted, _ = load(str(tmp_path / "out"))
    assert np.allclose(logits(converted), logits(model), atol=1e-5)
