"""Tiny random Qwen2 models with a real byte-level tokenizer, written as ordinary model folders.

Tests, benchmarks and `configs/debug.yaml` use them so that everything runs offline in seconds,
yet goes through exactly the same loading path (`mlx_lm.load`) as a downloaded model.
A config names one as `builtin:tiny-qwen2` (`models.resolve` turns the name into a folder);
it is written once into the cache directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlx_grpo.converters.tokenizer_compat import make_portable
from mlx_grpo.rundir import atomic_folder

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

BUILTIN_SHAPES: dict[str, dict[str, int]] = {
    "tiny-qwen2": {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128},
    "small-qwen2": {"hidden_size": 256, "num_hidden_layers": 4, "intermediate_size": 688},
}


def cache_dir() -> Path:
    """Where mlx-grpo keeps generated and converted models (override with MLX_GRPO_CACHE)."""
    root = os.environ.get("MLX_GRPO_CACHE") or Path.home() / ".cache" / "mlx-grpo"
    return Path(root)


def _write_tokenizer(path: Path, chat_template: bool) -> int:
    """Write a byte-level BPE tokenizer (256 byte symbols, no merges); return the EOS id."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIAL_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE if chat_template else None,
    )
    fast.save_pretrained(str(path))
    make_portable(path)
    return tok.token_to_id("<|im_end|>")


def model_config(vocab_size: int, eos_id: int, **shape: int) -> dict[str, Any]:
    """A Hugging Face style Qwen2 config.json for a tiny model."""
    hidden = shape.get("hidden_size", 64)
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": hidden,
        "num_hidden_layers": shape.get("num_hidden_layers", 2),
        "intermediate_size": shape.get("intermediate_size", 2 * hidden),
        "num_attention_heads": shape.get("num_attention_heads", 4),
        "num_key_value_heads": shape.get("num_key_value_heads", 2),
        "vocab_size": vocab_size,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "eos_token_id": eos_id,
        "torch_dtype": "float32",
    }


def build_tiny_model(
    path: str | Path,
    *,
    seed: int = 0,
    chat_template: bool = True,
    overrides: dict[str, Any] | None = None,
    **shape: int,
) -> Path:
    """Write a random-weight Qwen2 model folder (config, safetensors, tokenizer) to `path`.
    `overrides` replaces config.json keys (a real model's vocabulary or rope theta: the
    tokenizer still only uses the first ids)."""
    import mlx.core as mx
    from mlx_lm.models import qwen2
    from mlx_lm.utils import save_config, save_model

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    eos_id = _write_tokenizer(path, chat_template)
    config = {**model_config(256 + len(SPECIAL_TOKENS), eos_id, **shape), **(overrides or {})}
    mx.random.seed(seed)
    model = qwen2.Model(qwen2.ModelArgs.from_dict(config))
    mx.eval(model.parameters())
    save_model(path, model)
    save_config(dict(config), path / "config.json")
    return path


def tiny_builtin(name: str) -> Path:
    """The folder of the built-in tiny model `name` (a key of BUILTIN_SHAPES) in the cache,
    built on first use."""
    target = cache_dir() / "models" / name
    if not (target / "config.json").exists():
        with atomic_folder(target) as staging:
            build_tiny_model(staging, **BUILTIN_SHAPES[name])
    return target
