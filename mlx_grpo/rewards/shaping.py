"""Reward shaping by length and repetition.

These rewards take their settings as keyword-only parameters with defaults. A config entry
such as `{name: overlong, weight: 1.0, params: {cache_length: 256}}` reaches them through
`functools.partial(fn, **params)` (see `library.bind_params`, which also rejects unknown
names). Token counts come from the trainer as the extras `completion_lengths: list[int]`
(tokens per completion, EOS included) and `max_completion_length: int` (the generation cap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlx_grpo.rewards.countdown import countdown_correct
from mlx_grpo.rewards.math import math_correct


def _lengths(
    completions: list[str], lengths: Sequence[int] | None, max_length: int | None
) -> tuple[Sequence[int], int]:
    if lengths is None or max_length is None:
        raise ValueError(
            "this reward needs the completion_lengths and max_completion_length extras "
            "(the trainer passes them)"
        )
    if len(lengths) != len(completions) or max_length <= 0:
        raise ValueError("completion_lengths must match completions; max_completion_length > 0")
    return lengths, int(max_length)


def overlong_punishment(
    prompts: list[str],
    completions: list[str],
    answers: list[str],
    *,
    completion_lengths: Sequence[int] | None = None,
    max_completion_length: int | None = None,
    cache_length: int | None = None,
    **extras: object,
) -> list[float | None]:
    """DAPO soft overlong punishment (Yu et al. 2025, arXiv 2503.14476):

        R(y) = 0                                  if |y| <= L_max - L_cache
               ((L_max - L_cache) - |y|) / L_cache  if L_max - L_cache < |y| <= L_max
               -1                                 if |y| > L_max

    L_max = max_completion_length; L_cache = cache_length (default L_max // 5, the ratio
    DAPO used: 4096 of 20480).
    """
    lengths, l_max = _lengths(completions, completion_lengths, max_completion_length)
    l_cache = max(1, cache_length if cache_length is not None else l_max // 5)
    safe_len = l_max - l_cache
    return [
        0.0 if n <= safe_len else -1.0 if n > l_max else (safe_len - n) / l_cache for n in lengths
    ]


def cosine_fn(t: float, t_max: float, at_zero: float, at_max: float) -> float:
    """CosFn of Yeo et al. 2025 (arXiv 2502.03373):
    at_max + 0.5 * (at_zero - at_max) * (1 + cos(pi * t / t_max))."""
    return at_max + 0.5 * (at_zero - at_max) * (1.0 + math.cos(math.pi * t / t_max))


def cosine_length(
    prompts: list[str],
    completions: list[str],
    answers: list[str],
    *,
    completion_lengths: Sequence[int] | None = None,
    max_completion_length: int | None = None,
    correct_short: float = 1.0,
    correct_long: float = 0.5,
    wrong_short: float = -1.0,
    wrong_long: float = -0.5,
    exceed: float = -1.0,
    checker: str = "math",
    **extras: object,
) -> list[float | None]:
    """Cosine length-scaled correctness reward ("Demystifying Long Chain-of-Thought
    Reasoning in LLMs", Yeo et al. 2025, arXiv 2502.03373).

    Correct answers earn more when short (correct_short at 0 tokens down to correct_long at
    L_max); wrong answers are punished less when long (wrong_short up to wrong_long), which
    encourages thinking longer when unsure. A completion that reaches max_completion_length
    (truncated) gets `exceed`. The paper used 2 / 1 / -10 / 0 / -10; the defaults here are
    scaled to sit beside 0..1 rewards. `checker` is "math" or "countdown". None where the
    row has no gold answer.
    """
    lengths, l_max = _lengths(completions, completion_lengths, max_completion_length)
    check = {"math": math_correct, "countdown": countdown_correct}.get(checker)
    if check is None:
        raise ValueError(f'checker must be "math" or "countdown", not {checker!r}')
    correct = check(prompts, completions, answers, **extras)
    scores: list[float | None] = []
    for n, ok in zip(lengths, correct, strict=True):
        if ok is None:
            scores.append(None)
        elif n >= l_max:
            scores.append(exceed)
        elif ok:
            scores.append(cosine_fn(n, l_max, correct_short, correct_long))
        else:
            scores.append(cosine_fn(n, l_max, wrong_short, wrong_long))
    return scores


def repeated_fraction(text: str, ngram_size: int) -> float:
    """Share of word n-grams that repeat an earlier one: 1 - unique / total (0 if too short)."""
    words = text.lower().split()
    ngrams = [tuple(words[i : i + ngram_size]) for i in range(len(words) - ngram_size + 1)]
    return 1.0 - len(set(ngrams)) / len(ngrams) if ngrams else 0.0


def repetition_penalty(
    prompts: list[str],
    completions: list[str],
    answers: list[str],
    *,
    ngram_size: int = 3,
    max_penalty: float = -1.0,
    **extras: object,
) -> list[float | None]:
    """N-gram repetition penalty (Yeo et al. 2025, arXiv 2502.03373):
    max_penalty * (1 - unique n-grams / n-grams), over whitespace-separated words.
    0 for text without repeats, approaching max_penalty (<= 0) for a loop."""
    if max_penalty > 0 or ngram_size < 1:
        raise ValueError("repetition_penalty needs max_penalty <= 0 and ngram_size >= 1")
    return [max_penalty * repeated_fraction(c, ngram_size) for c in completions]
