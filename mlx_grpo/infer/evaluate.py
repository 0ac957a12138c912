"""Evaluation: accuracy (greedy pass@1, sampled pass@k and mean@k), format compliance, length
and emergence metrics on a set of prompts, batched with the same rollout engine as training.

pass@k uses the unbiased estimator of Chen et al. 2021 (arXiv 2107.03374):
    pass@k = 1 - C(n - c, k) / C(n, k)   for n samples of which c are correct,
averaged over problems; with n = `samples` it is reported for every k of `pass_ks` (mean@n
is the sampled pass@1). Code rows (rows with hidden `tests`) are judged by `code_tests`
with `all_or_nothing`: a problem counts as solved only when every hidden test passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlx_grpo.config import RolloutConfig
from mlx_grpo.data.examples import Example
from mlx_grpo.infer.emergence import emergence_metrics
from mlx_grpo.rewards import resolve_reward
from mlx_grpo.rewards.custom import RewardFn, call_safely
from mlx_grpo.rewards.format import r1_format_strict
from mlx_grpo.rewards.inputs import RewardInputs, reward_inputs
from mlx_grpo.train.rollout import (
    Sampling,
    decode_completions,
    generate_groups,
    make_rollout_sampler,
    shift_invariant,
    stop_sequences,
)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples (drawn from n with c correct) is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_at_k_mean(n: int, correct: list[int], k: int) -> float:
    """Mean pass@k over problems, each with n samples of which correct[i] are right."""
    return float(np.mean([pass_at_k(n, c, k) for c in correct])) if correct else 0.0


AUTO = "auto"
CODE_REWARD = "code_tests"


def is_code(examples: list[Example]) -> bool:
    """Whether the rows are code tasks (they carry hidden `tests`)."""
    return any("tests" in e.extras for e in examples)


def correctness_name(flag: str, examples: list[Example]) -> str:
    """--reward auto: code_tests for code rows, math_correct otherwise."""
    if flag != AUTO:
        return flag
    return CODE_REWARD if is_code(examples) else "math_correct"


def correctness_reward(name: str, params: dict[str, Any] | None = None) -> RewardFn:
    """The reward that judges correctness; code_tests counts only all tests passed."""
    params = dict(params or {})
    if name == CODE_REWARD:
        params["all_or_nothing"] = True
    return resolve_reward(name, params)


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
    pass_ks: tuple[int, ...] = (),
) -> EvalResult:
    """Greedy pass@1 always; with samples n > 1 also mean@n (the sampled pass@1) and pass@k
    for each k > 1 of `pass_ks` (default: k = n) from the n samples at the rollout's sampling.

    `format_rate` is the share of completions `format_reward` scores above 0."""
    rollout = rollout or RolloutConfig()
    stops = stop_sequences(tokenizer, rollout.stop)
    greedy = Sampling(
        rollout.max_completion_length, lambda lp: lp.argmax(axis=-1), stops, shift_invariant=True
    )
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
        ks = tuple(k for k in pass_ks if 1 < k <= samples) if pass_ks else (samples,)
        correct = _sampled(model, tokenizer, examples, correctness, samples, rollout, batch_size)
        counts = [int(c.sum()) for c in correct]
        result.summary |= {f"pass@{k}": pass_at_k_mean(samples, counts, k) for k in ks}
        result.summary[f"mean@{samples}"] = float(correct.mean())
        for row, c in zip(result.rows, counts):
            row["sampled_correct"] = c
    return result


def _sampled(
    model: Any,
    tokenizer: Any,
    examples: list[Example],
    correctness: RewardFn,
    k: int,
    rollout: RolloutConfig,
    batch_size: int,
) -> np.ndarray:
    """[problems, k]: whether each of k sampled completions per example is correct."""
    sampling = Sampling(
        rollout.max_completion_length,
        make_rollout_sampler(rollout),
        stop_sequences(tokenizer, rollout.stop),
        shift_invariant=shift_invariant(rollout),
    )
    texts, lengths = _generate(model, tokenizer, examples, k, sampling, max(1, batch_size // k))
    inputs = reward_inputs(examples, texts, lengths, rollout.max_completion_length)
    return _correct(correctness, inputs, k)
