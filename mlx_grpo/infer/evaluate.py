"""Evaluation: accuracy (greedy pass@1, sampled pass@k and mean@k), format compliance, length
and emergence metrics on a set of prompts, batched with the same rollout engine as training.

pass@k uses the unbiased estimator of Chen et al. 2021 (arXiv 2107.03374):
    pass@k = 1 - C(n - c, k) / C(n, k)   for n samples of which c are correct.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlx_grpo.config import RolloutConfig
from mlx_grpo.data.examples import Example
from mlx_grpo.infer.emergence import emergence_metrics
from mlx_grpo.rewards.custom import RewardFn, call_safely
from mlx_grpo.rewards.format import r1_format_strict
from mlx_grpo.rewards.inputs import RewardInputs, reward_inputs
from mlx_grpo.train.rollout import (
    Sampling,
    decode_completions,
    generate_groups,
    make_rollout_sampler,
    stop_sequences,
)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples (drawn from n with c correct) is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@dataclass
class EvalResult:
    """Summary numbers plus one row per problem."""

    problems: int
    samples: int
    summary: dict[str, float] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def _generate(
    model: Any, tokenizer: Any, examples: list[Example], k: int, sampling: Sampling, batch_size: int
) -> tuple[list[str], list[int]]:
    """k completions per example (group-major), in batches of `batch_size` prompts."""
    texts, lengths = [], []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        out = generate_groups(model, [e.ids for e in chunk], k, sampling)
        texts += decode_completions(tokenizer, out)
        lengths += [len(c) for c in out.completion_ids]
    return texts, lengths


def _correct(fn: RewardFn, inputs: RewardInputs, k: int) -> np.ndarray:
    """[problems, k] whether each completion scores above 0.5 under `fn`."""
    scores = call_safely(fn, *inputs.args()).scores
    return (np.asarray(scores) > 0.5).reshape(-1, k)


def evaluate(
    model: Any,
    tokenizer: Any,
    examples: list[Example],
    correctness: RewardFn,
    *,
    samples: int = 1,
    rollout: RolloutConfig | None = None,
    batch_size: int = 8,
    format_reward: RewardFn = r1_format_strict,
) -> EvalResult:
    """Greedy pass@1 always; with samples > 1 also pass@k and mean@k at the rollout's sampling.

    `format_rate` is the share of completions `format_reward` scores above 0."""
    rollout = rollout or RolloutConfig()
    stops = stop_sequences(tokenizer, rollout.stop)
    greedy = Sampling(rollout.max_completion_length, lambda lp: lp.argmax(axis=-1), stops)
    texts, lengths = _generate(model, tokenizer, examples, 1, greedy, batch_size)
    inputs = reward_inputs(examples, texts, lengths, rollout.max_completion_length)
    correct = _correct(correctness, inputs, 1)[:, 0]
    fmt = call_safely(format_reward, *inputs.args()).scores
    result = EvalResult(problems=len(examples), samples=samples)
    result.summary = {
        "pass@1": float(correct.mean()),
        "format_rate": float(np.mean(np.asarray(fmt) > 0)),
        "mean_length": float(np.mean(lengths)),
        **emergence_metrics(texts, lambda s: len(tokenizer.encode(s, add_special_tokens=False))),
    }
    result.rows = [
        {"prompt": e.prompt, "answer": e.answer, "completion": t, "correct": bool(c)}
        for e, t, c in zip(examples, texts, correct)
    ]
    if samples > 1:
        _add_sampled(result, model, tokenizer, examples, correctness, samples, rollout, batch_size)
    return result


def _add_sampled(
    result: EvalResult,
    model: Any,
    tokenizer: Any,
    examples: list[Example],
    correctness: RewardFn,
    k: int,
    rollout: RolloutConfig,
    batch_size: int,
) -> None:
    sampling = Sampling(
        rollout.max_completion_length,
        make_rollout_sampler(rollout),
        stop_sequences(tokenizer, rollout.stop),
    )
    texts, lengths = _generate(model, tokenizer, examples, k, sampling, max(1, batch_size // k))
    inputs = reward_inputs(examples, texts, lengths, rollout.max_completion_length)
    correct = _correct(correctness, inputs, k)
    result.summary[f"pass@{k}"] = float(np.mean([pass_at_k(k, int(c.sum()), k) for c in correct]))
    result.summary[f"mean@{k}"] = float(correct.mean())
    for row, c in zip(result.rows, correct):
        row["sampled_correct"] = int(c.sum())
