"""The MLX objective against an independent NumPy implementation of its formulas.

The reference below is written from the formulas alone (float64, plain loops where clearer);
gradients of the reference are taken by central finite differences, so nothing is shared with
the MLX code but the inputs.
"""

from __future__ import annotations

import itertools
import math
import statistics

import mlx.core as mx
import numpy as np
import pytest

from mlx_grpo.train.objective import (
    LossSettings,
    group_advantages,
    grpo_loss,
    informative_groups,
    normalizer,
)

# ----------------------------------------------------------------------------- reference


def ref_advantages(rewards: list[float], g: int, scale: str) -> list[float]:
    out = []
    all_std = statistics.stdev(rewards)
    for start in range(0, len(rewards), g):
        group = rewards[start : start + g]
        mean = sum(group) / g
        std = {"group": statistics.stdev(group), "batch": all_std, "none": None}[scale]
        out += [(r - mean) / (std + 1e-4) if std is not None else r - mean for r in group]
    return out


def ref_loss(logp, old, ref, adv, mask, s: LossSettings, max_len: int) -> float:
    """Total loss of one batch, straight from the formulas (float64)."""
    n, t = logp.shape
    per_tok = np.zeros((n, t))
    for i in range(n):
        m = mask[i] > 0
        lr = np.where(m, logp[i] - old[i], 0.0)
        if s.level == "sequence":
            lr = np.full(t, lr[m].mean() if m.any() else 0.0)
        for j in range(t):
            r = math.exp(lr[j])
            r_cap = min(r, s.delta) if s.delta is not None else r
            r_clip = min(max(r, 1 - s.epsilon_low), 1 + s.epsilon_high)
            per_tok[i, j] = -min(r_cap * adv[i], r_clip * adv[i])
            if s.beta > 0 and m[j]:
                d = ref[i, j] - logp[i, j]
                per_tok[i, j] += s.beta * (math.exp(d) - d - 1)
    masked = per_tok * mask
    if s.loss_type == "grpo":
        return float(np.mean([masked[i].sum() / max(mask[i].sum(), 1) for i in range(n)]))
    if s.loss_type == "bnpo":
        return float(masked.sum() / max(mask.sum(), 1))
    if s.loss_type == "dr_grpo":
        return float(masked.sum() / (n * max_len))
    return float(masked.sum() / max(mask.sum(), 1))  # dapo, one micro-batch


def numeric_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (f(up) - f(down)) / (2 * h)
    return g


# ----------------------------------------------------------------------------- helpers


def mlx_loss_and_grad(logp, old, ref, adv, mask, s: LossSettings, max_len: int, mu_one: bool):
    norm = normalizer(s.loss_type, mask, mask.shape[0], float(mask.sum()), 1, max_len)

    def f(lp):
        loss, _ = grpo_loss(
            lp,
            None if mu_one else mx.array(old, dtype=mx.float32),
            mx.array(ref, dtype=mx.float32),
            mx.array(adv, dtype=mx.float32),
            mx.array(mask, dtype=mx.float32),
            mx.array(norm, dtype=mx.float32),
            s,
        )
        return loss

    value, grad = mx.value_and_grad(f)(mx.array(logp, dtype=mx.float32))
    return float(value.item()), np.array(grad)


def random_case(rng: np.random.Generator, n: int = 6, t: int = 5, spread: float = 0.3):
    logp = rng.uniform(-3, -0.1, size=(n, t))
    old = logp + rng.normal(0, spread, size=(n, t))
    ref = logp + rng.normal(0, spread, size=(n, t))
    lengths = rng.integers(1, t + 1, size=n)
    mask = (np.arange(t)[None, :] < lengths[:, None]).astype(np.float64)
    rewards = rng.integers(0, 3, size=n).astype(float)
    return logp, old, ref, mask, rewards


LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo"]
LEVELS = ["token", "sequence"]
SCALES = ["group", "batch", "none"]


@pytest.mark.parametrize(
    ("loss_type", "level", "scale", "beta", "mu"),
    list(itertools.product(LOSS_TYPES, LEVELS, SCALES, [0.0, 0.1], [1, 3])),
)
def test_matches_numpy_reference(loss_type, level, scale, beta, mu):
    rng = np.random.default_rng(hash((loss_type, level, scale, beta, mu)) % 2**32)
    logp, old, ref, mask, rewards = random_case(rng)
    g = 3
    adv_ref = ref_advantages(list(rewards), g, scale)
    adv = group_advantages(rewards, g, scale)
    np.testing.assert_allclose(adv, adv_ref, rtol=1e-10, atol=1e-12)
    s = LossSettings(loss_type, level, 0.2, 0.28, 1.5 if mu > 1 else None, beta)
    if mu == 1:
        old = logp.copy()  # with mu = 1 the old policy is the current one (gradient stopped)
    max_len = 8
    value, grad = mlx_loss_and_grad(logp, old, ref, adv, mask, s, max_len, mu_one=mu == 1)
    expected = ref_loss(logp, old, ref, adv, mask, s, max_len)
    assert value == pytest.approx(expected, rel=1e-4, abs=1e-6)
    # with mu = 1, old = sg(logp): the old log-probs are a constant equal to logp
    expected_grad = numeric_grad(lambda lp: ref_loss(lp, old, ref, adv, mask, s, max_len), logp)
    np.testing.assert_allclose(grad, expected_grad, rtol=2e-3, atol=2e-5)


