"""SFT rows: `{prompt, completion}` or chat `messages`, rendered and tokenized as GRPO does.

A row's prompt is rendered by GRPO's own template code (`data.examples.render_prompt`, or the
conversation renderers of `data.templates` for `messages` rows) and tokenized with
`encode_prompt`, so SFT trains on exactly the prompt ids GRPO samples after. The completion's
tokens follow, then EOS. An `SftExample` is `(ids, offset)`, the pair mlx-lm's
`iterate_batches` and `sft.loss` read: the loss covers tokens from `offset` on (the
completion and its EOS), never the prompt.

Rows come from the same places as GRPO's: local .jsonl/.json/.parquet files and hub datasets
(`data.sources`). A bad row stops loading with one error naming `file:line`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from mlx_grpo.data.examples import encode_prompt, render_prompt
from mlx_grpo.data.sources import SUFFIXES, Record, file_records, hub_paths
from mlx_grpo.data.templates import render_plain_conversation, render_r1_conversation
from mlx_grpo.errors import UserError
from mlx_grpo.sft.config import SftDataConfig

ROLES = ("system", "user", "assistant")


class SftExample(NamedTuple):
    """Prompt + completion + EOS token ids, and where the completion starts."""

    ids: list[int]
    offset: int  # len(prompt ids): the loss covers ids[offset:]


def source_records(spec: str, cfg: SftDataConfig) -> list[Record]:
    """The raw rows of one source: a local file, or a hub dataset's split."""
    path = Path(spec).expanduser()
    if path.suffix.lower() in SUFFIXES or path.exists() or spec.startswith((".", "/", "~")):
        return list(file_records(path))
    files = hub_paths(spec, cfg.split, cfg.hub_config)
    return [record for file in files for record in file_records(file)]


def load_sft_rows(cfg: SftDataConfig) -> list[dict[str, Any]]:
    """Every row of `data.train` as `{"prompt" | "messages", "completion"}`, checked."""
    sources = cfg.train if isinstance(cfg.train, list) else [cfg.train]
    rows = [
        sft_row(where, raw, cfg) for spec in sources for where, raw in source_records(spec, cfg)
    ]
    if not rows:
        raise UserError("no rows found", where="data.train")
    return rows


def sft_row(where: str, row: Any, cfg: SftDataConfig) -> dict[str, Any]:
    """One raw row as `{"prompt": str, "completion": str}` or `{"messages", "completion"}`."""
    if not isinstance(row, dict):
        raise UserError(f"expected a JSON object, got {type(row).__name__}", where=where)
    if cfg.prompt_field not in row and cfg.messages_field in row:
        return _messages_row(where, row[cfg.messages_field], cfg.messages_field)
    for name in (cfg.prompt_field, cfg.completion_field):
        if name not in row:
            keys = ", ".join(map(repr, row)) or "none"
            raise UserError(
                f"missing field {name!r} (this row has: {keys}); set data.prompt_field / "
                f"data.completion_field to map yours, or give chat rows in {cfg.messages_field!r}",
                where=where,
            )
    prompt, completion = _text(row[cfg.prompt_field]), _text(row[cfg.completion_field])
    if not prompt.strip():
        raise UserError(f"empty prompt (field {cfg.prompt_field!r})", where=where)
    if not completion.strip():
        raise UserError(f"empty completion (field {cfg.completion_field!r})", where=where)
    return {"prompt": prompt.strip(), "completion": completion}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _messages_row(where: str, messages: Any, name: str) -> dict[str, Any]:
    """A chat row: the history before the last assistant message is the prompt."""
    ok = isinstance(messages, list) and all(
        isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
        for m in messages
    )
    if not ok:
        raise UserError(
            f"{name!r} must be a list of {{role: system|user|assistant, content: text}}",
            where=where,
        )
    if not messages or messages[-1]["role"] != "assistant":
        raise UserError(f"{name!r} must end with an assistant message to learn", where=where)
    history = messages[:-1]
    if not any(m["role"] == "user" for m in history):
        raise UserError(f"{name!r} has no user message before the answer", where=where)
    if not messages[-1]["content"].strip():
        raise UserError(f"the last assistant message in {name!r} is empty", where=where)
    return {"messages": history, "completion": messages[-1]["content"]}


def render_row(tokenizer: Any, row: dict[str, Any], cfg: SftDataConfig) -> str:
    """The prompt text of a row, exactly as GRPO renders its prompts."""
    fmt = cfg.prompt_format()
    if "prompt" in row:
        return render_prompt(tokenizer, row["prompt"], fmt)
    history = row["messages"]
    if cfg.template == "r1":
        return render_r1_conversation(history)
    if cfg.template == "plain":
        return render_plain_conversation(history)
    users = [m["content"] for m in history if m["role"] == "user"]
    if cfg.template == "custom":
        if len(users) != 1 or len(history) != 1:
            raise UserError(
                "template custom frames one question; a chat row has several turns",
                where="data.template",
            )
        return render_prompt(tokenizer, users[0], fmt)
    return _chat_history(tokenizer, history, cfg)


def _chat_history(tokenizer: Any, history: list[dict[str, str]], cfg: SftDataConfig) -> str:
    """A chat row through the tokenizer's template, with the config's system prompt and
    few-shot turns in front (a row's own system message wins over `data.system_prompt`)."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(
            "this tokenizer has no chat template; use template r1 or plain", where="data.template"
        )
    own = 1 if history[0]["role"] == "system" else 0
    front = [] if own or not cfg.system_prompt else [cfg.system_prompt]
    messages = [{"role": "system", "content": s} for s in front] + history[:own]
    for shot in cfg.few_shot:
        messages += [
            {"role": "user", "content": shot.user},
            {"role": "assistant", "content": shot.assistant},
        ]
    messages += history[own:]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_row(tokenizer: Any, row: dict[str, Any], cfg: SftDataConfig) -> SftExample:
    """Prompt ids (GRPO's), then the completion's ids and EOS."""
    prompt = encode_prompt(tokenizer, render_row(tokenizer, row, cfg), cfg.template)
    completion = list(tokenizer.encode(row["completion"], add_special_tokens=False))
    return SftExample(prompt + completion + [tokenizer.eos_token_id], len(prompt))


def build_sft_examples(
    rows: list[dict[str, Any]], tokenizer: Any, cfg: SftDataConfig, max_length: int
) -> tuple[list[SftExample], int]:
    """Tokenize every row; return the examples and how many were longer than `max_length`
    (dropped and counted, never truncated: a cut completion would teach a cut answer)."""
    encoded = [encode_row(tokenizer, row, cfg) for row in rows]
    kept = [e for e in encoded if len(e.ids) <= max_length]
    if not kept:
        raise UserError(
            f"all {len(rows)} rows are longer than {max_length} tokens", where="sft.max_length"
        )
    return kept, len(encoded) - len(kept)
