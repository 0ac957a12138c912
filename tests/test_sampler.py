"""The inverse-CDF sampler draws softmax(z / T), never a token of zero probability."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlx_grpo.config import RolloutConfig
from mlx_grpo.train import rollout, sampler

DRAWS = 200_000


def _chi2(draws: np.ndarray, p: np.ndarray) -> tuple[float, int]:
    """Pearson's statistic over the tokens expected more than 5 times, and its dof."""
    counts = np.bincount(draws, minlength=p.size)
    expected = p * draws.size
    seen = expected > 5
    return float(((counts[seen] - expected[seen]) ** 2 / expected[seen]).sum()), int(seen.sum() - 1)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_draws_follow_the_tempered_softmax(temperature: float) -> None:
    """700 tokens (not a multiple of the block), every 7th impossible: Pearson's statistic
    within 5 standard deviations of its mean, and no impossible token drawn."""
    vocab = 700
    rng = np.random.default_rng(0)
    logits = mx.array(rng.normal(size=(1, vocab)).astype(np.float32) * 2)
    logits = mx.where(mx.arange(vocab) % 7 == 0, -mx.inf, logits)
    p = np.array(mx.softmax(logits / temperature, axis=-1))[0].astype(np.float64)
    mx.random.seed(0)
    draw = sampler.inverse_cdf_sampler(temperature)
    drawn = draw(mx.broadcast_to(logits, (DRAWS, vocab)))
    assert drawn.dtype == mx.uint32  # as mlx-lm's samplers: one input dtype for the next step
    draws = np.array(drawn)
    assert draws.min() >= 0 and draws.max() < vocab
    assert not np.isin(draws, np.flatnonzero(p == 0)).any()
    chi2, dof = _chi2(draws, p)
    assert chi2 < dof + 5 * np.sqrt(2 * dof), (chi2, dof)


def test_mass_in_one_token_or_the_last_block() -> None:
    """A certain token is always drawn, wherever it sits; mass only in the last (padded)
    block never lands on the padding."""
    vocab = 3 * sampler.BLOCK + 10
    for where in (0, vocab // 2, vocab - 1):
        z = mx.where(mx.arange(vocab) == where, 0.0, -mx.inf)[None] * mx.ones((64, 1))
        assert set(np.array(sampler.draw(z)).tolist()) == {where}
    z = mx.where(mx.arange(vocab) >= 3 * sampler.BLOCK, 0.0, -mx.inf)[None] * mx.ones((4096, 1))
    got = np.array(sampler.draw(z))
    assert got.min() >= 3 * sampler.BLOCK and got.max() < vocab
    assert len(set(got.tolist())) == 10  # all ten live tokens, equally likely, are drawn


def test_used_for_plain_temperature_sampling_on_a_fast_cpu(monkeypatch) -> None:
    monkeypatch.setattr(rollout, "fast_cpu_math", lambda: True)
    plain = rollout.make_rollout_sampler(RolloutConfig(temperature=0.7))
    assert plain.__qualname__.startswith("inverse_cdf_sampler")
    for other in (dict(top_k=5), dict(top_p=0.9), dict(min_p=0.1), dict(temperature=0.0)):
        chosen = rollout.make_rollout_sampler(RolloutConfig(**other))
        assert not chosen.__qualname__.startswith("inverse_cdf_sampler"), other
    monkeypatch.setattr(rollout, "fast_cpu_math", lambda: False)
    mlx_lm = rollout.make_rollout_sampler(RolloutConfig(temperature=0.7))
    assert not mlx_lm.__qualname__.startswith("inverse_cdf_sampler")