# ----------------------------------------------------------------------------- by hand


def _loss(logp, old, adv, mask, s, ref=None):
    norm = normalizer(s.loss_type, np.array(mask), len(mask), float(np.sum(mask)), 1, 4)
    loss, stats = grpo_loss(
        mx.array(logp),
        None if old is None else mx.array(old),
        None if ref is None else mx.array(ref),
        mx.array(adv),
        mx.array(mask),
        mx.array(norm),
        s,
    )
    return loss, stats


def test_two_completion_group_by_hand():
    # rewards 1 and 0: mean 0.5, sample std sqrt(0.5) -> A = +-0.5 / (0.70711 + 1e-4)
    adv = group_advantages(np.array([1.0, 0.0]), 2, "group")
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    np.testing.assert_allclose(adv, [a, -a])
    # mu = 1: ratio 1, so the dapo loss is -(sum of A over tokens) / tokens
    s = LossSettings("dapo", "token", 0.2, 0.2, None, 0.0)
    logp = [[-1.0, -2.0], [-0.5, -0.5]]
    mask = [[1.0, 1.0], [1.0, 0.0]]
    loss, _ = _loss(logp, None, adv.astype(np.float32), mask, s)
    assert loss.item() == pytest.approx(-(2 * a - a) / 3, rel=1e-5)


def test_clipping_active_on_both_sides():
    s = LossSettings("bnpo", "token", 0.2, 0.28, None, 0.0)
    # token 0: ratio e^0.5 = 1.65 > 1.28 with A > 0 -> clipped high, loss -1.28 A
    # token 1: ratio e^-0.5 = 0.61 < 0.8 with A < 0 -> clipped low, loss -0.8 A
    logp = [[0.0], [0.0]]
    old = [[-0.5], [0.5]]
    loss, stats = _loss(logp, old, [1.0, -1.0], [[1.0], [1.0]], s)
    assert loss.item() == pytest.approx((-1.28 * 1.0 + -0.8 * -1.0) / 2, rel=1e-5)
    assert stats["clip_high_sum"].item() == 1
    assert stats["clip_low_sum"].item() == 1
    assert stats["clip_region_sum"].item() == 2
    # clipped tokens carry no gradient
    grad = mx.grad(
        lambda lp: grpo_loss(
            lp, mx.array(old), None, mx.array([1.0, -1.0]), mx.ones((2, 1)), mx.array(2.0), s
        )[0]
    )(mx.array(logp))
    assert np.abs(np.array(grad)).max() == 0


def test_zero_variance_group_contributes_nothing():
    rewards = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    keep = informative_groups(rewards, 3)
    assert keep.tolist() == [False, True]
    adv = group_advantages(rewards, 3, "group")
    np.testing.assert_allclose(adv[:3], 0.0)  # all equal: zero advantage, no gradient either
    s = LossSettings("grpo", "token", 0.2, 0.2, None, 0.0)
    grad = mx.grad(
        lambda lp: grpo_loss(
            lp, None, None, mx.array(adv, dtype=mx.float32), mx.ones((6, 2)), mx.array(6.0), s
        )[0]
    )(mx.zeros((6, 2)))
    assert np.abs(np.array(grad)[:3]).max() == 0
    assert np.abs(np.array(grad)[3:]).max() > 0


@pytest.mark.parametrize("level", LEVELS)
def test_padding_never_produces_nan(level):
    s = LossSettings("dapo", level, 0.2, 0.2, 2.0, 0.5)
    # garbage in padded slots: huge differences that would overflow exp() if not masked
    logp = mx.array([[-1.0, 1e4, -1e4], [-2.0, -1.0, 3e4]])
    old = mx.array([[-1.1, -1e4, 1e4], [-2.0, -1.2, -3e4]])
    ref = mx.array([[-0.9, 1e4, -1e4], [-1.5, -1.1, 0.0]])
    mask = mx.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])

    def f(lp):
        return grpo_loss(lp, old, ref, mx.array([0.5, -0.5]), mask, mx.array(3.0), s)[0]

    value, grad = mx.value_and_grad(f)(logp)
    assert math.isfinite(value.item())
    assert np.isfinite(np.array(grad)).all()
    assert np.array(grad)[0, 1:].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_micro_batches_sum_to_the_whole_batch(loss_type):
    """Summing micro-batch losses gives the one-batch loss: grpo, dr_grpo and dapo are defined
    on the whole generation batch, so gradient accumulation must not change them."""
    rng = np.random.default_rng(7)
    logp, old, _, mask, rewards = random_case(rng, n=8)
    adv = group_advantages(rewards, 4, "group").astype(np.float32)
    s = LossSettings(loss_type, "token", 0.2, 0.2, None, 0.0)
    total = float(mask.sum())

    def part(rows: slice, micro: int) -> float:
        m = mask[rows]
        norm = normalizer(loss_type, m, 8, total, micro, 6)
        args = [mx.array(x[rows], dtype=mx.float32) for x in (logp, old)]
        loss, _ = grpo_loss(
            args[0],
            args[1],
            None,
            mx.array(adv[rows]),
            mx.array(m, dtype=mx.float32),
            mx.array(norm),
            s,
        )
        return loss.item()

    whole = part(slice(0, 8), 1)
    assert part(slice(0, 4), 2) + part(slice(4, 8), 2) == pytest.approx(whole, rel=1e-5)
