"""Prompts and gold answers: reading rows, rendering prompts, and a resumable batch cursor.

Rows are `{"prompt", "answer", ...extras}`, from `sources` (files, hub) or `tasks` (generated).
Prompts are rendered with the tokenizer's chat template, the R1-Zero template, or as plain
text, tokenized once, and dropped (with a count) when longer than the limit, never silently
truncated. The order of each epoch is a seeded
permutation, so the cursor (epoch, index) is all a checkpoint needs to resume the stream.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlx_grpo.config import DataConfig
from mlx_grpo.data.sources import SUFFIXES, hub_rows, read_rows
from mlx_grpo.data.tasks import generate_task
from mlx_grpo.data.templates import render_r1
from mlx_grpo.errors import UserError

BUILTIN = "builtin:"


@dataclass
class Example:
    """One training prompt: its text, token ids, gold answer and any extra columns."""

    prompt: str  # the user's question as written in the dataset
    text: str  # the rendered prompt fed to the model
    ids: list[int]
    answer: str
    extras: dict[str, Any] = field(default_factory=dict)


def load_rows(cfg: DataConfig, seed: int) -> list[dict]:
    """All rows of `data.train`, one source or several concatenated in order."""
    sources = cfg.train if isinstance(cfg.train, list) else [cfg.train]
    return [row for spec in sources for row in load_source(spec, cfg, seed)]


def load_source(spec: str, cfg: DataConfig, seed: int) -> list[dict]:
    """Rows of one source: a local file, a built-in task, or a hub dataset."""
    if spec.startswith(BUILTIN):
        return generate_task(spec.removeprefix(BUILTIN), cfg.num_examples, seed, cfg.difficulty)
    path = Path(spec).expanduser()
    if path.suffix.lower() in SUFFIXES or path.exists() or spec.startswith((".", "/", "~")):
        return read_rows(
            path,
            prompt_field=cfg.prompt_field or "prompt",
            answer_field=cfg.answer_field or "answer",
        )
    return hub_rows(
        spec,
        cfg.split,
        cfg.hub_config,
        prompt_field=cfg.prompt_field,
        answer_field=cfg.answer_field,
    )


def split_rows(rows: list[dict], eval_size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, eval): `eval_size` rows held out by a seeded permutation."""
    if eval_size >= len(rows):
        raise UserError(
            f"eval_size {eval_size} leaves no training rows (dataset has {len(rows)})",
            where="data.eval_size",
        )
    order = np.random.default_rng([seed, 9973]).permutation(len(rows))
    held = set(order[:eval_size].tolist())
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def with_instruction(prompt: str, instructions: list[str]) -> str:
    """The question with one of `data.instruction` after it (the same one for the same
    question on every machine: chosen by a CRC of its text), or unchanged without any."""
    if not instructions:
        return prompt
    return f"{prompt} {instructions[zlib.crc32(prompt.encode()) % len(instructions)]}"


def render_prompt(tokenizer: Any, prompt: str, cfg: DataConfig) -> str:
    """Turn a question (with its `data.instruction`) into the text the model sees, per
    `data.template`."""
    prompt = with_instruction(prompt, cfg.instruction)
    if cfg.template == "plain":
        return prompt
    if cfg.template == "custom":
        return (cfg.prompt_template or "{prompt}").replace("{prompt}", prompt)
    if cfg.template == "r1":
        return render_r1(prompt)
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(
            "this tokenizer has no chat template; use template r1 or plain", where="data.template"
        )
    messages = [{"role": "system", "content": cfg.system_prompt}] if cfg.system_prompt else []
    for shot in cfg.few_shot:
        messages += [
            {"role": "user", "content": shot.user},
            {"role": "assistant", "content": shot.assistant},
        ]
    messages.append({"role": "user", "content": prompt})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_prompt(tokenizer: Any, text: str, template: str) -> list[int]:
    """Token ids of a rendered prompt; chat templates already carry their special tokens."""
    return list(tokenizer.encode(text, add_special_tokens=template != "chat"))


def build_examples(
    rows: list[dict], tokenizer: Any, cfg: DataConfig, max_prompt_length: int
) -> tuple[list[Example], int]:
    """Render and tokenize every row; return the examples and how many were too long."""
    examples, dropped = [], 0
    for row in rows:
        extras = {k: v for k, v in row.items() if k not in ("prompt", "answer")}
        text = render_prompt(tokenizer, row["prompt"], cfg)
        ids = encode_prompt(tokenizer, text, cfg.template)
        if len(ids) > max_prompt_length:
            dropped += 1
            continue
        examples.append(Example(row["prompt"], text, ids, row["answer"], extras))
    if not examples:
        raise UserError(
            f"all {len(rows)} prompts are longer than {max_prompt_length} tokens",
            where="rollout.max_prompt_length",
        )
    return examples, dropped


class PromptStream:
    """Endless batches of examples in a seeded per-epoch order, resumable from (epoch, index)."""

    def __init__(self, examples: list[Example], seed: int, shuffle: bool = True) -> None:
        self.examples = examples
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.index = 0
        self._order = self._make_order()

    def _make_order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.examples))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.examples))

    def next_batch(self, size: int) -> list[Example]:
        batch = []
        while len(batch) < size:
            if self.index >= len(self._order):
                self.epoch, self.index = self.epoch + 1, 0
                self._order = self._make_order()
            batch.append(self.examples[int(self._order[self.index])])
            self.index += 1
        return batch

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}

    def restore(self, state: dict[str, int]) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])
        self._order = self._make_order()
