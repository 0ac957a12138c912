"""Reward functions: (prompts, completions, answers, **extras) -> one float per completion.

`build_rewards` resolves the config's reward list (built-in names from `library.REGISTRY`, or
`module:function` / `path/to/file.py:function`) before any model loads; `score` runs them all,
weights them and keeps per-function results for the metrics. A reward that raises or returns
NaN scores 0 for that completion and is counted (`custom.call_safely`), never stopping the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlx_grpo.config import RewardSpec
from mlx_grpo.errors import UserError
from mlx_grpo.rewards.custom import RewardFn, call_safely
from mlx_grpo.rewards.library import resolve_reward

__all__ = ["Reward", "Scores", "build_rewards", "resolve_reward", "score"]


@dataclass
class Reward:
    """A resolved reward: display name (used in metrics), weight and the callable."""

    name: str
    weight: float
    fn: RewardFn


@dataclass
class Scores:
    """Weighted totals plus what the metrics report per function."""

    total: np.ndarray  # [N]
    per_function: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # e.g. compile_error


def build_rewards(specs: list[RewardSpec]) -> list[Reward]:
    """Resolve every reward; metric names are function names, numbered when they repeat."""
    rewards, seen = [], {}
    for i, spec in enumerate(specs):
        try:
            fn = resolve_reward(spec.name, spec.params)
        except UserError as exc:
            raise UserError(str(exc), where=f"rewards[{i}]") from None
        name = spec.name.rpartition(":")[2]
        seen[name] = seen.get(name, 0) + 1
        rewards.append(Reward(name if seen[name] == 1 else f"{name}_{seen[name]}", spec.weight, fn))
    return rewards


def score(
    rewards: list[Reward],
    prompts: list[str],
    completions: list[str],
    answers: list[str],
    extras: dict[str, Any] | None = None,
) -> Scores:
    """Weighted sum of all rewards for each completion."""
    result = Scores(total=np.zeros(len(completions)))
    for reward in rewards:
        values, errors = call_safely(reward.fn, prompts, completions, answers, extras or {})
        result.per_function[reward.name] = np.asarray(values, dtype=np.float64)
        result.errors[reward.name] = errors
        counts = getattr(reward.fn, "outcome_counts", None)  # code rewards count outcomes
        if isinstance(counts, dict):
            result.outcomes[reward.name] = dict(counts)
        result.total += reward.weight * result.per_function[reward.name]
    return result
