"""How chat, generate and eval render prompts: as the run trained, unless a flag says otherwise.

A run's prompt format is part of the run (`data.template`, `data.prompt_template`,
`data.system_prompt`, `data.few_shot` in its config.yaml, carried by `ModelSource.prompt`).
`--template` and `--system` win over it; without `--run` the model's own default applies
(its chat template, else R1-Zero's).
"""

from __future__ import annotations

from typing import Any

from mlx_grpo.config import DataConfig, FewShot
from mlx_grpo.errors import UserError
from mlx_grpo.models.loading import TEMPLATES, pick_template
from mlx_grpo.models.resolve import ModelSource


def chosen_template(
    tokenizer: Any, source: ModelSource, flag: str = "auto", conversation: bool = False
) -> str:
    """--template, else the run's template (a custom one only with its prompt_template, and
    not for a `conversation`: a custom prompt_template frames one question)."""
    if flag != "auto":
        return pick_template(tokenizer, flag)
    run = source.template
    if run == "custom" and source.prompt.get("prompt_template") and not conversation:
        return "custom"
    return pick_template(tokenizer, run if run in TEMPLATES else None)


def few_shot_turns(source: ModelSource, template: str) -> list[FewShot]:
    """The run's worked examples (chat template only, as in training)."""
    if template != "chat":
        return []
    try:
        return [FewShot(**shot) for shot in source.prompt.get("few_shot") or []]
    except TypeError as exc:
        raise UserError(f"the run's data.few_shot is not a list of user/assistant: {exc}") from None


def prompt_config(
    tokenizer: Any,
    source: ModelSource,
    template: str = "auto",
    system: str | None = None,
    **data: Any,
) -> DataConfig:
    """The DataConfig that renders this command's prompts exactly as the run's training did."""
    chosen = chosen_template(tokenizer, source, template)
    return DataConfig(
        template=chosen,  # type: ignore[arg-type]
        prompt_template=source.prompt.get("prompt_template") if chosen == "custom" else None,
        system_prompt=system if system is not None else source.system_prompt,
        few_shot=few_shot_turns(source, chosen),
        **data,
    )
