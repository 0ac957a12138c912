"""The built-in rewards by config name, and binding config parameters to a reward.

A config reward entry is a name from `REGISTRY` or a custom spec (`module.path:function`,
`path/to/file.py:function`), with an optional `params` mapping. `resolve_reward` turns it
into one callable with the standard signature; parameters are bound with
`functools.partial`, after checking that the function really has them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from mlx_grpo.errors import UserError
from mlx_grpo.rewards.basic import exact_number
from mlx_grpo.rewards.code import code_tests
from mlx_grpo.rewards.code_format import code_block
from mlx_grpo.rewards.countdown import countdown_correct
from mlx_grpo.rewards.custom import load_reward
from mlx_grpo.rewards.format import answer_tag, r1_format_graded, r1_format_strict, tag_count
from mlx_grpo.rewards.inputs import ENGINE_EXTRAS
from mlx_grpo.rewards.math import math_correct
from mlx_grpo.rewards.shaping import cosine_length, overlong_punishment, repetition_penalty
from mlx_grpo.rewards.test_generation import test_generation

REGISTRY: dict[str, Callable[..., list[float | None]]] = {
    "exact_number": exact_number,
    "math_correct": math_correct,
    "r1_format": r1_format_graded,
    "r1_format_strict": r1_format_strict,
    "tag_count": tag_count,
    "answer_tag": answer_tag,
    "countdown": countdown_correct,
    "overlong": overlong_punishment,
    "cosine_length": cosine_length,
    "repetition": repetition_penalty,
    "code_tests": code_tests,
    "code_block": code_block,
    "test_generation": test_generation,
}

# Extras the engine fills in itself (`inputs.EngineExtras`); a config cannot set them.
TRAINER_EXTRAS = ENGINE_EXTRAS


def parameter_names(fn: Callable[..., Any]) -> list[str]:
    """Settable parameters: keyword parameters after (prompts, completions, answers)."""
    params = list(inspect.signature(fn).parameters.values())[3:]
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in kinds and p.name not in TRAINER_EXTRAS]


def bind_params(
    fn: Callable[..., Any], params: Mapping[str, Any] | None, *, name: str = ""
) -> Callable[..., Any]:
    """`functools.partial(fn, **params)`, with a UserError naming any unknown parameter.

    Built-in rewards only take the parameters they declare; a custom function with
    `**extras` may receive any. A built-in reward's `check_params(params)` attribute, where it
    has one, checks the values too (raising UserError) before any model loads.
    """
    check = getattr(fn, "check_params", None)  # a reward's own checks of its values
    if callable(check) and fn in REGISTRY.values():
        check(dict(params or {}))
    if not params:
        return fn
    known = parameter_names(fn)
    takes_any = any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()
    )
    strict = fn in REGISTRY.values() or not takes_any
    unknown = sorted(set(params) - set(known)) if strict else []
    if unknown:
        accepted = ", ".join(known) or "none"
        raise UserError(
            f"reward {name or fn.__name__!r} has no parameter(s) {unknown}; it accepts: {accepted}"
        )
    return functools.wraps(fn)(functools.partial(fn, **params))


def resolve_reward(spec: str, params: Mapping[str, Any] | None = None) -> Callable[..., Any]:
    """A registry name or custom spec, with its config params bound."""
    if spec in REGISTRY:
        return bind_params(REGISTRY[spec], params, name=spec)
    if ":" not in spec:
        names = ", ".join(sorted(REGISTRY))
        raise UserError(
            f"unknown reward {spec!r}; built-in rewards: {names}; or give "
            "module.path:function or path/to/file.py:function"
        )
    return bind_params(load_reward(spec), params, name=spec)
