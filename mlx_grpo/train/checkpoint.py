"""Checkpoints: `runs/<name>/checkpoints/step_N`, written to a temporary folder and renamed.

A checkpoint holds the trained weights (LoRA/DoRA adapters in mlx-lm's format, so
`mlx_lm.generate --adapter-path` loads them; or all weights under Hugging Face names with
config and tokenizer, so `mlx_lm.load` loads them), the optimizer state, and the trainer state
(step, data cursor, seed). A crash never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_unflatten

from mlx_grpo.errors import UserError
from mlx_grpo.models.policy import Policy, adapter_config

STEP_DIR = re.compile(r"^step_(\d+)$")
TRAINER_STATE = "trainer_state.json"


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def list_steps(run_dir: Path) -> list[int]:
    """Steps that have a complete checkpoint, ascending."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = (STEP_DIR.match(p.name) for p in root.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def step_dir(run_dir: Path, step: int | str = "latest") -> Path:
    """`RUN/checkpoints/step_N` for the given step, or the highest N for `latest`."""
    folder, steps = checkpoint_root(run_dir), list_steps(run_dir)
    if not steps:
        raise UserError(f"no checkpoints (step_N folders) in {folder}")
    if str(step) == "latest":
        return folder / f"step_{steps[-1]}"
    if not str(step).isdigit():
        raise UserError(f"--step must be a step number or 'latest', not {step!r}")
    if int(step) not in steps:
        known = ", ".join(str(s) for s in steps)
        raise UserError(f"no checkpoint for step {step} in {folder}; available: {known}")
    return folder / f"step_{int(step)}"


def _save_weights(folder: Path, policy: Policy) -> None:
    from mlx_lm.utils import save_config, save_model

    if policy.uses_adapters:
        adapters = dict(tree_flatten(policy.model.trainable_parameters()))
        mx.save_safetensors(str(folder / "adapters.safetensors"), adapters)
        (folder / "adapter_config.json").write_text(json.dumps(adapter_config(policy), indent=2))
        return
    save_model(folder, policy.model)
    save_config(dict(policy.config), folder / "config.json")
    policy.tokenizer.save_pretrained(str(folder))


def save_checkpoint(
    run_dir: Path,
    step: int,
    policy: Policy,
    optimizer: optim.Optimizer,
    state: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write checkpoint `step` atomically and prune all but the newest `keep_last`."""
    root = checkpoint_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f".step_{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _save_weights(tmp, policy)
    mx.save_safetensors(str(tmp / "optimizer.safetensors"), dict(tree_flatten(optimizer.state)))
    (tmp / TRAINER_STATE).write_text(json.dumps({**state, "step": step}, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_steps(run_dir)[:-keep_last]:
        shutil.rmtree(root / f"step_{old}", ignore_errors=True)
    return final


def load_checkpoint(folder: Path, policy: Policy, optimizer: optim.Optimizer) -> dict[str, Any]:
    """Restore weights and optimizer state from `folder`; return the trainer state."""
    state_file = folder / TRAINER_STATE
    if not state_file.is_file():
        raise UserError(f"incomplete checkpoint (no {TRAINER_STATE})", where=str(folder))
    weights_file = "adapters.safetensors" if policy.uses_adapters else "model.safetensors"
    if not (folder / weights_file).is_file():
        kind = policy.lora.fine_tune_type
        raise UserError(f"checkpoint has no {weights_file} for a {kind} run", where=str(folder))
    try:
        weights = mx.load(str(folder / weights_file))
        policy.model.load_weights(list(weights.items()), strict=not policy.uses_adapters)
        opt_state = mx.load(str(folder / "optimizer.safetensors"))
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"checkpoint does not match the model: {exc}", where=str(folder)) from None
    optimizer.state = tree_unflatten(list(opt_state.items()))
    mx.eval(policy.model.parameters(), optimizer.state)
    return json.loads(state_file.read_text())
