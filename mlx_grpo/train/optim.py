"""AdamW with a warmup + constant/linear/cosine learning-rate schedule over optimizer updates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten

from mlx_grpo.config import OptimizerConfig, ScheduleConfig


def build_schedule(
    peak: float, cfg: ScheduleConfig, total_updates: int
) -> Callable[[mx.array], mx.array]:
    """lr(update): linear warmup to `peak`, then constant, linear or cosine decay.

    Warmup starts above 0, as mlx-lm's and TRL's do: update k < warmup uses
    peak * (k + 1) / (warmup + 1), so the first update already learns."""
    warmup = min(cfg.warmup_steps, max(total_updates - 1, 0))
    decay_steps = max(total_updates - warmup, 1)
    end = peak * cfg.min_lr_ratio
    if cfg.name == "linear":
        main = optim.linear_schedule(peak, end, decay_steps)
    elif cfg.name == "cosine":
        main = optim.cosine_decay(peak, decay_steps, end)
    else:
        main = optim.linear_schedule(peak, peak, 1)
    if warmup == 0:
        return main
    ramp = optim.linear_schedule(peak / (warmup + 1), peak, warmup)
    return optim.join_schedules([ramp, main], [warmup])


def build_optimizer(cfg: OptimizerConfig, sched: ScheduleConfig, total_updates: int) -> optim.AdamW:
    return optim.AdamW(
        learning_rate=build_schedule(cfg.learning_rate, sched, total_updates),
        betas=[cfg.beta1, cfg.beta2],
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
    )


def clipped_step(
    model: nn.Module, optimizer: optim.Optimizer, grads: Any, max_norm: float | None
) -> float:
    """Clip `grads` by global norm (when `max_norm` is set), apply one optimizer update and
    evaluate it; return the norm before clipping."""
    if max_norm is not None:
        grads, norm = optim.clip_grad_norm(grads, max_norm)
    else:
        norm = mx.sqrt(sum((g * g).sum() for _, g in tree_flatten(grads)))
    optimizer.update(model, grads)
    mx.eval(model.trainable_parameters(), optimizer.state)
    return float(norm.item())
