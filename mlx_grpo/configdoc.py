"""The config reference (docs/config.md), generated from the dataclasses in `config.py`.

The SFT config (`mlx_grpo/sft/config.py`) follows. Each key's type and default come from the
dataclass field; its description is the comment
written beside the field (or the section's docstring). A test regenerates the page and
compares, so the reference cannot drift from the code: `python -m mlx_grpo.configdoc`.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any

from mlx_grpo import config as cfgmod

HEADER = """# Config reference

Generated from `mlx_grpo/config.py` by `python -m mlx_grpo.configdoc > docs/config.md`
(a test checks it is current). Every key has a default; a YAML config names only what it
changes, and `--set section.key=value` overrides any key on the command line.
"""


def field_comments(cls: type) -> dict[str, str]:
    """`name -> comment` from lines like `name: type = default  # comment` in the class body."""
    comments = {}
    for line in inspect.getsource(cls).splitlines():
        match = re.match(r"\s+(\w+): [^#]+#\s*(.+)$", line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def type_text(tp: Any) -> str:
    import types

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_text(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in typing.get_args(tp))
    text = str(tp).replace("typing.", "").replace("mlx_grpo.config.", "")
    return re.sub(r"<class '(\w+)'>", r"\1", text).replace("NoneType", "None").replace("|", "\\|")


def default_text(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return f"`{field.default!r}`"
    value = field.default_factory()  # type: ignore[misc]
    return "see below" if dataclasses.is_dataclass(value) else f"`{value!r}`"


def section(name: str, cls: type, title: str | None = None) -> list[str]:
    hints = typing.get_type_hints(cls)
    notes = field_comments(cls)
    title = title or (f"## `{name}`" if name else "## top level")
    lines = [title, "", inspect.getdoc(cls) or "", ""]
    lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[field.name]):
            continue
        lines.append(
            f"| `{field.name}` | {type_text(hints[field.name])} | {default_text(field)} "
            f"| {notes.get(field.name, '')} |"
        )
    return [*lines, ""]


def render() -> str:
    """The whole reference page."""
    hints = typing.get_type_hints(cfgmod.TrainConfig)
    parts = [HEADER, *section("", cfgmod.TrainConfig)]
    for field in dataclasses.fields(cfgmod.TrainConfig):
        tp = hints[field.name]
        if dataclasses.is_dataclass(tp):
            parts += section(field.name, tp)
    parts += section("rewards[]", cfgmod.RewardSpec) + section("data.few_shot[]", cfgmod.FewShot)
    return "\n".join(parts + sft_sections()).rstrip() + "\n"


SFT_HEADER = """# `mlx-grpo sft` config

Generated from `mlx_grpo/sft/config.py`. `model`, `lora`, `optimizer`, `schedule` and
`checkpoint` are the sections above, with the same keys and meanings; the sections below
are the ones an SFT config has instead of `rollout`, `objective`, `rewards`, `data` and
`logging`. `data.few_shot[]` is as above.
"""


def sft_sections() -> list[str]:
    """The SFT config's top level and the sections it does not share with `train`."""
    from mlx_grpo.sft import config as sft

    shared = {
        cfgmod.ModelConfig,
        cfgmod.LoraConfig,
        cfgmod.OptimizerConfig,
        cfgmod.ScheduleConfig,
        cfgmod.CheckpointConfig,
    }
    hints = typing.get_type_hints(sft.SftConfig)
    parts = ["", SFT_HEADER, *section("", sft.SftConfig, "## top level (sft)")]
    for field in dataclasses.fields(sft.SftConfig):
        tp = hints[field.name]
        if dataclasses.is_dataclass(tp) and tp not in shared:
            suffix = "" if field.name == "sft" else " (sft)"
            parts += section(field.name, tp, f"## `{field.name}`{suffix}")
    return parts


if __name__ == "__main__":
    print(render(), end="")
