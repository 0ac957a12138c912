"""`code_block`: a format reward for code tasks, the shape `code_tests` reads code from.

1.0 when the answer has a closed fenced block tagged with the row's language (```c,
```cpp / ```c++, ```python / ```py), 0.5 for a closed block with another tag or none, 0.0
without one. One linear scan of the lines.
"""

from __future__ import annotations

from typing import Any

FENCE = "```"
TAGS = {"c": {"c", "h"}, "cpp": {"cpp", "c++", "cxx", "cc"}, "python": {"python", "py", "python3"}}


def closed_block_tags(completion: str) -> list[str]:
    """The tags of the closed fenced blocks, in order ("" for an untagged one)."""
    tags, opened = [], None
    for line in completion.splitlines():
        stripped = line.strip()
        if not stripped.startswith(FENCE):
            continue
        if opened is None:
            opened = stripped[len(FENCE) :].strip().lower()
        else:
            tags.append(opened)
            opened = None
    return tags


def block_score(completion: str, language: str) -> float:
    tags = closed_block_tags(completion)
    if not tags:
        return 0.0
    return 1.0 if any(tag in TAGS.get(language, {language}) for tag in tags) else 0.5


def code_block(
    prompts: list[str],
    completions: list[str],
    answers: list[str],
    default_language: str = "c",
    **extras: Any,
) -> list[float]:
    """Per completion: a fenced block of the row's `language` 1.0, another block 0.5, none 0."""
    languages = extras.get("language") or [None] * len(completions)
    return [
        block_score(c, lang or default_language)
        for c, lang in zip(completions, languages, strict=True)
    ]
