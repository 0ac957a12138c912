"""What one step saw, the raw material of its metrics line, and how ranks pool it.

Each rank sees its B / N groups; the metrics line describes the whole generation batch. So the
step's observations (rewards per completion, lengths, truncation, informative groups, the
objective's token sums, losses, timings, peak memory) are gathered from every rank and merged:
per-completion arrays are concatenated in rank order (exactly the single-process batch), sums
and counts are added, wall times and peak memory take the maximum over ranks. With one process
nothing is gathered: `merge([one])` is `one`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mlx_grpo import rewards as rw


@dataclass
class Observed:
    """One step's observations (one rank's, or every rank's merged)."""

    total: list[float]  # weighted reward per completion
    per_function: dict[str, list[float]]
    errors: dict[str, int]
    outcomes: dict[str, dict[str, int]]
    lengths: list[int]  # completion tokens per completion
    truncated: list[bool]
    informative: list[bool]  # per group
    sums: dict[str, float]  # the objective's token sums (StepStats.sums)
    losses: list[float]  # per update: this rank's share of the loss
    tokens: float  # loss-carrying tokens, summed over updates
    rollout_tokens: int
    rollout_s: float
    times: dict[str, float] = field(default_factory=dict)  # reward_s, batch_s, update_s
    peak_memory: float = 0.0  # bytes

    @property
    def scores(self) -> rw.Scores:
        return rw.Scores(
            total=np.asarray(self.total, dtype=np.float64),
            per_function={k: np.asarray(v, dtype=np.float64) for k, v in self.per_function.items()},
            errors=dict(self.errors),
            outcomes={k: dict(v) for k, v in self.outcomes.items()},
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def observe(scores: rw.Scores, **rest: Any) -> Observed:
    """This rank's observations, from its scores and the rest of `Observed`'s fields."""
    return Observed(
        total=[float(x) for x in scores.total],
        per_function={k: [float(x) for x in v] for k, v in scores.per_function.items()},
        errors={k: int(v) for k, v in scores.errors.items()},
        outcomes={k: {kind: int(n) for kind, n in v.items()} for k, v in scores.outcomes.items()},
        **rest,
    )


def merge(parts: list[Observed]) -> Observed:
    """Every rank's observations as one (rank order kept for per-completion lists)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return Observed(
        total=[x for p in parts for x in p.total],
        per_function={k: [x for p in parts for x in p.per_function[k]] for k in first.per_function},
        errors=_add_counts([p.errors for p in parts]),
        outcomes={
            k: _add_counts([p.outcomes.get(k, {}) for p in parts])
            for k in dict.fromkeys(k for p in parts for k in p.outcomes)
        },
        lengths=[n for p in parts for n in p.lengths],
        truncated=[t for p in parts for t in p.truncated],
        informative=[i for p in parts for i in p.informative],
        sums=_add_counts([p.sums for p in parts]),
        losses=[sum(values) for values in zip(*(p.losses for p in parts))],
        tokens=sum(p.tokens for p in parts),
        rollout_tokens=sum(p.rollout_tokens for p in parts),
        rollout_s=max(p.rollout_s for p in parts),
        times={k: max(p.times.get(k, 0.0) for p in parts) for k in first.times},
        peak_memory=max(p.peak_memory for p in parts),
    )


def _add_counts(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def from_json(obj: dict[str, Any]) -> Observed:
    return Observed(**obj)
