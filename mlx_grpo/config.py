"""Typed run configuration: dataclasses, YAML loading, `--set key=value` overrides, validation.

Everything is checked before any model loads: unknown keys get a "did you mean", wrong types
and out-of-range values name the key and the file. `to_dict` gives the resolved config that is
written into the run directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mlx_grpo.errors import UserError
from mlx_grpo.report.extras import check_report_to


@dataclass
class ModelConfig:
    """Which model to train and how its weights are held."""

    path: str = "builtin:tiny-qwen2"  # local folder, Hugging Face id, or builtin:<name>
    quantize_bits: int | None = None  # 4 (or 8) quantizes the frozen base: QLoRA
    quantize_group_size: int = 64  # weights per quantization scale/bias
    dtype: Literal["float32", "float16", "bfloat16"] | None = None  # None keeps the checkpoint's
    trust_remote_code: bool = False  # let transformers run a model repo's own code
    gradient_checkpointing: bool = False  # recompute layer activations in the backward pass
    init_from: str | None = None  # start from a run (newest checkpoint) or checkpoint: SFT


@dataclass
class LoraConfig:
    """What is trained: adapters (LoRA/DoRA), all weights, or the last N layers fully."""

    fine_tune_type: Literal["lora", "dora", "full", "partial"] = "lora"  # partial: last N layers
    rank: int = 8  # adapter rank r
    scale: float = 20.0  # adapter output multiplier (mlx-lm convention, not alpha)
    dropout: float = 0.0  # dropout on the adapter input
    num_layers: int = -1  # adapters (or full weights for "partial") in the last N layers; -1 all
    keys: list[str] | None = None  # e.g. ["self_attn.q_proj", "self_attn.v_proj"]; None: all


@dataclass
class RolloutConfig:
    """Sampling of G completions per prompt."""

    group_size: int = 8  # G completions per prompt
    max_completion_length: int = 128  # new tokens at most; longer ones are truncated
    temperature: float = 1.0  # sampling and log-prob temperature
    top_p: float = 1.0  # nucleus sampling (1 disables)
    top_k: int = 0  # 0 disables
    min_p: float = 0.0  # 0 disables
    stop: list[str] = field(default_factory=list)  # stop strings besides EOS, e.g. </answer>
    max_prompt_length: int = 512  # longer prompts are dropped (counted), never truncated
    dynamic_sampling: int = 0  # DAPO: up to N more batches of B prompts until B informative
    merge_adapters: bool = True  # decode with LoRA merged into its (unquantized) base: faster
    compiled_decode: Literal["auto", "always", "never"] = "auto"  # decode step compiled; auto: CPU


@dataclass
class ObjectiveConfig:
    """The GRPO loss (the formulas are in mlx_grpo/train/objective.py)."""

    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "dapo"  # how token losses are averaged
    scale_rewards: Literal["group", "batch", "none"] = "group"  # advantage divided by which std
    importance_sampling_level: Literal["token", "sequence"] = "token"  # sequence: GSPO
    epsilon: float = 0.2  # clip range below (and above unless epsilon_high)
    epsilon_high: float | None = None  # None: same as epsilon (DAPO uses 0.28)
    delta: float | None = None  # optional upper cap on the ratio (two-sided GRPO)
    beta: float = 0.0  # k3 KL weight; 0 skips the reference pass entirely
    num_iterations: int = 1  # mu: updates per rollout batch
    mask_truncated_completions: bool = False  # truncated completions carry no loss
    drop_uninformative_groups: bool = True  # false: all-equal groups train with advantage 0 (TRL)
    logprob_chunk_size: int = 64  # completion positions projected to the vocabulary at once
    sampler_old_logp: bool = False  # num_iterations > 1: logp_old from the rollout (no pass)


@dataclass
class OptimizerConfig:
    """AdamW with global-norm gradient clipping."""

    learning_rate: float = 1e-5  # peak learning rate
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    beta1: float = 0.9  # AdamW
    beta2: float = 0.999  # AdamW
    eps: float = 1e-8  # AdamW
    max_grad_norm: float | None = 1.0  # clip gradients by global norm (null: off)
    gradient_accumulation_steps: int = 1  # micro-batches per update (splits the B*G rollouts)


@dataclass
class ScheduleConfig:
    """Learning-rate schedule over the optimizer updates."""

    name: Literal["constant", "linear", "cosine"] = "constant"  # decay after warmup
    warmup_steps: int = 0  # optimizer updates of linear warmup (the first at peak/(n+1))
    min_lr_ratio: float = 0.0  # final lr / peak lr for linear and cosine


@dataclass
class FewShot:
    """One worked example shown before the question (a user turn and the assistant's reply)."""

    user: str = ""  # the example question
    assistant: str = ""  # the example answer, in the format you want


@dataclass
class DataConfig:
    """Where prompts and gold answers come from and how prompts are rendered."""

    train: str | list[str] = ""  # file (.jsonl/.json/.parquet), hub id, builtin:<task>, or a list
    split: str = "train"  # hub split
    hub_config: str | None = None  # hub dataset config (preset for known datasets)
    prompt_field: str | None = None  # None: "prompt" for files, the preset's field for the hub
    answer_field: str | None = None
    num_examples: int = 2000  # rows generated for a builtin:<task> (arithmetic, c-functions, ...)
    difficulty: int = 1  # builtin task level, 1-4
    eval_size: int = 0  # rows held out (seeded) from train for evaluation
    template: Literal["chat", "r1", "plain", "custom"] = "chat"
    prompt_template: str | None = None  # for template custom: text with a {prompt} placeholder
    system_prompt: str | None = None
    few_shot: list[FewShot] = field(default_factory=list)  # chat template: earlier turns
    instruction: list[str] = field(default_factory=list)  # one added to each question
    shuffle: bool = True  # a new seeded order every epoch


@dataclass
class RewardSpec:
    """One reward function and its weight. `name` is built-in or `module:function`."""

    name: str = "exact_number"  # built-in name, module:function or file.py:function
    weight: float = 1.0  # multiplier in the summed reward
    params: dict[str, Any] = field(default_factory=dict)  # keyword arguments for the reward
    timeout: float | None = None  # seconds one call may take (None: 60, code_tests 600)


@dataclass
class CheckpointConfig:
    """How often checkpoints are written and how many are kept."""

    every: int = 50  # steps between checkpoints (and always at the end)
    keep_last: int = 3  # older checkpoints are deleted


@dataclass
class LoggingConfig:
    """Where the run lives and what it writes besides metrics."""

    output_dir: str = "runs"  # runs are written to output_dir/run_name
    run_name: str | None = None  # None: a timestamped name
    samples_every: int = 10  # steps between samples.jsonl entries (0: never)
    samples_per_step: int = 4  # completions written each time
    eval_every: int = 0  # greedy eval + emergence metrics every N steps (0: never)
    eval_limit: int = 32  # problems per eval: held-out rows (data.eval_size) or train canaries
    eval_reward: str = "math_correct"  # what counts as correct during eval (code_tests: all pass)
    report_to: list[str] = field(default_factory=list)  # tensorboard, wandb (extras); []: none


@dataclass
class TrainConfig:
    """A whole run: one YAML file maps onto this tree."""

    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rewards: list[RewardSpec] = field(default_factory=lambda: [RewardSpec()])  # see rewards[]
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    steps: int = 100  # rollout batches
    batch_size: int = 4  # B prompts per step (B * G completions)
    seed: int = 0  # sampling, data order, dropout: a run is reproducible


# ---------------------------------------------------------------- building from plain data


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting ints to floats where asked."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except UserError:
                continue
        raise UserError(f"expected {_type_name(tp)}, got {value!r}", where=key)
    if origin is Literal:
        if value not in typing.get_args(tp):
            choices = ", ".join(repr(a) for a in typing.get_args(tp))
            raise UserError(f"must be one of {choices}, got {value!r}", where=key)
        return value
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"expected a list, got {value!r}", where=key)
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"expected a mapping, got {value!r}", where=key)
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, key)
    return _coerce_scalar(value, tp, key)


