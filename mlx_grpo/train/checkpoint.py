"""Saving and restoring a training checkpoint: weights, optimizer state, trainer state.

A checkpoint holds the trained weights (LoRA/DoRA adapters in mlx-lm's format, so
`mlx_lm.generate --adapter-path` loads them; or all weights under Hugging Face names with
config and tokenizer, so `mlx_lm.load` loads them), the optimizer state, and the trainer state
(step, data cursor, seed). Where it goes and how it is written without ever leaving half of
it behind is `rundir`'s business (`RUN/checkpoints/step_N`, `rundir.atomic_folder`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_unflatten

from mlx_grpo import rundir
from mlx_grpo.converters.tokenizer_compat import make_portable
from mlx_grpo.errors import UserError
from mlx_grpo.models.policy import Policy, adapter_config


def _save_weights(folder: Path, policy: Policy) -> None:
    from mlx_lm.utils import save_config, save_model

    if policy.uses_adapters:
        adapters = dict(tree_flatten(policy.model.trainable_parameters()))
        mx.save_safetensors(str(folder / rundir.ADAPTER_WEIGHTS), adapters)
        (folder / rundir.ADAPTER_CONFIG).write_text(json.dumps(adapter_config(policy), indent=2))
        return
    save_model(folder, policy.model)
    save_config(dict(policy.config), folder / "config.json")
    policy.tokenizer.save_pretrained(str(folder))
    make_portable(folder)  # transformers 4.x loads the checkpoint too


def save_checkpoint(
    run_dir: Path,
    step: int,
    policy: Policy,
    optimizer: optim.Optimizer,
    state: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write checkpoint `step` atomically and prune all but the newest `keep_last`."""
    final = rundir.step_folder(run_dir, step)
    with rundir.atomic_folder(final) as tmp:
        _save_weights(tmp, policy)
        optimizer_state = dict(tree_flatten(optimizer.state))
        mx.save_safetensors(str(tmp / rundir.OPTIMIZER_STATE), optimizer_state)
        (tmp / rundir.TRAINER_STATE).write_text(json.dumps({**state, "step": step}, indent=2))
    rundir.prune_steps(run_dir, keep_last)
    return final


class CorruptCheckpoint(UserError):
    """A checkpoint file that cannot be read (cut short by a kill, damaged on disk)."""


def load_checkpoint(folder: Path, policy: Policy, optimizer: optim.Optimizer) -> dict[str, Any]:
    """Restore weights and optimizer state from `folder`; return the trainer state.

    Every file is read before anything is changed, so a damaged checkpoint (CorruptCheckpoint)
    leaves the model and optimizer as they were."""
    state_file = folder / rundir.TRAINER_STATE
    if not state_file.is_file():
        raise UserError(f"incomplete checkpoint (no {rundir.TRAINER_STATE})", where=str(folder))
    weights_file = rundir.ADAPTER_WEIGHTS if policy.uses_adapters else "model.safetensors"
    if not (folder / weights_file).is_file():
        kind = policy.lora.fine_tune_type
        raise UserError(f"checkpoint has no {weights_file} for a {kind} run", where=str(folder))
    state = _read_state(state_file)
    weights = _read_arrays(folder / weights_file)
    opt_state = _read_arrays(folder / rundir.OPTIMIZER_STATE)
    try:
        policy.model.load_weights(list(weights.items()), strict=not policy.uses_adapters)
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"checkpoint does not match the model: {exc}", where=str(folder)) from None
    optimizer.state = tree_unflatten(list(opt_state.items()))
    mx.eval(policy.model.parameters(), optimizer.state)
    return state


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptCheckpoint(f"not valid JSON ({exc})", where=str(path)) from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or "data" not in state:
        raise CorruptCheckpoint('not a trainer state (needs "step" and "data")', where=str(path))
    return state


def _read_arrays(path: Path) -> dict[str, mx.array]:
    try:
        return mx.load(str(path))
    except (ValueError, RuntimeError, OSError) as exc:
        raise CorruptCheckpoint(f"cannot be read ({exc})", where=str(path)) from None


class Checkpointed:
    """`save` / `restore` for a trainer (GRPO and SFT alike): it has `run_dir`, `step`,
    `policy`, `optimizer`, a data `stream`, `cfg.checkpoint` and `trainer_state()`."""

    run_dir: Path
    step: int
    policy: Policy
    optimizer: optim.Optimizer
    stream: Any
    cfg: Any

    def trainer_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def save(self) -> Path:
        """Checkpoint the current step (`rundir`: RUN/checkpoints/step_N)."""
        return save_checkpoint(
            self.run_dir,
            self.step,
            self.policy,
            self.optimizer,
            self.trainer_state(),
            self.cfg.checkpoint.keep_last,
        )

    def restore(self, folder: Path) -> None:
        state = load_checkpoint(folder, self.policy, self.optimizer)
        self.step = int(state["step"])
        self.stream.restore(state["data"])
        self.restored(state, folder)

    def restored(self, state: dict[str, Any], folder: Path) -> None:
        """Called after `restore` with the checkpoint's trainer state (nothing by default)."""
