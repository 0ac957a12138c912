"""Start a run from an earlier run's weights (`model.init_from`): R1's SFT warm start.

`init_from` names a run folder (its newest checkpoint is used) or one checkpoint folder, of an
`mlx-grpo sft` run, a GRPO run, or any mlx-lm adapter folder. What it holds must match what
this run trains:
- adapters (LoRA/DoRA): the run continues those adapters on the same base model (`model.path`),
  with the same `lora` shape (type, rank, layers, keys); the KL reference is the model *with
  the starting adapters* (`adapters_at`), i.e. the SFT model, not the bare base;
- full weights (a model folder): the run loads that folder as its model (`fine_tune_type`
  full or partial); the reference is a frozen copy of it, as for any full run.
Everything is checked before the model loads; a mismatch is one line naming the key to change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from mlx_grpo import rundir
from mlx_grpo.config import LoraConfig, ModelConfig
from mlx_grpo.errors import UserError
from mlx_grpo.models.policy import Policy, load_policy

KEY = "model.init_from"


@dataclass(frozen=True)
class StartPoint:
    """The checkpoint a run starts from and what it holds."""

    folder: Path
    full: bool  # a full model folder (else: adapters)


def resolve_init_from(spec: str, lora: LoraConfig, model_path: str) -> StartPoint:
    """The checkpoint folder `spec` names, checked against this run's `lora` section and
    (for adapters) its base model."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"not found: {path} (a run folder or a checkpoint folder)", where=KEY)
    folder = rundir.pick_step(path)[1] if rundir.is_run_folder(path) else path
    full, adapters = rundir.is_full_checkpoint(folder), rundir.is_adapter_folder(folder)
    if not (full or adapters):
        raise UserError(
            f"{folder} holds neither adapters ({rundir.ADAPTER_WEIGHTS} + "
            f"{rundir.ADAPTER_CONFIG}) nor a model (config.json + model*.safetensors)",
            where=KEY,
        )
    wants_adapters = lora.fine_tune_type in ("lora", "dora")
    if adapters and not wants_adapters:
        raise UserError(
            f"{folder} holds adapters; continue them with lora.fine_tune_type: lora (or dora)",
            where=KEY,
        )
    if full and not adapters and wants_adapters:
        raise UserError(
            f"{folder} holds full weights; train them with lora.fine_tune_type: full (or "
            "partial), or give it as model.path to put new adapters on it",
            where=KEY,
        )
    if wants_adapters:
        _check_adapter_shape(folder, lora)
        _check_base(folder, model_path)
    return StartPoint(folder, full=not wants_adapters)


def _check_base(folder: Path, model_path: str) -> None:
    """Adapters only mean something on the base they were trained on."""
    recorded = rundir.recorded_base_model(folder)
    if recorded is None or _same_model(recorded, model_path):
        return
    raise UserError(
        f"the adapters in {folder} were trained on {recorded}, this run's model.path is "
        f"{model_path}; set model.path: {recorded}",
        where=KEY,
    )


def _same_model(a: str, b: str) -> bool:
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return a.rstrip("/") == b.rstrip("/")


def _check_adapter_shape(folder: Path, lora: LoraConfig) -> None:
    """The adapters must have this run's type, rank, scale and keys: name what differs."""
    try:
        saved = json.loads((folder / rundir.ADAPTER_CONFIG).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {rundir.ADAPTER_CONFIG}: {exc}", where=str(folder)) from None
    params = saved.get("lora_parameters") or {} if isinstance(saved, dict) else {}
    wanted: dict[str, Any] = {
        "fine_tune_type": (saved.get("fine_tune_type", "lora"), lora.fine_tune_type),
        "rank": (params.get("rank"), lora.rank),
        "scale": (params.get("scale"), lora.scale),
    }
    if lora.keys is not None or params.get("keys") is not None:
        wanted["keys"] = (params.get("keys"), lora.keys)
    for key, (theirs, ours) in wanted.items():
        if theirs is not None and theirs != ours:
            raise UserError(
                f"the adapters in {folder} have {key} {theirs!r}, this run {ours!r}; "
                f"set lora.{key}: {theirs}",
                where=KEY,
            )


def load_starting_policy(
    model_cfg: ModelConfig, lora: LoraConfig
) -> tuple[Policy, dict[str, mx.array] | None]:
    """The policy from `model.path` or, with `model.init_from`, from an earlier run (its full
    weights, or its adapters on the base); with adapters, also the starting adapter weights
    (GRPO's KL reference)."""
    start = (
        resolve_init_from(model_cfg.init_from, lora, model_cfg.path)
        if model_cfg.init_from
        else None
    )
    if start is not None and start.full:
        model_cfg = dataclasses.replace(model_cfg, path=str(start.folder))
    policy = load_policy(model_cfg, lora)
    if start is None or start.full:
        return policy, None
    return policy, load_start_adapters(policy.model, start.folder)


def load_start_adapters(model: nn.Module, folder: Path) -> dict[str, mx.array]:
    """Load the starting adapters into `model` (every adapter weight must fit) and return
    them, kept for the KL reference."""
    try:
        weights = mx.load(str(folder / rundir.ADAPTER_WEIGHTS))
    except (ValueError, RuntimeError, OSError) as exc:
        raise UserError(f"cannot read the adapters: {exc}", where=str(folder)) from None
    own = dict(tree_flatten(model.trainable_parameters()))
    missing, extra = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    if missing or extra or any(weights[k].shape != own[k].shape for k in own):
        first = (missing or extra or ["shapes differ"])[0]
        raise UserError(
            f"the adapters in {folder} do not fit this model and lora section ({first}); "
            "check model.path and lora.num_layers",
            where=KEY,
        )
    model.load_weights(list(weights.items()), strict=False)
    mx.eval(model.parameters())
    return weights


@contextlib.contextmanager
def adapters_at(model: nn.Module, weights: dict[str, mx.array]) -> Iterator[None]:
    """Temporarily put `weights` (the starting adapters) in place of the trained ones."""
    current = dict(tree_flatten(model.trainable_parameters()))
    model.update(tree_unflatten(list(weights.items())))
    try:
        yield
    finally:
        model.update(tree_unflatten(list(current.items())))
