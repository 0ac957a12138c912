"""The learning-rate schedule: warmup starts above 0 and reaches the peak, then decays."""

from __future__ import annotations

import mlx.core as mx
import pytest

from mlx_grpo.config import ScheduleConfig
from mlx_grpo.train.optim import build_schedule


def lrs(name: str, warmup: int, total: int, peak: float = 1.0) -> list[float]:
    schedule = build_schedule(peak, ScheduleConfig(name=name, warmup_steps=warmup), total)
    return [float(schedule(mx.array(k))) for k in range(total)]


@pytest.mark.parametrize("name", ["constant", "linear", "cosine"])
def test_warmup_first_update_learns_and_ramps_to_the_peak(name: str) -> None:
    values = lrs(name, warmup=3, total=10)
    assert values[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # peak * (k + 1) / (warmup + 1)
    assert all(v > 0 for v in values)


def test_decay_after_warmup_and_no_warmup() -> None:
    cosine = lrs("cosine", warmup=2, total=8)
    assert cosine[2] == pytest.approx(1.0) and cosine[2:] == sorted(cosine[2:], reverse=True)
    assert lrs("constant", warmup=0, total=4) == pytest.approx([1.0] * 4)
