"""Reward functions: (prompts, completions, answers, **extras) -> one float per completion.

`build_rewards` resolves the config's reward list (built-in names from `library.REGISTRY`, or
`module:function` / `path/to/file.py:function`) before any model loads; `score` runs them all,
weights them and keeps per-function results for the metrics. A reward that raises, returns
NaN or runs past its time limit (`rewards[i].timeout`, default 60 s per call; `limits.py`)
scores 0 for the affected completions and is counted (`custom.call_safely`), never stopping
the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlx_grpo.config import RewardSpec
from mlx_grpo.errors import UserError
from mlx_grpo.rewards.custom import RewardFn, call_safely
from mlx_grpo.rewards.library import resolve_reward
from mlx_grpo.rewards.limits import DEFAULT_LIMIT_S, TimeLimited

__all__ = ["Reward", "Scores", "build_rewards", "check_rows", "resolve_reward", "score", "warm_up"]


@dataclass
class Reward:
    """A resolved reward: display name (used in metrics), weight, the callable and its time
    limit per call (`call` runs `fn` under it and remembers a call stuck past it)."""

    name: str
    weight: float
    fn: RewardFn
    limit: float = DEFAULT_LIMIT_S

    def __post_init__(self) -> None:
        self.call = TimeLimited(self.fn, self.limit)


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
        limit = spec.timeout or getattr(fn, "default_timeout", DEFAULT_LIMIT_S)
        name = name if seen[name] == 1 else f"{name}_{seen[name]}"
        rewards.append(Reward(name, spec.weight, fn, limit))
    return rewards


def check_rows(rewards: list[Reward], rows: list[dict]) -> None:
    """Let rewards check the loaded rows before the model loads (`code_tests`: each row's
    compiler runs): a reward function's optional `check_rows(rows, params)` attribute."""
    for reward in rewards:
        check = getattr(reward.fn, "check_rows", None)  # bind_params' wrapper keeps it
        if callable(check):
            check(rows, dict(getattr(reward.fn, "keywords", {}) or {}))


def warm_up(rewards: list[Reward]) -> None:
    """Let rewards prepare before the first step (`math_correct` starts its checker
    process in the background): a reward function's optional `warm_up()` attribute."""
    for reward in rewards:
        prepare = getattr(reward.fn, "warm_up", None)  # bind_params' wrapper keeps it
        if callable(prepare):
            prepare()


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
        called = call_safely(
            reward.call, prompts, completions, answers, extras or {}, name=reward.name
        )
        result.per_function[reward.name] = np.asarray(called.scores, dtype=np.float64)
        result.errors[reward.name] = called.errors
        outcomes = dict(called.outcomes)
        counts = getattr(reward.fn, "outcome_counts", None)  # code rewards count outcomes
        if isinstance(counts, dict) and len(called.outcomes) == 0:  # not stale from a timeout
            outcomes = dict(counts)
        if outcomes:
            result.outcomes[reward.name] = outcomes
        result.total += reward.weight * result.per_function[reward.name]
    return result
