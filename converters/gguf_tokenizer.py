"""Rebuild a Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) from GGUF metadata.

llama.cpp stores the byte-level BPE vocabulary (`tokenizer.ggml.tokens`), its merges, a type
per token (control tokens become special tokens, user-defined ones added tokens), the
BOS/EOS/PAD/UNK ids, whether to prepend BOS, the chat template and the name of the
pre-tokenizer (`tokenizer.ggml.pre`). That is everything a `tokenizers` BPE needs; the
pre-tokenizer names map to the split regexes llama.cpp uses for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlx_grpo.converters.tokenizer_compat import make_portable

from mlx_grpo.errors import UserError

CONTROL, USER_DEFINED = 3, 4

QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# tokenizer.ggml.pre -> (split regex, split digits one by one first)
PRE_TOKENIZERS: dict[str, tuple[str | None, bool]] = {
    "default": (None, False),
    "gpt-2": (None, False),
    "smollm": (None, True),
    "starcoder": (None, True),
    "refact": (None, True),
    "qwen2": (QWEN2_SPLIT, False),
    "llama-bpe": (LLAMA3_SPLIT, False),
    "llama3": (LLAMA3_SPLIT, False),
}


def _pre_tokenizer(name: str, where: Path) -> Any:
    from tokenizers import Regex, pre_tokenizers

    if name not in PRE_TOKENIZERS:
        raise UserError(
            f"{where}: GGUF pre-tokenizer {name!r} (tokenizer.ggml.pre) is not supported; "
            f"supported: {', '.join(sorted(PRE_TOKENIZERS))}"
        )
    regex, digits = PRE_TOKENIZERS[name]
    steps = [pre_tokenizers.Digits(individual_digits=True)] if digits else []
    if regex is None:
        steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    else:
        steps.append(pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False))
        steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False))
    return pre_tokenizers.Sequence(steps)


def _token_name(meta: dict[str, Any], key: str) -> str | None:
    tokens = meta["tokenizer.ggml.tokens"]
    idx = meta.get(f"tokenizer.ggml.{key}_token_id")
    return tokens[int(idx)] if idx is not None and int(idx) < len(tokens) else None


def build_tokenizer(meta: dict[str, Any], where: Path) -> Any:
    """A `tokenizers.Tokenizer` equivalent to the GGUF's byte-level BPE vocabulary."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    model = meta.get("tokenizer.ggml.model")
    if model != "gpt2" or "tokenizer.ggml.merges" not in meta:
        raise UserError(
            f"{where}: GGUF tokenizer model {model!r} is not supported; "
            "supported: 'gpt2' (byte-level BPE with merges, as in Llama 3, Qwen2, SmolLM)"
        )
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    pre = meta.get("tokenizer.ggml.pre", "default")
    bpe = models.BPE(
        vocab={t: i for i, t in enumerate(tokens)},
        merges=merges,
        ignore_merges=pre in ("llama-bpe", "llama3"),
    )
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = _pre_tokenizer(pre, where)
    tok.decoder = decoders.ByteLevel()
    types = [int(t) for t in meta.get("tokenizer.ggml.token_type", [])]
    special = [
        AddedToken(tokens[i], special=True, normalized=False)
        for i, t in enumerate(types)
        if t == CONTROL
    ]
    added = [
        AddedToken(tokens[i], special=False, normalized=False)
        for i, t in enumerate(types)
        if t == USER_DEFINED
    ]
    tok.add_special_tokens(special)
    tok.add_tokens(added)
    bos = _token_name(meta, "bos")
    if meta.get("tokenizer.ggml.add_bos_token") and bos is not None:
        bos_id = int(meta["tokenizer.ggml.bos_token_id"])
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def write_tokenizer(meta: dict[str, Any], where: Path, dst: Path) -> None:
    """Write tokenizer.json, tokenizer_config.json (+ chat template) that transformers loads."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(meta, where),
        bos_token=_token_name(meta, "bos"),
        eos_token=_token_name(meta, "eos"),
        unk_token=_token_name(meta, "unknown"),
        pad_token=_token_name(meta, "padding"),
        chat_template=meta.get("tokenizer.chat_template"),
        clean_up_tokenization_spaces=False,
    )
    fast.save_pretrained(str(dst))
    make_portable(dst)
