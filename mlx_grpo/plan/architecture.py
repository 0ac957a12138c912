"""A model's shape without loading its weights: what the memory planner needs to know.

`read_architecture(spec)` answers from, in order:

1. `builtin:<name>`: the tiny model's shape from `models.tiny.BUILTIN_SHAPES` (nothing built);
2. a local model folder: its `config.json` (weights are never opened);
3. a Hugging Face id already in the hub cache: the cached `config.json`;
4. a Hugging Face id of a known architecture (`KNOWN`: Qwen2.5 0.5B-7B, Qwen3 0.6B-4B, with
   their published config values; `-Instruct`, `-Math`, `-4bit`... variants share the shape);
5. otherwise a `UserError` asking for a local path.

The result is an `Architecture`: the config.json fields the planner reads, typed (as
mlx-lm's `ModelArgs` are), plus the checkpoint's dtype, its quantization and where the
numbers came from.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_grpo.errors import UserError
from mlx_grpo.models.resolve import BUILTIN_PREFIX, builtin_folder
from mlx_grpo.models.tiny import BUILTIN_SHAPES, SPECIAL_TOKENS, model_config

# Published config.json values (hidden, intermediate, layers, heads, kv heads, head dim,
# vocab, tied embeddings, qkv bias). Qwen2.5 checkpoints are bf16 with qkv bias; Qwen3 drops
# the bias and adds q/k norms (a few thousand parameters, ignored here).
KNOWN: dict[str, tuple[int, int, int, int, int, int, int, bool, bool]] = {
    "qwen2.5-0.5b": (896, 4864, 24, 14, 2, 64, 151936, True, True),
    "qwen2.5-1.5b": (1536, 8960, 28, 12, 2, 128, 151936, True, True),
    "qwen2.5-3b": (2048, 11008, 36, 16, 2, 128, 151936, True, True),
    "qwen2.5-7b": (3584, 18944, 28, 28, 4, 128, 152064, False, True),
    "qwen2.5-math-1.5b": (1536, 8960, 28, 12, 2, 128, 151936, True, True),
    "qwen2.5-math-7b": (3584, 18944, 28, 28, 4, 128, 152064, False, True),
    "qwen3-0.6b": (1024, 3072, 28, 16, 8, 128, 151936, True, False),
    "qwen3-1.7b": (2048, 6144, 28, 16, 8, 128, 151936, True, False),
    "qwen3-4b": (2560, 9728, 36, 32, 8, 128, 151936, True, False),
}
FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "tie_word_embeddings",
    "attention_bias",
)
VARIANT_SUFFIX = re.compile(r"(-(instruct|base|chat|mlx|bf16|fp16|\d+bit|gguf))+$")


@dataclass(frozen=True)
class Quantization:
    """Quantized weights: bits per weight and weights per scale/bias group."""

    bits: int
    group_size: int


@dataclass(frozen=True)
class Architecture:
    """What the planner knows of a decoder model, without its weights."""

    hidden_size: int  # D
    intermediate_size: int  # I, the MLP width
    num_hidden_layers: int  # L
    num_attention_heads: int  # H
    num_key_value_heads: int  # Hkv
    head_dim: int  # hd
    vocab_size: int  # V
    tie_word_embeddings: bool
    attention_bias: bool  # q, k, v projections with a bias (Qwen2)
    model_type: str = ""
    dtype: str = "float32"  # the checkpoint's
    quantization: Quantization | None = None
    source: str = ""  # where the numbers came from

    def with_quantization(self, quantization: Quantization | None) -> Architecture:
        return dataclasses.replace(self, quantization=quantization)


def read_architecture(spec: str) -> Architecture:
    """The architecture of `model.path` (see the module docstring for the lookup order)."""
    if spec.startswith(BUILTIN_PREFIX):
        return _builtin(spec)
    path = Path(spec).expanduser()
    if not path.exists() and spec.startswith((".", "/", "~")):
        raise UserError(f"model directory not found: {spec}", where="model.path")
    if path.exists():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise UserError(f"no config.json in model directory {spec}", where="model.path")
        return from_config(_read_json(config_file), source=str(config_file))
    cached = _hub_cached_config(spec)
    if cached is not None:
        return from_config(_read_json(cached), source=f"hub cache {cached}")
    return _known(spec)


def _builtin(spec: str) -> Architecture:
    name = spec.removeprefix(BUILTIN_PREFIX)
    if name not in BUILTIN_SHAPES:  # a real model (or none): the resolver's folder, or its error
        return read_architecture(str(builtin_folder(spec)))
    config = model_config(256 + len(SPECIAL_TOKENS), 0, **BUILTIN_SHAPES[name])
    return from_config(config, source=f"{spec} (built-in shape)")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read model config: {exc}", where=str(path)) from None
    if not isinstance(data, dict):
        raise UserError("config.json is not a JSON object", where=str(path))
    return data


def _hub_cached_config(repo: str) -> Path | None:
    """The hub cache's config.json for `repo`, if it was downloaded before (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return None
    try:
        found = try_to_load_from_cache(repo, "config.json")
    except Exception:  # malformed ids raise validation errors: treat as "not cached"
        return None
    return Path(found) if isinstance(found, str) else None


