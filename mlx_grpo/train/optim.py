"""AdamW with a warmup + constant/linear/cosine learning-rate schedule over optimizer updates."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import mlx.optimizers as optim

from mlx_grpo.config import OptimizerConfig, ScheduleConfig


def build_schedule(
    peak: float, cfg: ScheduleConfig, total_updates: int
) -> Callable[[mx.array], mx.array]:
    """lr(update): linear warmup from 0 to `peak`, then constant, linear or cosine decay."""
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
    return optim.join_schedules([optim.linear_schedule(0.0, peak, warmup), main], [warmup])


def build_optimizer(cfg: OptimizerConfig, sched: ScheduleConfig, total_updates: int) -> optim.AdamW:
    return optim.AdamW(
        learning_rate=build_schedule(cfg.learning_rate, sched, total_updates),
        betas=[cfg.beta1, cfg.beta2],
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
    )
