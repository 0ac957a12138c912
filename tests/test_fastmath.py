"""The CPU exp and SwiGLU of `models.fastmath`: MLX's precision, exact gradients, no NaN at
the extremes, and a model whose MLPs use them computes what it computed before."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from mlx_lm.models.activations import swiglu as mlx_lm_swiglu

from mlx_grpo.models import fastmath


def _relative_error(fn) -> np.ndarray:
    xs = np.linspace(-87.0, 88.0, 400_001, dtype=np.float32)
    truth = np.exp(xs.astype(np.float64))
    return np.abs(np.array(fn(mx.array(xs))).astype(np.float64) - truth) / truth


def test_exp_is_as_precise_as_mlx_exp():
    ours, theirs = _relative_error(fastmath._pow2_exp), _relative_error(mx.exp)
    assert ours.max() <= 1.05 * theirs.max() and ours.max() < 5e-6
    assert ours.mean() <= 1.05 * theirs.mean()


def test_exp_gradient_is_exp():
    x = mx.array([-80.0, -3.0, 0.0, 0.5, 40.0])
    grad = mx.grad(lambda v: fastmath._pow2_exp(v).sum())(x)
    assert np.allclose(np.array(grad), np.exp(np.array(x, dtype=np.float64)), rtol=1e-5)


def test_swiglu_matches_mlx_lm_in_value_and_gradient():
    mx.random.seed(0)
    gate, up = mx.random.normal((64, 96)) * 4, mx.random.normal((64, 96))

    def loss(fn):
        return lambda g, u: (fn(g, u) * u).sum()

    assert mx.allclose(fastmath._fast_swiglu(gate, up), mlx_lm_swiglu(gate, up), atol=1e-5)
    ours = mx.grad(loss(fastmath._fast_swiglu), argnums=(0, 1))(gate, up)
    theirs = mx.grad(loss(mlx_lm_swiglu), argnums=(0, 1))(gate, up)
    for a, b in zip(ours, theirs):
        assert mx.allclose(a, b, atol=1e-4)
    compiled = mx.compile(mx.grad(loss(fastmath._fast_swiglu), argnums=(0, 1)))(gate, up)
    for a, b in zip(compiled, theirs):
        assert mx.allclose(a, b, atol=1e-4)


def test_swiglu_at_the_extremes_has_no_nan():
    """2 ** (-g log2 e) overflows for g < -88: sigmoid is 0 there, and so is its gradient."""
    g = mx.array([-200.0, -90.0, -20.0, 0.0, 20.0, 90.0, 200.0])
    value = fastmath._fast_swiglu(g, mx.ones_like(g))
    grad = mx.grad(lambda x: fastmath._fast_swiglu(x, mx.ones_like(x)).sum())(g)
    assert np.isfinite(np.array(value)).all() and np.isfinite(np.array(grad)).all()
    assert np.allclose(np.array(value), np.array(nn.silu(g)), atol=1e-6)
    assert grad.tolist()[3] == pytest.approx(0.5) and grad.tolist()[-1] == pytest.approx(1.0)


def test_models_keep_their_output_and_parameter_names(tiny_model_dir):
    from mlx_lm import load

    model, _ = load(str(tiny_model_dir))
    names = [k for k, _ in tree_flatten(model.parameters())]
    tokens = mx.array([[1, 5, 9, 3, 7]])
    before = model(tokens)
    changed = fastmath.use_fast_swiglu(model)
    assert changed == (len(model.layers) if fastmath.fast_cpu_math() else 0)
    assert [k for k, _ in tree_flatten(model.parameters())] == names
    assert mx.allclose(model(tokens), before, atol=1e-4)
    cls = type(model.layers[0].mlp)
    assert fastmath.use_fast_swiglu(model) == 0 and type(model.layers[0].mlp) is cls  # once


def test_nothing_changes_off_x86_cpu(tiny_model_dir, monkeypatch):
    from mlx_lm import load

    monkeypatch.setattr(fastmath, "X86", False)
    model, _ = load(str(tiny_model_dir))
    cls = type(model.layers[0].mlp)
    assert fastmath.use_fast_swiglu(model) == 0 and type(model.layers[0].mlp) is cls
    x = mx.array([-1.0, 2.0])
    assert mx.array_equal(fastmath.exp(x), mx.exp(x))
