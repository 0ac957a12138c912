"""User reward functions named in the config, and calling any reward without risking the run.

A config entry names a function as `module.path:function` (importable from the current
environment) or `path/to/file.py:function` (relative to the working directory). It must
have this signature, and may be `async def`:

    def my_reward(prompts: list[str], completions: list[str], answers: list[str],
                  **extras: list) -> list[float | None]

`extras` holds the dataset's other columns, one list per column aligned with the
completions (e.g. `numbers=[[...], ...]`), plus `completion_lengths: list[int]` and
`max_completion_length: int` from the trainer; accept `**extras` to ignore what you do not
use. Return one float per completion; None means "not applicable" and counts as 0.0.

`call_safely` is how the trainer calls every reward: an exception, a NaN or infinite
value, a non-number, a wrong-length list or a call past its time limit (`limits.py`) scores
the affected completions 0.0 and is counted; the first time a reward has each kind of
problem, one warning names the reward and the problem.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from mlx_grpo.errors import UserError
from mlx_grpo.rewards.limits import DEFAULT_LIMIT_S, RewardTimeout, TimeLimited

logger = logging.getLogger(__name__)

RewardFn = Callable[..., Any]


def _split_spec(spec: str) -> tuple[str, str]:
    target, sep, name = spec.strip().rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise UserError(
            f"reward {spec!r} is not `module.path:function` or `path/to/file.py:function`"
        )
    return target, name


def _load_file(path: Path, spec: str) -> ModuleType:
    if not path.is_file():
        raise UserError(f"reward file not found: {path} (from {spec!r})")
    module_name = f"mlx_grpo_user_reward_{path.stem}_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise UserError(f"cannot load {path} as Python (from {spec!r})")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise UserError(f"loading reward file {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _load_module(name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise UserError(
                f"no module named {name!r} for reward {spec!r}; check the name, or give a "
                "file as path/to/file.py:function"
            ) from exc
        raise UserError(f"importing {name} for reward {spec!r} failed: {exc}") from exc
    except Exception as exc:
        raise UserError(f"importing {name} for reward {spec!r} failed: {exc}") from exc


def load_reward(spec: str) -> RewardFn:
    """The function named by `module.path:function` or `path/to/file.py:function`."""
    target, name = _split_spec(spec)
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    module = _load_file(Path(target), spec) if is_file else _load_module(target, spec)
    if not hasattr(module, name):
        public = sorted(n for n, v in vars(module).items() if callable(v) and n[0] != "_")
        raise UserError(
            f"{target} has no function {name!r} (reward {spec!r}); it defines: "
            + (", ".join(public) or "no public functions")
        )
    fn = getattr(module, name)
    if not callable(fn):
        raise UserError(f"{spec!r} names a {type(fn).__name__}, not a function")
    return fn


class Unscored(float):
    """A 0.0 score that counts as an error, with the reason (a metrics outcome name).

    A reward returns it for a completion it could not score, e.g. `math_correct` for an answer
    whose check ran past its time budget: `Unscored("timeout")`."""

    reason: str
    detail: str

    def __new__(cls, reason: str, detail: str = "") -> Unscored:
        score = super().__new__(cls, 0.0)
        score.reason, score.detail = reason, detail or "the reward could not score it"
        return score


class Called(NamedTuple):
    """One reward call: a score per completion (0.0 where it failed), how many failed, and
    why, by outcome (`timeout`, or a reward's own `Unscored` reasons)."""

    scores: list[float]
    errors: int
    outcomes: dict[str, int]


def _clean(result: Any, n: int) -> tuple[Called, str]:
    """Scores with bad entries as 0.0, how many were bad, and the first problem."""
    if isinstance(result, (str, bytes, Mapping)) or not hasattr(result, "__iter__"):
        return Called([0.0] * n, n, {}), f"returned {type(result).__name__}, expected a list"
    items = list(result)
    if len(items) != n:
        return Called([0.0] * n, n, {}), f"returned {len(items)} values for {n} completions"
    scores, outcomes, errors, problem = [], {}, 0, ""
    for item in items:
        if isinstance(item, Unscored):
            outcomes[item.reason] = outcomes.get(item.reason, 0) + 1
            problem = problem or f"{item.reason}: {item.detail}"
        value = None if item is None or isinstance(item, (str, bytes)) else _as_float(item)
        bad = isinstance(item, Unscored) or (
            item is not None and (value is None or not math.isfinite(value))
        )
        errors += bad
        problem = problem or (f"returned {item!r}" if bad else "")
        scores.append(0.0 if bad or value is None else value)
    return Called(scores, errors, outcomes), problem


def _as_float(item: Any) -> float | None:
    try:
        return float(item)
    except (TypeError, ValueError):
        return None


def call_safely(
    fn: RewardFn,
    prompts: list[str],
    completions: list[str],
    answers: list[str],
    extras: Mapping[str, Any] | None = None,
    *,
    limit: float | None = DEFAULT_LIMIT_S,
    name: str = "",
) -> Called:
    """Call a reward (awaiting it if async) under a time limit of `limit` seconds per call
    (None: no limit); failed completions score 0.0 and are counted, never raised.

    `fn` may already be a `TimeLimited` (the trainer keeps one per reward, so a call stuck
    past its limit is remembered). Each kind of problem is logged once per reward."""
    n = len(completions)
    call = fn if isinstance(fn, TimeLimited) else TimeLimited(fn, limit)
    try:
        result = call(prompts, completions, answers, **dict(extras or {}))
    except RewardTimeout as exc:
        called = Called([0.0] * n, n, {"timeout": n})
        problem = f"call timeout: {exc}; rewards[].timeout in the config allows longer"
    except Exception as exc:
        called, problem = Called([0.0] * n, n, {}), f"raised {type(exc).__name__}: {exc}"
    else:
        called, problem = _clean(result, n)
    if called.errors:
        _warn_once(call, name or _name_of(fn), problem, called.errors, n)
    return called


def _name_of(fn: RewardFn) -> str:
    fn = getattr(fn, "fn", fn)  # a TimeLimited's function
    return getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", repr(fn))


def _warn_once(call: TimeLimited, name: str, problem: str, errors: int, n: int) -> None:
    """The first time a reward has this kind of problem it is a warning; later, debug."""
    kind = problem.split(":")[0].split(" (")[0][:60]
    level = logging.DEBUG if kind in call.warned else logging.WARNING
    call.warned.add(kind)
    logger.log(
        level,
        "reward %s: %d of %d completions scored 0 (%s); counted in rewards/%s/errors, "
        "later cases of this kind are not repeated here",
        name, errors, n, problem, name,
    )  # fmt: skip