def _coerce_scalar(value: Any, tp: type, key: str) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads `1e-5` (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if tp is Any or (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        return value
    raise UserError(f"expected {_type_name(tp)}, got {value!r}", where=key)


def build_dataclass(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown keys with a suggestion."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"expected a mapping of {cls.__name__} keys, got {data!r}", where=prefix)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise UserError(_unknown_key_message(str(key), names), where=full)
        kwargs[key] = _coerce(value, hints[key], full)
    return cls(**kwargs)


def _unknown_key_message(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(names)}"
    return f"unknown key '{key}'{hint}"


def from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build and validate a TrainConfig from nested plain data."""
    config = build_dataclass(TrainConfig, data, "")
    validate(config)
    return config


def to_dict(config: Any) -> dict[str, Any]:
    """The resolved config as plain data (what `config.yaml` in a run directory holds)."""
    return dataclasses.asdict(config)


# ---------------------------------------------------------------- files and overrides


def load_config(
    path: str | Path | None,
    overrides: list[str] | None = None,
    build: Callable[[dict[str, Any]], Any] | None = None,
) -> TrainConfig:
    """Read a YAML config (or start from defaults), apply `key=value` overrides, validate.

    `build` turns the plain data into the config (default `from_dict`: a TrainConfig); other
    commands with their own config tree (`mlx-grpo sft`) pass theirs and get the same errors."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml(Path(path))
        near_config_file(data, Path(path).resolve().parent)
    for item in overrides or []:
        apply_override(data, item)
    try:
        return (build or from_dict)(data)
    except UserError as exc:
        blamed = _override_for(exc.where or "", overrides or [])
        if blamed is not None:
            raise UserError(str(exc), where=f"--set {blamed}") from None
        if path is None:
            raise
        line = key_line(Path(path), exc.where or "")
        raise UserError(str(exc), where=f"{path}:{line}" if line else str(path)) from None


def _override_for(where: str, overrides: list[str]) -> str | None:
    """The last `--set` item that set the key at fault (or a section holding it), if any."""
    at_fault = where.split("[")[0] if where else ""
    for item in reversed(overrides):
        key = item.partition("=")[0].strip()
        if at_fault and (at_fault == key or at_fault.startswith(key + ".")):
            return item
        if at_fault and key.startswith(at_fault + "."):
            return item
    return None


def near_config_file(data: dict[str, Any], folder: Path) -> None:
    """Relative paths written in a config file (data files, reward files, a model folder) are
    read relative to that file when they exist there, so `train -c ~/proj/cfg.yaml` works from
    any folder. Otherwise they stay as written (relative to the current folder, or a hub id);
    `--set` values are never moved."""
    sections = [
        (data.get("data"), "train"),
        (data.get("data"), "eval"),
        (data.get("model"), "path"),
        (data.get("model"), "init_from"),
    ]
    sections += [(spec, "name") for spec in data.get("rewards") or [] if isinstance(spec, dict)]
    for section, key in sections:
        if isinstance(section, dict) and key in section:
            value = section[key]
            moved = [_near(v, folder) for v in value] if isinstance(value, list) else None
            section[key] = moved if moved is not None else _near(value, folder)


def _near(value: Any, folder: Path) -> Any:
    """`value` (a path, or `file.py:function`) re-rooted at `folder` where that file exists."""
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    file_part, sep, function = value.partition(":") if ".py:" in value else (value, "", "")
    candidate = folder / file_part
    return f"{candidate}{sep}{function}" if candidate.exists() else value


def key_line(path: Path, dotted: str) -> int | None:
    """1-based line of the deepest key of `a.b.c` present in a YAML file (None if absent)."""
    try:
        node = yaml.compose(path.read_text())
    except (yaml.YAMLError, OSError):
        return None
    line = None
    for part in (p.split("[")[0] for p in dotted.split(".") if p):
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if k.value == part), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line


# Constructs whose mistake is where they open: PyYAML notices only at the next line or the end.
_UNCLOSED = {
    "while parsing a flow mapping": "a '{' is never closed",
    "while parsing a flow sequence": "a '[' is never closed",
    "while scanning a quoted scalar": "a quoted string is never closed",
}


def yaml_error_place(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(1-based line, message) of a YAML syntax error: the line where an unclosed bracket or
    quote opens (the real mistake), otherwise the line where the parser stopped."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "invalid YAML"
    opened = getattr(exc, "context_mark", None)
    unclosed = _UNCLOSED.get(getattr(exc, "context", None) or "")
    if unclosed and opened is not None and (mark is None or opened.line < mark.line):
        where = f" (noticed at line {mark.line + 1}: {problem})" if mark else ""
        return opened.line + 1, unclosed + where
    return (mark.line + 1 if mark else None), problem


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML mapping, reporting syntax errors with their line."""
    if not path.is_file():
        raise UserError("config file not found", where=str(path))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        line, problem = yaml_error_place(exc)
        raise UserError(problem, where=f"{path}:{line}" if line else str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError("the top level must be a mapping of sections", where=str(path))
    return data


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one `a.b.c=value` override; the value is parsed as YAML (`3`, `1e-5`, `[a, b]`)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects key=value, got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"--set {key}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def save_config(config: Any, path: Path) -> None:
    """Write the resolved config as YAML."""
    path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


# ---------------------------------------------------------------- semantic checks


def validate(config: TrainConfig) -> None:
    """Range and consistency checks that types alone cannot express."""
    checks: list[tuple[bool, str, str]] = [
        (config.steps >= 1, "steps", "must be >= 1"),
        (config.batch_size >= 1, "batch_size", "must be >= 1"),
        (config.rollout.group_size >= 2, "rollout.group_size", "must be >= 2 (GRPO compares)"),
        (config.rollout.max_completion_length >= 1, "rollout.max_completion_length", ">= 1"),
        (config.rollout.temperature > 0, "rollout.temperature", "must be > 0"),
        (0 < config.rollout.top_p <= 1, "rollout.top_p", "must be in (0, 1]"),
        (config.rollout.top_k >= 0, "rollout.top_k", "must be >= 0 (0 disables)"),
        (config.rollout.dynamic_sampling >= 0, "rollout.dynamic_sampling", "must be >= 0"),
        (0 <= config.rollout.min_p < 1, "rollout.min_p", "must be in [0, 1)"),
        (config.objective.epsilon > 0, "objective.epsilon", "must be > 0"),
        (config.objective.beta >= 0, "objective.beta", "must be >= 0"),
        (config.objective.num_iterations >= 1, "objective.num_iterations", "must be >= 1"),
        (config.objective.logprob_chunk_size >= 1, "objective.logprob_chunk_size", ">= 1"),
        (
            not config.objective.sampler_old_logp or config.objective.num_iterations > 1,
            "objective.sampler_old_logp",
            "needs num_iterations > 1 (with 1, logp_old is the current log-prob itself)",
        ),
        (config.optimizer.learning_rate > 0, "optimizer.learning_rate", "must be > 0"),
        (
            config.optimizer.gradient_accumulation_steps >= 1,
            "optimizer.gradient_accumulation_steps",
            "must be >= 1",
        ),
        (config.lora.rank >= 1, "lora.rank", "must be >= 1"),
        (0 <= config.lora.dropout < 1, "lora.dropout", "must be in [0, 1)"),
        (
            config.model.quantize_bits in (None, 2, 3, 4, 5, 6, 8),
            "model.quantize_bits",
            "must be null or one of 2, 3, 4, 5, 6, 8",
        ),
        (config.checkpoint.every >= 1, "checkpoint.every", "must be >= 1"),
        (config.checkpoint.keep_last >= 1, "checkpoint.keep_last", "must be >= 1"),
        (
            bool(config.data.train),
            "data.train",
            "is required: a .jsonl/.json/.parquet file, a hub dataset id, or builtin:arithmetic",
        ),
        (config.data.num_examples >= 1, "data.num_examples", "must be >= 1"),
        (config.data.difficulty in (1, 2, 3, 4), "data.difficulty", "must be 1, 2, 3 or 4"),
        (config.data.eval_size >= 0, "data.eval_size", "must be >= 0"),
        (bool(config.rewards), "rewards", "needs at least one reward function"),
    ]
    for ok, key, message in checks:
        if not ok:
            raise UserError(message, where=key)
    check_report_to(config.logging.report_to)
    _validate_combinations(config)


def check_instructions(instructions: list[str]) -> None:
    """`data.instruction`: each entry a non-empty line of text."""
    for i, text in enumerate(instructions):
        if not isinstance(text, str) or not text.strip():
            raise UserError(
                "must be a non-empty string (an instruction added to every question)",
                where=f"data.instruction[{i}]",
            )


def _validate_combinations(config: TrainConfig) -> None:
    full = config.lora.fine_tune_type in ("full", "partial")
    if full and config.model.quantize_bits is not None:
        raise UserError(
            "a quantized base can only train adapters; use fine_tune_type lora or dora",
            where="model.quantize_bits",
        )
    eps_high = config.objective.epsilon_high
    if eps_high is not None and eps_high <= 0:
        raise UserError("must be > 0 (or null to use epsilon)", where="objective.epsilon_high")
    delta = config.objective.delta
    if delta is not None and delta <= 1:
        raise UserError("must be > 1 (an upper cap on the ratio)", where="objective.delta")
    if config.data.template == "custom" and "{prompt}" not in (config.data.prompt_template or ""):
        raise UserError(
            "template custom needs a prompt_template containing {prompt}",
            where="data.prompt_template",
        )
    check_instructions(config.data.instruction)
    for i, spec in enumerate(config.rewards):
        if spec.timeout is not None and not spec.timeout > 0:
            raise UserError(
                "must be > 0 seconds (or null for the default)", where=f"rewards[{i}].timeout"
            )
    rollouts = config.batch_size * config.rollout.group_size
    if rollouts % config.optimizer.gradient_accumulation_steps:
        raise UserError(
            f"must divide batch_size * group_size = {rollouts}",
            where="optimizer.gradient_accumulation_steps",
        )