def from_config(config: dict[str, Any], source: str) -> Architecture:
    """The architecture a Hugging Face / mlx-lm config.json describes."""
    config = {**config, **(config.get("text_config") or {})}
    missing = [k for k in FIELDS[:5] + ("vocab_size",) if not isinstance(config.get(k), int)]
    if missing:
        raise UserError(f"config.json lacks {', '.join(missing)}: not a decoder LLM?", where=source)
    heads = config["num_attention_heads"]
    quant = config.get("quantization") or config.get("quantization_config")
    return Architecture(
        **{k: config[k] for k in FIELDS[:4]},
        num_key_value_heads=config.get("num_key_value_heads") or heads,
        head_dim=config.get("head_dim") or config["hidden_size"] // heads,
        vocab_size=config["vocab_size"],
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        attention_bias=bool(config.get("attention_bias", config.get("model_type") == "qwen2")),
        model_type=str(config.get("model_type", "")),
        dtype=str(config.get("torch_dtype") or config.get("dtype") or "float32"),
        quantization=_quantization(quant),
        source=source,
    )


def _quantization(quant: Any) -> Quantization | None:
    if not isinstance(quant, dict) or not isinstance(quant.get("bits"), int):
        return None
    return Quantization(quant["bits"], int(quant.get("group_size", 64)))


def known_key(repo: str) -> str:
    """`Qwen/Qwen2.5-3B-Instruct` -> `qwen2.5-3b` (the table key), `mlx-community/...-4bit` too."""
    name = repo.rstrip("/").rsplit("/", 1)[-1].lower()
    return VARIANT_SUFFIX.sub("", name)


class UnknownArchitecture(UserError):
    """A hub model that is neither cached nor in the table of known shapes."""


def _known(spec: str) -> Architecture:
    key = known_key(spec)
    if key not in KNOWN:
        known = ", ".join(sorted(KNOWN))
        raise UnknownArchitecture(
            f"cannot tell the architecture of {spec!r} without downloading it: it is not a local "
            f"folder, not in the Hugging Face cache, and not a known model ({known}); download "
            "it first (huggingface-cli download ...) or give a local model folder",
            where="model.path",
        )
    config = dict(zip(FIELDS, KNOWN[key]))
    bits = re.search(r"-(\d+)bit$", spec.lower())
    model_type = "qwen3" if key.startswith("qwen3") else "qwen2"
    arch = from_config(
        {**config, "torch_dtype": "bfloat16", "model_type": model_type},
        source=f"known architecture {key} (not downloaded)",
    )
    return arch.with_quantization(Quantization(int(bits.group(1)), 64) if bits else None)
