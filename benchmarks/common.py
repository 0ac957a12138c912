"""Shared pieces of the benchmark scripts: random-weight models of real shapes, timing."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import Any

import mlx.core as mx
from mlx_lm.models import qwen2

# Qwen2.5-0.5B's architecture (random weights: no download needed).
QWEN25_05B = {
    "model_type": "qwen2",
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "intermediate_size": 4864,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
    "max_position_embeddings": 32768,
}


def random_model(shape: dict[str, Any], seed: int = 0, dtype: Any = mx.float32) -> Any:
    mx.random.seed(seed)
    model = qwen2.Model(qwen2.ModelArgs.from_dict(shape))
    model.set_dtype(dtype)
    mx.eval(model.parameters())
    return model


def timed(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Best wall time of `repeats` runs (after one warm-up) and the last result."""
    result = fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def machine() -> str:
    import os

    blas = "openblas (LD_PRELOAD)" if "openblas" in os.environ.get("LD_PRELOAD", "") else "default"
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, MLX {mx.__version__} "
        f"on {mx.default_device()}, BLAS {blas}"
    )
