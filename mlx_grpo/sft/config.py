"""The `mlx-grpo sft` config: the sections of `train` that mean the same, plus SFT's own.

`model`, `lora`, `optimizer`, `schedule` and `checkpoint` are `train`'s own dataclasses, so a
warm start and the GRPO run after it share their YAML. `data` names `{prompt, completion}` (or
chat `messages`) rows and renders prompts exactly as GRPO does (`template`, `system_prompt`,
`few_shot`); `sft` holds what only supervised training has. Loading, `--set` overrides and the
"did you mean" for unknown keys are `mlx_grpo.config`'s; `validate_sft` checks ranges before
any model loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlx_grpo.config import (
    CheckpointConfig,
    DataConfig,
    FewShot,
    LoraConfig,
    ModelConfig,
    OptimizerConfig,
    ScheduleConfig,
    build_dataclass,
    check_instructions,
    load_config,
)
from mlx_grpo.errors import UserError
from mlx_grpo.report.extras import check_report_to


@dataclass
class SftDataConfig:
    """Where `{prompt, completion}` rows come from and how prompts are rendered (as in GRPO)."""

    train: str | list[str] = ""  # file (.jsonl/.json/.parquet), hub id, or a list of them
    split: str = "train"  # hub split
    hub_config: str | None = None  # hub dataset config
    prompt_field: str = "prompt"  # the question (rendered by the template)
    completion_field: str = "completion"  # the target answer the loss is taken on
    messages_field: str = "messages"  # chat rows: the last assistant message is the completion
    eval_size: int = 0  # rows held out (seeded) for the validation loss
    template: Literal["chat", "r1", "plain", "custom"] = "chat"  # as in train: use the same
    prompt_template: str | None = None  # for template custom: text with a {prompt} placeholder
    system_prompt: str | None = None  # chat template (a row's own system message wins)
    few_shot: list[FewShot] = field(default_factory=list)  # chat template: earlier turns
    instruction: list[str] = field(default_factory=list)  # one added to each question

    def prompt_format(self) -> DataConfig:
        """The GRPO DataConfig that renders prompts the same way (`data.examples`)."""
        return DataConfig(
            template=self.template,
            prompt_template=self.prompt_template,
            system_prompt=self.system_prompt,
            few_shot=list(self.few_shot),
            instruction=list(self.instruction),
        )


@dataclass
class SftOptions:
    """What only supervised training has. Batches hold rows of similar length (mlx-lm's
    length bucketing), padded to a multiple of 32."""

    max_length: int = 1024  # prompt + completion tokens; longer rows are dropped (counted)
    logprob_chunk_size: int = 64  # completion positions projected to the vocabulary at once


@dataclass
class SftLoggingConfig:
    """Where the run lives and how often the validation loss is measured."""

    output_dir: str = "runs"  # runs are written to output_dir/run_name
    run_name: str | None = None  # None: a timestamped name (sft-YYYYmmdd-HHMMSS)
    eval_every: int = 0  # validation loss on the held-out rows every N steps (0: never)
    report_to: list[str] = field(default_factory=list)  # tensorboard, wandb (extras); []: none


@dataclass
class SftConfig:
    """A supervised run: one YAML file maps onto this tree."""

    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    data: SftDataConfig = field(default_factory=SftDataConfig)
    sft: SftOptions = field(default_factory=SftOptions)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: SftLoggingConfig = field(default_factory=SftLoggingConfig)
    steps: int = 100  # optimizer updates
    batch_size: int = 8  # rows per update (split into gradient_accumulation_steps micro-batches)
    seed: int = 0  # data order, dropout, adapter init: a run is reproducible


def is_sft_config(data: dict[str, Any]) -> bool:
    """Whether a run's config.yaml (as plain data) is an SFT config: it has an `sft` section."""
    return isinstance(data.get("sft"), dict)


def sft_from_dict(data: dict[str, Any]) -> SftConfig:
    """Build and validate an SftConfig from nested plain data."""
    config = build_dataclass(SftConfig, data)
    validate_sft(config)
    return config


def load_sft_config(path: str | Path | None, overrides: list[str] | None = None) -> SftConfig:
    """Read a YAML SFT config, apply `--set` overrides, validate (errors name file:line)."""
    return load_config(path, overrides, build=sft_from_dict)  # type: ignore[return-value]


def validate_sft(config: SftConfig) -> None:
    """Range and consistency checks that types alone cannot express."""
    accumulation = config.optimizer.gradient_accumulation_steps
    checks: list[tuple[bool, str, str]] = [
        (config.steps >= 1, "steps", "must be >= 1"),
        (config.batch_size >= 1, "batch_size", "must be >= 1"),
        (accumulation >= 1, "optimizer.gradient_accumulation_steps", "must be >= 1"),
        (
            config.batch_size % max(accumulation, 1) == 0,
            "optimizer.gradient_accumulation_steps",
            f"must divide batch_size = {config.batch_size}",
        ),
        (config.optimizer.learning_rate > 0, "optimizer.learning_rate", "must be > 0"),
        (config.lora.rank >= 1, "lora.rank", "must be >= 1"),
        (0 <= config.lora.dropout < 1, "lora.dropout", "must be in [0, 1)"),
        (
            config.model.quantize_bits in (None, 2, 3, 4, 5, 6, 8),
            "model.quantize_bits",
            "must be null or one of 2, 3, 4, 5, 6, 8",
        ),
        (config.checkpoint.every >= 1, "checkpoint.every", "must be >= 1"),
        (config.checkpoint.keep_last >= 1, "checkpoint.keep_last", "must be >= 1"),
        (config.sft.max_length >= 2, "sft.max_length", "must be >= 2"),
        (config.sft.logprob_chunk_size >= 1, "sft.logprob_chunk_size", "must be >= 1"),
        (config.data.eval_size >= 0, "data.eval_size", "must be >= 0"),
        (config.logging.eval_every >= 0, "logging.eval_every", "must be >= 0 (0: never)"),
    ]
    for ok, key, message in checks:
        if not ok:
            raise UserError(message, where=key)
    check_report_to(config.logging.report_to)
    _validate_combinations(config)


def _validate_combinations(config: SftConfig) -> None:
    data = config.data
    check_instructions(data.instruction)
    sources = data.train if isinstance(data.train, list) else [data.train]
    if not any(sources):
        raise UserError(
            "is required: a .jsonl/.json/.parquet file of prompt/completion rows or a hub id",
            where="data.train",
        )
    if any(str(s).startswith("builtin:") for s in sources):
        raise UserError(
            "built-in tasks have no completions to learn; give prompt/completion rows "
            "(`mlx-grpo generate --keep correct` writes them)",
            where="data.train",
        )
    if data.template == "custom" and "{prompt}" not in (data.prompt_template or ""):
        raise UserError(
            "template custom needs a prompt_template containing {prompt}",
            where="data.prompt_template",
        )
    if config.lora.fine_tune_type in ("full", "partial") and config.model.quantize_bits:
        raise UserError(
            "a quantized base can only train adapters; use fine_tune_type lora or dora",
            where="model.quantize_bits",
        )
    if config.logging.eval_every and not data.eval_size:
        raise UserError("needs held-out rows: set data.eval_size > 0", where="logging.eval_every")
