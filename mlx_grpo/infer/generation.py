"""Batch inference over a file of prompts (`mlx-grpo generate`), resumable.

Prompts come from a .txt file (one per line) or a .jsonl file (`{"prompt": ...}` per line).
Completions are sampled with the rollout engine (k samples per prompt share one prefill) and
appended to the output JSONL as they finish, one row per (prompt, sample):
`{"id", "sample", "prompt", "completion", "prompt_tokens", "completion_tokens",
"finish_reason"}`. Rows already in the output file are skipped on the next run; a last line
cut off by a crash is dropped and redone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_grpo.data.sources import utf8_line
from mlx_grpo.errors import UserError
from mlx_grpo.train.rollout import Sampling, decode_completions, generate_groups


@dataclass
class PromptItem:
    """One input prompt: its line-based id, text and token ids."""

    id: int
    text: str
    ids: list[int]


def read_prompts(path: Path) -> list[tuple[int, str]]:
    """(line number, prompt) pairs from a .txt or .jsonl file; errors name file:line."""
    if not path.is_file():
        raise UserError("prompt file not found", where=str(path))
    items = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        line = utf8_line(raw, f"{path}:{number}")
        if not line.strip():
            continue
        items.append((number, _prompt_of(line, f"{path}:{number}", path.suffix == ".jsonl")))
    if not items:
        raise UserError("the prompt file has no prompts", where=str(path))
    return items


def _prompt_of(line: str, where: str, is_jsonl: bool) -> str:
    if not is_jsonl:
        return line
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON ({exc.msg})", where=where) from None
    if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
        raise UserError('each line needs a string field "prompt"', where=where)
    return row["prompt"]


def done_rows(out: Path) -> set[tuple[int, int]]:
    """(id, sample) pairs already in `out`, which must be an earlier output of this command.

    A file with any other line is refused, untouched (never rewrite what we did not write).
    Only a torn last line (no newline: a killed run) after our own rows is cut off."""
    if not out.exists():
        return set()
    if not out.is_file():
        raise UserError("is not a file; --out takes a .jsonl file path", where=str(out))
    data = out.read_bytes()
    lines = data.splitlines(keepends=True)
    done: set[tuple[int, int]] = set()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        key = _row_key(raw)
        torn = number == len(lines) and not raw.endswith(b"\n") and done
        if key is None and torn:  # a killed run's half-written last row: cut it off
            os.truncate(out, len(data) - len(raw))
            return done
        if key is None:
            raise UserError(
                f"line {number} is not a row written by mlx-grpo generate; refusing to add to "
                "this file (choose a new --out)",
                where=str(out),
            )
        done.add(key)
    if data and not data.endswith(b"\n"):  # a whole last row that lost its newline
        with out.open("ab") as f:
            f.write(b"\n")
    return done


def _row_key(raw: bytes) -> tuple[int, int] | None:
    """(id, sample) of one line of our output, or None if it is not one."""
    try:
        row = json.loads(raw)
        return (int(row["id"]), int(row["sample"])) if isinstance(row, dict) else None
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def pending(items: list[PromptItem], samples: int, done: set[tuple[int, int]]) -> list[PromptItem]:
    """Prompts with at least one sample still to generate."""
    return [p for p in items if any((p.id, s) not in done for s in range(samples))]


def generate_rows(
    model: Any,
    tokenizer: Any,
    items: list[PromptItem],
    samples: int,
    sampling: Sampling,
    batch_size: int,
) -> Iterator[list[dict[str, Any]]]:
    """Yield output rows batch by batch (B prompts x `samples` completions each)."""
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        out = generate_groups(model, [p.ids for p in chunk], samples, sampling)
        texts = decode_completions(tokenizer, out)
        rows = []
        for n, (ids, text) in enumerate(zip(out.completion_ids, texts)):
            item = chunk[n // samples]
            rows.append({
                "id": item.id, "sample": n % samples, "prompt": item.text, "completion": text,
                "prompt_tokens": len(item.ids), "completion_tokens": len(ids),
                "finish_reason": "length" if out.truncated[n] else "stop",
            })  # fmt: skip
        yield rows


def write_rows(
    out: Path,
    batches: Iterator[list[dict[str, Any]]],
    done: set[tuple[int, int]],
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Append rows not already done; returns how many were written."""
    written = 0
    with out.open("a") as f:
        for rows in batches:
            fresh = [r for r in rows if (r["id"], r["sample"]) not in done]
            f.write("".join(json.dumps(r) + "\n" for r in fresh))
            f.flush()
            written += len(fresh)
            if on_batch is not None:
                on_batch(len(rows))
    return written
