"""exp and SwiGLU for MLX's CPU backend on x86-64, at MLX's own precision in half the time.

The `mlx[cpu]` wheel for x86-64 is built for a baseline CPU: its exp (a Cephes polynomial,
used by exp, sigmoid, softmax) runs one element at a time with library calls for every fused
multiply-add, ~14 ns an element on this project's benchmark box, while the C library's pow
takes ~6 ns. exp(x) = 2 ** (x * log2 e) is the same computation MLX does (the same single
rounding of x * log2 e, then 2 ** y): the relative error is the same, ~1e-6 at most over
[-87, 88] (tests/test_fastmath.py). Training spends seconds a step in exp on such a CPU: the
vocabulary-wide exp of every scored position, and the sigmoid in every SwiGLU MLP (forward,
reference pass, and again in the backward pass).

`exp` and `swiglu` are custom functions with their own gradients (d exp = exp, d silu =
s (1 + g (1 - s)) with s = sigmoid g, from s, never from an overflowing 2 ** y). They are
used only where `fast_cpu_math()` holds (MLX's CPU device on x86-64); elsewhere (Metal,
CUDA, Apple Silicon CPUs, whose exp is vectorized) MLX's own functions run.
"""

from __future__ import annotations

import platform

import mlx.core as mx
import mlx.nn as nn

LOG2E = 1.4426950408889634
X86 = platform.machine().lower() in ("x86_64", "amd64")


def fast_cpu_math() -> bool:
    """Whether this process computes on MLX's CPU device of an x86-64 machine."""
    return X86 and mx.default_device() == mx.cpu


@mx.custom_function
def _pow2_exp(x: mx.array) -> mx.array:
    return mx.power(mx.array(2.0, dtype=x.dtype), x * LOG2E)


@_pow2_exp.vjp
def _pow2_exp_vjp(primals, cotangent, output):  # noqa: ANN001, ANN202 (MLX's vjp signature)
    return (cotangent * output,)


def exp(x: mx.array) -> mx.array:
    """e ** x, elementwise (2 ** (x log2 e) on an x86-64 CPU, else `mx.exp`)."""
    return _pow2_exp(x) if fast_cpu_math() else mx.exp(x)


def _sigmoid(g: mx.array) -> mx.array:
    return 1.0 / (1.0 + mx.power(mx.array(2.0, dtype=g.dtype), -g * LOG2E))


@mx.custom_function
def _fast_swiglu(gate: mx.array, up: mx.array) -> mx.array:
    return gate * _sigmoid(gate) * up


@_fast_swiglu.vjp
def _fast_swiglu_vjp(primals, cotangent, output):  # noqa: ANN001, ANN202 (MLX's vjp signature)
    gate, up = primals
    s = _sigmoid(gate)
    silu = gate * s
    return cotangent * up * s * (1.0 + gate * (1.0 - s)), cotangent * silu


def swiglu(gate: mx.array, up: mx.array) -> mx.array:
    """silu(gate) * up: the fast sigmoid on an x86-64 CPU, else mlx-lm's `swiglu`."""
    if fast_cpu_math():
        return _fast_swiglu(gate, up)
    from mlx_lm.models.activations import swiglu as mlx_lm_swiglu

    return mlx_lm_swiglu(gate, up)


# ----------------------------------------------------------------------------- the models


def _swiglu_mlp_call(self: nn.Module, x: mx.array) -> mx.array:
    return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))


_FAST_CLASSES: dict[type, type] = {}


def _swiglu_mlp_classes() -> tuple[type, ...]:
    """mlx-lm MLPs whose forward is down_proj(swiglu(gate_proj(x), up_proj(x)))."""
    from mlx_lm.models import llama, qwen2, qwen3

    return (llama.MLP, qwen2.MLP, qwen3.MLP)


def use_fast_swiglu(model: nn.Module) -> int:
    """Give every SwiGLU MLP of the model the forward above (same parameters, same names:
    only the instance's class changes, to a subclass); return how many were changed.
    Nothing changes where `fast_cpu_math()` does not hold or the MLPs are of another kind."""
    if not fast_cpu_math():
        return 0
    changed, kinds = 0, _swiglu_mlp_classes()
    for _, module in model.named_modules():
        if type(module) in kinds:
            cls = type(module)
            if cls not in _FAST_CLASSES:
                _FAST_CLASSES[cls] = type(cls.__name__, (cls,), {"__call__": _swiglu_mlp_call})
            module.__class__ = _FAST_CLASSES[cls]
            changed += 1
    return changed
