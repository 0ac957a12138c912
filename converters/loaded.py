"""The in-memory model every source is loaded into and every writer reads from."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.nn as nn

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
)


@dataclass
class LoadedModel:
    """An MLX model, its config.json dict, and how to write its tokenizer files next to it."""

    model: nn.Module
    config: dict[str, Any]
    source_format: str
    source: Path
    write_tokenizer: Callable[[Path], None]
    notes: list[str] = field(default_factory=list)

    @property
    def quantized(self) -> bool:
        return "quantization" in self.config


def copy_tokenizer_files(src: Path) -> Callable[[Path], None]:
    """A tokenizer writer that copies the tokenizer files of a model folder byte for byte."""

    def write(dst: Path) -> None:
        for name in TOKENIZER_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, dst / name)

    return write


def has_tokenizer(folder: Path) -> bool:
    """True when a folder holds a tokenizer that transformers can load."""
    return any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer.model", "vocab.json"))
