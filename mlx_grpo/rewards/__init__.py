"""Reward functions: (prompts, completions, answers, **extras) -> one float per completion.

`build_rewards` resolves the config's reward list (built-in names or `module:function` /
`path/to/file.py:function`) before any model loads; `score` runs them all, weights them and
keeps per-function results for the metrics. A reward that raises or returns NaN scores 0 for
that completion and is counted, never stopping the run.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlx_grpo.config import RewardSpec
from mlx_grpo.errors import UserError
from mlx_grpo.rewards import basic

RewardFn = Callable[..., list]

BUILTINS: dict[str, RewardFn] = {
    "exact_number": basic.exact_number,
    "r1_format": basic.r1_format,
}


@dataclass
class Reward:
    """A resolved reward: display name, weight and the callable."""

    name: str
    weight: float
    fn: RewardFn


@dataclass
class Scores:
    """Weighted totals plus what the metrics report per function."""

    total: np.ndarray  # [N]
    per_function: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


def _import_target(spec: str) -> RewardFn:
    target, _, name = spec.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UserError(f"reward file not found: {target}", where="rewards")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)  # type: ignore[union-attr]
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            msg = f"cannot import reward module {target!r}: {exc}"
            raise UserError(msg, where="rewards") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise UserError(f"{target} has no function {name!r}", where="rewards")
    return fn


def resolve(spec: RewardSpec) -> Reward:
    """Look up a built-in by name, or import `module:function` / `file.py:function`."""
    if spec.name in BUILTINS:
        fn = BUILTINS[spec.name]
    elif ":" in spec.name:
        fn = _import_target(spec.name)
    else:
        known = ", ".join(sorted(BUILTINS))
        raise UserError(f"unknown reward {spec.name!r}; built-ins: {known}", where="rewards")
    if spec.params:
        fn = functools.partial(fn, **spec.params)
    return Reward(spec.name, spec.weight, fn)


def build_rewards(specs: list[RewardSpec]) -> list[Reward]:
    return [resolve(s) for s in specs]


def _call(fn: RewardFn, n: int, args: tuple, extras: dict[str, Any]) -> tuple[np.ndarray, int]:
    """Run one reward; failures and NaN become 0 and are counted."""
    try:
        values = list(fn(*args, **extras))
    except Exception:
        return np.zeros(n), n
    if len(values) != n:
        return np.zeros(n), n
    out, bad = np.zeros(n), 0
    for i, v in enumerate(values):
        ok = isinstance(v, (int, float)) and math.isfinite(float(v))
        out[i], bad = (float(v), bad) if ok else (0.0, bad + (v is not None))
    return out, bad


def score(
    rewards: list[Reward],
    prompts: list[str],
    completions: list[str],
    answers: list[str],
    extras: dict[str, Any] | None = None,
) -> Scores:
    """Weighted sum of all rewards for each completion."""
    n = len(completions)
    result = Scores(total=np.zeros(n))
    for reward in rewards:
        values, errors = _call(reward.fn, n, (prompts, completions, answers), extras or {})
        result.per_function[reward.name] = values
        result.errors[reward.name] = errors
        result.total += reward.weight * values
    return result
